// Memory held by loading (and using) a large graph: `node --expose-gc memory.mjs <case>`.
// Measures heapUsed and RSS after full GCs, before and after; the loader (when present) is
// already installed before the "before" point, so its own fixed cost is not counted.
//   typescript      require('typescript')
//   typescript-used require('typescript') and one ts.transpileModule (functions compiled)
//   eslint-used     ESLint's Linter verifying a file with the recommended rules
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { emit, instrumentation } from './common.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(path.join(repo, 'package.json'));
const keep = [];

const cases = {
  typescript() {
    keep.push(require('typescript'));
  },
  'typescript-used'() {
    const ts = require('typescript');
    keep.push(
      ts,
      ts.transpileModule(fs.readFileSync(path.join(repo, 'src/instrument/analyze.ts'), 'utf8'), {})
        .outputText.length,
    );
  },
  'eslint-used'() {
    const { Linter } = require('eslint');
    const js = require('@eslint/js');
    const linter = new Linter({ configType: 'flat' });
    const src = fs.readFileSync(
      path.join(repo, 'node_modules/eslint/lib/linter/linter.js'),
      'utf8',
    );
    keep.push(
      linter,
      linter.verify(src, [js.configs.recommended, { languageOptions: { sourceType: 'commonjs' } }])
        .length,
    );
  },
};

async function settle() {
  for (let i = 0; i < 4; i++) {
    globalThis.gc();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage();
}

const [name] = process.argv.slice(2);
const before = await settle();
cases[name]();
const after = await settle();
emit({
  name,
  heap: after.heapUsed - before.heapUsed,
  rss: after.rss - before.rss,
  external: after.external - before.external,
  instrumentation: await instrumentation('/node_modules/'),
});
