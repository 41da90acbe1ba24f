/**
 * Memory per instrumented function: heap (heapUsed) and RSS held after loading — and using — a
 * large graph, instrumented vs plain, after full GCs (bench/child/memory.mjs, run with
 * --expose-gc). The instrumented runs use a warm transform cache, so the instrumenter is never
 * loaded and the difference is what instrumentation itself keeps: the larger source text, the
 * function table (metadata and one slot per function) and larger bytecode. Each run is its own
 * process; plain and instrumented alternate; medians. Reported: the extra bytes divided by the
 * number of instrumented functions.
 *
 * `node bench/memory.ts [--quick]`
 */
import { freshDir, QUICK, runChild } from './lib/proc.ts';
import { median, report, type Row } from './report.ts';

interface MemResult {
  heap: number;
  rss: number;
  instrumentation: { functions: number; modules: number };
}

const CASES = [
  { name: 'typescript', label: 'typescript loaded' },
  { name: 'typescript-used', label: 'typescript loaded + transpileModule' },
  { name: 'eslint-used', label: 'eslint Linter loaded + verify' },
];
const REPS = QUICK ? 1 : 3;
const env = { LIVEPATCH_INCLUDE: 'node_modules', LIVEPATCH_CACHE_DIR: freshDir('memory') };
const nodeArgs = ['--expose-gc'];

const rows: Row[] = [];
for (const c of CASES) {
  await runChild<MemResult>('memory.mjs', [c.name], { instrumented: true, env, nodeArgs }); // fill the cache
  const heap = { plain: [] as number[], inst: [] as number[] };
  const rss = { plain: [] as number[], inst: [] as number[] };
  let functions = 0;
  for (let rep = 0; rep < REPS; rep++) {
    for (const instrumented of rep % 2 === 0 ? [false, true] : [true, false]) {
      const { result } = await runChild<MemResult>('memory.mjs', [c.name], {
        instrumented,
        env,
        nodeArgs,
      });
      const side = instrumented ? 'inst' : 'plain';
      heap[side].push(result.heap);
      rss[side].push(result.rss);
      if (instrumented) functions = result.instrumentation.functions;
    }
  }
  const hp = median(heap.plain);
  const hi = median(heap.inst);
  const rp = median(rss.plain);
  const ri = median(rss.inst);
  const mb = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MB`;
  rows.push({
    name: `${c.label}: heap`,
    value: `${mb(hi)}`,
    baseline: `${mb(hp)} plain`,
    ratio: hi / hp,
    note: `${((hi - hp) / functions).toFixed(0)} bytes/function over ${functions} functions`,
  });
  rows.push({
    name: `${c.label}: RSS`,
    value: `${mb(ri)}`,
    baseline: `${mb(rp)} plain`,
    ratio: ri / rp,
    note: `${((ri - rp) / functions).toFixed(0)} bytes/function`,
  });
}
report('Memory per instrumented function (held after full GC)', rows);
