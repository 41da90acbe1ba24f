/**
 * Syntax forms that could break the transform: each snippet runs uninstrumented and instrumented
 * and must give the same result; its functions must still be redirectable. Functions that cannot
 * be instrumented safely are listed with the reason.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { parseSync } from 'oxc-parser';
import { instrument } from '../src/instrument/transform.ts';
import type { ModuleFormat } from '../src/instrument/types.ts';
import { callContext } from '../src/runtime/context.ts';
import { redirect, type Replacement } from '../src/runtime/redirect.ts';
import { loadCjs, loadEsm, target, type Loaded } from './support/instrumented.ts';

type Run = { run(): unknown };
const plainDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lp-plain-'));
let plainCount = 0;

/** Loads the source as is, without instrumentation, for the reference result. */
async function loadPlain(source: string, format: ModuleFormat): Promise<Run> {
  const file = path.join(plainDir, `p${++plainCount}${format === 'module' ? '.mjs' : '.cjs'}`);
  fs.writeFileSync(file, source);
  if (format === 'commonjs') return createRequire(import.meta.url)(file) as Run;
  return (await import(pathToFileURL(file).href)) as Run;
}

async function loadBoth(
  source: string,
  format: ModuleFormat,
): Promise<{ plain: Run; lp: Loaded<Run> }> {
  const plain = await loadPlain(source, format);
  const lp = format === 'commonjs' ? loadCjs<Run>(source) : await loadEsm<Run>(source);
  return { plain, lp };
}

async function settle(value: unknown): Promise<unknown> {
  try {
    const v = await value;
    return { ok: normalize(v) };
  } catch (err) {
    return { threw: (err as Error).constructor.name, message: (err as Error).message };
  }
}

function normalize(v: unknown): unknown {
  return JSON.parse(
    JSON.stringify(v, (_k, x: unknown) =>
      typeof x === 'function' ? `fn:${x.name}/${x.length}` : x === undefined ? '(undefined)' : x,
    ) ?? 'null',
  );
}

interface Case {
  readonly title: string;
  readonly format: ModuleFormat;
  readonly source: string;
  /** A function to redirect afterwards, and what run() must then return. */
  readonly patch?: {
    readonly name: string;
    readonly replacement: (...args: never[]) => unknown;
    readonly expect: unknown;
  };
}

const cjsRun = (body: string) => `module.exports.run = function () {\n${body}\n};`;

