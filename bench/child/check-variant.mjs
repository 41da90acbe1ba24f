// One variant of an instrumented library for the check-shape experiment:
// `check-variant.mjs <acorn|typescript> <file.js | plain> <meta.json> lockstep`. The file is the
// library instrumented by bench/check-shape.ts and then edited; its metadata is registered with
// livepatch's runtime (bench/.build/dist) under the library's URL, as the loader would, before
// it is required.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { serveLockstep } from './common.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const [target, file, metaFile] = process.argv.slice(2);
const require = createRequire(import.meta.url);

/** target → the library file, and the operation measured on the loaded library. */
const targets = {
  acorn: {
    file: 'node_modules/acorn/dist/acorn.js',
    op(acorn) {
      const src = fs.readFileSync(path.join(repo, 'node_modules/acorn/dist/acorn.js'), 'utf8');
      return () =>
        acorn.parse(src, { ecmaVersion: 'latest', sourceType: 'script', locations: true });
    },
  },
  typescript: {
    file: 'node_modules/typescript/lib/typescript.js',
    op(ts) {
      const src = fs.readFileSync(path.join(repo, 'src/instrument/analyze.ts'), 'utf8');
      const compilerOptions = {
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.ESNext,
        sourceMap: true,
      };
      return () =>
        ts.transpileModule(src, { compilerOptions, fileName: 'analyze.ts' }).outputText.length;
    },
  },
};
const t = targets[target];
const libFile = path.join(repo, t.file);

let lib;
if (file === 'plain') {
  lib = require(libFile);
} else {
  const dist = path.dirname(path.dirname(process.env.BENCH_TABLE));
  const { installRuntime } = await import(path.join(dist, 'runtime', 'global.js'));
  const { registerModule } = await import(process.env.BENCH_TABLE);
  installRuntime();
  const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8'));
  registerModule(meta.url, {
    filename: libFile,
    format: 'commonjs',
    hash: meta.hash,
    functions: meta.functions,
    refused: meta.refused,
    moduleBindings: meta.moduleBindings,
  });
  lib = require(file);
}
const op = t.op(lib);

let minor = 0;
let major = 0;
let ops = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MINOR) minor++;
    else major++;
  }
}).observe({ entryTypes: ['gc'] });

await serveLockstep(
  () => {
    ops++;
    return op();
  },
  async () => {
    await new Promise((r) => setTimeout(r, 50)); // let pending GC entries arrive
    return { ops, minorPerOp: minor / ops, majorPerOp: major / ops };
  },
);
