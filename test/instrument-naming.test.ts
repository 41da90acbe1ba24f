/**
 * Function identity (issue 2, item 3): every function of a module gets the qualified name that
 * docs/naming.md defines, with a position when the name is not unique.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { instrument } from '../src/instrument/transform.ts';
import type { ModuleFormat } from '../src/instrument/types.ts';
import { redirect } from '../src/runtime/redirect.ts';
import { loadCjs, loadEsm, target } from './support/instrumented.ts';

function names(source: string, format: ModuleFormat = 'commonjs'): string[] {
  const result = instrument(source, {
    url: 'file:///naming.js',
    format,
    filename: '/naming.js',
    sourceMap: false,
  });
  return result.functions.map((f) => (f.pos > 0 ? `${f.name},${f.pos}` : f.name));
}

function info(source: string, format: ModuleFormat = 'commonjs') {
  return instrument(source, {
    url: 'file:///naming.js',
    format,
    filename: '/naming.js',
    sourceMap: false,
  });
}

describe('qualified names', () => {
  it('function declarations and named function expressions', () => {
    assert.deepEqual(
      names(
        'function a() {}\nconst b = function named() {};\nasync function c() {}\nfunction* d() {}\nasync function* e() {}',
      ),
      ['a', 'named', 'c', 'd', 'e'],
    );
  });

  it('anonymous functions and arrows take the name of the variable they initialize', () => {
    assert.deepEqual(
      names(
        'const a = function () {};\nlet b = () => 1;\nvar c = async () => {};\nconst d = (x = 1) => x;',
      ),
      ['a', 'b', 'c', 'd'],
    );
  });

  it('assignments name by target: variables, member chains, X.prototype.m as X#m', () => {
    assert.deepEqual(
      names(
        [
          'let a; a = () => 1;',
          'function X() {}',
          'X.prototype.m = function () {};',
          'X.prototype.n = () => 1;',
          'X.helper = function () {};',
          'module.exports.x = function () {};',
          'exports.y = () => 2;',
          'module.exports = function () {};',
          'a.b.c = function () {};',
        ].join('\n'),
      ),
      [
        'a',
        'X',
        'X#m',
        'X#n',
        'X.helper',
        'module.exports.x',
        'exports.y',
        'module.exports',
        'a.b.c',
      ],
    );
  });

  it('X.prototype = { ... } names its methods like class methods', () => {
    assert.deepEqual(
      names(
        'function X() {}\nX.prototype = { m() {}, n: function () {}, get size() { return 1; } };',
      ),
      ['X', 'X#m', 'X#n', 'get X#size'],
    );
  });

  it('class members: methods, static, getters, setters, private, constructors, fields', () => {
    const src = `class Pool {
      #conn = null;
      size = 0;
      constructor(n) { this.size = n; }
      query(sql) {}
      static create() {}
      get size2() { return 1; }
      set size2(v) {}
      static get instance() { return null; }
      #connect() {}
      static #registry() {}
      get #state() { return 1; }
      onData = (chunk) => chunk;
      static factory = function () {};
      async *rows() {}
      *[Symbol.iterator]() {}
    }`;
    assert.deepEqual(names(src), [
      'Pool#constructor',
      'Pool#query',
      'Pool.create',
      'get Pool#size2',
      'set Pool#size2',
      'get Pool.instance',
      'Pool##connect',
      'Pool.#registry',
      'get Pool##state',
      'Pool#onData',
      'Pool.factory',
      'Pool#rows',
      'Pool#[Symbol.iterator]',
    ]);
  });

  it('derived constructors and class expressions', () => {
    assert.deepEqual(
      names(
        'class A extends B { constructor() { super(); } }\nconst C = class { m() {} };\nconst D = class Inner { m() {} };\n(class { m() {} });',
      ),
      ['A#constructor', 'C#m', 'Inner#m', '(class)#m'],
    );
  });

  it('object literal members: methods, properties, getters/setters, nested objects', () => {
    const src = `const api = {
      list() {},
      create: function () {},
      remove: async () => {},
      get count() { return 0; },
      set count(v) {},
      nested: { deep() {}, deeper: { deepest: () => 1 } },
    };`;
    assert.deepEqual(names(src), [
      'api.list',
      'api.create',
      'api.remove',
      'get api.count',
      'set api.count',
      'api.nested.deep',
      'api.nested.deeper.deepest',
    ]);
  });

  it('string, numeric and computed keys', () => {
    const src = `const o = {
      'plain'() {},
      'with-dash'() {},
      "sp ace": () => 1,
      42() {},
      '7': () => 1,
      0x10: () => 1,
      [key]() {},
      ['literal']() {},
      [\`tpl\`]() {},
      [Symbol.asyncIterator]() {},
      [a + b + c + d + e + f + g + h + i + j + k + l + m + n]() {},
      [x > y ? 'a' : 'b']() {},
    };
    class K { 'x-y'() {} static 3() {} [Symbol.toPrimitive]() {} }`;
    assert.deepEqual(
      names(src),
      [
        'o.plain',
        'o."with-dash"',
        'o."sp ace"',
        'o.42',
        'o.7',
        'o.16',
        'o.[key]',
        'o.literal',
        'o.tpl',
        'o.[Symbol.asyncIterator]',
        'o.[computed]',
        'o.[computed]',
        'K#"x-y"',
        'K.3',
        'K#[Symbol.toPrimitive]',
      ].map((n, _i, all) =>
        all.filter((m) => m === n).length > 1
          ? `${n},${all.slice(0, _i + 1).filter((m) => m === n).length}`
          : n,
      ),
    );
  });

  it('nested closures are qualified by their enclosing functions with >', () => {
    const src = `function createServer(opts) {
      function onRequest(req) {
        const parse = (body) => body;
        return parse;
      }
      class Handler { handle() { return () => 1; } }
      return { onRequest, close() {} };
    }`;
    assert.deepEqual(names(src), [
      'createServer',
      'createServer>onRequest',
      'createServer>onRequest>parse',
      'createServer>Handler#handle',
      'createServer>Handler#handle>(anonymous)',
      'createServer>close',
    ]);
  });

  it('anonymous callbacks are named after the call they are passed to, with positions among duplicates', () => {
    const src = `const app = makeApp();
    app.get('/a', (req, res) => {});
    app.get('/b', function (req, res) {});
    app.post('/c', async (req) => {});
    [1, 2].map((x) => x * 2);
    setTimeout(() => {}, 10);
    new Promise((resolve) => resolve());
    emitter.on('data', function onData() {});
    app.use(router.handle(() => {}));
    a.b().c(() => {});
    obj?.fn(() => {});
    (function () {})();
    (() => {})();
    register(() => { return () => {}; });`;
    assert.deepEqual(names(src), [
      'app.get(),1',
      'app.get(),2',
      'app.post()',
      'map()',
      'setTimeout()',
      'new Promise()',
      'onData',
      'router.handle()',
      'c()',
      'obj.fn()',
      '(anonymous),1',
      '(anonymous),2',
      'register()',
      'register()>(anonymous)',
    ]);
  });

  it('duplicates are told apart by 1-based position in source order; unique names have none', () => {
    const src = `function f() {}
    if (a) { var g = function () {}; } else { var g = function () {}; }
    function f() {}
    const o = { m() {} };
    const p = { m() {} };`;
    assert.deepEqual(names(src), ['f,1', 'g,1', 'g,2', 'f,2', 'o.m', 'p.m']);
    const fns = info(src).functions;
    assert.deepEqual(
      fns.map((f) => [f.name, f.pos, f.line]),
      [
        ['f', 1, 1],
        ['g', 1, 2],
        ['g', 2, 2],
        ['f', 2, 3],
        ['o.m', 0, 4],
        ['p.m', 0, 5],
      ],
    );
  });

  it('default parameter values, conditional and logical initializers', () => {
    const src = `function withDefault(cb = () => {}) {}
    const pick = cond ? function () {} : () => 2;
    const fallback = maybe || (() => 3);
    let lazy; lazy ??= () => 4;`;
    assert.deepEqual(names(src), [
      'withDefault',
      'withDefault>cb',
      'pick,1',
      'pick,2',
      'fallback',
      'lazy',
    ]);
  });

  it('class fields: function values are the field; functions inside other initializers nest under it', () => {
    const src = `class Timer {
      tick = () => 1;
      handlers = { start() {}, stop: () => {} };
      timer = setInterval(() => {}, 1000);
      static Nested = class { run() {} };
      static { register(() => {}); function helper() {} }
    }`;
    assert.deepEqual(names(src), [
      'Timer#tick',
      'Timer#handlers.start',
      'Timer#handlers.stop',
      'Timer#timer>setInterval()',
      'Timer.Nested#run',
      'Timer.static{}>register()',
      'Timer.static{}>helper',
    ]);
  });

  it('ES module exports, export default forms', () => {
    assert.deepEqual(
      names(
        'export function a() {}\nexport const b = () => 1;\nexport default function () {}',
        'module',
      ),
      ['a', 'b', 'default'],
    );
    assert.deepEqual(names('export default async function () {}', 'module'), ['default']);
    assert.deepEqual(names('export default () => 1;', 'module'), ['default']);
    assert.deepEqual(names('export default function named() {}', 'module'), ['named']);
    assert.deepEqual(names('export default class { m() {} static s() {} }', 'module'), [
      'default#m',
      'default.s',
    ]);
    assert.deepEqual(names('export default class Named { m() {} }', 'module'), ['Named#m']);
    assert.deepEqual(names('export class E { constructor() {} }', 'module'), ['E#constructor']);
  });

  it('functions in default parameters and getters nest normally', () => {
    assert.deepEqual(names('class A { get v() { return [1].map((x) => x); } }'), [
      'get A#v',
      'get A#v>map()',
    ]);
    assert.deepEqual(names('function f(a = function () {}, { b } = { b: () => 1 }) {}'), [
      'f',
      'f>a',
      'f>b',
    ]);
  });

  it('reports the original line and column of each function', () => {
    const fns = info(
      '\n  function a() {}\nconst o = {\n    m() {}, static: 1 };\nclass C {\n  static async s() {}\n}',
    ).functions;
    assert.deepEqual(
      fns.map((f) => [f.name, f.line, f.column]),
      [
        ['a', 2, 2],
        ['o.m', 4, 4],
        ['C.s', 6, 2],
      ],
    );
  });

  it('the kind, async and generator flags follow the function form', () => {
    const fns = info(
      'class A extends B { constructor() { super(); } get g() { return 1; } set g(v) {} m() {} }\nclass C { constructor() {} }\nasync function* ag() {}\nconst ar = () => 1;',
    ).functions;
    assert.deepEqual(
      fns.map((f) => [f.name, f.kind, f.async, f.generator]),
      [
        ['A#constructor', 'derived-constructor', false, false],
        ['get A#g', 'getter', false, false],
        ['set A#g', 'setter', false, false],
        ['A#m', 'method', false, false],
        ['C#constructor', 'constructor', false, false],
        ['ag', 'function', true, true],
        ['ar', 'arrow', false, false],
      ],
    );
  });

  it('a hashbang line and a directive prologue change no name', () => {
    assert.deepEqual(names('#!/usr/bin/env node\n"use strict"\nfunction main() {}'), ['main']);
  });
});

describe('finding functions by name at run time', () => {
  it('redirect() accepts name,pos and rejects ambiguous or unknown names (CommonJS)', () => {
    const m = loadCjs<{ run(): string[] }>(`
      const out = [];
      function h() { return 'h1'; }
      const list = [() => 'a1', () => 'a2'];
      exports.run = () => [h(), list[0](), list[1]()];
    `);
    const r = redirect(target(m, 'exports.run'), () => ['patched']);
    assert.deepEqual(m.exports.run(), ['patched']);
    r.remove();
    assert.throws(
      () => redirect(target(m, '(anonymous)'), () => 'x'),
      /ambiguous.*\(anonymous\),1.*\(anonymous\),2/s,
    );
    const second = redirect(target(m, '(anonymous),2'), () => 'second');
    assert.deepEqual(m.exports.run(), ['h1', 'a1', 'second']);
    second.remove();
    const first = redirect({ module: m.file, function: '(anonymous)', pos: 1 }, () => 'first');
    assert.deepEqual(m.exports.run(), ['h1', 'first', 'a2']);
    first.remove();
    assert.throws(() => redirect(target(m, 'nope'), () => 1), /no function 'nope'/);
    assert.throws(() => redirect(target(m, '(anonymous),3'), () => 1), /no position 3/);
  });

  it('an ES module lists the same names as its source', async () => {
    const m = await loadEsm(`
      export class Pool { #conn = 1; get size() { return this.#conn; } static create() { return new Pool(); } }
      export default function () { return 'd'; }
    `);
    assert.deepEqual(
      m.module.meta.functions.map((f) => f.name),
      ['get Pool#size', 'Pool.create', 'default'],
    );
    const r = redirect(target(m, 'get Pool#size'), () => 99);
    const Pool = m.exports['Pool'] as { create(): { size: number } };
    assert.equal(Pool.create().size, 99);
    r.remove();
    assert.equal(Pool.create().size, 1);
  });
});