const cases: Case[] = [
  {
    title: 'a "use strict" function body and directives without semicolons',
    format: 'commonjs',
    source: `'use strict'\nfunction f() { 'use strict'\n  return this === undefined }\nconst g = () => { "use strict"; return typeof this; };\nconst h = (a) => { 'use strict'\n return a };\n${cjsRun('return [f(), g(), h(3)];')}`,
    patch: {
      name: 'h',
      replacement: (a: unknown) => `h${String(a)}`,
      expect: [true, 'object', 'h3'],
    },
  },
  {
    title: 'a hashbang line',
    format: 'commonjs',
    source: `#!/usr/bin/env node\nfunction main() { return 'main'; }\n${cjsRun('return main();')}`,
    patch: { name: 'main', replacement: () => 'patched', expect: 'patched' },
  },
  {
    title: 'a hashbang line in an ES module',
    format: 'module',
    source: `#!/usr/bin/env node\nexport function run() { return import.meta.url.startsWith('file:'); }`,
  },
  {
    title: 'labels, labelled blocks and loops with continue/break to a label',
    format: 'commonjs',
    source: `function f() {\n  out: for (let i = 0; i < 3; i++) { for (let j = 0; j < 3; j++) { if (j === 1) continue out; if (i === 2) break out; } }\n  block: { if (true) break block; return 'not here'; }\n  return 'labels';\n}\nlabelled: function g() { return 'g'; }\n${cjsRun('return [f(), g()];')}`,
    patch: { name: 'f', replacement: () => 'pf', expect: ['pf', 'g'] },
  },
  {
    title: 'arguments in arrows (the enclosing function’s), also in arrows with default parameters',
    format: 'commonjs',
    source: `function f() { const a = () => arguments.length; const b = (x = arguments[0]) => [x, arguments.length]; return [a(), b(), b('own')]; }\n${cjsRun('return f(7, 8);')}`,
  },
  {
    title: 'sloppy mapped arguments, arguments.callee and duplicate parameter names',
    format: 'commonjs',
    source: `function mapped(a) { arguments[0] = 'changed'; return a; }\nfunction callee() { return arguments.callee === callee; }\nfunction dup(a, a) { return a; }\n${cjsRun("return [mapped('x'), callee(), dup(1, 2)];")}`,
    patch: {
      name: 'dup',
      replacement: (...args: unknown[]) => args,
      expect: ['changed', true, [1, 2]],
    },
  },
  {
    title: 'new.target in functions, constructors and arrows inside them',
    format: 'module',
    source: `function F() { const arrow = () => new.target; return { direct: new.target === F, viaArrow: arrow() === F }; }\nclass C { constructor() { this.t = new.target === C; } }\nfunction plain() { return new.target === undefined; }\nexport function run() { return [new F(), F(), new C().t, plain()]; }`,
    patch: {
      name: 'F>arrow',
      replacement: () => callContext().newTarget,
      expect: [{ direct: true, viaArrow: true }, { direct: false, viaArrow: false }, true, true],
    },
  },
  {
    title: 'super in object literal methods and getters',
    format: 'module',
    source: `const base = { greet() { return 'base'; }, get tag() { return 'btag'; } };\nconst obj = { __proto__: base, greet() { return 'obj>' + super.greet(); }, get tag() { return 'o' + super.tag; }, set tag(v) { this._t = v; } };\nexport function run() { obj.tag = 1; return [obj.greet(), obj.tag, obj._t]; }`,
    patch: {
      name: 'get obj.tag',
      replacement: () => `patched ${String(callContext().superGet('tag'))}`,
      expect: ['obj>base', 'patched btag', 1],
    },
  },
  {
    title: 'async arrows and functions in class fields, static fields, private fields',
    format: 'module',
    source: `class A { v = 2; load = async (x) => { await null; return x * this.v; }; static s = async function () { return 's'; }; #p = async () => 'p'; getP() { return this.#p(); } }\nexport async function run() { const a = new A(); return [await a.load(3), await A.s(), await a.getP()]; }`,
    patch: { name: 'A#load', replacement: async () => 'patched', expect: ['patched', 's', 'p'] },
  },
  {
    title: 'generator methods with computed keys and async generator methods',
    format: 'module',
    source: `class Range { constructor(n) { this.n = n; } *[Symbol.iterator]() { for (let i = 0; i < this.n; i++) yield i; } async *[Symbol.asyncIterator]() { yield* [...this]; } static *of(...xs) { yield* xs; } }\nexport async function run() { const r = new Range(3); const a = []; for await (const x of r) a.push(x); return [[...r], a, [...Range.of(1, 2)]]; }`,
    patch: {
      name: 'Range#[Symbol.iterator]',
      replacement: function* () {
        yield 'p';
      },
      expect: [['p'], ['p'], [1, 2]],
    },
  },
  {
    title: 'functions inside with (sloppy)',
    format: 'commonjs',
    source: `const scope = { x: 'from-with', f: null };\nwith (scope) { var inWith = function () { return x; }; f = () => x; }\n${cjsRun('return [inWith(), scope.f()];')}`,
    patch: { name: 'inWith', replacement: () => 'patched', expect: ['patched', 'from-with'] },
  },
  {
    title: 'direct eval reading and declaring locals (sloppy)',
    format: 'commonjs',
    source: `function f(a) { const local = 'L'; eval('var declared = local + a'); return declared; }\nfunction g() { return eval('(function inner() { return 42; })')(); }\n${cjsRun("return [f('A'), g()];")}`,
    patch: { name: 'f', replacement: () => 'patched', expect: ['patched', 42] },
  },
  {
    title: 'functions in default parameter values and destructuring defaults',
    format: 'module',
    source: `function f(a = () => 'dflt', { b = function () { return 'b'; } } = {}) { return [a(), b()]; }\nexport function run() { return [f(), f(() => 'given')]; }`,
    patch: {
      name: 'f>a',
      replacement: () => 'patched default',
      expect: [
        ['patched default', 'b'],
        ['given', 'b'],
      ],
    },
  },
  {
    title: 'class static blocks',
    format: 'module',
    source: `class Registry { static items = []; static { const add = (x) => this.items.push(x); add('one'); function two() { return 'two'; } this.items.push(two()); } }\nexport function run() { return Registry.items; }`,
  },
  {
    title: 'optional chaining calls and tagged templates',
    format: 'module',
    source: `const o = { m(cb) { return cb?.('x'); } };\nfunction tag(strings, ...values) { return strings.raw.join('|') + values.join(','); }\nexport function run() { return [o?.m?.((v) => v + '!'), o.nope?.(() => 1), tag\`a\${1}b\${(() => 2)()}c\`]; }`,
    patch: { name: 'tag', replacement: () => 'tagged', expect: ['x!', '(undefined)', 'tagged'] },
  },
  {
    title: 'export default class and export default async function',
    format: 'module',
    source: `export default class { m() { return 'm'; } }\nexport async function run() { const mod = await import(import.meta.url); return new mod.default().m(); }`,
    patch: { name: 'default#m', replacement: () => 'patched m', expect: 'patched m' },
  },
  {
    title: 'export default async function',
    format: 'module',
    source: `export default async function () { return 'dflt'; }\nexport async function run() { const mod = await import(import.meta.url); return mod.default(); }`,
    patch: { name: 'default', replacement: async () => 'patched', expect: 'patched' },
  },
  {
    title: 'comments and line breaks around parameter lists of wrapped functions',
    format: 'commonjs',
    source: `function f({ a } /* c1 */ , b = sideEffect() // c2\n) /* c3 */ // c4\n{ return [a, b]; }\nfunction sideEffect() { return 'se'; }\nconst g = /* c5 */ ( { x } /* c6 */ , ) /* c7 */ => x;\nconst h = x /* c8 */ => x;\nconst i = async /* c9 */ y => y;\nconst j = ( a , b , ) => a + b;\nconst k = (/* empty */) => 'k';\nconst o = { m /* c10 */ ({ q }) /* c11 */ { return q; } };\n${cjsRun('return [f({ a: 1 }), g({ x: 2 }), h(3), j(4, 5), k(), o.m({ q: 6 })];')}`,
    patch: {
      name: 'f',
      replacement: (...args: unknown[]) => args.length,
      expect: [1, 2, 3, 9, 'k', 6],
    },
  },
  {
    title: 'arrows inside derived constructors before and after super()',
    format: 'module',
    source: `class A { constructor() { this.a = 1; } }\nclass B extends A { constructor() { const early = () => 'early'; const self = () => this; early(); super(); this.ok = self() === this; } }\nexport function run() { return new B(); }`,
    patch: {
      name: 'B#constructor>self',
      replacement: () => 'patched',
      expect: { a: 1, ok: false },
    },
  },
  {
    title: 'block-level function declarations in sloppy code (Annex B) and in strict code',
    format: 'commonjs',
    source: `function f() { if (true) { function inBlock() { return 'block'; } } return inBlock(); }\n${cjsRun('return f();')}`,
    patch: { name: 'f>inBlock', replacement: () => 'patched', expect: 'patched' },
  },
  {
    title: 'await and yield as identifiers in sloppy code around async functions and generators',
    format: 'commonjs',
    source: `function outer() { var await = 'aw'; var yield = 'yi'; async function mid() { return function leaf() { return [await, yield]; }; } function* gen() { yield (function leaf2() { return yield; })(); } return [mid, gen]; }\n${cjsRun('const [mid, gen] = outer(); return mid().then((leaf) => [leaf(), [...gen()]]);')}`,
    patch: {
      name: 'outer>mid',
      replacement: async () => () => 'patched',
      expect: ['patched', ['yi']],
    },
  },
  {
    title: 'concise arrow bodies: object literals, sequences, nested arrows, conditional',
    format: 'module',
    source: `const a = () => ({ x: 1 });\nconst b = (p) => (p, p + 1);\nconst c = (x) => (y) => (z) => x + y + z;\nconst d = (x) => x ? 'yes' : 'no';\nexport function run() { return [a(), b(1), c(1)(2)(3), d(0)]; }`,
    patch: {
      name: 'c>(anonymous)>(anonymous)',
      replacement: () => 'inner',
      expect: [{ x: 1 }, 2, 'inner', 'no'],
    },
  },
  {
    title: 'private methods, static private methods, #x in obj, accessors',
    format: 'module',
    source: `class P { static #count = 0; #v = 1; static #inc() { return 'inc' + P.#count; } get #twice() { return this.#v * 2; } check(o) { return #v in o; } run() { return [P.#inc(), this.#twice, this.check(this), this.check({})]; } }\nexport function run() { return new P().run(); }`,
    patch: { name: 'P.#inc', replacement: () => 'patched', expect: ['patched', 2, true, false] },
  },
  {
    title:
      'a class with a string "constructor" key, __proto__ keys, and a class heritage expression',
    format: 'module',
    source: `class A { 'constructor'() { this.x = 'ctor'; } }\nclass B extends (class { base() { return 'base'; } }) { m() { return this.base(); } }\nconst o = { __proto__: { p() { return 'p'; } }, q() { return this.p(); } };\nexport function run() { return [new A().x, new B().m(), o.q()]; }`,
    patch: {
      name: 'A#constructor',
      replacement: function (this: { x: string }) {
        this.x = 'patched';
      },
      expect: ['patched', 'base', 'p'],
    },
  },
  {
    title: 'top-level await and import.meta inside functions',
    format: 'module',
    source: `const v = await Promise.resolve('tla');\nexport function run() { return [v, typeof import.meta.url, (() => import.meta.url === import.meta.url)()]; }`,
  },
  {
    title: 'generators keep parameter errors at call time and laziness of the body',
    format: 'module',
    source: `const log = [];\nfunction* g({ a }) { log.push('body'); yield a; }\nexport function run() { let err = null; try { g(); } catch (e) { err = e.constructor.name; } const it = g({ a: 1 }); const before = log.length; return [err, before, [...it], log]; }`,
  },
  {
    title: 'setters with default and destructured parameters',
    format: 'module',
    source: `const o = { set a(v = 'd') { this._a = v; }, set b({ x }) { this._b = x; } };\nexport function run() { o.a = undefined; o.b = { x: 1 }; return [o._a, o._b, Object.getOwnPropertyDescriptor(o, 'a').set.length]; }`,
  },
  {
    title: 'getters and setters with the same name and duplicated method names',
    format: 'module',
    source: `class T { get v() { return 'g'; } set v(x) { this._v = x; } m() { return 1; } static m() { return 2; } }\nexport function run() { const t = new T(); t.v = 3; return [t.v, t._v, t.m(), T.m()]; }`,
    patch: {
      name: 'T.m',
      replacement: () => 'static patched',
      expect: ['g', 3, 1, 'static patched'],
    },
  },
];

