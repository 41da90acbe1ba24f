// One CPU-heavy library workload, measured at steady state (after warm-up), in a plain or an
// instrumented process (`node [--import register.js] workload.mjs <name> ...`).
// The libraries come from the repository's node_modules; the parent sets LIVEPATCH_INCLUDE so
// that exactly node_modules is instrumented (this harness is not).
// `workload.mjs <name> inprocess <rounds> <twin>` runs under the loader with LIVEPATCH_INCLUDE
// set to `<twin>/node_modules`, a second copy of the repository's node_modules (hard links):
// the library from the twin is instrumented, the one from the repository is not, and the two
// take turns in this one process (common.mjs, alternate).
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  alternate,
  emit,
  instrumentation,
  libraryOps,
  loaderStats,
  readRepo as read,
  serveLockstep,
  steady,
} from './common.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Where a workload takes its libraries from: `require` and `import` resolving from a root
 * directory's node_modules. This file resolves from the repository; a twin from its own
 * importer.mjs (written by bench/workloads.ts), which ES module resolution needs as a parent.
 */
const repoLibs = {
  require: createRequire(path.join(repo, 'package.json')),
  import: (specifier) => import(specifier),
};
async function twinLibs(twin) {
  const { default: importer } = await import(pathToFileURL(path.join(twin, 'importer.mjs')).href);
  return { require: createRequire(path.join(twin, 'package.json')), import: importer };
}

/** name → { pkg: path part identifying the library's files, setup(libs): op } */
const workloads = {
  // A parser and a compiler: bench/child/common.mjs, libraryOps.
  acorn: {
    pkg: '/node_modules/acorn/',
    setup: (libs) => libraryOps.acorn(libs.require('acorn')),
  },
  // String editing and a hires source map: magic-string rewriting every identifier-ish token of
  // a 240 KB file, then toString() and generateMap().
  'magic-string': {
    pkg: '/node_modules/',
    async setup(libs) {
      const { default: MagicString } = await libs.import('magic-string');
      const src = read('node_modules/acorn/dist/acorn.js');
      const edits = [];
      const re = /\b(?:function|return|var|this)\b/g;
      for (let m; (m = re.exec(src)) !== null;) edits.push([m.index, m.index + m[0].length, m[0]]);
      return () => {
        const s = new MagicString(src);
        for (let i = 0; i < edits.length; i++) {
          const [a, b, word] = edits[i];
          if (i % 3 === 0) s.overwrite(a, b, word.toUpperCase());
          else if (i % 3 === 1) s.prependLeft(a, '/*x*/');
          else s.appendRight(b, ' ');
        }
        const code = s.toString();
        const map = s.generateMap({ hires: true, source: 'acorn.js' });
        return code.length + map.mappings.length;
      };
    },
  },
  typescript: {
    pkg: '/node_modules/typescript/',
    setup: (libs) => libraryOps.typescript(libs.require('typescript')),
  },
  // A formatter (ESM, plugins loaded on demand): prettier formatting a 35 KB TypeScript file.
  prettier: {
    pkg: '/node_modules/prettier/',
    async setup(libs) {
      const prettier = await libs.import('prettier');
      const src = read('src/instrument/analyze.ts');
      return () =>
        prettier.format(src, { parser: 'typescript', singleQuote: true, printWidth: 100 });
    },
  },
  // A linter: ESLint's Linter (espree, eslint-scope, esquery, ~60 rules of many small
  // functions) checking a 50 KB JavaScript file with the recommended rules.
  eslint: {
    pkg: '/node_modules/',
    setup(libs) {
      const { Linter } = libs.require('eslint');
      const js = libs.require('@eslint/js');
      const globals = libs.require('globals');
      const linter = new Linter({ configType: 'flat' });
      const src = read('node_modules/eslint/lib/linter/linter.js');
      const config = [
        js.configs.recommended,
        {
          languageOptions: { ecmaVersion: 'latest', sourceType: 'commonjs', globals: globals.node },
        },
      ];
      return () => linter.verify(src, config, 'linter.js').length;
    },
  },
};

// `workload.mjs <name> lockstep`: driven round by round by the parent (bench/lib/lockstep.ts);
// `workload.mjs <name> <warmupMs> <rounds> <roundMs>`: measures by itself and prints the result;
// `workload.mjs <name> inprocess <rounds> <twin>`: plain and instrumented copies in this process.
const [name, mode = '1500', rounds = '5', roundMs = '600'] = process.argv.slice(2);
const w = workloads[name];
if (w === undefined)
  throw new Error(`unknown workload ${name}; known: ${Object.keys(workloads).join(', ')}`);
if (mode === 'inprocess') {
  const twin = process.argv[5];
  const base = await w.setup(repoLibs);
  const op = await w.setup(await twinLibs(twin));
  const twinPart = `${twin.split(path.sep).join('/')}${w.pkg}`;
  // Only the twin is instrumented: the repository's copy must be plain, or the ratio is 1 by
  // construction.
  const plainSide = await instrumentation(`${repo.split(path.sep).join('/')}/node_modules/`);
  if (plainSide.modules > 0)
    throw new Error(
      `workload ${name}: the plain copy was instrumented (${plainSide.modules} modules)`,
    );
  const measured = await alternate(base, op, { rounds: Number(rounds) });
  emit({ name, ...measured, instrumentation: await instrumentation(twinPart) });
  process.exit(0);
}
const op = await w.setup(repoLibs);
const describe = async () => ({
  name,
  instrumentation: await instrumentation(w.pkg),
  loader: await loaderStats(),
});
if (mode === 'lockstep') {
  await serveLockstep(op, describe);
} else {
  const measured = await steady(op, {
    warmupMs: Number(mode),
    rounds: Number(rounds),
    roundMs: Number(roundMs),
  });
  emit({ ...measured, ...(await describe()) });
}
