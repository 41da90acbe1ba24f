/**
 * Redirection (issue 2, item 4): once a replacement is installed every existing reference calls
 * it, with the call's exact `this`, `new.target` and arguments, for every function form; removing
 * it restores the original, and stacked replacements behave as a stack.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { callContext } from '../src/runtime/context.ts';
import { redirect, type Replacement } from '../src/runtime/redirect.ts';
import { loadCjs, loadEsm, target, type Loaded } from './support/instrumented.ts';

type Fn = (...args: unknown[]) => unknown;
type Exports = Record<string, Fn & Record<string, unknown>>;

/** Replacement functions are written in the test with their own parameter types; redirect() takes any function. */
function patch(m: Loaded<unknown>, name: string, replacement: object): { remove(): void } {
  return redirect(target(m, name), replacement as Replacement);
}

/** Runs the same body against a CommonJS and an ES module built from one source. */
function bothFormats(
  title: string,
  source: string,
  body: (m: Loaded<Exports>) => void | Promise<void>,
): void {
  it(`${title} (CommonJS)`, async () => {
    await body(loadCjs<Exports>(toCommonJs(source)));
  });
  it(`${title} (ES module)`, async () => {
    await body(await loadEsm<Exports>(source));
  });
}

/** `export function f` / `export class C` / `export const x`: drop `export`, assign `exports.f = f` at the end. */
function toCommonJs(source: string): string {
  const names: string[] = [];
  const body = source.replace(
    /^(\s*)export ((?:async )?(?:function\*?|class|const|let)\s*\*?\s*([A-Za-z_$][\w$]*))/gm,
    (_, indent: string, decl: string, name: string) => {
      names.push(name);
      return `${indent}${decl}`;
    },
  );
  return `${body}\n${names.map((n) => `exports.${n} = ${n};`).join('\n')}\n`;
}

