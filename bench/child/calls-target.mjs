// The same functions as calls-impl.mjs, in a module the calls benchmark instruments
// (LIVEPATCH_INCLUDE): keep the bodies identical to calls-impl.mjs.

/** Trivial: one addition. */
export function add(a, b) {
  return a + b;
}

/**
 * Non-trivial (~50 operations): normalizes an order record the way a request handler would —
 * string cleanup, a loop over the lines, arithmetic, a new object out.
 */
export function normalize(order) {
  const id = String(order.id).trim().toLowerCase();
  const customer = order.customer.trim();
  const lines = [];
  let subtotal = 0;
  let quantity = 0;
  for (let i = 0; i < order.lines.length; i++) {
    const line = order.lines[i];
    const qty = line.qty > 0 ? line.qty | 0 : 1;
    const price = Math.round(line.price * 100) / 100;
    const total = qty * price;
    subtotal += total;
    quantity += qty;
    lines.push({ sku: line.sku.toUpperCase(), qty, price, total });
  }
  const discount = subtotal > 100 ? subtotal * 0.05 : 0;
  const tax = (subtotal - discount) * 0.2;
  return {
    id,
    customer,
    lines,
    quantity,
    subtotal,
    discount,
    tax,
    total: Math.round((subtotal - discount + tax) * 100) / 100,
    priority: quantity > 10 || subtotal > 500,
  };
}
