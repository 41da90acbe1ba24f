// One variant of an instrumented library for the check-shape experiment:
// `check-variant.mjs <acorn|typescript> <file.js | plain> <meta.json> lockstep`. The file is the
// library instrumented by bench/check-shape.ts and then edited; its metadata is registered with
// livepatch's runtime (bench/.build/dist) under the library's URL, as the loader would, before
// it is required.
// `… inprocess <rounds>` loads the plain library too, in the same process, and alternates
// blocks of operations between the two (common.mjs, alternate): both sides share the process's GC regime, tiering and machine, which a pair of
// processes does not. `plain` then loads a second copy of the plain library (the A/A control).
// Prints `RESULT {ratios}` (variant / plain CPU time per round).
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { alternate, emit, libraryOps, serveLockstep } from './common.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const [target, file, metaFile] = process.argv.slice(2);
const require = createRequire(import.meta.url);

/** target → the library file, and the operation measured on the loaded library. */
const targets = {
  acorn: { file: 'node_modules/acorn/dist/acorn.js', op: libraryOps.acorn },
  typescript: { file: 'node_modules/typescript/lib/typescript.js', op: libraryOps.typescript },
};
const t = targets[target];
const libFile = path.join(repo, t.file);

const inProcess = process.argv[5] === 'inprocess';
let lib;
if (file === 'plain' && inProcess) {
  // A second, separate instance of the plain library: the A/A control.
  const copy = path.join(path.dirname(metaFile), `plain-copy-${path.basename(libFile)}`);
  fs.copyFileSync(libFile, copy);
  lib = require(copy);
} else if (file === 'plain') {
  lib = require(libFile);
} else {
  const { installRuntime, registerModule } = await import(process.env.BENCH_INTERNALS);
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

if (inProcess) {
  const base = t.op(require(libFile));
  emit(await alternate(base, op, { rounds: Number(process.argv[6]) }));
  process.exit(0);
}

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
