/**
 * The service the demo patches: a tiny shop API with in-memory state (carts, an order counter)
 * that a restart would lose. It has a bug: a discount code is applied once per item instead of
 * once per order, so a cart of three items gets 30% off instead of 10%.
 */
import http from 'node:http';

interface Item {
  readonly sku: string;
  readonly price: number;
}

const carts = new Map<string, Item[]>();
let ordersPlaced = 0;

export function addToCart(user: string, item: Item): number {
  const cart = carts.get(user) ?? [];
  cart.push(item);
  carts.set(user, cart);
  return cart.length;
}

export function subtotal(items: readonly Item[]): number {
  return items.reduce((sum, item) => sum + item.price, 0);
}

// BUG: the 10% discount is taken once per item.
export function applyDiscount(items: readonly Item[], code: string | undefined): number {
  let total = subtotal(items);
  if (code === 'SAVE10') for (const _ of items) total -= subtotal(items) * 0.1;
  return Math.round(total * 100) / 100;
}

/** Checkout reads the cart, waits for the payment provider, then prices the order. */
export async function checkout(
  user: string,
  code: string | undefined,
  paid: Promise<void>,
): Promise<{ order: number; total: number; priced: number[] }> {
  const items = carts.get(user) ?? [];
  const quoted = applyDiscount(items, code);
  await paid;
  const charged = applyDiscount(items, code);
  ordersPlaced++;
  return { order: ordersPlaced, total: charged, priced: [quoted, charged] };
}

export function stats(): { carts: number; ordersPlaced: number } {
  return { carts: carts.size, ordersPlaced };
}

/** Payment confirmations the demo releases by hand, so a request can be held in flight. */
const pending = new Map<string, () => void>();
const arrivals = new Map<string, () => void>();
export function confirmPayment(user: string): void {
  pending.get(user)?.();
}
/** Resolves once a held checkout of `user` is waiting for its payment. */
export function whenWaiting(user: string): Promise<void> {
  return new Promise((resolve) => (pending.has(user) ? resolve() : arrivals.set(user, resolve)));
}
function hold(user: string): Promise<void> {
  return new Promise<void>((resolve) => {
    pending.set(user, resolve);
    arrivals.get(user)?.();
  });
}

export function createShop(): http.Server {
  return http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://shop');
    const user = url.searchParams.get('user') ?? 'anonymous';
    if (url.pathname === '/add') {
      const count = addToCart(user, {
        sku: url.searchParams.get('sku') ?? 'x',
        price: Number(url.searchParams.get('price') ?? 0),
      });
      res.end(JSON.stringify({ items: count }));
    } else if (url.pathname === '/checkout') {
      const paid = url.searchParams.get('hold') === '1' ? hold(user) : Promise.resolve();
      checkout(user, url.searchParams.get('code') ?? undefined, paid).then((result) =>
        res.end(JSON.stringify(result)),
      );
    } else {
      res.end(JSON.stringify(stats()));
    }
  });
}
