/**
 * A diagnostic, not part of `npm run bench`: the HTTP benchmark's server run under two builds of
 * livepatch (or plain Node) side by side, to tell apart variants of the code whose costs differ
 * by 1%. bench/http.ts compares one build with plain Node; comparing two builds directly, in the
 * same sessions, removes plain Node's own noise from the difference.
 *
 * Each session starts a fresh pair of servers (bench/child/http-server.mjs) and one load
 * generator (bench/child/http-load.mjs: batches sent A B B A …); odd sessions swap which server
 * starts first and which one is the generator's first side. Reported: B's server CPU time per
 * request over A's, the median over each session's median batch pair, and every session's value.
 *
 * Builds are made with `node scripts/build.ts --outdir bench/.build/dist-X --no-types --entry
 * bench-internals=bench/lib/internals.ts`, inside the repository (a build outside it instruments
 * differently: the loader excludes its own files by path).
 *
 * `node bench/http-builds.ts <buildA|plain> <buildB|plain> [--sessions N (20)] [--include
 *   patterns (default: nothing, the loader only)] [--fresh-cache (a cold start every session)]`
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CHILD_DIR, freshDir, REPO } from './lib/proc.ts';
import { median } from './report.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    sessions: { type: 'string', default: '20' },
    include: { type: 'string', default: '/nonexistent-on-purpose' },
    'fresh-cache': { type: 'boolean', default: false },
  },
});
const sessions = Number(values.sessions);
if (positionals.length !== 2 || !Number.isInteger(sessions) || sessions < 1) {
  console.error('http-builds: two builds and a whole number of sessions expected (see --help)');
  process.exit(2);
}
const builds = positionals.map((b) => (b === 'plain' ? b : path.resolve(b)));
for (const b of builds) {
  if (b !== 'plain' && !fs.existsSync(path.join(b, 'loader', 'register.js'))) {
    console.error(`http-builds: ${b} has no loader/register.js: build it first (see the header)`);
    process.exit(2);
  }
}

interface Server {
  child: ReturnType<typeof spawn>;
  port: number;
}

function start(build: string, cache: string): Promise<Server> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LIVEPATCH_INCLUDE: values.include,
    LIVEPATCH_CACHE_DIR: cache,
    BENCH_MODE: build === 'plain' ? 'plain' : 'instrumented',
  };
  const args = [path.join(CHILD_DIR, 'http-server.mjs')];
  if (build !== 'plain') {
    args.unshift('--import', path.join(build, 'loader', 'register.js'));
    env.BENCH_API = path.join(build, 'index.js');
    env.BENCH_INTERNALS = path.join(build, 'bench-internals.js');
  }
  const child = spawn(process.execPath, args, {
    cwd: REPO,
    env,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => reject(new Error(`http-builds: a server exited with ${code}`)));
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('READY '));
      if (line !== undefined)
        resolve({ child, port: (JSON.parse(line.slice(6)) as { port: number }).port });
    });
  });
}

interface Batch {
  n: number;
  serverCpuMs: number;
  errors: number;
}

async function load(ports: number[]): Promise<{ a: Batch; b: Batch }[]> {
  const args = [...ports, 2000, 16, 1250, 32].map(String);
  const child = spawn(process.execPath, [path.join(CHILD_DIR, 'http-load.mjs'), ...args], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  await new Promise((resolve) => child.on('close', resolve));
  const line = out.split('\n').find((l) => l.startsWith('RESULT '));
  if (line === undefined) throw new Error('http-builds: the load generator printed no result');
  return (JSON.parse(line.slice(7)) as { batches: { a: Batch; b: Batch }[] }).batches;
}

const perSession: number[] = [];
let shared: string | undefined;
for (let s = 0; s < sessions; s++) {
  const swap = s % 2 === 1;
  // One transform cache for all sessions, as bench/http.ts has: from the second session on, the
  // servers start warm. A fresh one per session makes every start cold, which flattered an
  // instrumented server by 3-4% on Node 26: a process that transformed code at start serves
  // requests faster, as plain Node does after the same work (docs/benchmarks.md).
  const cache =
    values['fresh-cache'] === true ? freshDir('http-builds') : (shared ??= freshDir('http-builds'));
  const first = await start(builds[swap ? 1 : 0]!, cache);
  const second = await start(builds[swap ? 0 : 1]!, cache);
  const [a, b] = swap ? [second, first] : [first, second];
  try {
    const pairs = await load(swap ? [b.port, a.port] : [a.port, b.port]);
    const ratios = pairs.map((p) => {
      const [x, y] = swap ? [p.b, p.a] : [p.a, p.b];
      if (x.errors + y.errors > 0) throw new Error('http-builds: requests failed');
      return y.serverCpuMs / y.n / (x.serverCpuMs / x.n);
    });
    perSession.push(median(ratios));
    console.error(`  session ${s + 1}/${sessions}: ${perSession.at(-1)!.toFixed(3)}`);
  } finally {
    for (const server of [a, b]) {
      server.child.removeAllListeners('exit');
      server.child.stdin!.end('end\n');
    }
  }
}
const mean = perSession.reduce((x, y) => x + y, 0) / perSession.length;
console.log(
  `server CPU per request, B over A: median ${median(perSession).toFixed(3)}, mean ${mean.toFixed(3)} over ${sessions} sessions [${perSession.map((r) => r.toFixed(3)).join(' ')}]`,
);
