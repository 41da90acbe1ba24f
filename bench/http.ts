/**
 * An HTTP service on loopback, instrumented-but-unpatched vs plain. Two servers run side by side
 * (bench/child/http-server.mjs with the app in http-app.mjs: routing, validation, JSON in and
 * out, a class-based store), one plain and one under the loader with both files instrumented. A
 * load generator in a third process (bench/child/http-load.mjs, keep-alive node:http agents,
 * concurrency 32 on 127.0.0.1) warms both up, then sends batches alternately to each (A B B A …)
 * so that both are measured under the same conditions. Bounded by request count (and a timeout).
 *
 * Reported: throughput (as time per request), the server's CPU time per request (read from the
 * server around each batch), and p50 / p99 latency as the client sees it; then the same with the
 * loader installed but nothing instrumented, which isolates the task tracking that
 * `livepatch/register` starts for every connection. Values are the baseline times the ratio: the
 * median over sessions (a fresh pair of servers each) of the median over its batch pairs.
 *
 * On Node 22 both servers run with --experimental-async-context-frame, as `livepatch run` starts
 * them (docs/consistency.md, "Cost"): without it AsyncLocalStorage is built on async hooks, and
 * once the first request has run a task every promise in the process pays for them (an
 * await-heavy loop measured 2.3x slower; this app awaits little, so its rows move by a few %).
 * `--no-context-frame` measures that way, as `node --import livepatch/register` runs on Node 22.
 *
 * `node bench/http.ts [--quick] [--control] [--no-context-frame] [--include patterns]
 *   [--env K=V,…] [--node-args "…"]`
 */
import { freshDir, QUICK, runChild, startChild } from './lib/proc.ts';
import { median, ratioTarget, report, spread, type Row } from './report.ts';

// Many short sessions rather than a few long ones: a pair of server processes carries a bias of
// its own (where the scheduler put them: an A/A pair read 0.96–1.03 per session on Node 26), so
// the ratio is the median over sessions of each session's median batch pair, and the two
// servers start in alternating order.
const SESSIONS = QUICK ? 2 : 20;
const WARMUP = QUICK ? 1000 : 2000;
const BATCHES = QUICK ? 4 : 12;
const BATCH = 1250;
const CONCURRENCY = 32;

interface Batch {
  n: number;
  ms: number;
  serverCpuMs: number;
  errors: number;
}
interface LoadResult {
  batches: { a: Batch; b: Batch }[];
  a: { p50: number; p99: number; n: number };
  b: { p50: number; p99: number; n: number };
}

// Experiments: `--include <patterns>` and `--env K=V,…` change what the instrumented server runs
// with; `--node-args "…"` adds flags to both servers (e.g. --cpu-prof); `--control` adds an A/A
// run (both servers plain) that shows the harness's own bias.
const INSTRUMENTED = 'bench/child/http-server.mjs,bench/child/http-app.mjs';
const extraEnv = Object.fromEntries(
  (argValue('--env')?.split(',') ?? []).map((kv) => [
    kv.slice(0, kv.indexOf('=')),
    kv.slice(kv.indexOf('=') + 1),
  ]),
);
const MAJOR = Number(process.versions.node.split('.')[0]);
const contextFrame =
  MAJOR === 22 && !process.argv.includes('--no-context-frame')
    ? ['--experimental-async-context-frame']
    : [];
const nodeArgs = [...contextFrame, ...(argValue('--node-args')?.split(' ').filter(Boolean) ?? [])];
const CONFIGS = [
  {
    key: 'instrumented',
    include: argValue('--include') ?? INSTRUMENTED,
    loader: true,
    target: true,
  },
  // The loader installed (with its task sources) but no module instrumented: what remains is the
  // per-request cost of the consistency model's task tracking, not of entry checks.
  { key: 'loader only', include: '/nonexistent-on-purpose', loader: true, target: false },
  ...(process.argv.includes('--control')
    ? [{ key: 'control (plain vs plain)', include: '', loader: false, target: false }]
    : []),
];

interface Measured {
  /** Per batch pair, and `sessions`: each session's median ratio. */
  rate: { a: number[]; b: number[]; ratio: number[]; sessions: number[] };
  cpu: { a: number[]; b: number[]; ratio: number[]; sessions: number[] };
  p50: { a: number[]; b: number[] };
  p99: { a: number[]; b: number[] };
  functions: number;
  requests: number;
}

