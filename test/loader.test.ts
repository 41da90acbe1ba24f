/**
 * The loader: every module format through `import` and `require()`, app files and node_modules,
 * TypeScript compiled as tsc compiles it, bad input reported exactly as Node reports it, internal
 * errors turned into an uninstrumented module and a warning, include/exclude rules.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';

import ts from 'typescript';

import { createModuleFilter, globToRegExp } from '../src/loader/filter.ts';
import { classify, detectFormat } from '../src/loader/format.ts';
import { resolveLoaderOptions } from '../src/loader/options.ts';
import { parseJsonc, transformTypeScript, defaultTsSettings } from '../src/loader/typescript.ts';
import { fixture, repoRoot, runNode, type RunNodeResult } from './helpers/node.ts';

const register = path.join(repoRoot, 'src', 'loader', 'register.ts');
const nodeMajor = Number(process.versions.node.split('.')[0]);

/** Run `entry` with the loader; no cache unless the test asks, no stray LIVEPATCH_* settings. */
function runWithLoader(
  entry: string,
  env: Record<string, string | undefined> = {},
  preload: string = register,
): Promise<RunNodeResult> {
  return runNode(['--import', preload, entry], {
    env: {
      LIVEPATCH_INCLUDE: undefined,
      LIVEPATCH_EXCLUDE: undefined,
      LIVEPATCH_ROOT: undefined,
      LIVEPATCH_CACHE_DIR: undefined,
      LIVEPATCH_SOURCE_MAPS: undefined,
      LIVEPATCH_CACHE: '0',
      ...env,
    },
  });
}

function parseOutput(result: RunNodeResult): Record<string, unknown> {
  assert.equal(result.code, 0, `child failed:\n${result.stderr}`);
  const line = result.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as Record<string, unknown>;
}

interface ModuleReport {
  format: string;
  hash: string;
  functions: string[];
}

const expectedValues = {
  add: 3,
  hasRequireCache: true,
  hasExtensions: true,
  ambCjs: 'cjs',
  ambEsm: 'esm',
  mul: 6,
  green: 2,
  small: 10,
  triple: 6,
  box: 7,
  deps: ['cjs-dep', 'esm-dep', 'ts-dep'],
  view: { tag: 'p', props: { id: 'x' }, children: ['hello'] },
};

