/**
 * Scope access (issue 2, item 5): a replacement reads and writes what the original could — the
 * module's top-level bindings, the enclosing functions' variables of the closure instance that
 * was called, the class's private members, `super` — and can call the original code.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pickByIndex } from '../src/instrument/transform.ts';
import { callContext } from '../src/runtime/context.ts';
import { redirect, type Replacement } from '../src/runtime/redirect.ts';
import { table } from '../src/runtime/table.ts';
import { loadCjs, loadEsm, target, type Loaded } from './support/instrumented.ts';

type Fn = (...args: unknown[]) => unknown;
type Exports = Record<string, Fn>;

function patch(m: Loaded<unknown>, name: string, replacement: Fn): { remove(): void } {
  return redirect(target(m, name), replacement as Replacement);
}

describe('module top-level bindings', () => {
  it('ES module: read every binding, write variables; const, imports and function and class declarations stay read-only', async () => {
    const dep = await loadEsm<Exports>(
      `export const base = 10; export function helper() { return 'helper'; }`,
    );
    const m = await loadEsm<Exports>(`
      import { base, helper } from ${JSON.stringify(`file://${dep.file}`)};
      let counter = 0;
      var legacy = 'v';
      const LIMIT = 3;
      function util() { return 'util'; }
      class Model { static kind() { return 'model'; } }
      export function reset() { legacy = 'v'; }
      export function bump() { counter++; return counter; }
      export function state() { return [counter, legacy, LIMIT, base]; }
    `);
    const r = patch(m, 'bump', () => {
      const ctx = callContext();
      ctx.set('counter', (ctx.get('counter') as number) + 100);
      ctx.set('legacy', 'written');
      const helperFn = ctx.get('helper') as Fn;
      const Model = ctx.get('Model') as { kind(): string };
      assert.throws(() => ctx.set('LIMIT', 4), TypeError);
      assert.throws(() => ctx.set('base', 1), TypeError);
      // A function declaration: the patch replaces the function instead of rebinding its name.
      assert.throws(
        () => ctx.set('util', () => 'x'),
        /'util' is read-only .*patching it.*shadow variable/,
      );
      assert.throws(() => ctx.set('Model', null), TypeError);
      assert.throws(() => ctx.get('notABinding'), /not reachable.*reachable: .*counter/s);
      return [
        ctx.get('base'),
        helperFn(),
        (ctx.get('util') as Fn)(),
        Model.kind(),
        ctx.get('LIMIT'),
      ];
    });
    assert.deepEqual(m.exports['bump']!(), [10, 'helper', 'util', 'model', 3]);
    r.remove();
    assert.deepEqual(m.exports['state']!(), [100, 'written', 3, 10]);
    assert.equal(m.exports['bump']!(), 101);
    assert.deepEqual(m.result.moduleBindings.slice().sort(), [
      'LIMIT',
      'Model',
      'base',
      'bump',
      'counter',
      'helper',
      'legacy',
      'reset',
      'state',
      'util',
    ]);
  });

  it('CommonJS: reads require, module and exports; assigning a binding the program assigns changes it for the module', () => {
    const m = loadCjs<Exports>(`
      const path = require('node:path');
      function hello() { return 'hello'; }
      let greet = hello;
      exports.setGreet = function setGreet(fn) { greet = fn; };
      exports.run = function run() { return greet(); };
      exports.join = function join() { return path.join('a', 'b'); };
    `);
    const r = patch(m, 'join', () => {
      const ctx = callContext();
      const req = ctx.get('require') as NodeJS.Require;
      const mod = ctx.get('module') as NodeJS.Module;
      assert.equal(ctx.get('exports'), mod.exports);
      ctx.set('greet', () => 'replaced binding');
      assert.throws(() => ctx.set('hello', () => 'no'), /'hello' is read-only/);
      return (req('node:path') as typeof import('node:path')).posix.join('x', 'y');
    });
    assert.equal(m.exports['join']!(), 'x/y');
    assert.equal(m.exports['run']!(), 'replaced binding');
    r.remove();
  });

  it('the temporal dead zone is kept: reading a module let before its initialization throws ReferenceError', async () => {
    const errors: unknown[] = [];
    const stop = table.onModule((mod) => {
      if (!mod.meta.filename.endsWith('tdz-module.mjs')) return;
      redirect({ module: mod.meta.filename, function: 'early' }, () => {
        try {
          return callContext().get('late');
        } catch (err) {
          errors.push(err);
          return 'caught';
        }
      });
    });
    try {
      const m = await loadEsm<Record<string, unknown>>(
        `export function early() { return late; }\nexport const result = early();\nlet late = 'ready';\nexport function now() { return early(); }`,
        'tdz-module',
      );
      assert.equal(m.exports['result'], 'caught');
      assert.ok(errors[0] instanceof ReferenceError, String(errors[0]));
      assert.equal((m.exports['now'] as Fn)(), 'ready');
    } finally {
      stop();
    }
  });

  it('the temporal dead zone is kept for enclosing function variables too', () => {
    const m = loadCjs<Exports>(`
      exports.outer = function () {
        const read = () => value;
        let first;
        try { first = read(); } catch (e) { first = e; }
        let value = 'set';
        return [first, read()];
      };
    `);
    const r = patch(m, 'exports.outer>read', () => callContext().get('value'));
    const [first, second] = m.exports['outer']!() as [unknown, unknown];
    assert.ok(first instanceof ReferenceError);
    assert.equal(second, 'set');
    r.remove();
  });
});

describe('enclosing function variables', () => {
  for (const format of ['commonjs', 'module'] as const) {
    it(`belong to the closure instance that was called (${format})`, async () => {
      const src = `
        function makeCounter(start) {
          let n = start;
          const label = 'counter';
          const max = 1e9;
          function increment(step) { n = Math.min(n + step, max); return n; }
          function peek() { return [label, n]; }
          return { increment, peek };
        }
        ${format === 'module' ? 'export { makeCounter };' : 'exports.makeCounter = makeCounter;'}
      `;
      const m = format === 'module' ? await loadEsm<Exports>(src) : loadCjs<Exports>(src);
      type Counter = { increment(s: number): number; peek(): [string, number] };
      const a = m.exports['makeCounter']!(0) as Counter;
      const b = m.exports['makeCounter']!(1000) as Counter;
      a.increment(1);
      const r = patch(m, 'makeCounter>increment', (step: unknown) => {
        const ctx = callContext();
        const next = (ctx.get('n') as number) + Number(step) * 10;
        ctx.set('n', next);
        assert.throws(() => ctx.set('max', 1), TypeError, 'an enclosing const stays read-only');
        assert.throws(
          () => ctx.get('label'),
          /not reachable/,
          'only variables the original uses are reachable',
        );
        return next;
      });
      assert.equal(a.increment(1), 11);
      assert.equal(b.increment(1), 1010);
      assert.deepEqual(a.peek(), ['counter', 11], 'the write reached the closure of a');
      assert.deepEqual(b.peek(), ['counter', 1010]);
      r.remove();
      assert.equal(a.increment(1), 12);
      const info = m.module.meta.functions.find((f) => f.name === 'makeCounter>increment')!;
      assert.deepEqual(info.scope, ['increment', 'max', 'n']);
    });
  }

  it('reach variables several functions up, loop bindings and catch parameters', () => {
    const m = loadCjs<Exports>(`
      exports.build = function () {
        const outerValue = 'outer';
        const fns = [];
        for (let i = 0; i < 2; i++) {
          try { throw new Error('e' + i); } catch (err) {
            fns.push(function inner() { return () => [outerValue, i, err.message]; });
          }
        }
        return fns.map((f) => f());
      };
    `);
    const fns = m.exports['build']!() as Fn[];
    const r = patch(m, 'exports.build>inner>(anonymous)', () => {
      const ctx = callContext();
      return [ctx.get('outerValue'), ctx.get('i'), (ctx.get('err') as Error).message, 'patched'];
    });
    assert.deepEqual(fns[0]!(), ['outer', 0, 'e0', 'patched']);
    assert.deepEqual(fns[1]!(), ['outer', 1, 'e1', 'patched']);
    r.remove();
  });
});

describe('private members and super', () => {
  for (const format of ['commonjs', 'module'] as const) {
    it(`#private fields, methods and accessors: get, set, has (${format})`, async () => {
      const src = `
        class Account {
          #balance = 0;
          static #count = 0;
          #audit() { return 'audited ' + this.#balance; }
          get #view() { return 'view ' + this.#balance; }
          deposit(n) { this.#balance += n; Account.#count++; return this.#balance; }
          balance() { return this.#balance; }
        }
        ${format === 'module' ? 'export { Account };' : 'exports.Account = Account;'}
      `;
      const m = format === 'module' ? await loadEsm<Exports>(src) : loadCjs<Exports>(src);
      const Account = m.exports['Account'] as unknown as new () => {
        deposit(n: number): unknown;
        balance(): number;
      };
      const acct = new Account();
      acct.deposit(5);
      const r = patch(m, 'Account#deposit', function (this: object, n: unknown) {
        const ctx = callContext();
        assert.equal(ctx.hasPrivate(this, '#balance'), true);
        assert.equal(ctx.hasPrivate({}, '#balance'), false);
        ctx.setPrivate(
          this,
          '#balance',
          (ctx.getPrivate(this, '#balance') as number) + Number(n) * 2,
        );
        ctx.setPrivate(Account, '#count', (ctx.getPrivate(Account, '#count') as number) + 1);
        const audit = ctx.getPrivate(this, '#audit') as () => string;
        assert.throws(
          () => ctx.getPrivate(this, '#nope' as `#${string}`),
          /not a private member.*#balance/s,
        );
        assert.throws(
          () => ctx.setPrivate(this, '#audit', 1),
          TypeError,
          'private methods are not writable',
        );
        return [audit.call(this), ctx.getPrivate(this, '#view'), ctx.getPrivate(Account, '#count')];
      });
      assert.deepEqual(acct.deposit(10), ['audited 25', 'view 25', 2]);
      r.remove();
      assert.equal(acct.balance(), 25);
    });
  }

  it('super property access from a method, a static method and an object literal method', async () => {
    const m = await loadEsm<Record<string, unknown>>(`
      class A { who() { return 'A'; } static make() { return 'A.make'; } }
      export class B extends A { who() { return 'B<' + super.who(); } static make() { return super.make(); } }
      const proto = { hello() { return 'proto hello'; } };
      export const obj = { __proto__: proto, hello() { return super.hello(); } };
    `);
    const r = [
      patch(m, 'B#who', function (this: unknown) {
        return `patched<${(callContext().superGet('who') as Fn).call(this) as string}`;
      }),
      patch(m, 'B.make', function (this: unknown) {
        return `patched ${(callContext().superGet('make') as Fn).call(this) as string}`;
      }),
      patch(m, 'obj.hello', function (this: unknown) {
        return `patched ${(callContext().superGet('hello') as Fn).call(this) as string}`;
      }),
    ];
    const B = m.exports['B'] as { new (): { who(): string }; make(): string };
    assert.equal(new B().who(), 'patched<A');
    assert.equal(B.make(), 'patched A.make');
    assert.equal((m.exports['obj'] as { hello(): string }).hello(), 'patched proto hello');
    for (const x of r) x.remove();
  });

  it('super is refused where the original has none', () => {
    const m = loadCjs<Exports>(`exports.f = function f() { return 1; };`);
    const r = patch(m, 'f', () => callContext().superGet('x'));
    assert.throws(() => m.exports['f']!(), /super is not available/);
    r.remove();
  });
});

describe('this in arrows of a derived constructor', () => {
  it('is read when the arrow is called: undefined before super(), the instance after', () => {
    const m = loadCjs<Record<string, new () => { seen: unknown[] }>>(`
      class Base {}
      class Derived extends Base {
        constructor() {
          const probe = (after) => (after ? this : 'orig');
          const seen = [probe(false)];
          super();
          seen.push(probe(true));
          this.seen = seen;
        }
      }
      module.exports = { Derived };
    `);
    const r = patch(m, 'Derived#constructor>probe', () => callContext().this);
    const d = new m.exports['Derived']!();
    assert.equal(d.seen[0], undefined);
    assert.equal(d.seen[1], d);
    r.remove();
  });
});

describe('this and new.target of arrows', () => {
  it('are the enclosing ones when the original arrow reads them, undefined when it does not', () => {
    const m = loadCjs<Record<string, new () => { reads(): unknown; ignores(): unknown }>>(`
      function Maker() {
        this.reads = () => [this, new.target];
        this.ignores = () => 'ignores';
      }
      module.exports = { Maker };
    `);
    const seen = (): unknown => {
      const ctx = callContext();
      return [ctx.this, ctx.newTarget];
    };
    const r1 = patch(m, 'Maker>this.reads', seen);
    const r2 = patch(m, 'Maker>this.ignores', seen);
    const made = new m.exports['Maker']!();
    assert.deepEqual(made.reads(), [made, m.exports['Maker']]);
    assert.deepEqual(made.ignores(), [undefined, undefined]);
    r1.remove();
    r2.remove();
  });
});

describe('callContext().original', () => {
  for (const format of ['commonjs', 'module'] as const) {
    it(`calls the original code of every named form (${format})`, async () => {
      const src = `
        function decl(x) { return 'decl' + x; }
        const arrow = (x) => 'arrow' + x;
        const withDefaults = ({ x } = {}, y = 2) => 'defaults' + x + y;
        const asyncFn = async (x) => 'async' + x;
        function* gen() { yield 'gen'; }
        class Shape {
          constructor(kind) { this.kind = kind; }
          area() { return 'area of ' + this.kind; }
          get label() { return 'label ' + this.kind; }
          set label(v) { this.kind = v; }
          static unit() { return 'unit'; }
          onDraw = () => 'draw ' + this.kind;
        }
        class Square extends Shape { constructor() { super('square'); } }
        const Anon = class { m() { return 'anon m'; } };
        const api = { list() { return 'list'; }, nested: { deep: () => 'deep' } };
        function Legacy() {}
        Legacy.prototype.run = function () { return 'legacy run'; };
        const exported = { run: function () { return 'exported run'; } };
        const all = { decl, arrow, withDefaults, asyncFn, gen, Shape, Square, Anon, api, Legacy, exported };
        ${format === 'module' ? 'export { all };' : 'module.exports = { all, cjs() { return "cjs"; } };'}
      `;
      const m =
        format === 'module'
          ? await loadEsm<{ all: Record<string, never> }>(src)
          : loadCjs<{ all: Record<string, never> }>(src);
      const all = m.exports.all as Record<
        string,
        Fn & (new (...a: unknown[]) => Record<string, unknown>)
      >;
      const wrap = (name: string) =>
        patch(m, name, function (this: unknown, ...args: unknown[]) {
          const result = callContext().original(...args);
          return result instanceof Promise
            ? result.then((v) => `<${String(v)}>`)
            : typeof result === 'string'
              ? `<${result}>`
              : result;
        });
      const removers = [
        'decl',
        'arrow',
        'withDefaults',
        'asyncFn',
        'Shape#area',
        'get Shape#label',
        'Shape.unit',
        'Shape#onDraw',
        'Anon#m',
        'api.list',
        'api.nested.deep',
        'Legacy#run',
        'exported.run',
      ].map(wrap);
      removers.push(
        patch(m, 'gen', function* (this: unknown) {
          yield 'before';
          yield* callContext().original() as Generator<unknown>;
        }),
        patch(m, 'set Shape#label', function (this: unknown, v: unknown) {
          callContext().original(`set:${String(v)}`);
        }),
        patch(m, 'Shape#constructor', function (kind: unknown) {
          return callContext().original(`big ${String(kind)}`);
        }),
        patch(m, 'Square#constructor', function () {
          const self = callContext().original() as Record<string, unknown>;
          self['extra'] = true;
          return self;
        }),
      );
      assert.equal(all.decl(1), '<decl1>');
      assert.equal(all.arrow(1), '<arrow1>');
      assert.equal(all.withDefaults(), '<defaultsundefined2>');
      assert.equal(await all.asyncFn(1), '<async1>');
      assert.deepEqual([...(all.gen() as Iterable<unknown>)], ['before', 'gen']);
      const shape = new all.Shape('circle');
      assert.equal(shape['kind'], 'big circle');
      assert.ok(shape instanceof all.Shape);
      assert.equal((shape['area'] as Fn)(), '<area of big circle>');
      assert.equal(shape['label'], '<label big circle>');
      shape['label'] = 'tri';
      assert.equal(shape['kind'], 'set:tri');
      assert.equal((all.Shape as unknown as { unit(): string }).unit(), '<unit>');
      assert.equal((shape['onDraw'] as Fn)(), '<draw set:tri>');
      const sq = new all.Square();
      assert.ok(sq instanceof all.Square);
      assert.deepEqual([sq['kind'], sq['extra']], ['big square', true]);
      assert.equal((new all.Anon()['m'] as Fn)(), '<anon m>');
      const api = all.api as unknown as { list(): string; nested: { deep(): string } };
      assert.equal(api.list(), '<list>');
      assert.equal(api.nested.deep(), '<deep>');
      assert.equal((new all.Legacy()['run'] as Fn)(), '<legacy run>');
      assert.equal((all.exported as unknown as { run(): string }).run(), '<exported run>');
      for (const r of removers) r.remove();
      assert.equal(all.decl(1), 'decl1');
    });
  }

  it('calls the version below when redirections are stacked', () => {
    const m = loadCjs<Exports>(`exports.f = function f(x) { return 'orig' + x; };`);
    const a = patch(m, 'f', (x: unknown) => `A(${String(callContext().original(x))})`);
    const b = patch(m, 'f', (x: unknown) => `B(${String(callContext().original(x))})`);
    assert.equal(m.exports['f']!(1), 'B(A(orig1))');
    a.remove();
    assert.equal(m.exports['f']!(1), 'B(orig1)');
    b.remove();
  });

  it('calls the closure instance that was called, for a nested named function expression', () => {
    // Its own name reaches the accessor as a parameter (TRANSFORM_VERSION 18), not by an inner
    // closure reading the name, which would cost every call a heap context.
    const m = loadCjs<Exports>(`
      function make(tag) { return function named(x) { return tag + x; }; }
      exports.a = make('a'); exports.b = make('b');
    `);
    const seen: unknown[] = [];
    const r = patch(m, 'make>named', (x: unknown) => {
      const ctx = callContext();
      seen.push(ctx.get('named'));
      return `[${String(ctx.original(x))}]`;
    });
    assert.equal(m.exports['a']!(1), '[a1]');
    assert.equal(m.exports['b']!(2), '[b2]');
    assert.deepEqual(
      seen,
      [m.exports['a'], m.exports['b']],
      'its own name reads the instance called',
    );
    r.remove();
    assert.equal(m.exports['b']!(3), 'b3');
    assert.match(
      m.result.code,
      // names [named, tag]: index 0 reads the parameter, not `named`
      /\(\(\$lp_f\)=>\(o,n,v\)=>o\?[^()]*:n<1\?\$lp_f:tag\)\(named\)/,
    );
  });

  it('keeps a recursive original on the original path only for its own call', () => {
    const m = loadCjs<Exports>(
      `function fact(n) { return n <= 1 ? 1 : n * fact(n - 1); }\nexports.fact = fact;`,
    );
    let calls = 0;
    const r = patch(m, 'fact', (n: unknown) => {
      calls++;
      return callContext().original(n);
    });
    assert.equal(m.exports['fact']!(5), 120);
    assert.equal(calls, 5, 'each recursive call goes through the replacement again');
    r.remove();
  });

  it('gives a clear error for an anonymous function', () => {
    const m = loadCjs<Exports>(
      `const list = [function () { return 1; }];\nexports.first = () => list[0]();`,
    );
    const r = patch(m, '(anonymous)', () => callContext().original());
    assert.throws(
      () => m.exports['first']!(),
      /original code of \(anonymous\).*cannot be called.*anonymous/s,
    );
    r.remove();
  });

  it('leaves a closure its enclosing function only calls in the frame, and says so', () => {
    // Reading `cb` or `helper` from their own scope accessors would move them into a heap context
    // of `hot`, which keeps V8 from inlining them and dropping their allocations (2.9-3.6x, bench/codegen.ts).
    const m = loadCjs<Exports>(`
      function hot(items) {
        const cb = (x) => x * 2;
        function helper(v) { return v + 1; }
        if (helper(items.length) < 0) return [];
        return items.map(cb).map(helper);
      }
      exports.hot = hot;
    `);
    for (const name of ['hot>cb', 'hot>helper']) {
      const info = m.module.meta.functions.find((f) => f.name === name)!;
      assert.equal(info.callee, undefined, name);
      assert.equal(info.heldBy, name.slice('hot>'.length), name);
      assert.deepEqual(info.scope, [], `${name}: nothing of hot's frame is read`);
    }
    assert.doesNotMatch(
      m.result.code,
      /=>o\?[^,;]*[?:](?:cb|helper)[:)]/,
      'no accessor reads them',
    );
    const withOriginal = patch(m, 'hot>cb', (x: unknown) => callContext().original(x));
    assert.throws(
      () => m.exports['hot']!([1]),
      /original code of hot>cb .*cannot be called.*held only by 'cb'.*patch the enclosing function/s,
    );
    withOriginal.remove();
    const replaced = patch(m, 'hot>cb', (x: unknown) => Number(x) * 3);
    assert.deepEqual(m.exports['hot']!([1, 2]), [4, 7], 'a replacement without the original runs');
    replaced.remove();
    assert.deepEqual(m.exports['hot']!([1, 2]), [3, 5]);
  });

  it('reaches the original of a closure that leaves the frame, or whose scope runs once', () => {
    const m = loadCjs<Exports>(`
      function make(k) {
        const stored = (x) => x + k;
        const viaClosure = (x) => x * k;
        return { stored, run: (x) => viaClosure(x) };
      }
      exports.a = make(1); exports.b = make(10);
      exports.bundled = (() => { function inner(x) { return x - 1; } return (x) => inner(x); })();
      (function () { function ns(x) { return -x; } exports.ns = (x) => ns(x); }).call(this);
    `);
    type Made = { stored: Fn; run: Fn };
    const [a, b] = [m.exports['a'] as unknown as Made, m.exports['b'] as unknown as Made];
    const removers = ['make>stored', 'make>viaClosure', 'inner', 'ns'].map((name) =>
      patch(m, name.replace(/^(inner|ns)$/, '(anonymous)>$1'), (x: unknown) => [
        callContext().original(x),
      ]),
    );
    assert.deepEqual([a.stored(1), b.stored(1)], [[2], [11]], 'returned: the instance called');
    assert.deepEqual([a.run(2), b.run(2)], [[2], [20]], 'read by another closure');
    assert.deepEqual(m.exports['bundled']!(5), [4], 'called by a function called where written');
    assert.deepEqual(m.exports['ns']!(5), [-5], '… or through .call(this)');
    for (const r of removers) r.remove();
  });

  it('callContext() outside a replacement call is an error', () => {
    assert.throws(() => callContext(), /outside a replacement call/);
  });
});

describe('which bindings a replacement may assign', () => {
  it('every variable; function and class declarations only where the program reassigns them; never a const', () => {
    const m = loadCjs<Exports>(`
      let assigned = 0, onlyInitialized = 0, noInit;
      var once = 1;
      const fixed = 1;
      function declared() {}
      class Declared {}
      function reassigned() {}
      function redeclared() {}
      var redeclared = redeclared;
      class Swapped {}
      for (let i = 0; i < 2; i++) { var inLoop = i; }
      function writer(list) {
        assigned = 1;
        reassigned = function other() {};
        [Swapped] = list;
      }
      exports.probe = function probe(param) {
        try { throw 0; } catch (caught) {
          return [assigned, onlyInitialized, noInit, once, fixed, declared, Declared, reassigned, redeclared, Swapped, inLoop, writer, param, caught];
        }
      };
    `);
    const writable: string[] = [];
    const readOnly: string[] = [];
    const r = patch(m, 'probe', () => {
      const ctx = callContext();
      for (const name of [
        'assigned',
        'onlyInitialized',
        'noInit',
        'once',
        'inLoop',
        'fixed',
        'declared',
        'Declared',
        'reassigned',
        'redeclared',
        'Swapped',
        'writer',
        'exports',
      ]) {
        try {
          ctx.set(name, ctx.get(name));
          writable.push(name);
        } catch (e) {
          assert.ok(e instanceof TypeError, `${name}: ${String(e)}`);
          assert.match(String(e), new RegExp(`'${name}' is read-only .*patching it`));
          readOnly.push(name);
        }
      }
      return null;
    });
    m.exports['probe']!();
    r.remove();
    assert.deepEqual(writable, [
      'assigned',
      'onlyInitialized',
      'noInit',
      'once',
      'inLoop',
      'reassigned',
      'redeclared',
      'Swapped',
      'exports',
    ]);
    assert.deepEqual(readOnly, ['fixed', 'declared', 'Declared', 'writer']);
  });

  it('a variable the program only initializes can be changed by a patch, and the program sees it', () => {
    const m = loadCjs<Exports>(`
      let retryLimit = 3;
      exports.limit = function limit() { return retryLimit; };
      exports.tune = function tune() { return 'untuned'; };
    `);
    const r = patch(m, 'tune', () => {
      callContext().set('retryLimit', 5);
      return 'tuned';
    });
    assert.equal(m.exports['limit']!(), 3);
    assert.equal(m.exports['tune']!(), 'tuned');
    r.remove();
    assert.equal(m.exports['limit']!(), 5, 'the module reads the value the patch wrote');
  });

  it('applies to enclosing function variables too', () => {
    const m = loadCjs<Exports>(`
      function make() {
        let count = 0;
        const step = 1;
        function bump() { count += step; return count; }
        return bump;
      }
      exports.bump = make();
    `);
    const r = patch(m, 'make>bump', () => {
      const ctx = callContext();
      ctx.set('count', 41);
      assert.throws(() => ctx.set('step', 2), /'step' is read-only/);
      return (ctx.get('count') as number) + (ctx.get('step') as number);
    });
    assert.equal(m.exports['bump']!(), 42);
    r.remove();
    assert.equal(m.exports['bump']!(), 42);
  });
});

describe('scope accessor parameter names', () => {
  it('variables named like its one-letter parameters are read and written correctly', () => {
    const m = loadCjs<Exports>(`
      function make() {
        let o = 'o', n = 'n', v = 'v', w = 'w';
        function touch() { o = o; n = n; v = v; w = w; return [o, n, v, w]; }
        return touch;
      }
      exports.touch = make();
      exports.plain = (function () { let x = 1; return function read() { x = x; return x; }; })();
    `);
    const r1 = patch(m, 'make>touch', () => {
      const ctx = callContext();
      ctx.set('v', 'V');
      ctx.set('w', 'W');
      return ['o', 'n', 'v', 'w'].map((k) => ctx.get(k));
    });
    assert.deepEqual(m.exports['touch']!(), ['o', 'n', 'V', 'W']);
    r1.remove();
    assert.deepEqual(m.exports['touch']!(), ['o', 'n', 'V', 'W']);
    assert.match(
      m.result.code,
      /\(\$lp_o,\$lp_n,\$lp_v\)=>/,
      'prefixed parameters where names collide',
    );
    assert.match(
      m.result.code,
      /\(o,n,v\)=>o\?n<1\?\$lp_m:x=v:n<1\?\$lp_f:x\)\(read\)/,
      'one-letter parameters otherwise',
    );
  });
});

describe('scope accessor indices', () => {
  it('the index tree gives back every leaf, with runs of equal leaves merged', () => {
    for (let count = 1; count <= 70; count++) {
      // Leaves in runs of varying length, as the write tree has (read-only runs answer one value).
      const leaves = Array.from({ length: count }, (_, i) => (i % 7 < 3 ? '"M"' : `"x${i}"`));
      const pick = new Function('n', `return ${pickByIndex('n', leaves)}`) as (n: number) => string;
      for (let i = 0; i < count; i++)
        assert.equal(pick(i), JSON.parse(leaves[i]!), `${count}: ${i}`);
    }
  });

  it('many enclosing variables and top-level bindings, each read and written by name', () => {
    const count = 45;
    const vars = Array.from({ length: count }, (_, i) => `v${i}`);
    // Every third one is a const: writes to it are refused while its neighbours are written.
    const decls = vars.map((v, i) => `${i % 3 === 0 ? 'const' : 'let'} ${v} = ${i};`).join(' ');
    const m = loadCjs<Exports>(`
      ${decls.replaceAll(' v', ' t')}
      function make() {
        ${decls}
        return function all() { return [${vars.join(', ')}, ${vars.map((v) => v.replace('v', 't')).join(', ')}]; };
      }
      exports.all = make();
    `);
    const r = patch(m, 'make>all', () => {
      const ctx = callContext();
      const out: unknown[] = [];
      for (const prefix of ['v', 't']) {
        for (let i = 0; i < count; i++) {
          const name = `${prefix}${i}`;
          if (i % 3 === 0) assert.throws(() => ctx.set(name, -1), TypeError, name);
          else ctx.set(name, (ctx.get(name) as number) * 10);
          out.push(ctx.get(name));
        }
      }
      return out;
    });
    const expected = [...vars, ...vars].map(
      (_, j) => (j % count) * ((j % count) % 3 === 0 ? 1 : 10),
    );
    assert.deepEqual(m.exports['all']!(), expected);
    r.remove();
    assert.deepEqual(m.exports['all']!(), expected, 'the original sees the written values');
  });
});