async function measure(include: string, loader: boolean): Promise<Measured> {
  const env = { LIVEPATCH_INCLUDE: include, LIVEPATCH_CACHE_DIR: freshDir('http'), ...extraEnv };
  const m: Measured = {
    rate: { a: [], b: [], ratio: [], sessions: [] },
    cpu: { a: [], b: [], ratio: [], sessions: [] },
    p50: { a: [], b: [] },
    p99: { a: [], b: [] },
    functions: 0,
    requests: 0,
  };
  for (let s = 0; s < SESSIONS; s++) {
    // Odd sessions swap everything that has an order: which server starts first, and which one
    // the load generator treats as its first side (A of A B B A …).
    const swap = s % 2 === 1;
    const start = (instrumented: boolean) =>
      startChild('http-server.mjs', [], { instrumented, env, nodeArgs });
    const first = await start(swap ? loader : false);
    const second = await start(swap ? false : loader);
    const [plain, subject] = swap ? [second, first] : [first, second];
    const ports = swap
      ? [subject.ready.port, plain.ready.port]
      : [plain.ready.port, subject.ready.port];
    try {
      const { result } = await runChild<LoadResult>(
        'http-load.mjs',
        [...ports, WARMUP, BATCHES, BATCH, CONCURRENCY].map(String),
        { instrumented: false, env, timeoutMs: 180_000 },
      );
      const from = m.cpu.ratio.length;
      for (const pair of result.batches) {
        const [a, b] = swap ? [pair.b, pair.a] : [pair.a, pair.b];
        if (a.errors + b.errors > 0)
          throw new Error(`bench: http: ${a.errors + b.errors} requests failed`);
        m.rate.a.push((a.n / a.ms) * 1000);
        m.rate.b.push((b.n / b.ms) * 1000);
        m.rate.ratio.push(b.ms / b.n / (a.ms / a.n));
        m.cpu.a.push((a.serverCpuMs * 1000) / a.n);
        m.cpu.b.push((b.serverCpuMs * 1000) / b.n);
        m.cpu.ratio.push(b.serverCpuMs / b.n / (a.serverCpuMs / a.n));
        m.requests += a.n + b.n;
      }
      m.rate.sessions.push(median(m.rate.ratio.slice(from)));
      m.cpu.sessions.push(median(m.cpu.ratio.slice(from)));
      const [pa, pb] = swap ? [result.b, result.a] : [result.a, result.b];
      m.p50.a.push(pa.p50);
      m.p50.b.push(pb.p50);
      m.p99.a.push(pa.p99);
      m.p99.b.push(pb.p99);
    } finally {
      plain.child.stdin!.end('end\n');
      subject.child.stdin!.end('end\n');
    }
    await plain.done;
    m.functions = ((await subject.done).result.instrumentation as { functions: number }).functions;
  }
  return m;
}

const rows: Row[] = [];
for (const c of CONFIGS) {
  const m = await measure(c.include, c.loader);
  if (c.key === 'instrumented' && m.functions === 0)
    throw new Error('bench: http: the server was not instrumented');
  const rr = median(m.rate.sessions);
  const cr = median(m.cpu.sessions);
  console.error(
    `  http ${c.key}: time/request ratio ${rr.toFixed(3)}, server CPU/request ratio ${cr.toFixed(3)}`,
  );
  const rate = median(m.rate.a);
  const cpu = median(m.cpu.a);
  rows.push({
    name: `${c.key}: throughput (time per request)`,
    value: `${(rate / rr).toFixed(0)} req/s`,
    baseline: `${rate.toFixed(0)} req/s plain`,
    ratio: rr,
    ...(c.target ? ratioTarget(rr, 1.02) : {}),
    note: `${m.requests} measured requests, concurrency ${CONCURRENCY}, ${m.rate.sessions.length} sessions of ${BATCHES} batch pairs (session medians ${spread(m.rate.sessions)}); ${m.functions} functions instrumented${nodeArgs.length > 0 ? `; both servers run with ${nodeArgs.join(' ')}` : ''}`,
  });
  rows.push({
    name: `${c.key}: server CPU time per request`,
    value: `${(cpu * cr).toFixed(1)} µs`,
    baseline: `${cpu.toFixed(1)} µs plain`,
    ratio: cr,
    ...(c.target ? ratioTarget(cr, 1.02) : {}),
    note: `session medians ${spread(m.cpu.sessions)}`,
  });
  if (c.key !== 'instrumented') continue;
  rows.push({
    name: `${c.key}: latency p50`,
    value: `${median(m.p50.b).toFixed(2)} ms`,
    baseline: `${median(m.p50.a).toFixed(2)} ms plain`,
    ratio: median(m.p50.b) / median(m.p50.a),
  });
  rows.push({
    name: `${c.key}: latency p99`,
    value: `${median(m.p99.b).toFixed(2)} ms`,
    baseline: `${median(m.p99.a).toFixed(2)} ms plain`,
    ratio: median(m.p99.b) / median(m.p99.a),
  });
}
report('HTTP server on loopback: instrumented, unpatched vs plain', rows);

function argValue(flag: string): string | undefined {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