describe('loader: module formats', () => {
  test('import: every format, app files and node_modules, instrumented', async () => {
    const out = parseOutput(await runWithLoader(fixture('loader', 'formats', 'main.mjs')));
    assert.deepEqual(out.values, expectedValues);
    const modules = out.modules as Record<string, ModuleReport>;
    const formats = Object.fromEntries(Object.entries(modules).map(([f, m]) => [f, m.format]));
    assert.deepEqual(formats, {
      'main.mjs': 'module',
      'cjs.cjs': 'commonjs',
      'amb-cjs.js': 'commonjs',
      'amb-esm.js': 'module',
      'esm.mjs': 'module',
      'ts-amb.ts': 'module',
      'ts-amb-cjs.ts': 'commonjs',
      'ts-cjs.cts': 'commonjs',
      'ts-esm.mts': 'module',
      'node_modules/cjs-dep/index.js': 'commonjs',
      'node_modules/esm-dep/index.js': 'module',
      'node_modules/ts-dep/index.ts': 'module',
      'jsx/view.tsx': 'module',
    });
    // Positions are in the original file, TypeScript included (line 1-based, column 0-based).
    assert.ok(modules['cjs.cjs']!.functions.includes('add@1:0'));
    assert.ok(modules['ts-amb.ts']!.functions.includes('green@5:7'));
    assert.ok(modules['ts-esm.mts']!.functions.includes('Box#constructor@2:2'));
    assert.ok(modules['ts-esm.mts']!.functions.includes('get Box#value@3:2'));
    assert.ok(modules['ts-cjs.cts']!.functions.includes('triple@4:0'));
    assert.ok(modules['jsx/view.tsx']!.functions.includes('View@2:7'));
    // The hash is of the original bytes, before any TypeScript transform.
    const { createHash } = await import('node:crypto');
    const tsSource = fs.readFileSync(fixture('loader', 'formats', 'ts-amb.ts'));
    assert.equal(modules['ts-amb.ts']!.hash, createHash('sha256').update(tsSource).digest('hex'));
    assert.deepEqual(out.own, [], 'livepatch never instruments its own files');
  });

  test('require(): CommonJS and TypeScript, with the full require (cache, extensions)', async () => {
    const out = parseOutput(await runWithLoader(fixture('loader', 'formats', 'main.cjs')));
    assert.deepEqual(out.values, {
      add: 3,
      hasRequireCache: true,
      hasExtensions: true,
      ambCjs: 'cjs',
      small: 10,
      triple: 6,
      deps: ['cjs-dep'],
    });
    const modules = out.modules as Record<string, ModuleReport>;
    assert.deepEqual(Object.keys(modules).sort(), [
      'amb-cjs.js',
      'cjs.cjs',
      'main.cjs',
      'node_modules/cjs-dep/index.js',
      'ts-amb-cjs.ts',
      'ts-cjs.cts',
    ]);
  });

  test(
    'require(esm): instrumented ES modules loaded through require()',
    {
      // Node 22 asserts when a module required through require(esm) imports a specifier that
      // parses as a URL with a custom scheme; `livepatch:slots` does (docs/loader.md).
      todo:
        nodeMajor === 22 && SLOTS_SPECIFIER_IS_URL()
          ? 'Node 22: SLOTS_SPECIFIER (src/runtime/key.ts) must not parse as a URL'
          : false,
    },
    async () => {
      const out = parseOutput(
        await runWithLoader(fixture('loader', 'formats', 'main.cjs'), { REQUIRE_ESM: '1' }),
      );
      const { view: _view, ...values } = expectedValues;
      assert.deepEqual(out.values, values);
      const modules = out.modules as Record<string, ModuleReport>;
      assert.equal(modules['amb-esm.js']?.format, 'module');
      assert.equal(modules['ts-esm.mts']?.format, 'module');
    },
  );
});

function SLOTS_SPECIFIER_IS_URL(): boolean {
  const source = fs.readFileSync(path.join(repoRoot, 'src', 'runtime', 'key.ts'), 'utf8');
  const m = /SLOTS_SPECIFIER\s*=\s*'([^']+)'/.exec(source);
  return m !== null && URL.canParse(m[1]!);
}

describe('loader: TypeScript', () => {
  /** The same file compiled by TypeScript itself and run without the loader. */
  async function runWithTsc(file: string, options: ts.CompilerOptions): Promise<unknown> {
    const out = ts.transpileModule(fs.readFileSync(file, 'utf8'), {
      compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, ...options },
    });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'livepatch-tsc-'));
    try {
      const compiled = path.join(dir, 'compiled.mjs');
      fs.writeFileSync(compiled, out.outputText);
      return parseOutput(await runNode([compiled]));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  test('enums, namespaces, parameter properties, class features: as tsc compiles them', async () => {
    const file = fixture('loader', 'ts', 'features.ts');
    const ours = parseOutput(await runWithLoader(file));
    assert.deepEqual(ours, await runWithTsc(file, {}));
    assert.deepEqual((ours as { enums: unknown[] }).enums, [0, 5, 6, 'Blue', 'yes', 6, 1, 2]);
  });

  test('legacy decorators with metadata and useDefineForClassFields from tsconfig.json', async () => {
    const file = fixture('loader', 'ts', 'decorators', 'deco.ts');
    const ours = parseOutput(await runWithLoader(file));
    const theirs = await runWithTsc(file, {
      experimentalDecorators: true,
      emitDecoratorMetadata: true,
      useDefineForClassFields: false,
    });
    assert.deepEqual(ours, theirs);
    assert.equal((ours as { sealed: boolean }).sealed, true);
    assert.deepEqual((ours as { keys: string[] }).keys, ['dep', 'id', 'label']);
  });

  test('a TypeScript parse error raises TsTransformError, and tsconfig.json may hold comments', () => {
    assert.throws(
      () => transformTypeScript('const x: = 1;', '/x.ts', 'ts', 'module', defaultTsSettings),
      { name: 'TsTransformError' },
    );
    assert.deepEqual(parseJsonc('{ // c\n "a": [1, 2,], /* d */ "b": "//not a comment", }'), {
      a: [1, 2],
      b: '//not a comment',
    });
  });
});

