// The HTTP benchmark's application: routing, validation, a small in-memory store, JSON in and
// out, spread over several functions and a class the way a small service is written.

const PRODUCTS = Array.from({ length: 200 }, (_, i) => ({
  id: i + 1,
  name: `product ${i + 1} ${['red', 'green', 'blue', 'black'][i % 4]}`,
  price: Math.round((5 + ((i * 37) % 300) + (i % 7) / 10) * 100) / 100,
  stock: (i * 13) % 50,
  tags: ['a', 'b', 'c', 'd', 'e'].slice(0, 1 + (i % 5)),
}));

export class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

class OrderStore {
  #orders = new Map();
  #next = 1;
  create(order) {
    const id = this.#next++;
    const saved = { id, ...order, createdAt: 1700000000000 + id };
    this.#orders.set(id, saved);
    if (this.#orders.size > 5000) this.#orders.delete(id - 5000);
    return saved;
  }
  get(id) {
    return this.#orders.get(id) ?? null;
  }
}

const store = new OrderStore();

function parseQuery(search) {
  const out = {};
  for (const part of search.replace(/^\?/, '').split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
    out[key] = eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1).replace(/\+/g, ' '));
  }
  return out;
}

function matches(product, words, maxPrice) {
  if (product.price > maxPrice) return false;
  return words.every((w) => product.name.includes(w) || product.tags.includes(w));
}

function search(query) {
  const words = (query.q ?? '').toLowerCase().split(/\s+/).filter(Boolean);
  const maxPrice = query.max !== undefined ? Number(query.max) : Infinity;
  const limit = Math.min(Number(query.limit ?? 20), 50);
  const found = PRODUCTS.filter((p) => matches(p, words, maxPrice));
  found.sort((a, b) => a.price - b.price || a.id - b.id);
  return { total: found.length, items: found.slice(0, limit).map(summarize) };
}

function summarize(p) {
  return { id: p.id, name: p.name, price: p.price, inStock: p.stock > 0 };
}

function validateOrder(body) {
  if (body === null || typeof body !== 'object') throw new HttpError(400, 'body must be an object');
  if (typeof body.customer !== 'string' || body.customer.trim() === '')
    throw new HttpError(400, 'customer is required');
  if (!Array.isArray(body.lines) || body.lines.length === 0)
    throw new HttpError(400, 'lines are required');
  return body.lines.map((line, i) => {
    const product = PRODUCTS[line.productId - 1];
    if (product === undefined) throw new HttpError(400, `line ${i}: unknown product`);
    const qty = Number.isInteger(line.qty) && line.qty > 0 ? line.qty : 1;
    return { product, qty };
  });
}

function priceOrder(lines) {
  let subtotal = 0;
  const out = lines.map(({ product, qty }) => {
    const total = Math.round(product.price * qty * 100) / 100;
    subtotal += total;
    return { productId: product.id, name: product.name, qty, unitPrice: product.price, total };
  });
  const discount = subtotal > 200 ? Math.round(subtotal * 5) / 100 : 0;
  const tax = Math.round((subtotal - discount) * 20) / 100;
  return {
    lines: out,
    subtotal,
    discount,
    tax,
    total: Math.round((subtotal - discount + tax) * 100) / 100,
  };
}

function createOrder(body) {
  const lines = validateOrder(body);
  return store.create({ customer: body.customer.trim(), ...priceOrder(lines) });
}

function getOrder(id) {
  const order = store.get(Number(id));
  if (order === null) throw new HttpError(404, `no order ${id}`);
  return order;
}

const routes = [
  {
    method: 'GET',
    pattern: /^\/api\/products$/,
    handle: (m, req) => search(parseQuery(req.search)),
  },
  { method: 'POST', pattern: /^\/api\/orders$/, handle: (m, req) => createOrder(req.body) },
  { method: 'GET', pattern: /^\/api\/orders\/(\d+)$/, handle: (m) => getOrder(m[1]) },
];

function route(method, pathname) {
  for (const r of routes) {
    if (r.method !== method) continue;
    const m = r.pattern.exec(pathname);
    if (m !== null) return { route: r, match: m };
  }
  return null;
}

/** Handles one request whose body has been read; returns [status, JSON text]. */
export function handle(method, url, rawBody) {
  const q = url.indexOf('?');
  const pathname = q < 0 ? url : url.slice(0, q);
  const found = route(method, pathname);
  try {
    if (found === null) throw new HttpError(404, `no route for ${method} ${pathname}`);
    const body = rawBody.length > 0 ? JSON.parse(rawBody) : null;
    const result = found.route.handle(found.match, { search: q < 0 ? '' : url.slice(q), body });
    return [200, JSON.stringify(result)];
  } catch (error) {
    const status =
      error instanceof HttpError ? error.status : error instanceof SyntaxError ? 400 : 500;
    return [status, JSON.stringify({ error: error.message })];
  }
}
