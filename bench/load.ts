/**
 * Load time of large dependency graphs (bench/child/load.mjs): typescript (one 9 MB CommonJS
 * module), eslint (~260 CommonJS modules) and prettier (ESM, plugins loaded on first use); and
 * an empty program, for what starting under the loader costs by itself (no target: it is a few
 * milliseconds over a process that does nothing).
 * Every run is a fresh process, timed from spawn to exit:
 *   plain        `node load.mjs <graph>`
 *   cold         under the loader with an empty transform cache (LIVEPATCH_CACHE_DIR fresh)
 *   warm         under the loader with the cache filled by an earlier run
 *   plain + V8 cache  plain node with Node's compile cache warm (NODE_COMPILE_CACHE): the loader
 *                turns Node's compile cache on next to its own, so this is the like-for-like
 *                baseline for the warm start.
 *   plain + 1 MB plain node, the program holding 1 MB more of objects while it loads (a
 *                control, in the warm row's note): how close the plain run is to the heap size
 *                at which V8 starts a full collection that the process then waits for at exit.
 * The modes are interleaved within each repetition, in an order that flips every repetition;
 * medians over repetitions. Target: warm ≤ 1.1 × plain. The warm row's note splits the difference
 * into start-up (spawn to the program's first line), load, and exit (last line to the end of
 * the process, where a garbage collection V8 started is waited for).
 *
 * `node bench/load.ts [--quick] [--graph typescript,eslint]`
 */
import { freshDir, QUICK, runChild } from './lib/proc.ts';
import { median, ratioTarget, report, spread, type Row } from './report.ts';

interface LoadResult {
  startMs: number;
  loadMs: number;
  endMs: number;
  cpuMs: number;
  instrumentation: { modules: number; functions: number };
  loader: { modules: number; instrumented: number; cached: number; indexHits: number } | null;
}

const GRAPHS = [
  { graph: 'empty', label: 'empty program' },
  { graph: 'typescript', label: 'typescript (require, 1 module, 9 MB)' },
  { graph: 'eslint', label: 'eslint (Linter + recommended, ~260 CJS modules)' },
  { graph: 'prettier', label: 'prettier (ESM import + format)' },
];
// Warm and plain runs take ~0.2 s each: 15 of each keep the medians steady to about 1% on a
// shared 2-core machine, where 5 left the eslint ratio anywhere between 1.10 and 1.18.
const REPS = QUICK ? 2 : 15;
const COLD_REPS = QUICK ? 1 : 3;
const only = argValue('--graph')?.split(',');
const INCLUDE = 'node_modules';
/** What the control run holds (plainHeld): about how far below the threshold plain eslint is. */
const HOLD_KB = 1024;