describe('syntax forms run unchanged and stay patchable', () => {
  for (const c of cases) {
    it(`${c.title} (${c.format})`, async () => {
      const { plain, lp } = await loadBoth(c.source, c.format);
      const expected = await settle(plain.run());
      assert.deepEqual(await settle(lp.exports.run()), expected);
      const out = parseSync(`x.${c.format === 'module' ? 'mjs' : 'cjs'}`, lp.result.code, {
        lang: 'js',
        sourceType: c.format === 'module' ? 'module' : 'commonjs',
      });
      assert.deepEqual(out.errors, []);
      if (c.patch !== undefined) {
        const r = redirect(target(lp, c.patch.name), c.patch.replacement as Replacement);
        try {
          assert.deepEqual(await settle(lp.exports.run()), { ok: normalize(c.patch.expect) });
        } finally {
          r.remove();
        }
        assert.deepEqual(await settle(lp.exports.run()), expected);
      }
    });
  }
});

describe('functions that cannot be instrumented safely are listed with the reason', () => {
  it("a function that declares its own 'arguments' is refused, and redirect() says why", () => {
    const m = loadCjs<Record<string, (...a: unknown[]) => unknown>>(`
      function param(arguments) { return arguments; }
      function decl() { function arguments() { return 'fn'; } return arguments(); }
      function lexical() { let arguments = 'let'; return arguments; }
      function fine() { var arguments; return arguments.length; }
      module.exports = { param, decl, lexical, fine };
    `);
    assert.deepEqual(
      m.result.refused.map((r) => [r.name, r.line]),
      [
        ['param', 2],
        ['decl', 3],
        ['lexical', 4],
      ],
    );
    for (const r of m.result.refused) assert.match(r.reason, /declares its own 'arguments'/);
    assert.deepEqual(
      m.result.functions.map((f) => f.name),
      ['decl>arguments', 'fine'],
    );
    assert.equal(m.exports['param']!(5), 5);
    assert.equal(m.exports['decl']!(), 'fn');
    assert.equal(m.exports['lexical']!(), 'let');
    assert.equal(m.exports['fine']!(1, 2), 2);
    assert.throws(
      () => redirect(target(m, 'param'), () => 1),
      /not patchable.*declares its own 'arguments'/,
    );
  });

  it('an async function or generator whose body declares a name as function and var is patchable but untracked, with the reason', async () => {
    const m = await loadEsm<Record<string, (...a: unknown[]) => unknown>>(`
      export async function clash() { var helper = 1; function helper() {} return typeof helper; }
      export function* twice() { function g() { return 1; } function g() { return 2; } yield g(); }
      export async function wrapped({ x }) { var h = 1; function h() {} return [x, typeof h]; }
      export async function ok() { var a; return 'ok'; }
    `);
    const byName = new Map(m.result.functions.map((f) => [f.name, f]));
    assert.equal(byName.get('clash')!.tracked, false);
    assert.match(
      byName.get('clash')!.untrackedReason!,
      /declares 'helper' both as a function and as a var/,
    );
    assert.equal(byName.get('twice')!.tracked, false);
    assert.match(byName.get('twice')!.untrackedReason!, /'g'/);
    assert.equal(
      byName.get('wrapped')!.tracked,
      true,
      'a wrapped body is a function body of its own: no clash',
    );
    assert.equal(byName.get('ok')!.tracked, true);
    assert.equal(byName.get('ok')!.untrackedReason, undefined);
    assert.equal(await m.exports['clash']!(), 'number');
    assert.deepEqual([...(m.exports['twice']!() as Iterable<unknown>)], [2]);
    assert.deepEqual(await m.exports['wrapped']!({ x: 1 }), [1, 'number']);
    const r = redirect(target(m, 'clash'), (async () => 'patched') as Replacement);
    assert.equal(await m.exports['clash']!(), 'patched');
    r.remove();
  });

  it('refused functions keep their position among functions of the same name', () => {
    const result = instrument(`function f(arguments) {}\nfunction f() {}`, {
      url: 'file:///r.js',
      format: 'commonjs',
      filename: '/r.js',
      sourceMap: false,
    });
    assert.deepEqual(
      result.refused.map((r) => [r.name, r.pos]),
      [['f', 1]],
    );
    assert.deepEqual(
      result.functions.map((f) => [f.name, f.pos]),
      [['f', 2]],
    );
  });
});