describe('every existing reference calls the replacement', () => {
  bothFormats(
    'closures held elsewhere, listeners, instances, bound functions, stored callbacks',
    `
    export function makeCounter() {
      let n = 0;
      return function increment() { return ++n; };
    }
    export class Greeter {
      constructor(name) { this.name = name; }
      greet(greeting) { return greeting + ', ' + this.name; }
      shout = (s) => s.toUpperCase();
    }
    export function handler(value) { return 'original:' + value; }
    export const table = new Map([['h', handler]]);
    export const list = [handler];
    export const bound = handler.bind(null, 'bound');
    `,
    (m) => {
      const inc = m.exports['makeCounter']!() as Fn;
      const g = new (
        m.exports['Greeter'] as unknown as new (n: string) => {
          greet(s: string): string;
          shout(s: string): string;
        }
      )('Ada');
      const emitter = new EventEmitter();
      const seen: unknown[] = [];
      emitter.on('x', (v) => seen.push((m.exports['handler'] as Fn)(v)));
      emitter.on('y', m.exports['handler'] as (...a: unknown[]) => void);
      const captured = m.exports['handler']!;
      const map = m.exports['table'] as unknown as Map<string, Fn>;
      const arr = m.exports['list'] as unknown as Fn[];
      const bound = m.exports['bound'] as unknown as Fn;
      const greetBound = g.greet.bind(g);

      assert.equal(inc(), 1);
      const removers = [
        patch(m, 'makeCounter>increment', () => 'patched-inc'),
        patch(m, 'Greeter#greet', function (this: { name: string }, greeting: unknown) {
          return `${String(greeting)}!! ${this.name}`;
        }),
        patch(m, 'Greeter#shout', (s: unknown) => `[${String(s)}]`),
        patch(m, 'handler', (v: unknown) => `patched:${String(v)}`),
      ];
      assert.equal(inc(), 'patched-inc');
      assert.equal(g.greet('Hi'), 'Hi!! Ada');
      assert.equal(greetBound('Yo'), 'Yo!! Ada');
      assert.equal(g.shout('a'), '[a]');
      emitter.emit('x', 1);
      assert.deepEqual(seen, ['patched:1']);
      const results: unknown[] = [];
      emitter.removeAllListeners('y');
      emitter.on('y', (v) => results.push(captured(v)));
      emitter.emit('y', 2);
      assert.deepEqual(results, ['patched:2']);
      assert.equal(map.get('h')!(3), 'patched:3');
      assert.equal(arr[0]!(4), 'patched:4');
      assert.equal(bound(), 'patched:bound');

      for (const r of removers) r.remove();
      assert.equal(inc(), 2, 'the closure kept its state and runs the original again');
      assert.equal(g.greet('Hi'), 'Hi, Ada');
      assert.equal(g.shout('a'), 'A');
      assert.equal(bound(), 'original:bound');
    },
  );

  it('values importers captured: ESM named imports and stored copies in another module', async () => {
    const lib = await loadEsm<Exports>(
      `export function fmt(x) { return 'v' + x; }\nexport const arrow = (x) => x + 1;`,
    );
    const user = await loadEsm<Exports>(`
      import { fmt, arrow } from ${JSON.stringify(new URL(`file://${lib.file}`).href)};
      import * as ns from ${JSON.stringify(new URL(`file://${lib.file}`).href)};
      const saved = fmt;
      export function viaImport(x) { return fmt(x); }
      export function viaSaved(x) { return saved(x); }
      export function viaNamespace(x) { return ns.fmt(x); }
      export function viaArrow(x) { return arrow(x); }
    `);
    const r1 = patch(lib, 'fmt', (x: unknown) => `p${String(x)}`);
    const r2 = patch(lib, 'arrow', (x: unknown) => Number(x) * 10);
    assert.equal(user.exports['viaImport']!(1), 'p1');
    assert.equal(user.exports['viaSaved']!(2), 'p2');
    assert.equal(user.exports['viaNamespace']!(3), 'p3');
    assert.equal(user.exports['viaArrow']!(4), 40);
    r1.remove();
    r2.remove();
    assert.equal(user.exports['viaSaved']!(2), 'v2');
    assert.equal(user.exports['viaArrow']!(4), 5);
  });

  it('values importers captured: CommonJS destructured require and module.exports objects', () => {
    const lib = loadCjs<Exports>(`
      function fmt(x) { return 'v' + x; }
      module.exports = { fmt, helpers: { twice: (x) => x * 2 } };
    `);
    const user = loadCjs<Exports>(`
      const { fmt, helpers: { twice } } = require(${JSON.stringify(lib.file)});
      exports.run = (x) => [fmt(x), twice(x)];
    `);
    const r1 = patch(lib, 'fmt', () => 'P');
    const r2 = patch(lib, 'module.exports.helpers.twice', (x: unknown) => Number(x) * 3);
    assert.deepEqual(user.exports['run']!(2), ['P', 6]);
    r1.remove();
    r2.remove();
    assert.deepEqual(user.exports['run']!(2), ['v2', 4]);
  });
});

describe('call semantics', () => {
  bothFormats(
    'this, new.target and the declared parameters reach the replacement; extra arguments when the original reads arguments or has a rest parameter',
    `
    export function plain(a) { return ['orig', a]; }
    export function varargs() { return ['orig', arguments.length]; }
    export function rest(a, ...more) { return ['orig', a, more]; }
    export const arrow = (a) => ['orig', a];
    export const concise = () => 'orig';
    export function Ctor(a) { this.a = a; }
    export const obj = { method(a) { return a; } };
    `,
    (m) => {
      let seen: unknown[] = [];
      const r1 = patch(m, 'plain', function (this: unknown, ...args: unknown[]) {
        const ctx = callContext();
        seen = [this, ctx.this, ctx.newTarget, args, arguments.length];
        return 'p';
      });
      const receiver = { tag: 'r' };
      assert.equal(m.exports['plain']!.call(receiver, 1, 2, 3), 'p');
      // The check forwards declared parameters: naming `arguments` in every function costs an
      // allocation per call below TurboFan (docs/architecture.md).
      assert.deepEqual(seen, [receiver, receiver, undefined, [1], 1]);
      m.exports['plain']!.apply(receiver, []);
      assert.deepEqual(
        seen[3],
        [undefined],
        'a missing argument arrives as undefined, so defaults still apply',
      );
      r1.remove();

      const rv = patch(m, 'varargs', (...args: unknown[]) => ['patched', ...args]);
      assert.deepEqual(
        m.exports['varargs']!(1, 2, 3),
        ['patched', 1, 2, 3],
        'a function that reads arguments forwards all of them',
      );
      rv.remove();
      const rr = patch(m, 'rest', (...args: unknown[]) => ['patched', ...args]);
      assert.deepEqual(
        m.exports['rest']!(1, 2, 3),
        ['patched', 1, 2, 3],
        'a rest parameter forwards the extra arguments',
      );
      rr.remove();

      const r2 = patch(m, 'arrow', (...args: unknown[]) => ['patched', ...args]);
      assert.deepEqual(
        m.exports['arrow']!(1, 2, 3),
        ['patched', 1],
        'an arrow forwards its declared parameters',
      );
      r2.remove();
      const r3 = patch(m, 'concise', (...args: unknown[]) => args);
      assert.deepEqual(m.exports['concise']!('x', 'y'), []);
      r3.remove();
      assert.equal(m.exports['concise']!('x'), 'orig');

      let nt: unknown;
      const Ctor = m.exports['Ctor'] as unknown as new (a: number) => { a: number; b?: number };
      const r4 = patch(m, 'Ctor', function (this: { b: number }, a: unknown) {
        nt = callContext().newTarget;
        this.b = Number(a) * 2;
      });
      const made = new Ctor(5);
      assert.equal(nt, Ctor);
      assert.deepEqual({ ...made }, { b: 10 });
      assert.ok(made instanceof Ctor);
      r4.remove();
      assert.deepEqual({ ...new Ctor(5) }, { a: 5 });

      const obj = m.exports['obj'] as unknown as { method(...a: unknown[]): unknown };
      const r5 = patch(m, 'obj.method', function (this: unknown) {
        return this;
      });
      assert.equal(obj.method(), obj);
      r5.remove();
    },
  );

  it('sloppy CommonJS functions see the global object as this; strict ones undefined', () => {
    const m = loadCjs<Exports>(`
      exports.sloppy = function () { return this; };
      exports.strict = function () { 'use strict'; return this; };
    `);
    let seen: unknown[] = [];
    const r1 = patch(m, 'exports.sloppy', function (this: unknown) {
      seen.push(this, callContext().this);
      return 1;
    });
    const r2 = patch(m, 'exports.strict', function (this: unknown) {
      seen.push(this);
      return 2;
    });
    const { sloppy, strict } = m.exports;
    sloppy!();
    strict!();
    assert.deepEqual(seen, [globalThis, globalThis, undefined]);
    seen = [];
    r1.remove();
    r2.remove();
    assert.equal(sloppy!(), globalThis);
    assert.equal(strict!(), undefined);
  });

  bothFormats(
    "default and destructured parameters: the replacement's own defaults apply, the original's do not run",
    `
    export const log = [];
    function effect(tag) { log.push(tag); return tag; }
    export function opts({ a, b } , c = effect('c')) { return ['orig', a, b, c]; }
    export function defaults(x = 1, y = effect('y')) { return ['orig', x, y]; }
    export function pure(x = 1, y = 'two', z = {}) { return ['orig', x, y, z]; }
    var state = 'S';
    export function hoisted(fn = effect, s = state) { return ['orig', fn === effect, s]; }
    export const arrowOpts = ({ a } = {}, [b] = [effect('arr')]) => ['orig', a, b];
    export const arrowDefault = (x = 5) => ['orig', x];
    export class K { method({ k }) { return k; } static s([first]) { return first; } }
    export function rest(first, ...others) { return others; }
    export const arrowRest = (...all) => all;
    `,
    (m) => {
      const log = m.exports['log'] as unknown as string[];
      const r = [
        patch(m, 'opts', ({ a = 'A', b = 'B' } = {}, c = 'C') => ['patched', a, b, c]),
        patch(m, 'defaults', (x = 'X', y = 'Y') => ['patched', x, y]),
        patch(m, 'pure', (x = 'X', y = 'Y', z = 'Z') => ['patched', x, y, z]),
        patch(m, 'hoisted', (fn = 'F', s = 'S2') => ['patched', fn, s]),
        patch(m, 'arrowOpts', ({ a = 'A' } = {}, [b = 'B'] = []) => ['patched', a, b]),
        patch(m, 'arrowDefault', (x = 'X') => ['patched', x]),
        patch(m, 'K#method', ({ k = 'K' } = {}) => `patched ${k}`),
        patch(m, 'K.s', ([first = 'F'] = []) => `patched ${first}`),
        patch(m, 'rest', (...all: unknown[]) => all),
        patch(m, 'arrowRest', (first: unknown, ...rest: unknown[]) => [first, rest]),
      ];
      assert.deepEqual(
        m.exports['opts']!(),
        ['patched', 'A', 'B', 'C'],
        'undefined options no longer throw in the original',
      );
      assert.deepEqual(m.exports['opts']!({ a: 1 }, undefined), ['patched', 1, 'B', 'C']);
      assert.deepEqual(m.exports['defaults']!(), ['patched', 'X', 'Y']);
      assert.deepEqual(m.exports['defaults']!(undefined, 2), ['patched', 'X', 2]);
      assert.deepEqual(m.exports['pure']!(), ['patched', 'X', 'Y', 'Z']);
      assert.deepEqual(m.exports['hoisted']!(), ['patched', 'F', 'S2']);
      // Defaults that only read a var or a function declaration cannot have effects: the function
      // keeps its parameter list and the in-body check (no per-call wrapper).
      assert.match(
        m.result.code,
        /function hoisted\(fn = effect, s = state\) \{\/\*\$lp_\[\*\/const \$lp_g=/,
      );
      assert.deepEqual(m.exports['arrowOpts']!(), ['patched', 'A', 'B']);
      assert.deepEqual(m.exports['arrowDefault']!(), ['patched', 'X']);
      assert.deepEqual(m.exports['arrowDefault']!(undefined), ['patched', 'X']);
      const K = m.exports['K'] as unknown as {
        new (): { method(o?: unknown): unknown };
        s(a?: unknown): unknown;
      };
      assert.equal(new K().method(), 'patched K');
      assert.equal(K.s(), 'patched F');
      assert.deepEqual(m.exports['rest']!(1, 2, 3), [1, 2, 3]);
      assert.deepEqual(m.exports['arrowRest']!(1, 2, 3), [1, [2, 3]]);
      assert.deepEqual(log, [], "the original's default initializers never ran");
      for (const x of r) x.remove();
      assert.throws(() => m.exports['opts']!(), TypeError);
      assert.deepEqual(m.exports['defaults']!(), ['orig', 1, 'y']);
      assert.deepEqual(m.exports['hoisted']!(), ['orig', true, 'S']);
      assert.deepEqual(m.exports['arrowOpts']!(), ['orig', undefined, 'arr']);
      assert.deepEqual(m.exports['arrowDefault']!(), ['orig', 5]);
      assert.equal(new K().method({ k: 1 }), 1);
      assert.deepEqual(m.exports['rest']!(1, 2, 3), [2, 3]);
      assert.deepEqual(log, ['y', 'arr']);
    },
  );
  bothFormats(
    'parameters that run code run in the body, after the check: no wrapper, same length, text and errors',
    `
    export const log = [];
    function effect(tag) { log.push(tag); return tag; }
    export function emit(list, start = 0, count = list ? list.length - start : effect('count')) { return ['orig', start, count]; }
    export function opts({ a, b = effect('b') } = {}, [c] = [effect('c')], ...[d]) { return ['orig', a, b, c, d]; }
    export class K { constructor({ p }, q = p * 2) { this.v = [p, q]; } }
    var y = 'outer';
    export function shadowed(x = y) { var y = 'body'; return x; }
    export function tdz(a = b, b = 1) { return [a, b]; }
    `,
    (m) => {
      const log = m.exports['log'] as unknown as string[];
      const emit = m.exports['emit']!;
      const opts = m.exports['opts']!;
      const K = m.exports['K'] as unknown as new (o: unknown, q?: unknown) => { v: unknown };
      // Unpatched, everything runs as written, in order, with the same errors.
      assert.deepEqual(emit([1, 2, 3], 1), ['orig', 1, 2]);
      assert.deepEqual(emit(null), ['orig', 0, 'count']);
      assert.deepEqual(opts(), ['orig', undefined, 'b', 'c', undefined]);
      assert.deepEqual(opts({ a: 1, b: 2 }, [3], 4), ['orig', 1, 2, 3, 4]);
      assert.deepEqual(log, ['count', 'b', 'c']);
      assert.throws(() => opts(null), TypeError);
      assert.deepEqual(new K({ p: 2 }).v, [2, 4]);
      assert.throws(() => new K(undefined), TypeError);
      assert.equal(m.exports['shadowed']!(), 'outer');
      assert.throws(() => m.exports['tdz']!(), ReferenceError);
      assert.deepEqual(m.exports['tdz']!(0), [0, 1]);
      assert.deepEqual(
        [emit.length, opts.length, K.length, m.exports['tdz']!.length],
        [1, 0, 1, 0],
      );
      // No per-call wrapper: the original parameter list stays, with placeholders.
      const code = m.result.code;
      assert.doesNotMatch(code, /function emit\/\*/);
      assert.match(code, /function emit\(list, start\/\*\$lp_\[\*\/=void 0/);
      assert.doesNotMatch(code, /function opts\/\*/);
      // A default that reads a name the body declares, or a later parameter, keeps the wrapper.
      assert.match(code, /function shadowed\/\*\$lp_\[\*\/\(\)\{/);
      assert.match(code, /function tdz\/\*\$lp_\[\*\/\(\)\{/);
      assert.equal(
        emit.toString(),
        "function emit(list, start = 0, count = list ? list.length - start : effect('count')) { return ['orig', start, count]; }",
      );
      assert.equal(
        opts.toString(),
        "function opts({ a, b = effect('b') } = {}, [c] = [effect('c')], ...[d]) { return ['orig', a, b, c, d]; }",
      );
      log.length = 0;
      const r = [
        patch(m, 'emit', (list: unknown, start = 'S', count = 'C') => [
          'patched',
          list,
          start,
          count,
        ]),
        patch(m, 'opts', (...args: unknown[]) => ['patched', args.length]),
        patch(m, 'K#constructor', function (this: { v: unknown }, o: unknown) {
          this.v = ['patched', o];
        }),
      ];
      assert.deepEqual(emit(null), ['patched', null, 'S', 'C']);
      assert.deepEqual(opts(null), ['patched', 1], 'the original no longer destructures null');
      assert.deepEqual(new K(undefined).v, ['patched', undefined]);
      assert.deepEqual(log, [], "the original's defaults never ran");
      for (const x of r) x.remove();
      assert.deepEqual(emit(null, 5), ['orig', 5, 'count']);
    },
  );
});

describe('function kinds', () => {
  bothFormats(
    'async functions: results, rejections and async replacements',
    `
    export async function load(x) { await null; return 'orig' + x; }
    export const loadArrow = async (x) => 'orig' + x;
    export class Repo { async find(id) { return 'orig' + id; } }
    export async function withOpts({ id }) { return 'orig' + id; }
    `,
    async (m) => {
      const r = [
        patch(m, 'load', async (x: unknown) => {
          await null;
          return `patched${String(x)}`;
        }),
        patch(m, 'loadArrow', async (x: unknown) => {
          throw new Error(`boom${String(x)}`);
        }),
        patch(m, 'Repo#find', (id: unknown) =>
          Promise.resolve(`sync-returning-promise${String(id)}`),
        ),
        patch(m, 'withOpts', async ({ id = 'none' } = {}) => `patched ${String(id)}`),
      ];
      assert.equal(await m.exports['load']!(1), 'patched1');
      await assert.rejects(m.exports['loadArrow']!(2) as Promise<unknown>, /boom2/);
      const Repo = m.exports['Repo'] as unknown as new () => { find(id: number): Promise<string> };
      assert.equal(await new Repo().find(3), 'sync-returning-promise3');
      assert.equal(await m.exports['withOpts']!(), 'patched none');
      for (const x of r) x.remove();
      assert.equal(await m.exports['load']!(1), 'orig1');
      assert.equal(await m.exports['loadArrow']!(2), 'orig2');
      await assert.rejects(m.exports['withOpts']!() as Promise<unknown>, TypeError);
    },
  );

  bothFormats(
    'generators and async generators: iteration, return values, throw propagation',
    `
    export function* count(n) { for (let i = 0; i < n; i++) yield i; return 'done'; }
    export async function* ticks(n) { for (let i = 0; i < n; i++) yield i; return 'end'; }
    export class Bag { *[Symbol.iterator]() { yield 'orig'; } async *each() { yield 'orig'; } }
    `,
    async (m) => {
      assert.throws(() => patch(m, 'count', () => 1), /must be a generator function/);
      assert.throws(() => patch(m, 'ticks', function* () {}), /async generator/);
      let finalized = false;
      const r = [
        patch(m, 'count', function* (n: unknown) {
          try {
            const got: unknown = yield `start${String(n)}`;
            yield `got ${String(got)}`;
            return 'patched-done';
          } finally {
            finalized = true;
          }
        }),
        patch(m, 'ticks', async function* () {
          yield 'a';
          throw new Error('tick failed');
        }),
        patch(m, 'Bag#[Symbol.iterator]', function* () {
          yield 'patched';
        }),
        patch(m, 'Bag#each', async function* () {
          yield 'patched-async';
        }),
      ];
      const it = m.exports['count']!(3) as Generator<unknown, unknown, unknown>;
      assert.deepEqual(it.next(), { value: 'start3', done: false });
      assert.deepEqual(it.next('hello'), { value: 'got hello', done: false });
      assert.deepEqual(it.next(), { value: 'patched-done', done: true });
      assert.ok(finalized);
      finalized = false;
      const early = m.exports['count']!(1) as Generator<unknown, unknown, unknown>;
      early.next();
      assert.deepEqual(early.return('stop'), { value: 'stop', done: true });
      assert.ok(finalized, 'return() reaches the replacement');
      const thrown = m.exports['count']!(1) as Generator<unknown, unknown, unknown>;
      thrown.next();
      assert.throws(() => thrown.throw(new Error('into')), /into/);

      const ticks = m.exports['ticks']!(2) as AsyncGenerator<unknown>;
      assert.deepEqual(await ticks.next(), { value: 'a', done: false });
      await assert.rejects(ticks.next(), /tick failed/);
      const Bag = m.exports['Bag'] as unknown as new () => Iterable<unknown> & {
        each(): AsyncIterable<unknown>;
      };
      const bag = new Bag();
      assert.deepEqual([...bag], ['patched']);
      const each: unknown[] = [];
      for await (const v of bag.each()) each.push(v);
      assert.deepEqual(each, ['patched-async']);
      for (const x of r) x.remove();
      assert.deepEqual([...(m.exports['count']!(2) as Iterable<unknown>)], [0, 1]);
      const all: unknown[] = [];
      for await (const v of m.exports['ticks']!(2) as AsyncIterable<unknown>) all.push(v);
      assert.deepEqual(all, [0, 1]);
      assert.deepEqual([...bag], ['orig']);
    },
  );

  bothFormats(
    'constructors: base with fields, derived via superCall, instances made before patching',
    `
    export let made = 0;
    export class Base {
      id = ++made;
      constructor(name) { this.name = name; }
      describe() { return this.name + '#' + this.id; }
    }
    export class Derived extends Base {
      extra = 'field';
      constructor(name, level) { super(name); this.level = level; }
      describe() { return 'derived ' + super.describe(); }
    }
    `,
    (m) => {
      type B = {
        name: string;
        id: number;
        level?: number;
        extra?: string;
        describe(): string;
        patched?: boolean;
      };
      const Base = m.exports['Base'] as unknown as new (n: string, l?: number) => B;
      const Derived = m.exports['Derived'] as unknown as new (n: string, l?: number) => B;
      const before = new Derived('old', 1);
      const r1 = patch(m, 'Base#constructor', function (this: B, name: unknown) {
        this.name = `patched ${String(name)}`;
      });
      const r2 = patch(m, 'Derived#constructor', function (name: unknown, level: unknown) {
        const ctx = callContext();
        const self = ctx.superCall(`D:${String(name)}`) as B;
        self.level = Number(level) * 100;
        self.patched = ctx.newTarget === Derived;
      });
      const r3 = patch(m, 'Derived#describe', function (this: B) {
        return `patched describe of ${this.name}`;
      });
      const b = new Base('b');
      assert.equal(b.name, 'patched b');
      assert.ok(b.id > 0, 'class fields are initialized before the replacement runs');
      const d = new Derived('d', 2);
      assert.ok(d instanceof Derived);
      assert.equal(d.name, 'patched D:d', 'super() ran the (patched) base constructor');
      assert.equal(d.level, 200);
      assert.equal(d.extra, 'field', "the derived class's fields are initialized by superCall");
      assert.equal(d.patched, true);
      assert.equal(
        before.describe(),
        'patched describe of old',
        'instances made before patching use the replacement',
      );
      class Sub extends Derived {}
      const s = new Sub('s', 1);
      assert.ok(s instanceof Sub, 'new.target is kept through the replacement');
      for (const r of [r1, r2, r3]) r.remove();
      const d2 = new Derived('d2', 3);
      assert.deepEqual([d2.name, d2.level, d2.extra], ['d2', 3, 'field']);
      assert.match(d2.describe(), /^derived d2#\d+$/);
    },
  );

  bothFormats(
    'getters, setters, static methods, private methods and class field arrows',
    `
    export class Box {
      #v = 1;
      static count = 0;
      get value() { return this.#v; }
      set value(v) { this.#v = v; }
      static make() { Box.count++; return new Box(); }
      #secret() { return 'secret'; }
      reveal() { return this.#secret(); }
      onClick = () => this.#v;
    }
    `,
    (m) => {
      type Box = { value: unknown; reveal(): string; onClick(): unknown };
      const Box = m.exports['Box'] as unknown as { make(): Box; count: number };
      const box = Box.make();
      const held = box.onClick;
      const r = [
        patch(m, 'get Box#value', function (this: Box) {
          return `got ${String(callContext().getPrivate(this as object, '#v'))}`;
        }),
        patch(m, 'set Box#value', function (this: Box, v: unknown) {
          callContext().setPrivate(this as object, '#v', Number(v) * 2);
        }),
        patch(m, 'Box.make', function (this: unknown) {
          return { madeBy: this };
        }),
        patch(m, 'Box##secret', () => 'patched secret'),
        patch(m, 'Box#onClick', () => 'patched click'),
      ];
      box.value = 21;
      assert.equal(box.value, 'got 42');
      assert.deepEqual(Box.make(), { madeBy: Box });
      assert.equal(box.reveal(), 'patched secret');
      assert.equal(held(), 'patched click');
      for (const x of r) x.remove();
      assert.equal(box.value, 42);
      assert.equal(box.reveal(), 'secret');
      assert.equal(held(), 42);
    },
  );
});

describe('install and remove', () => {
  bothFormats(
    'removing restores the original; stacking: newest wins, removing the top exposes the lower',
    `export function f(x) { return 'orig' + x; }`,
    (m) => {
      const f = m.exports['f']!;
      const a = patch(m, 'f', (x: unknown) => `A${String(x)}`);
      const b = patch(m, 'f', (x: unknown) => `B${String(x)}`);
      assert.equal(f(1), 'B1');
      b.remove();
      assert.equal(f(1), 'A1');
      const c = patch(m, 'f', (x: unknown) => `C${String(x)}`);
      a.remove();
      assert.equal(f(1), 'C1', 'removing a lower entry keeps the top');
      c.remove();
      assert.equal(f(1), 'orig1');
      assert.throws(() => c.remove(), /already removed/);
    },
  );

  it('a replacement that throws propagates its error to the caller', () => {
    const m = loadCjs<Exports>(`exports.f = function f() { return 1; };`);
    const r = patch(m, 'f', () => {
      throw new RangeError('from replacement');
    });
    assert.throws(() => m.exports['f']!(), RangeError);
    r.remove();
    assert.equal(m.exports['f']!(), 1);
  });
});
