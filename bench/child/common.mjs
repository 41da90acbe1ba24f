// Helpers for the benchmark child programs. Children are plain JavaScript so that the plain and
// the instrumented run execute the same harness bytes: only the code under test is instrumented
// (LIVEPATCH_INCLUDE), and nothing needs a TypeScript compiler in either run.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const instrumented = process.env.BENCH_MODE === 'instrumented';

/** Prints the child's one result line for the parent (bench/lib/proc.ts). */
export function emit(result) {
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** CPU time of this process (all threads, user + system) in milliseconds. */
export function cpuMs() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * A function that runs `op` repeatedly for at least `ms` milliseconds (wall clock) and returns
 * the count, the wall time and this process's CPU time spent. Calls `op` once first to learn
 * whether it returns promises (then each is awaited before the next call).
 */
async function runner(op) {
  const first = op();
  if (first !== null && typeof first === 'object' && typeof first.then === 'function') {
    await first;
    return async (ms) => {
      const c0 = cpuMs();
      const t0 = performance.now();
      let n = 0;
      for (;;) {
        await op();
        n++;
        const t = performance.now();
        if (t - t0 >= ms) return { n, ms: t - t0, cpu: cpuMs() - c0 };
      }
    };
  }
  return async (ms) => {
    const c0 = cpuMs();
    const t0 = performance.now();
    let n = 0;
    for (;;) {
      op();
      n++;
      const t = performance.now();
      if (t - t0 >= ms) return { n, ms: t - t0, cpu: cpuMs() - c0 };
    }
  };
}

/**
 * Two versions of one operation in this process, taking turns: `base` (the plain library) and
 * `op` (its other copy). Both warm up for `warmupMs` each, alternating; then each of `rounds`
 * rounds times one block of each (which goes first flips every round), a full GC before every
 * block so that each side pays for its own garbage. With only a young-generation GC instead, the
 * old-generation collections land in either side's blocks at random and typescript's A/A control
 * became too wide to read 2% (docs/benchmarks.md, "In-process gauge").
 */
export async function alternate(base, op, { rounds, warmupMs = 2500, blockMs = 150 }) {
  const gc = globalThis.gc;
  if (typeof gc !== 'function') throw new Error('alternate() needs node --expose-gc');
  const call = async (f) => {
    const r = f();
    if (r !== null && typeof r === 'object' && typeof r.then === 'function') await r;
  };
  const t0 = performance.now();
  while (performance.now() - t0 < 2 * warmupMs) {
    await call(base);
    await call(op);
  }
  const c0 = cpuMs();
  for (let i = 0; i < 3; i++) await call(base);
  const perOp = (cpuMs() - c0) / 3;
  const opsPerBlock = Math.max(1, Math.ceil(blockMs / perOp));
  const timed = async (f) => {
    gc();
    const c = cpuMs();
    for (let i = 0; i < opsPerBlock; i++) await call(f);
    return cpuMs() - c;
  };
  const ratios = [];
  const plain = [];
  for (let r = 0; r < rounds; r++) {
    let a;
    let b;
    if (r % 2 === 0) {
      b = await timed(op);
      a = await timed(base);
    } else {
      a = await timed(base);
      b = await timed(op);
    }
    ratios.push(b / a);
    plain.push(a / opsPerBlock);
  }
  return { ratios, opsPerBlock, msPerOp: median(plain) };
}

/**
 * Steady-state cost per operation, measured by the child alone: runs `op` for `warmupMs`, then
 * `rounds` rounds of at least `roundMs` each. Returns the median round's CPU milliseconds per
 * operation (`msPerOp`) and wall milliseconds per operation (`wallPerOp`), with every round.
 */
export async function steady(op, { warmupMs, rounds, roundMs }) {
  const run = await runner(op);
  await run(warmupMs);
  const cpu = [];
  const wall = [];
  let ops = 0;
  for (let r = 0; r < rounds; r++) {
    const { n, ms, cpu: c } = await run(roundMs);
    cpu.push(c / n);
    wall.push(ms / n);
    ops += n;
  }
  return { msPerOp: median(cpu), wallPerOp: median(wall), rounds: cpu, wallRounds: wall, ops };
}

/**
 * Lock-step mode, driven by the parent (bench/lib/lockstep.ts) over stdin/stdout so that a plain
 * and an instrumented process take turns: one round of one, then one round of the other, while
 * the idle one waits. Rounds that ran under the same conditions are compared, which cancels the
 * drift and the bursts of a shared machine. Commands, one per line:
 *   `warm <ms>`  run the operation for <ms>, answer `OK`
 *   `round <ms>` run it for at least <ms>, answer `ROUND {"n","ms","cpu"}`
 *   `end`        answer `RESULT {...await extra()}` and exit
 */
export async function serveLockstep(op, extra = async () => ({})) {
  const run = await runner(op);
  process.stdout.write('READY {}\n');
  const { createInterface } = await import('node:readline');
  for await (const line of createInterface({ input: process.stdin })) {
    const [cmd, arg] = line.trim().split(' ');
    if (cmd === 'warm') {
      await run(Number(arg));
      process.stdout.write('OK\n');
    } else if (cmd === 'round') {
      process.stdout.write(`ROUND ${JSON.stringify(await run(Number(arg)))}\n`);
    } else if (cmd === 'end') {
      emit(await extra());
      break;
    }
  }
  process.stdin.destroy();
}

/**
 * What livepatch instrumented in this process, read from its function table: modules and
 * functions whose file path contains `pathPart` (all when omitted). Zeros in a plain run.
 */
export async function instrumentation(pathPart) {
  if (!instrumented) return { modules: 0, functions: 0, refused: 0 };
  const { table } = await import(process.env.BENCH_INTERNALS);
  let modules = 0;
  let functions = 0;
  let refused = 0;
  for (const m of table.all()) {
    if (pathPart !== undefined && !m.meta.filename.includes(pathPart)) continue;
    modules++;
    functions += m.meta.functionCount;
    refused += m.meta.refused.length;
  }
  return { modules, functions, refused };
}

/** The loader's counters (cache hits and misses), or null in a plain run. */
export async function loaderStats() {
  if (!instrumented) return null;
  const { loaderStats } = await import(process.env.BENCH_INTERNALS);
  const s = loaderStats();
  return s === null ? null : { modules: s.modules, instrumented: s.instrumented, cached: s.cached };
}

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A file of the repository, as text. */
export function readRepo(rel) {
  return fs.readFileSync(path.join(repo, rel), 'utf8');
}

/**
 * The operations measured on a loaded library (workload.mjs and check-variant.mjs): each takes
 * the library's exports and returns the operation.
 */
export const libraryOps = {
  // A parser: acorn parsing its own 240 KB bundle, with locations.
  acorn(acorn) {
    const src = readRepo('node_modules/acorn/dist/acorn.js');
    return () => acorn.parse(src, { ecmaVersion: 'latest', sourceType: 'script', locations: true });
  },
  // The TypeScript compiler: ts.transpileModule on a 35 KB TypeScript file.
  typescript(ts) {
    const src = readRepo('src/instrument/analyze.ts');
    const compilerOptions = {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      sourceMap: true,
    };
    return () =>
      ts.transpileModule(src, { compilerOptions, fileName: 'analyze.ts' }).outputText.length;
  },
};