describe('loader: bad input', () => {
  /**
   * The part of Node's report that names the error and where it is (no internal frames). Node
   * itself names the file by URL or by path depending on which of its loaders ran (any module
   * hook sends the entry through the ESM loader), so the location is compared as a path.
   */
  function errorHead(stderr: string): string {
    const lines = stderr.split('\n');
    const start = lines.findIndex((l) => /^(?:file:\/\/)?\/.*:\d+$/.test(l));
    const end = lines.findIndex((l, i) => i > start && /^\w*Error\b/.test(l));
    assert.ok(start >= 0 && end > start, `no error report in:\n${stderr}`);
    return lines
      .slice(start, end + 1)
      .join('\n')
      .replace(/^file:\/\//, '');
  }

  for (const file of ['bad.cjs', 'bad.mjs', 'bad-ambiguous.js', 'bad.mts', 'bad.ts']) {
    test(`${file}: the same error, message and original location as plain Node`, async () => {
      const entry = fixture('loader', 'syntax', file);
      const plain = await runNode([entry]);
      const ours = await runWithLoader(entry);
      assert.notEqual(plain.code, 0);
      assert.equal(ours.code, plain.code);
      assert.equal(errorHead(ours.stderr), errorHead(plain.stderr));
      const ownLines = ours.stderr.split('\n').filter((l) => !l.startsWith('    at '));
      assert.doesNotMatch(ownLines.join('\n'), /livepatch/i, 'the loader adds nothing of its own');
    });
  }

  test('require() of broken files: identical errors, caught by the program', async () => {
    const entry = fixture('loader', 'syntax', 'catch.cjs');
    const plain = parseOutput(await runNode([entry]));
    const ours = parseOutput(await runWithLoader(entry));
    assert.deepEqual(ours, plain);
    assert.equal(Object.keys(ours).length, 5);
  });

  test('an internal error loads the module uninstrumented, with one warning naming it', async () => {
    const dir = fixture('loader', 'fallback');
    const result = await runWithLoader(
      path.join(dir, 'main.mjs'),
      {},
      path.join(dir, 'register-faulty.mjs'),
    );
    const out = parseOutput(result);
    assert.equal(out.victim, 'victim ran');
    assert.equal(out.victimTs, 'victim-ts ran', 'TypeScript still compiled (enum)');
    assert.equal(out.fine, 'fine ran');
    assert.deepEqual(out.modules, ['fine.cjs', 'main.mjs']);
    const warnings = result.stderr.split('\n').filter((l) => l.includes('LivepatchWarning'));
    assert.equal(warnings.length, 2, result.stderr);
    assert.match(
      warnings[0]!,
      /internal error while instrumenting .*victim\.cjs; loading it uninstrumented.*TypeError: simulated instrumenter bug/,
    );
    assert.match(warnings[1]!, /victim-ts\.ts/);
    // A deliberate livepatch error (a patch failing to apply) fails that module's load.
    assert.deepEqual(out.doomed, {
      code: 'ERR_LIVEPATCH_PATCH_FAILED',
      message: `patch "fix-1" failed to apply to ${path.join(dir, 'doomed.cjs')}`,
    });
  });
});

describe('loader: include and exclude', () => {
  const entry = fixture('loader', 'formats', 'main.mjs');
  const dir = fixture('loader', 'formats');

  test('LIVEPATCH_EXCLUDE keeps matching files uninstrumented, and they still run', async () => {
    const out = parseOutput(
      await runWithLoader(entry, { LIVEPATCH_EXCLUDE: 'node_modules,ts-*,jsx/' }),
    );
    assert.deepEqual(out.values, expectedValues, 'excluded TypeScript is still compiled (enums)');
    assert.deepEqual(Object.keys(out.modules as object).sort(), [
      'amb-cjs.js',
      'amb-esm.js',
      'cjs.cjs',
      'esm.mjs',
      'main.mjs',
    ]);
  });

  test('LIVEPATCH_INCLUDE replaces the defaults; LIVEPATCH_ROOT anchors relative patterns', async () => {
    const out = parseOutput(
      await runWithLoader(entry, {
        LIVEPATCH_INCLUDE: './cjs.cjs,node_modules/esm-dep',
        LIVEPATCH_ROOT: dir,
      }),
    );
    assert.deepEqual(Object.keys(out.modules as object).sort(), [
      'cjs.cjs',
      'node_modules/esm-dep/index.js',
    ]);
  });

  test('patterns: globs, bare names at any depth, directories cover their contents', () => {
    const root = '/app';
    const m = (pattern: string, file: string): boolean => globToRegExp(pattern, root).test(file);
    assert.ok(m('src/**/*.ts', '/app/src/a/b/c.ts'));
    assert.ok(m('src/**/*.ts', '/app/src/c.ts'));
    assert.ok(!m('src/**/*.ts', '/app/lib/c.ts'));
    assert.ok(m('node_modules', '/app/node_modules/x/index.js'));
    assert.ok(m('node_modules', '/elsewhere/node_modules/y.js'));
    assert.ok(m('*.spec.js', '/app/test/a.spec.js'));
    assert.ok(!m('*.spec.js', '/app/test/a.js'));
    assert.ok(m('./lib', '/app/lib/x/y.js'));
    assert.ok(!m('./lib', '/app/library/y.js'));
    assert.ok(m('/abs/dir', '/abs/dir/f.js'));
    assert.ok(m('src/{a,b}.js', '/app/src/b.js'));
    assert.ok(m('src/?.js', '/app/src/x.js'));
    assert.ok(!m('src/?.js', '/app/src/xy.js'));
    assert.throws(() => globToRegExp('src/{a,b', root), /unbalanced/);

    const filter = createModuleFilter({
      root,
      exclude: [/\.generated\./, (file) => file.endsWith('/skip.js')],
    });
    assert.equal(filter('file:///app/src/a.js'), true);
    assert.equal(filter('file:///app/src/a.generated.js'), false);
    assert.equal(filter('file:///app/src/skip.js'), false);
    assert.equal(filter('file:///other/place/x.js'), false, 'outside the root and node_modules');
    assert.equal(filter('file:///other/node_modules/p/x.js'), true);
    assert.equal(filter('node:fs'), false);
    assert.equal(filter(`file://${repoRoot}/src/loader/hooks.ts`), false, 'livepatch itself');
    const throwing = createModuleFilter({
      root,
      include: [
        () => {
          throw new Error('bad predicate');
        },
      ],
    });
    assert.equal(
      throwing('file:///app/a.js'),
      false,
      'a throwing predicate excludes, never throws',
    );
  });

  test('options: environment, programmatic overrides, defaults', () => {
    const ctx = (env: Record<string, string>) => ({
      env,
      mainScript: '/srv/app/bin/server.js',
      cwd: '/',
    });
    const fsRoot = resolveLoaderOptions({}, ctx({}));
    // No package.json above /srv/app/bin here: the root falls back to the working directory.
    assert.equal(fsRoot.root, '/');
    const off = resolveLoaderOptions(
      {},
      ctx({ LIVEPATCH_CACHE: '0', LIVEPATCH_SOURCE_MAPS: 'off' }),
    );
    assert.equal(off.cacheDir, null);
    assert.equal(off.sourceMaps, false);
    assert.equal(off.compileCache, false);
    const modes = (value: string | undefined) => {
      const o = resolveLoaderOptions(
        {},
        ctx(value === undefined ? {} : { LIVEPATCH_SOURCE_MAPS: value }),
      );
      return [o.sourceMaps, o.sourceMapsInNodeModules, o.composeNodeModulesMaps];
    };
    // Node's own policy by default: app files mapped, node_modules not.
    assert.deepEqual(modes(undefined), [true, false, false]);
    assert.deepEqual(modes('1'), [true, false, false]);
    assert.deepEqual(modes('app'), [true, false, false]);
    assert.deepEqual(modes('all'), [true, true, true]);
    assert.deepEqual(modes('0'), [false, false, false]);
    const index = (env: Record<string, string>) => {
      const o = resolveLoaderOptions({}, ctx(env));
      return [o.cacheIndex, o.cacheIndexSettleMs];
    };
    assert.deepEqual(index({}), [true, 2000]);
    assert.deepEqual(index({ LIVEPATCH_CACHE_INDEX: '0' }), [false, 2000]);
    assert.deepEqual(index({ LIVEPATCH_CACHE: '0' }), [false, 2000], 'no cache, no index');
    assert.deepEqual(index({ LIVEPATCH_CACHE_INDEX_SETTLE_MS: '0' }), [true, 0]);
    assert.deepEqual(index({ LIVEPATCH_CACHE_INDEX_SETTLE_MS: 'soon' }), [true, 2000]);
    const custom = resolveLoaderOptions(
      { root: dir, cacheDir: 'cache-here' },
      ctx({ LIVEPATCH_CACHE_DIR: '/ignored' }),
    );
    assert.equal(custom.cacheDir, path.join(dir, 'cache-here'));
    const fromMain = resolveLoaderOptions(
      {},
      { env: {}, mainScript: path.join(dir, 'main.mjs'), cwd: '/' },
    );
    assert.equal(fromMain.root, dir, "the main script's package");
    assert.equal(fromMain.cacheDir, path.join(dir, 'node_modules', '.cache', 'livepatch'));
  });
});

describe('loader: format decisions', () => {
  test("ambiguous JavaScript is CommonJS unless Node's detection says module", () => {
    const d = (src: string): string => detectFormat(src, '/x.js');
    assert.equal(d('module.exports = 1;'), 'commonjs');
    assert.equal(d('export const x = 1;'), 'module');
    assert.equal(d('import fs from "node:fs";'), 'module');
    assert.equal(d('console.log(import.meta.url);'), 'module');
    assert.equal(d('await Promise.resolve();'), 'module');
    assert.equal(d('const require = () => 1; export {};'), 'module');
    assert.equal(d('const module = {};'), 'module', 'clashes with the CommonJS wrapper');
    assert.equal(d('const x = await;'), 'commonjs', 'invalid either way: CommonJS reports it');
    assert.equal(d('async function f() { await g(); }'), 'commonjs');
    assert.equal(d('const s = "import x from y";'), 'commonjs');
    assert.equal(d('function f( {'), 'commonjs');
  });

  test('classify: what Node reports, by extension', () => {
    assert.deepEqual(classify('file:///a/x.js', undefined), { lang: 'js', format: 'auto' });
    assert.deepEqual(classify('file:///a/x.cjs', 'commonjs'), { lang: 'js', format: 'commonjs' });
    assert.deepEqual(classify('file:///a/x.ts', 'module-typescript'), {
      lang: 'ts',
      format: 'module',
    });
    assert.deepEqual(classify('file:///a/x.cts', 'typescript'), { lang: 'ts', format: 'commonjs' });
    assert.equal(classify('file:///a/x.json', 'json'), null);
    assert.equal(classify('file:///a/x.d.ts', 'module-typescript'), null);
    assert.equal(classify('file:///a/x.node', 'addon'), null);
    assert.equal(classify('file:///a/x.js', 'wasm'), null);
  });
});

describe('app root reached through a symlink', () => {
  test('modules under a symlinked root are instrumented', async () => {
    const real = fs.mkdtempSync(path.join(os.tmpdir(), 'lp-real-'));
    const link = `${real}-link`;
    fs.writeFileSync(
      path.join(real, 'app.mjs'),
      `export function f() { return 1; }\nconst t = globalThis[Symbol.for('livepatch.runtime')];\nconst { table } = await import(${JSON.stringify(new URL('../src/runtime/table.ts', import.meta.url).href)});\nconsole.log(table.all().filter((m) => m.url.endsWith('/app.mjs')).length, typeof t);\n`,
    );
    // The default root is the main script's package root, found here through the symlink.
    fs.writeFileSync(path.join(real, 'package.json'), '{"type":"module"}');
    fs.symlinkSync(real, link);
    try {
      const result = await runNode(['--import', register, path.join(link, 'app.mjs')], {
        env: { LIVEPATCH_CACHE: '0' },
      });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout.trim(), '1 object');
    } finally {
      fs.rmSync(link);
      fs.rmSync(real, { recursive: true });
    }
  });
});
