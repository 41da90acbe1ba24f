// Loading a large dependency graph, for the load-time benchmark: `load.mjs <graph>`.
//   typescript  require('typescript'): one 9 MB CommonJS module (parse and instrument cost)
//   eslint      ESLint's Linter with the recommended rules, run once: ~260 CommonJS modules
//   prettier    import('prettier') and format a line (loads its TypeScript and estree plugins): ESM
//   empty       nothing: what starting under the loader costs by itself
// Prints when the program started and ended (performance.now(), from the process's time origin),
// the in-process load time and this process's CPU time; the parent times the whole process from
// spawn to exit, so it can tell start-up, load and exit apart. BENCH_HOLD_KB: objects the
// program holds while it loads (a control run of bench/load.ts).
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuMs, emit, instrumented } from './common.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(path.join(repo, 'package.json'));

const graphs = {
  empty() {
    return 0;
  },
  typescript() {
    const ts = require('typescript');
    return typeof ts.createProgram;
  },
  eslint() {
    const { Linter } = require('eslint');
    const js = require('@eslint/js');
    return new Linter({ configType: 'flat' }).verify('var a = 1;\n', [js.configs.recommended])
      .length;
  },
  async prettier() {
    const prettier = await import('prettier');
    return (await prettier.format('const a = {b:1}', { parser: 'typescript' })).length;
  },
};

const [graph] = process.argv.slice(2);
const held = hold(Number(process.env.BENCH_HOLD_KB ?? 0));
const t0 = performance.now();
await graphs[graph]();
const loadMs = performance.now() - t0;
const cpu = cpuMs();
const instrumentation = await counts('/node_modules/');
const loader = await loaderCounts();
emit({
  graph,
  held: held.length,
  startMs: t0,
  loadMs,
  endMs: performance.now(),
  cpuMs: cpu,
  instrumentation,
  loader,
});

/**
 * Instrumented modules and functions, counted from the slots: asking for the function records
 * (or the refused ones) would decode every module's metadata, which a start-up does not do.
 */
async function counts(pathPart) {
  if (!instrumented) return { modules: 0, functions: 0 };
  const { table } = await import(process.env.BENCH_INTERNALS);
  let modules = 0;
  let functions = 0;
  for (const m of table.all()) {
    if (!m.meta.filename.includes(pathPart)) continue;
    modules++;
    functions += m.meta.functionCount;
  }
  return { modules, functions };
}

/** The loader's counters, with how many modules were served without reading their source. */
async function loaderCounts() {
  if (!instrumented) return null;
  const { loaderStats } = await import(process.env.BENCH_INTERNALS);
  const s = loaderStats();
  if (s === null) return null;
  return {
    modules: s.modules,
    instrumented: s.instrumented,
    cached: s.cached,
    indexHits: s.cache?.indexHits ?? 0,
  };
}

/** `kb` of small objects the program keeps while it loads (bench/load.ts's control run). */
function hold(kb) {
  const objects = [];
  // An object with two fields and its slot in the array: 50 bytes (measured, Node 22 x64).
  for (let i = 0; i < (kb * 1024) / 50; i++) objects.push({ i, next: null });
  return objects;
}
