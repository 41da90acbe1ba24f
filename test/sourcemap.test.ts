/**
 * Source maps: stack traces of instrumented code point at the original file, line and column
 * (JavaScript and TypeScript, CommonJS and ESM, and a compiled package through its own map), and
 * the map helpers compose, trace and read maps correctly.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import module from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';

import MagicString from 'magic-string';

import { instrument } from '../src/instrument/transform.ts';
import type { SourceMapV3 } from '../src/instrument/types.ts';
import {
  composeMaps,
  inlineSourceMapComment,
  mapPositions,
  readExistingSourceMap,
} from '../src/loader/sourcemap.ts';
import { defaultTsSettings, transformTypeScript } from '../src/loader/typescript.ts';
import { fixture, repoRoot, runNode } from './helpers/node.ts';

const register = path.join(repoRoot, 'src', 'loader', 'register.ts');

/** 1-based line and column of `new Error('marker')` in a file: where V8 reports the throw. */
function markerPosition(file: string): { line: number; column: number } {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const line = lines.findIndex((l) => /new Error\(['"]marker['"]\)/.test(l));
  assert.ok(line >= 0, `no marker in ${file}`);
  return { line: line + 1, column: lines[line]!.indexOf('new Error') + 1 };
}

describe('source maps: stack traces', () => {
  for (const cache of ['cold', 'warm'] as const) {
    test(`a throw inside instrumented code reports the original position (${cache} cache)`, async () => {
      const dir = fixture('loader', 'stack');
      const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'livepatch-cache-'));
      try {
        const env = { LIVEPATCH_CACHE_DIR: cacheDir, LIVEPATCH_SOURCE_MAPS: undefined };
        let result = await runNode(['--import', register, path.join(dir, 'main.mjs')], { env });
        if (cache === 'warm') {
          result = await runNode(['--import', register, path.join(dir, 'main.mjs')], { env });
        }
        assert.equal(result.code, 0, result.stderr);
        const out = JSON.parse(result.stdout) as Record<string, unknown>;
        for (const name of [
          'throw.cjs',
          'throw.mjs',
          'throw-ts.ts',
          'throw-cts.cts',
          'src/compiled.ts',
        ]) {
          const file = path.join(dir, name);
          assert.deepEqual(out[name], { file, ...markerPosition(file) }, name);
        }
      } finally {
        fs.rmSync(cacheDir, { recursive: true, force: true });
      }
    });
  }

  test('plain JavaScript: the same location Node reports without the loader', async () => {
    const entry = fixture('loader', 'stack', 'throw.cjs');
    const script = `try { require(${JSON.stringify(entry)}).fire() } catch (e) { console.log(e.stack.split('\\n')[1].trim()) }`;
    const plain = await runNode(['-e', script]);
    const ours = await runNode(['--import', register, '-e', script], {
      env: { LIVEPATCH_CACHE: '0' },
    });
    assert.equal(ours.code, 0, ours.stderr);
    assert.equal(ours.stdout, plain.stdout);
    assert.match(ours.stdout, /throw\.cjs:4:24\)$/m);
  });

  for (const mode of [undefined, 'app'] as const) {
    test(`LIVEPATCH_SOURCE_MAPS=${mode ?? '(unset)'}: app files mapped; dependencies keep the line, with columns of the generated code`, async () => {
      const entry = fixture('loader', 'stack', 'main.mjs');
      const result = await runNode(['--import', register, entry], {
        env: { LIVEPATCH_CACHE: '0', LIVEPATCH_SOURCE_MAPS: mode },
      });
      assert.equal(result.code, 0, result.stderr);
      const out = JSON.parse(result.stdout) as Record<string, { line: number; column: number }>;
      const dep = fixture('loader', 'stack', 'node_modules', 'thrower', 'index.js');
      assert.equal(out['node_modules/thrower/index.js']!.line, markerPosition(dep).line);
      assert.notEqual(out['node_modules/thrower/index.js']!.column, markerPosition(dep).column);
      const app = fixture('loader', 'stack', 'throw-ts.ts');
      assert.deepEqual(out['throw-ts.ts'], { file: app, ...markerPosition(app) });
    });
  }

  for (const cache of ['cold', 'warm'] as const) {
    test(`LIVEPATCH_SOURCE_MAPS=all: dependencies mapped too (${cache} cache)`, async () => {
      const entry = fixture('loader', 'stack', 'main.mjs');
      const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'livepatch-cache-'));
      try {
        const env = { LIVEPATCH_CACHE_DIR: cacheDir, LIVEPATCH_SOURCE_MAPS: 'all' };
        let result = await runNode(['--import', register, entry], { env });
        if (cache === 'warm') result = await runNode(['--import', register, entry], { env });
        assert.equal(result.code, 0, result.stderr);
        const out = JSON.parse(result.stdout) as Record<string, unknown>;
        for (const name of ['node_modules/thrower/index.js', 'throw-ts.ts', 'throw.cjs']) {
          const file = fixture('loader', 'stack', name);
          assert.deepEqual(out[name], { file, ...markerPosition(file) }, name);
        }
      } finally {
        fs.rmSync(cacheDir, { recursive: true, force: true });
      }
    });
  }

  test('LIVEPATCH_SOURCE_MAPS=0: no map, so stack positions are those of the generated code', async () => {
    const entry = fixture('loader', 'stack', 'main.mjs');
    const result = await runNode(['--import', register, entry], {
      env: { LIVEPATCH_CACHE: '0', LIVEPATCH_SOURCE_MAPS: '0' },
    });
    assert.equal(result.code, 0, result.stderr);
    const out = JSON.parse(result.stdout) as Record<string, { line: number; column: number }>;
    const file = fixture('loader', 'stack', 'throw-ts.ts');
    assert.notDeepEqual(
      { line: out['throw-ts.ts']!.line, column: out['throw-ts.ts']!.column },
      markerPosition(file),
    );
  });
});

