/**
 * Enabling a patch: how long `enable()` holds the event loop for patches of 1, 100 and 10,000
 * functions, against a baseline measured in the same run — naive monkey-patching of the same
 * number of functions (assigning properties), which is what users do without livepatch.
 * The pause is the synchronous part of enable() (the transition's bookkeeping included), measured
 * around the call; medians of several runs.
 *
 * `node bench/enable.ts`
 */
import { getCore } from '../src/core/api.ts';
import { loadPatch } from '../src/index.ts';
import { loadCjs } from '../test/support/instrumented.ts';
import { median, report, type Row } from './report.ts';

getCore().events.setLog('off');

const SIZES = [1, 100, 10_000];
const RUNS = 7;
const total = Math.max(...SIZES);
const source = Array.from(
  { length: total },
  (_, i) => `function f${i}(x) { return x + ${i}; }\nexports.f${i} = f${i};`,
).join('\n');
const mod = loadCjs<Record<string, (x: number) => number>>(source);

const rows: Row[] = [];
for (const n of SIZES) {
  const pause: number[] = [];
  const baseline: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const functions = Array.from({ length: n }, (_, i) => ({
      name: `f${i}`,
      replacement: (x: number) => x - i,
    }));
    const handle = loadPatch({
      name: `bench-${n}-${run}`,
      objects: [{ module: mod.file, functions }],
    });
    const t0 = process.hrtime.bigint();
    const done = handle.enable();
    const t1 = process.hrtime.bigint();
    await done;
    pause.push(Number(t1 - t0) / 1e6);
    if (mod.exports[`f${n - 1}`]!(0) !== -(n - 1)) throw new Error('patch not in force');
    await handle.disable();
    handle.remove();

    // Baseline: replace the same number of exported functions by assignment.
    const target: Record<string, unknown> = { ...mod.exports };
    const b0 = process.hrtime.bigint();
    for (const f of functions) target[f.name] = f.replacement;
    const b1 = process.hrtime.bigint();
    baseline.push(Number(b1 - b0) / 1e6);
  }
  const p = median(pause);
  const b = median(baseline);
  rows.push({
    name: `enable ${n} function${n === 1 ? '' : 's'}`,
    value: `${p.toFixed(3)} ms pause`,
    baseline: `${b.toFixed(3)} ms (assignment)`,
    ratio: p / Math.max(b, 1e-6),
    // "A typical patch" is a handful to a hundred functions; 10,000 is a stress case.
    ...(n <= 100 ? { target: '< 1 ms pause', met: p < 1 } : {}),
    note: `${((p * 1000) / n).toFixed(2)} µs per function`,
  });
}
report('Enabling a patch (event-loop pause)', rows);
