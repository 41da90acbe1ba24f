// The fix for examples/demo/shop.ts: take the SAVE10 discount once per order, not once per item.
// A bundle's code is an ES module whose default export receives livepatch's API and returns the
// replacements by export name (docs/bundle.md); it imports nothing.
export default (api) => ({
  applyDiscount(items, code) {
    // The module's own `subtotal`, reached through the original's scope.
    const subtotal = api.callContext().get('subtotal');
    let total = subtotal(items);
    if (code === 'SAVE10') total *= 0.9;
    return Math.round(total * 100) / 100;
  },
});
