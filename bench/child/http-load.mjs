// The HTTP benchmark's load generator (always a plain process): keep-alive node:http clients on
// 127.0.0.1 sending batches of requests with a fixed concurrency, alternating between two
// servers (A B B A …) so both are measured under the same conditions.
// `http-load.mjs <portA> <portB> <warmupPerSide> <batchesPerSide> <batchSize> <concurrency>`
import http from 'node:http';
import { emit } from './common.mjs';

const [portA, portB, warmup, batches, batchSize, concurrency] = process.argv.slice(2).map(Number);
const sides = [portA, portB].map((port) => ({
  port,
  agent: new http.Agent({ keepAlive: true, maxSockets: concurrency }),
  lastOrder: 0,
  latencies: [],
}));

function request(side, method, path, body) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      {
        host: '127.0.0.1',
        port: side.port,
        method,
        path,
        agent: side.agent,
        headers:
          payload === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode, text }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const WORDS = ['red', 'blue', 'product 1', 'a', 'c green', 'black e', ''];
/** The i-th request of the mix: 50% product search, 30% order creation, 20% order lookup. */
async function one(side, i) {
  const k = i % 10;
  if (k < 5) {
    const q = encodeURIComponent(WORDS[i % WORDS.length]);
    return request(
      side,
      'GET',
      `/api/products?q=${q}&max=${50 + (i % 250)}&limit=${10 + (i % 20)}`,
    );
  }
  if (k < 8) {
    const lines = Array.from({ length: 1 + (i % 4) }, (_, j) => ({
      productId: 1 + ((i * 7 + j * 31) % 200),
      qty: 1 + (j % 3),
    }));
    const r = await request(side, 'POST', '/api/orders', {
      customer: ` customer ${i % 50} `,
      lines,
    });
    if (r.status === 200) side.lastOrder = JSON.parse(r.text).id;
    return r;
  }
  return request(side, 'GET', `/api/orders/${Math.max(1, side.lastOrder - (i % 50))}`);
}

async function cpuOf(side) {
  return Number((await request(side, 'GET', '/__cpu')).text);
}

async function batch(side, n, record) {
  let next = 0;
  let errors = 0;
  const lat = [];
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const t0 = performance.now();
      const r = await one(side, i);
      lat.push(performance.now() - t0);
      if (r.status !== 200) errors++;
    }
  };
  const c0 = await cpuOf(side);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const ms = performance.now() - t0;
  const c1 = await cpuOf(side);
  if (record) side.latencies.push(...lat);
  return { n, ms, serverCpuMs: c1 - c0, errors };
}

for (const side of sides) await batch(side, warmup, false);
const results = [];
for (let b = 0; b < batches; b++) {
  const order = b % 2 === 0 ? [0, 1] : [1, 0];
  const pair = {};
  for (const s of order) pair[s === 0 ? 'a' : 'b'] = await batch(sides[s], batchSize, true);
  results.push(pair);
}
const pct = (xs, p) => {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
emit({
  batches: results,
  a: {
    p50: pct(sides[0].latencies, 50),
    p99: pct(sides[0].latencies, 99),
    n: sides[0].latencies.length,
  },
  b: {
    p50: pct(sides[1].latencies, 50),
    p99: pct(sides[1].latencies, 99),
    n: sides[1].latencies.length,
  },
});
for (const side of sides) side.agent.destroy();
