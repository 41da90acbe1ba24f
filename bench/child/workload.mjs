// One CPU-heavy library workload, measured at steady state (after warm-up), in a plain or an
// instrumented process (`node [--import register.js] workload.mjs <name> ...`).
// The libraries come from the repository's node_modules; the parent sets LIVEPATCH_INCLUDE so
// that exactly node_modules is instrumented (this harness is not).
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  emit,
  instrumentation,
  libraryOps,
  loaderStats,
  readRepo as read,
  serveLockstep,
  steady,
} from './common.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(path.join(repo, 'package.json'));

/** name → { pkg: path part identifying the library's files, setup(): op } */
const workloads = {
  // A parser and a compiler: bench/child/common.mjs, libraryOps.
  acorn: {
    pkg: '/node_modules/acorn/',
    setup: () => libraryOps.acorn(require('acorn')),
  },
  // String editing and a hires source map: magic-string rewriting every identifier-ish token of
  // a 240 KB file, then toString() and generateMap().
  'magic-string': {
    pkg: '/node_modules/',
    async setup() {
      const { default: MagicString } = await import('magic-string');
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
    setup: () => libraryOps.typescript(require('typescript')),
  },
  // A formatter (ESM, plugins loaded on demand): prettier formatting a 35 KB TypeScript file.
  prettier: {
    pkg: '/node_modules/prettier/',
    async setup() {
      const prettier = await import('prettier');
      const src = read('src/instrument/analyze.ts');
      return () =>
        prettier.format(src, { parser: 'typescript', singleQuote: true, printWidth: 100 });
    },
  },
  // A linter: ESLint's Linter (espree, eslint-scope, esquery, ~60 rules of many small
  // functions) checking a 50 KB JavaScript file with the recommended rules.
  eslint: {
    pkg: '/node_modules/',
    setup() {
      const { Linter } = require('eslint');
      const js = require('@eslint/js');
      const globals = require('globals');
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
// `workload.mjs <name> <warmupMs> <rounds> <roundMs>`: measures by itself and prints the result.
const [name, mode = '1500', rounds = '5', roundMs = '600'] = process.argv.slice(2);
const w = workloads[name];
if (w === undefined)
  throw new Error(`unknown workload ${name}; known: ${Object.keys(workloads).join(', ')}`);
const op = await w.setup();
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
