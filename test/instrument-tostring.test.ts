/**
 * Transparency of the function objects themselves: Function.prototype.toString gives back the
 * original text, and `length` and `name` are unchanged, for every function form.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { redirect, type Replacement } from '../src/runtime/redirect.ts';
import { loadCjs, loadEsm, target } from './support/instrumented.ts';

const FORMS = `
function plain(a, b) { return a + b; }
function withDefaults(a, b = 1, c) { return a; }
function destructured({ a }, [b], ...rest) { return a; }
function pureDefaults(a, b = 2, c = 'x') { return a; }
const arrowConcise = (x) => x * 2;
const arrowNoParens = x => x;
const arrowNone = () => 1;
const arrowBlock = (a, b) => { return a; };
const arrowDefault = (a = 1) => a;
const arrowNonSimple = (a, { b } = {}, c = 3, ...d) => a;
const arrowRest = (...all) => all;
const arrowTrailing = (a, b,) => a;
const asyncArrow = async (a) => a;
const asyncArrowDefault = async (a, b = 1) => a;
const asyncArrowNoParens = async a => a;
async function asyncFn(a) { return a; }
async function asyncDestructured({ a }) { return a; }
function* gen(a) { yield a; }
async function* asyncGen(a, b) { yield a; }
const anonymousFn = function (a) { return a; };
const namedExpr = function inner(a, b) { return a; };
const strictFn = function (a) { 'use strict'; return a; };
const strictArrow = (a) => { 'use strict'; return a; };
class Base { constructor(a, b) { this.a = a; } }
class Shape extends Base {
  static count = 0;
  #secret = 1;
  field = (a) => a;
  fieldDefault = (a = 1, b) => a;
  constructor(x, { y } = {}) { super(x); }
  method(a, b, c) { return a; }
  destructuredMethod({ a }, b) { return a; }
  get size() { return 1; }
  set size(v) {}
  static create(a) { return new Shape(a); }
  async load(id) { return id; }
  *[Symbol.iterator]() { yield 1; }
  async *stream(a) { yield a; }
  #hidden(a, b) { return a; }
  static hidden() { return new Shape(1).#hidden; }
}
const AnonClass = class { m(a) {} };
const obj = {
  method(a, b) { return a; },
  prop: function (a) { return a; },
  arrow: (a, b = 2) => a,
  get getter() { return 1; },
  set setter(v) {},
  async am(a) {},
  *gm() {},
  'quoted key'(a) {},
  [Symbol.for('computed')](a, b) {},
  destructured({ a }) {},
};
const getterOf = (o, k) => Object.getOwnPropertyDescriptor(o, k);
const fns = {
  plain, withDefaults, destructured, pureDefaults, arrowConcise, arrowNoParens, arrowNone, arrowBlock, arrowDefault, arrowNonSimple,
  arrowRest, arrowTrailing, asyncArrow, asyncArrowDefault, asyncArrowNoParens, asyncFn, asyncDestructured, gen, asyncGen,
  anonymousFn, namedExpr, strictFn, strictArrow, Base, Shape, AnonClass,
  field: new Shape(1).field, fieldDefault: new Shape(1).fieldDefault,
  method: Shape.prototype.method, destructuredMethod: Shape.prototype.destructuredMethod,
  getSize: getterOf(Shape.prototype, 'size').get, setSize: getterOf(Shape.prototype, 'size').set,
  create: Shape.create, load: Shape.prototype.load, iterator: Shape.prototype[Symbol.iterator], stream: Shape.prototype.stream,
  hidden: Shape.hidden(),
  objMethod: obj.method, objProp: obj.prop, objArrow: obj.arrow, objGetter: getterOf(obj, 'getter').get,
  objSetter: getterOf(obj, 'setter').set, objAsync: obj.am, objGen: obj.gm, objQuoted: obj['quoted key'],
  objComputed: obj[Symbol.for('computed')], objDestructured: obj.destructured,
};
`;

type AnyFn = (...args: never[]) => unknown;
type Described = Record<string, { text: string; length: number; name: string; proto: string }>;

function describeAll(fns: Record<string, AnyFn>): Described {
  const out: Described = {};
  for (const [k, fn] of Object.entries(fns)) {
    out[k] = {
      text: Function.prototype.toString.call(fn),
      length: fn.length,
      name: fn.name,
      proto:
        Object.prototype.toString.call(fn) +
        String(Object.getPrototypeOf(fn) === Function.prototype) +
        String('prototype' in fn),
    };
  }
  return out;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lp-tostring-'));

describe('Function.prototype.toString, length and name are those of the original', () => {
  it('CommonJS: every form', () => {
    const file = path.join(dir, 'plain.cjs');
    fs.writeFileSync(file, `${FORMS}\nmodule.exports = fns;`);
    const plain = describeAll(createRequire(import.meta.url)(file) as Record<string, AnyFn>);
    const lp = loadCjs<Record<string, AnyFn>>(`${FORMS}\nmodule.exports = fns;`);
    const instrumented = describeAll(lp.exports);
    assert.ok(lp.result.code.includes('$lp_'), 'the module was instrumented');
    for (const key of Object.keys(plain)) assert.deepEqual(instrumented[key], plain[key], key);
    assert.equal(String(lp.exports['Shape']), String(createRequire(import.meta.url)(file).Shape));
    assert.match(
      String(lp.exports['Shape']),
      /^class Shape extends Base \{\n {2}static count = 0;/,
    );
  });

  it('ES module: every form', async () => {
    const file = path.join(dir, 'plain.mjs');
    fs.writeFileSync(file, `${FORMS}\nexport default fns;`);
    const plain = describeAll(
      ((await import(pathToFileURL(file).href)) as { default: Record<string, AnyFn> }).default,
    );
    const lp = await loadEsm<{ default: Record<string, AnyFn> }>(`${FORMS}\nexport default fns;`);
    const instrumented = describeAll(lp.exports.default);
    for (const key of Object.keys(plain)) assert.deepEqual(instrumented[key], plain[key], key);
  });

  it('stays the original while patched, and for bound functions', () => {
    const lp = loadCjs<Record<string, AnyFn>>(`${FORMS}\nmodule.exports = fns;`);
    const r = redirect(target(lp, 'arrowNonSimple'), (() => 1) as Replacement);
    assert.equal(String(lp.exports['arrowNonSimple']), '(a, { b } = {}, c = 3, ...d) => a');
    assert.equal(lp.exports['arrowNonSimple']!.length, 1);
    assert.equal(lp.exports['arrowNonSimple']!.name, 'arrowNonSimple');
    r.remove();
    const bound = lp.exports['plain']!.bind(null);
    assert.equal(bound.name, 'bound plain');
    assert.equal(bound.length, 2);
    assert.equal(String(bound), 'function () { [native code] }');
  });

  it('native functions and the toString replacement itself still print as native', () => {
    assert.equal(String(Math.max), 'function max() { [native code] }');
    assert.match(
      Function.prototype.toString.call(Function.prototype.toString),
      /^function toString\(\) \{ \[native code\] \}$/,
    );
    assert.equal(Function.prototype.toString.name, 'toString');
  });

  it('names inferred from the position of a wrapped arrow are kept (variables, properties, defaults, fields)', () => {
    const lp = loadCjs<Record<string, unknown>>(`
      const v = (a = 1) => a;
      const o = { p: ({ x }) => x, ['c' + 1]: (y = 2) => y };
      function withDefault(cb = (z = 3) => z) { return cb; }
      class K { f = ([a]) => a; static s = (b = 1) => b; }
      let assigned; assigned = (q = 1) => q;
      module.exports = { v, p: o.p, c1: o.c1, d: withDefault(), f: new K().f, s: K.s, assigned, anon: [(r = 1) => r][0] };
    `);
    const names = Object.fromEntries(
      Object.entries(lp.exports).map(([k, fn]) => [k, (fn as AnyFn).name]),
    );
    assert.deepEqual(names, {
      v: 'v',
      p: 'p',
      c1: 'c1',
      d: 'cb',
      f: 'f',
      s: 's',
      assigned: 'assigned',
      anon: '',
    });
  });
});