const rows: Row[] = [];
for (const g of GRAPHS.filter((x) => only === undefined || only.includes(x.graph))) {
  const empty = g.graph === 'empty';
  const warmDir = freshDir(`load-warm-${g.graph}`);
  const v8Dir = freshDir(`load-v8-${g.graph}`);
  const modes = {
    plain: { instrumented: false, env: {} },
    plainV8: { instrumented: false, env: { NODE_COMPILE_CACHE: v8Dir } },
    plainHeld: { instrumented: false, env: { BENCH_HOLD_KB: String(HOLD_KB) } },
    warm: { instrumented: true, env: { LIVEPATCH_INCLUDE: INCLUDE, LIVEPATCH_CACHE_DIR: warmDir } },
    cold: { instrumented: true, env: { LIVEPATCH_INCLUDE: INCLUDE } },
  } as const;
  type Mode = keyof typeof modes;
  const wall: Record<Mode, number[]> = {
    plain: [],
    plainV8: [],
    plainHeld: [],
    warm: [],
    cold: [],
  };
  // Start-up (spawn to the program's first line), load, exit (last line to the process's end).
  type Phased = 'plain' | 'plainHeld' | 'warm';
  const phases: Record<Phased, { start: number[]; load: number[]; exit: number[] }> = {
    plain: { start: [], load: [], exit: [] },
    plainHeld: { start: [], load: [], exit: [] },
    warm: { start: [], load: [], exit: [] },
  };
  const cpu: Record<Mode, number[]> = { plain: [], plainV8: [], plainHeld: [], warm: [], cold: [] };
  // Fill the warm caches (ours and Node's) first.
  const primed = await runChild<LoadResult>('load.mjs', [g.graph], modes.warm);
  await runChild<LoadResult>('load.mjs', [g.graph], modes.plainV8);
  let info = primed.result.instrumentation;
  for (let rep = 0; rep < REPS; rep++) {
    const order: Mode[] = [
      'plain',
      'warm',
      'plainV8',
      ...(empty ? [] : (['plainHeld'] as Mode[])),
      ...(rep < COLD_REPS && !empty ? (['cold'] as Mode[]) : []),
    ];
    if (rep % 2 === 1) order.reverse();
    for (const mode of order) {
      const opts =
        mode === 'cold'
          ? {
              ...modes.cold,
              env: { ...modes.cold.env, LIVEPATCH_CACHE_DIR: freshDir('load-cold') },
            }
          : modes[mode];
      const r = await runChild<LoadResult>('load.mjs', [g.graph], { ...opts, timeoutMs: 300_000 });
      wall[mode].push(r.wallMs);
      cpu[mode].push(r.result.cpuMs);
      if (mode === 'plain' || mode === 'plainHeld' || mode === 'warm') {
        phases[mode].start.push(r.result.startMs);
        phases[mode].load.push(r.result.loadMs);
        phases[mode].exit.push(r.wallMs - r.result.endMs);
      }
      if (mode === 'warm') {
        info = r.result.instrumentation;
        const stats = r.result.loader;
        if (stats !== null && stats.instrumented > 0) {
          console.error(
            `bench: load ${g.graph}: warm run instrumented ${stats.instrumented} modules (cache misses)`,
          );
        }
        // A warm start reads no source it knows unchanged (docs/loader.md, "The index").
        if (stats !== null && stats.indexHits < stats.modules) {
          console.error(
            `bench: load ${g.graph}: warm run read ${stats.modules - stats.indexHits} of ${stats.modules} sources (not served from the cache's index)`,
          );
        }
      }
    }
  }
  if (info.functions === 0 && !empty)
    throw new Error(`bench: load ${g.graph}: nothing was instrumented`);
  const m = (mode: Mode): number => median(wall[mode]);
  const c = (mode: Mode): number => median(cpu[mode]);
  const warmRatio = m('warm') / m('plain');
  const phase = (k: 'start' | 'load' | 'exit', of: Phased = 'warm'): string => {
    const d = median(phases[of][k]) - median(phases.plain[k]);
    return `${k} ${d >= 0 ? '+' : ''}${d.toFixed(1)}`;
  };
  const split = `vs plain: ${phase('start')}, ${phase('load')}, ${phase('exit')} ms`;
  // Its start-up includes making what it holds: only load and exit say what holding it costs.
  const held = `plain holding ${HOLD_KB / 1024} MB more: ${phase('load', 'plainHeld')}, ${phase('exit', 'plainHeld')} ms`;
  if (empty) {
    rows.push({
      name: `${g.label}: start under the loader`,
      value: `${m('warm').toFixed(1)} ms`,
      baseline: `${m('plain').toFixed(1)} ms plain`,
      ratio: warmRatio,
      note: `${split}; runs ${spread(wall.warm, 1)} ms`,
    });
    continue;
  }
  rows.push({
    name: `${g.label}: warm start`,
    value: `${m('warm').toFixed(0)} ms`,
    baseline: `${m('plain').toFixed(0)} ms plain`,
    ratio: warmRatio,
    ...ratioTarget(warmRatio, 1.1),
    note: `${split}; ${info.functions} functions in ${info.modules} modules; ${held}; vs plain with V8 compile cache (${m('plainV8').toFixed(0)} ms): ${(m('warm') / m('plainV8')).toFixed(2)}x; CPU ratio ${(c('warm') / c('plain')).toFixed(2)}; warm runs ${spread(wall.warm, 0)} ms`,
  });
  rows.push({
    name: `${g.label}: cold start`,
    value: `${m('cold').toFixed(0)} ms`,
    baseline: `${m('plain').toFixed(0)} ms plain`,
    ratio: m('cold') / m('plain'),
    note: `empty transform cache; ${wall.cold.length} runs ${spread(wall.cold, 0)} ms; CPU ratio ${(c('cold') / c('plain')).toFixed(2)}`,
  });
}
report('Load time: plain vs instrumented, cold and warm transform cache (process wall time)', rows);

function argValue(flag: string): string | undefined {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