describe('source maps: helpers', () => {
  test('composeMaps chains an outer map through an inner one to the original', () => {
    const original = 'let a = 1;\nlet b = 2;\n';
    const inner = new MagicString(original);
    inner.prepend('// header\n');
    const innerCode = inner.toString();
    const innerMap = toV3(inner.generateMap({ hires: true, source: '/src/x.ts' }));
    const outer = new MagicString(innerCode);
    outer.overwrite(innerCode.indexOf('let b'), innerCode.indexOf('let b') + 3, 'var');
    outer.prepend('/* more */ ');
    const outerMap = toV3(outer.generateMap({ hires: true, source: '/src/x.ts' }));

    const url = pathToFileURL('/src/x.ts').href;
    const composed = composeMaps([outerMap, innerMap], '/src/x.ts', url);
    assert.deepEqual(composed.sources, [url]);
    assert.equal(composed.sourcesContent, undefined, 'contents are left out');
    const final = outer.toString();
    const genLine = final.split('\n').findIndex((l) => l.includes('var b')) + 1;
    const col = final.split('\n')[genLine - 1]!.indexOf('b =');
    const [mapped] = mapPositions([{ line: genLine, column: col }], composed);
    assert.deepEqual(mapped, { line: 2, column: 4 });
  });

  test('a default parameter moved into the body maps back to its place in the parameter list', () => {
    const source =
      "function f(\n  a,\n  b = (() => { throw new Error('marker'); })(),\n) {\n  return a;\n}\n";
    const out = instrument(source, {
      url: 'file:///m.js',
      format: 'commonjs',
      filename: '/m.js',
    });
    const lines = out.code.split('\n');
    const line = lines.findIndex((l) => l.includes("new Error('marker')"));
    assert.ok(line > 0, 'the default moved');
    assert.ok(lines[line]!.indexOf('if(b===void 0)b') !== -1, 'into the body');
    const column = lines[line]!.indexOf('new Error');
    const [mapped] = mapPositions([{ line: line + 1, column }], out.map!);
    assert.deepEqual(mapped, { line: 3, column: source.split('\n')[2]!.indexOf('new Error') });
  });

  test('mapPositions maps function starts of compiled TypeScript back to the .ts file', () => {
    const source =
      'enum E { A }\n\nclass K {\n  constructor(private x: number) {}\n  m(): number { return this.x; }\n}\n';
    const out = transformTypeScript(source, '/k.ts', 'ts', 'module', defaultTsSettings);
    const lines = out.code.split('\n');
    const mLine = lines.findIndex((l) => /^\s*m\(\)/.test(l));
    const mCol = lines[mLine]!.search(/\S/);
    const [m] = mapPositions([{ name: 'K#m', line: mLine + 1, column: mCol }], out.map);
    assert.deepEqual(m, { name: 'K#m', line: 5, column: 2 });
  });

  test('an inline map is what Node finds for the module', async () => {
    const map: SourceMapV3 = {
      version: 3,
      sources: ['file:///orig.ts'],
      names: [],
      mappings: 'AAAA',
    };
    const comment = inlineSourceMapComment(map);
    assert.match(comment, /^\n\/\/# sourceMappingURL=data:application\/json;charset=utf-8;base64,/);
    // Node's own view of a loaded module's map: what stack traces and debuggers use.
    const entry = fixture('loader', 'stack', 'throw.mjs');
    const script =
      `import(${JSON.stringify(pathToFileURL(entry).href)}).then(() => {` +
      `const m = require('node:module').findSourceMap(${JSON.stringify(pathToFileURL(entry).href)});` +
      `console.log(JSON.stringify(m && m.payload.sources)); })`;
    const result = await runNode(['--import', register, '-e', script], {
      env: { LIVEPATCH_CACHE: '0' },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), [pathToFileURL(entry).href]);
    assert.equal(typeof module.findSourceMap, 'function');
  });

  test("readExistingSourceMap: a file's own map, by path or inline, sources made absolute", () => {
    const dir = fixture('loader', 'stack', 'lib');
    const file = path.join(dir, 'compiled.js');
    const map = readExistingSourceMap(fs.readFileSync(file, 'utf8'), file);
    assert.ok(map);
    assert.deepEqual(map.sources, [
      pathToFileURL(fixture('loader', 'stack', 'src', 'compiled.ts')).href,
    ]);

    const inline = Buffer.from(
      JSON.stringify({ version: 3, sources: ['a.ts'], names: [], mappings: 'AAAA' }),
    ).toString('base64');
    const withInline = `x;\n//# sourceMappingURL=data:application/json;base64,${inline}\n`;
    assert.deepEqual(readExistingSourceMap(withInline, '/p/q/x.js')?.sources, ['file:///p/q/a.ts']);
    assert.equal(readExistingSourceMap('x;\n', '/p/x.js'), null);
    assert.equal(readExistingSourceMap('x;\n//# sourceMappingURL=missing.map\n', '/p/x.js'), null);
    assert.equal(
      readExistingSourceMap('x;\n//# sourceMappingURL=https://example.com/x.map\n', '/p/x.js'),
      null,
      'never fetched from the network',
    );
  });
});

function toV3(map: { sources: (string | null)[]; names: string[]; mappings: string }): SourceMapV3 {
  return {
    version: 3,
    sources: map.sources.map((s) => s ?? ''),
    names: map.names,
    mappings: map.mappings,
  };
}
