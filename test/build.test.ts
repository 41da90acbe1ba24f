/**
 * The package as it ships: `dist/` built by scripts/build.ts (bundled with rolldown) and run the
 * way users run it. Everything else in the suite runs the TypeScript sources; this is what proves
 * that the bundle keeps the things the sources get for free: one function table shared by the
 * loader and the API (a second copy would leave the API blind to every loaded module), the
 * modules loaded lazily by path (instrumenter, TypeScript support, source maps) found from the
 * chunk they are called from, and the CLI finding its package.json and the register module.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';

import { build } from '../scripts/build.ts';
import { repoRoot, runNode } from './helpers/node.ts';

// Inside the repository's node_modules, so that the bundle's imports of the package's
// dependencies (oxc-parser, magic-string, …) resolve as they do in an installed package.
const root = fs.mkdtempSync(path.join(repoRoot, 'node_modules', '.cache-livepatch-build-'));
const dist = path.join(root, 'dist');
const appDir = fs.mkdtempSync(path.join(os.tmpdir(), 'livepatch-built-app-'));
const cacheDir = path.join(appDir, 'cache');
const version = (
  JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }
).version;

const UTIL_TS = `export function greet(name: string): string {
  return \`hello \${name}\`;
}

export function fail(): never {
  throw new Error('boom');
}
`;

// Patches greet through the built API, reads the table through it, and records where the
// error thrown in util.ts is reported.
const APP_MJS = `import { fileURLToPath } from 'node:url';
import { fail, greet } from './util.ts';

const api = await import(process.env.LP_API);
const util = fileURLToPath(new URL('./util.ts', import.meta.url));
const before = greet('a');
const r = api.redirect({ module: util, function: 'greet' }, (name) => \`patched \${name}\`);
const during = greet('a');
r.remove();
let frame = '';
try {
  fail();
} catch (e) {
  frame = e.stack.split('\\n').find((l) => l.includes('util.ts')) ?? '';
}
const stats = api.loaderStats();
console.log(JSON.stringify({
  before,
  during,
  after: greet('a'),
  functions: api.listFunctions(util).functions.map((f) => f.name),
  frame,
  instrumented: stats.instrumented,
}));
`;

function register(): string {
  return pathToFileURL(path.join(dist, 'loader', 'register.js')).href;
}

async function runApp(args: string[]): Promise<Record<string, unknown>> {
  const r = await runNode([...args, path.join(appDir, 'app.mjs')], {
    cwd: appDir,
    env: {
      LP_API: pathToFileURL(path.join(dist, 'index.js')).href,
      LIVEPATCH_CACHE_DIR: cacheDir,
      LIVEPATCH_CACHE: undefined,
      LIVEPATCH_INCLUDE: undefined,
      LIVEPATCH_EXCLUDE: undefined,
      LIVEPATCH_LOG: 'off',
      NODE_OPTIONS: undefined,
    },
  });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

describe('built package (scripts/build.ts)', () => {
  before(async () => {
    await build({ outdir: dist, types: false });
    fs.copyFileSync(path.join(repoRoot, 'package.json'), path.join(root, 'package.json'));
    fs.writeFileSync(path.join(appDir, 'package.json'), '{"type":"module"}\n');
    fs.writeFileSync(path.join(appDir, 'util.ts'), UTIL_TS);
    fs.writeFileSync(path.join(appDir, 'app.mjs'), APP_MJS);
  });
  after(() => {
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(appDir, { recursive: true, force: true });
  });

  test('a start loads register.js and one chunk that holds the runtime and the loader', () => {
    const chunks = fs.readdirSync(path.join(dist, 'chunks')).filter((f) => f.endsWith('.js'));
    assert.equal(chunks.length, 1, `chunks: ${chunks.join(', ')}`);
    const imports = [
      ...fs
        .readFileSync(path.join(dist, 'loader', 'register.js'), 'utf8')
        .matchAll(/from\s*["']([^"']+)["']|import\s*["']([^"']+)["']/g),
    ].map((m) => m[1] ?? m[2]);
    assert.deepEqual(imports, [`../chunks/${chunks[0]}`]);
  });

  test('cold then warm: TypeScript instrumented, patched through the API, errors at their line', async () => {
    const expected = {
      before: 'hello a',
      during: 'patched a',
      after: 'hello a',
      functions: ['greet', 'fail'],
      frame: (s: string) => s.includes(`${path.join(appDir, 'util.ts')}:6:`),
    };
    for (const [run, instrumented] of [
      ['cold', 2],
      ['warm', 0],
    ] as const) {
      const out = await runApp(['--import', register()]);
      assert.equal(out.before, expected.before, run);
      assert.equal(out.during, expected.during, run);
      assert.equal(out.after, expected.after, run);
      assert.deepEqual(out.functions, expected.functions, run);
      assert.ok(expected.frame(String(out.frame)), `${run}: ${String(out.frame)}`);
      assert.equal(out.instrumented, instrumented, `${run}: modules instrumented`);
    }
  });

  test('the CLI: --version from its package.json, run starts the program under the loader', async () => {
    const cli = path.join(dist, 'cli', 'main.js');
    const v = await runNode([cli, '--version']);
    assert.equal(v.code, 0, v.stderr);
    assert.equal(v.stdout, `${version}\n`);
    const out = await runApp([cli, 'run']);
    assert.equal(out.during, 'patched a');
    assert.equal(out.instrumented, 0);
  });
});
