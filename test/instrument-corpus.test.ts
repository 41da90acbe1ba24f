/**
 * The transform on code nobody here wrote: real files from node_modules must come out as valid
 * JavaScript that gives back the original text once the generated regions are removed, and real
 * libraries must behave the same instrumented (results compared with the uninstrumented copy).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { parseSync } from 'oxc-parser';
import { instrument } from '../src/instrument/transform.ts';
import type { ModuleFormat } from '../src/instrument/types.ts';
import { installRuntime } from '../src/runtime/global.ts';
import { redirect, type Replacement } from '../src/runtime/redirect.ts';
import { registerModule } from '../src/runtime/table.ts';
import { stripGenerated } from '../src/runtime/tostring.ts';

installRuntime();
const root = path.resolve(import.meta.dirname, '..', 'node_modules');
const require = createRequire(import.meta.url);

function filesUnder(dir: string, pattern: RegExp): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (pattern.test(e.name)) out.push(p);
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out.sort();
}

function formatOf(file: string, source: string): ModuleFormat {
  if (file.endsWith('.mjs')) return 'module';
  if (file.endsWith('.cjs')) return 'commonjs';
  const pkg = findPackageType(path.dirname(file));
  if (pkg === 'module') return 'module';
  return /^\s*(import|export)\s/m.test(source) && !/\brequire\(/.test(source)
    ? 'module'
    : 'commonjs';
}

function findPackageType(dir: string): string | undefined {
  for (let d = dir; d !== path.dirname(d); d = path.dirname(d)) {
    const pj = path.join(d, 'package.json');
    if (fs.existsSync(pj))
      return (JSON.parse(fs.readFileSync(pj, 'utf8')) as { type?: string }).type;
  }
  return undefined;
}

/** Removes the module header (not a function's text, so not between markers). */
function withoutHeader(code: string, source: string): string {
  const stripped = stripGenerated(code);
  let h = stripped.search(/(var \$lp\d*_m=|import\{(?:s\d+ as|m as))/);
  if (stripped[h - 1] === ';' && source[h - 1] !== ';') h--;
  // `$lp_m.b(ACCESSOR);`: the module accessor holds no parenthesis after its parameter list.
  const end = stripped.indexOf(');', stripped.indexOf('_m.b((', h) + 6) + 2;
  return stripped.slice(0, h) + stripped.slice(end);
}

const CORPUS: { label: string; dir: string; pattern: RegExp }[] = [
  { label: 'eslint/lib (CommonJS, many styles)', dir: 'eslint/lib', pattern: /\.js$/ },
  {
    label: 'prettier/plugins (large minified ES modules)',
    dir: 'prettier/plugins',
    pattern: /\.mjs$/,
  },
  {
    label: 'typescript-estree (compiled TypeScript)',
    dir: '@typescript-eslint/typescript-estree/dist',
    pattern: /\.js$/,
  },
  { label: 'acorn, espree, magic-string, semver, ajv dist', dir: '.', pattern: /^$/ },
];
const EXTRA = [
  'acorn/dist/acorn.js',
  'acorn/dist/acorn.mjs',
  'espree/dist/espree.cjs',
  'magic-string/dist/magic-string.cjs.js',
  'magic-string/dist/magic-string.es.mjs',
  'ajv/dist/ajv.js',
  ...filesUnder(path.join(root, 'semver'), /\.js$/).map((f) => path.relative(root, f)),
];

describe('real files: instrumented output parses and strips back to the original', () => {
  for (const group of CORPUS) {
    it(group.label, () => {
      const files =
        group.pattern.source === '^$'
          ? EXTRA.map((f) => path.join(root, f)).filter((f) => fs.existsSync(f))
          : filesUnder(path.join(root, group.dir), group.pattern);
      assert.ok(files.length > 0, `no files under ${group.dir}: run npm ci`);
      let functions = 0;
      const failures: string[] = [];
      for (const file of files) {
        const source = fs.readFileSync(file, 'utf8');
        const format = formatOf(file, source);
        const sourceType = format === 'module' ? 'module' : 'commonjs';
        if (parseSync(file, source, { lang: 'js', sourceType }).errors.length > 0) continue; // not JavaScript we can run either
        const result = instrument(source, {
          url: pathToFileURL(file).href,
          format,
          filename: file,
          sourceMap: false,
        });
        functions += result.functions.length;
        const errors = parseSync(file, result.code, { lang: 'js', sourceType }).errors;
        if (errors.length > 0) failures.push(`${file}: ${errors[0]!.message}`);
        else if (withoutHeader(result.code, source) !== source)
          failures.push(`${file}: does not strip back to the original`);
      }
      assert.deepEqual(failures, []);
      assert.ok(functions > 0);
    });
  }
});

/** Copies a package, instruments every .js file in place and registers it, like the loader. */
function instrumentedCopy(pkg: string): string {
  const src = path.join(root, pkg);
  const dest = fs.mkdtempSync(path.join(os.tmpdir(), `lp-corpus-${pkg.replace(/\W/g, '_')}-`));
  fs.cpSync(src, dest, { recursive: true });
  for (const file of filesUnder(dest, /\.js$/)) {
    const source = fs.readFileSync(file, 'utf8');
    const url = pathToFileURL(file).href;
    const result = instrument(source, {
      url,
      format: 'commonjs',
      filename: file,
      sourceMap: false,
    });
    fs.writeFileSync(file, result.code);
    registerModule(url, {
      filename: file,
      format: 'commonjs',
      hash: createHash('sha256').update(source).digest('hex'),
      functions: result.functions,
      refused: result.refused,
      moduleBindings: result.moduleBindings,
    });
  }
  return dest;
}

describe('real libraries behave the same instrumented', () => {
  it('semver: classes, closures, caches across 50 CommonJS modules', () => {
    interface Semver {
      valid(v: string): string | null;
      clean(v: string): string | null;
      coerce(v: string): { version: string } | null;
      prerelease(v: string): unknown;
      satisfies(v: string, r: string, o?: object): boolean;
      validRange(r: string): string | null;
      minVersion(r: string): { version: string } | null;
      sort(vs: string[]): string[];
      inc(v: string, kind: string, id?: string): string | null;
      diff(a: string, b: string): string | null;
      maxSatisfying(vs: string[], r: string): string | null;
      gt(a: string, b: string): boolean;
      SemVer: new (v: string) => unknown;
    }
    const plain = require(path.join(root, 'semver')) as Semver;
    const dir = instrumentedCopy('semver');
    const lp = require(dir) as Semver;
    const versions = [
      '1.2.3',
      'v2.0.0-rc.1',
      '1.2.3-beta.4+build',
      '0.0.1',
      '10.20.30',
      'not-a-version',
      '1.x',
      '>=1.2.7 <1.3.0',
    ];
    const ranges = [
      '^1.2.0',
      '~1.2.3',
      '>=1.0.0 <2.0.0 || >=3.0.0',
      '1.x',
      '*',
      '<0.0.1',
      '2.0.0-rc.1 - 2.0.0',
    ];
    const run = (s: Semver): unknown[] => [
      versions.map((v) => [s.valid(v), s.clean(v), s.coerce(v)?.version ?? null, s.prerelease(v)]),
      versions.flatMap((v) => ranges.map((r) => s.satisfies(v, r, { includePrerelease: true }))),
      ranges.map((r) => [s.validRange(r), s.minVersion(r)?.version ?? null]),
      s.sort(['1.2.3', '0.1.0', '1.10.0', '1.2.3-alpha']),
      s.inc('1.2.3', 'prerelease', 'beta'),
      s.diff('1.2.3', '2.0.0'),
      s.maxSatisfying(['1.2.3', '1.3.0', '2.0.0'], '^1.0.0'),
      (() => {
        try {
          return new s.SemVer('nope');
        } catch (e) {
          return (e as Error).message;
        }
      })(),
    ];
    assert.deepEqual(JSON.parse(JSON.stringify(run(lp))), JSON.parse(JSON.stringify(run(plain))));
    // And a function deep inside is patchable: make every comparison say "equal".
    const r = redirect(
      { module: path.join(dir, 'functions', 'compare.js'), function: 'compare' },
      (() => 0) as Replacement,
    );
    assert.equal(lp.gt('2.0.0', '1.0.0'), false);
    r.remove();
    assert.equal(lp.gt('2.0.0', '1.0.0'), true);
  });

  it('acorn: a complete parser (UMD, classes built on prototypes) gives the same AST', () => {
    const file = path.join(root, 'acorn', 'dist', 'acorn.js');
    const source = fs.readFileSync(file, 'utf8');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lp-corpus-acorn-'));
    const out = path.join(dir, 'acorn.cjs');
    const url = pathToFileURL(out).href;
    const result = instrument(source, { url, format: 'commonjs', filename: out, sourceMap: false });
    fs.writeFileSync(out, result.code);
    registerModule(url, {
      filename: out,
      format: 'commonjs',
      hash: createHash('sha256').update(source).digest('hex'),
      functions: result.functions,
      refused: result.refused,
      moduleBindings: result.moduleBindings,
    });
    type Acorn = typeof import('acorn');
    const plain = require(file) as Acorn;
    const lp = require(out) as Acorn;
    const inputs = [
      fs.readFileSync(path.join(root, 'semver', 'classes', 'range.js'), 'utf8'),
      'class A extends B { #x = 1; static { this.y = 2; } async *m({ a = 1 }, ...r) { yield* r; } }',
      'label: for (const [k, v] of Object.entries(o ?? {})) { if (k) continue label; }',
      'x = a?.b?.[c]?.(d) ?? `t${e}` ** 2;',
    ];
    for (const input of inputs) {
      const opts = { ecmaVersion: 'latest', sourceType: 'script', locations: true } as const;
      assert.deepEqual(
        JSON.parse(JSON.stringify(lp.parse(input, opts))),
        JSON.parse(JSON.stringify(plain.parse(input, opts))),
      );
    }
    assert.throws(() => lp.parse('let let = 1', { ecmaVersion: 'latest' }), SyntaxError);
    assert.ok(result.functions.length > 300);
  });
});