describe('large and generated sources', () => {
  it('a file with thousands of functions instruments and runs', () => {
    const n = 3000;
    const parts: string[] = [];
    for (let i = 0; i < n; i++)
      parts.push(`function f${i}(x) { return x + ${i}; }\nconst a${i} = (y) => f${i}(y) * 2;`);
    parts.push(
      `module.exports.run = () => { let s = 0; for (let i = 0; i < ${n}; i++) s += eval('a' + i)(1); return s; };`,
    );
    const m = loadCjs<Run>(parts.join('\n'));
    assert.equal(m.result.functions.length, 2 * n + 1);
    let expected = 0;
    for (let i = 0; i < n; i++) expected += (1 + i) * 2;
    assert.equal(m.exports.run(), expected);
    const r = redirect(target(m, 'f2999'), (() => 0) as Replacement);
    assert.equal(m.exports.run(), expected - (1 + 2999) * 2);
    r.remove();
  });
});

describe('modules that shadow globals the header needs', () => {
  it('a CommonJS module declaring its own globalThis or Symbol still loads and is patchable', async () => {
    const { loadCjs } = await import('./support/instrumented.ts');
    const { redirect } = await import('../src/runtime/redirect.ts');
    const a = loadCjs<{ f(): string }>(
      'var Symbol = globalThis.Symbol; module.exports.f = function f() { return typeof Symbol.iterator; };',
    );
    assert.equal(a.exports.f(), 'symbol');
    const b = loadCjs<{ f(): string }>(
      'var globalThis = {}; module.exports.f = function f() { return typeof globalThis; };',
    );
    assert.equal(b.exports.f(), 'object');
    const r = redirect({ module: b.file, function: 'f' }, () => 'patched');
    assert.equal(b.exports.f(), 'patched');
    r.remove();
  });
});
