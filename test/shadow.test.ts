/**
 * Shadow variables (src/shadow): every registry operation, its errors, typed ids, and the
 * "never leaks" guarantee, proved in a child process that can force garbage collection.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  ShadowRegistry,
  shadow,
  shadowId,
  type ShadowDestructor,
  type ShadowId,
} from '../src/shadow/index.ts';
import { fixture, runNode } from './helpers/node.ts';

/** Matches an error by class, code and message parts, so a test states what a user reads. */
function errorLike(
  cls: new (...args: never[]) => Error,
  code: string,
  ...parts: (string | RegExp)[]
): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${String(err)}`);
    assert.equal((err as { code?: unknown }).code, code);
    for (const part of parts) {
      if (typeof part === 'string') assert.ok(err.message.includes(part), err.message);
      else assert.match(err.message, part);
    }
    return true;
  };
}

describe('shadow: alloc and get', () => {
  test('alloc runs the constructor once with the object and returns the attached data', () => {
    const reg = new ShadowRegistry();
    const obj = { name: 'conn' };
    const seen: object[] = [];
    const data = reg.alloc(obj, 'state', (o) => {
      seen.push(o);
      return { count: 0 };
    });
    assert.deepEqual(data, { count: 0 });
    assert.deepEqual(seen, [obj]);
    assert.equal(reg.get(obj, 'state'), data, 'get returns the same data, not a copy');
    assert.equal(reg.get(obj, 'state'), data);
    assert.equal(seen.length, 1, 'get never runs the constructor');
    assert.deepEqual(Object.keys(obj), ['name'], 'the object itself is not modified');
  });

  test('without a constructor the data is a fresh empty object per variable', () => {
    const reg = new ShadowRegistry();
    const a = reg.alloc({}, 'bag');
    const b = reg.alloc({}, 'bag');
    assert.deepEqual(a, {});
    assert.notEqual(a, b);
  });

  test('get is undefined for a missing variable; variables are per (object, id)', () => {
    const reg = new ShadowRegistry();
    const one = {};
    const two = {};
    reg.alloc(one, 'a', () => 'one-a');
    reg.alloc(one, 'b', () => 'one-b');
    reg.alloc(two, 'a', () => 'two-a');
    assert.equal(reg.get(one, 'a'), 'one-a');
    assert.equal(reg.get(one, 'b'), 'one-b');
    assert.equal(reg.get(two, 'a'), 'two-a');
    assert.equal(reg.get(two, 'b'), undefined);
    assert.equal(reg.get({}, 'a'), undefined);
    assert.equal(reg.get(one, 'never-used'), undefined);
  });

  test('a duplicate alloc throws an Error naming the id, without running the constructor', () => {
    const reg = new ShadowRegistry();
    const obj = {};
    const first = reg.alloc(obj, 'conn-count', () => ({ count: 1 }));
    let ran = false;
    assert.throws(
      () =>
        reg.alloc(obj, 'conn-count', () => {
          ran = true;
          return { count: 2 };
        }),
      errorLike(Error, 'ERR_SHADOW_EXISTS', '"conn-count"', 'getOrAlloc'),
    );
    assert.equal(ran, false);
    assert.equal(reg.get(obj, 'conn-count'), first, 'the existing variable is untouched');
  });

  test('a constructor that throws attaches nothing and its error propagates', () => {
    const reg = new ShadowRegistry();
    const obj = {};
    const boom = new Error('boom');
    assert.throws(
      () =>
        reg.alloc(obj, 'x', () => {
          throw boom;
        }),
      (err) => err === boom,
    );
    assert.equal(reg.get(obj, 'x'), undefined);
    assert.equal(reg.count('x'), 0);
    assert.equal(
      reg.alloc(obj, 'x', () => 1),
      1,
      'a later alloc succeeds',
    );
  });

  test('a constructor must not return undefined (get would be ambiguous); null is data', () => {
    const reg = new ShadowRegistry();
    const obj = {};
    assert.throws(
      () => reg.alloc(obj, 'x', () => undefined),
      errorLike(TypeError, 'ERR_INVALID_RETURN_VALUE', '"x"', 'returned undefined'),
    );
    assert.equal(reg.count('x'), 0);
    assert.equal(
      reg.alloc(obj, 'x', () => null),
      null,
    );
    assert.equal(reg.get(obj, 'x'), null);
  });

  test('a constructor that allocates its own variable again is refused', () => {
    const reg = new ShadowRegistry();
    const obj = {};
    const other = {};
    assert.throws(
      () => reg.getOrAlloc(obj, 'x', (o) => reg.getOrAlloc(o, 'x', () => 'inner')),
      errorLike(Error, 'ERR_SHADOW_REENTRANT', '"x"'),
    );
    assert.equal(reg.get(obj, 'x'), undefined);
    // Allocating another object's variable, or another id, from a constructor is fine.
    const data = reg.alloc(obj, 'x', () => ({ peer: reg.alloc(other, 'x', () => 'peer') }));
    assert.deepEqual(data, { peer: 'peer' });
    assert.equal(reg.get(other, 'x'), 'peer');
  });
});

describe('shadow: getOrAlloc', () => {
  test('the constructor runs only when the variable is new', () => {
    const reg = new ShadowRegistry();
    const obj = {};
    let calls = 0;
    const ctor = (): { n: number } => ({ n: ++calls });
    const first = reg.getOrAlloc(obj, 'x', ctor);
    const second = reg.getOrAlloc(obj, 'x', ctor);
    assert.equal(first, second);
    assert.equal(calls, 1);
    assert.deepEqual(first, { n: 1 });
    // Also after a plain alloc.
    const allocated = reg.alloc({}, 'y', () => 'a');
    assert.equal(allocated, 'a');
    const other = {};
    reg.alloc(other, 'y', () => 'b');
    assert.equal(
      reg.getOrAlloc(other, 'y', () => 'never'),
      'b',
    );
  });

  test('after a free, getOrAlloc constructs again', () => {
    const reg = new ShadowRegistry();
    const obj = {};
    let calls = 0;
    reg.getOrAlloc(obj, 'x', () => ++calls);
    reg.free(obj, 'x');
    assert.equal(
      reg.getOrAlloc(obj, 'x', () => ++calls),
      2,
    );
  });
});

describe('shadow: free', () => {
  test('free without a destructor detaches the variable and reports whether it existed', () => {
    const reg = new ShadowRegistry();
    const obj = {};
    reg.alloc(obj, 'x', () => 1);
    assert.equal(reg.free(obj, 'x'), true);
    assert.equal(reg.get(obj, 'x'), undefined);
    assert.equal(reg.count('x'), 0);
    assert.equal(reg.free(obj, 'x'), false, 'freeing a missing variable does nothing');
    assert.equal(reg.free({}, 'never-used'), false);
  });

  test('free runs the given destructor with the object and its data, after detaching', () => {
    const reg = new ShadowRegistry();
    const obj = {};
    const data = reg.alloc(obj, 'x', () => ({ open: true }));
    const calls: [object, unknown, unknown][] = [];
    reg.free(obj, 'x', (o, d) => calls.push([o, d, reg.get(o, 'x')]));
    assert.equal(calls.length, 1);
    assert.equal(calls[0]![0], obj);
    assert.equal(calls[0]![1], data);
    assert.equal(calls[0]![2], undefined, 'the variable is already gone when the destructor runs');
  });

  test('free uses the destructor registered with define unless one is given', () => {
    const reg = new ShadowRegistry();
    const log: string[] = [];
    reg.define('x', { destructor: (_o, d) => log.push(`registered:${String(d)}`) });
    const a = {};
    const b = {};
    reg.alloc(a, 'x', () => 'a');
    reg.alloc(b, 'x', () => 'b');
    reg.free(a, 'x');
    reg.free(b, 'x', (_o, d) => log.push(`given:${String(d)}`));
    assert.deepEqual(log, ['registered:a', 'given:b']);
  });

  test('a destructor that throws leaves the variable freed; its error propagates', () => {
    const reg = new ShadowRegistry();
    const obj = {};
    reg.alloc(obj, 'x', () => 1);
    const boom = new Error('dtor');
    assert.throws(
      () =>
        reg.free(obj, 'x', () => {
          throw boom;
        }),
      (err) => err === boom,
    );
    assert.equal(reg.get(obj, 'x'), undefined);
    assert.equal(reg.count('x'), 0);
  });
});

describe('shadow: freeAll', () => {
  test('frees every variable of the id, running the destructor for each, in allocation order', () => {
    const reg = new ShadowRegistry();
    const objs = [{ n: 0 }, { n: 1 }, { n: 2 }];
    for (const obj of objs) reg.alloc(obj, 'x', (o) => `data-${(o as { n: number }).n}`);
    const keep = {};
    reg.alloc(keep, 'other', () => 'kept');
    const calls: [object, unknown][] = [];
    assert.equal(
      reg.freeAll('x', (o, d) => calls.push([o, d])),
      3,
    );
    assert.deepEqual(calls, [
      [objs[0], 'data-0'],
      [objs[1], 'data-1'],
      [objs[2], 'data-2'],
    ]);
    for (const obj of objs) assert.equal(reg.get(obj, 'x'), undefined);
    assert.equal(reg.count('x'), 0);
    assert.equal(reg.get(keep, 'other'), 'kept', 'other ids are untouched');
    // The id is usable again at once.
    reg.alloc(objs[0]!, 'x', () => 'again');
    assert.equal(reg.get(objs[0]!, 'x'), 'again');
  });

  test('uses the registered destructor, none at all, and skips variables already freed', () => {
    const reg = new ShadowRegistry();
    const log: unknown[] = [];
    reg.define('x', { destructor: (_o, d) => log.push(d) });
    const a = {};
    const b = {};
    reg.alloc(a, 'x', () => 'a');
    reg.alloc(b, 'x', () => 'b');
    reg.free(a, 'x', () => {});
    assert.equal(reg.freeAll('x'), 1);
    assert.deepEqual(log, ['b']);

    reg.alloc({}, 'plain', () => 1);
    assert.equal(reg.freeAll('plain'), 1, 'no destructor anywhere: variables are just freed');
    assert.equal(reg.freeAll('never-used'), 0);
  });

  test('destructors that throw do not stop the others; an AggregateError follows', () => {
    const reg = new ShadowRegistry();
    const objs = [{}, {}, {}, {}];
    objs.forEach((obj, i) => reg.alloc(obj, 'x', () => i));
    const ran: unknown[] = [];
    const errs = [new Error('one'), new Error('three')];
    const dtor: ShadowDestructor<unknown> = (_o, d) => {
      ran.push(d);
      if (d === 1) throw errs[0];
      if (d === 3) throw errs[1];
    };
    assert.throws(
      () => reg.freeAll('x', dtor),
      (err) => {
        errorLike(AggregateError, 'ERR_SHADOW_DESTRUCTOR', '2 of 4', '"x"', 'all 4')(err);
        assert.deepEqual((err as AggregateError).errors, errs);
        return true;
      },
    );
    assert.deepEqual(ran, [0, 1, 2, 3], 'every destructor ran');
    for (const obj of objs) assert.equal(reg.get(obj, 'x'), undefined);
    assert.equal(reg.count('x'), 0, 'every variable is freed');
  });

  test('variables a destructor allocates during freeAll are new and are kept', () => {
    const reg = new ShadowRegistry();
    const a = {};
    const b = {};
    reg.alloc(a, 'x', () => 'old');
    reg.freeAll('x', () => {
      reg.alloc(b, 'x', () => 'new');
    });
    assert.equal(reg.get(a, 'x'), undefined);
    assert.equal(reg.get(b, 'x'), 'new');
    assert.equal(reg.count('x'), 1);
  });
});

describe('shadow: define', () => {
  test('a later define replaces the destructor; define(id, {}) removes it', () => {
    const reg = new ShadowRegistry();
    const log: string[] = [];
    reg.define('x', { destructor: () => log.push('v1') });
    reg.define('x', { destructor: () => log.push('v2') });
    assert.equal(reg.stats('x').destructor, true);
    reg.alloc({}, 'x', () => 1);
    reg.freeAll('x');
    assert.deepEqual(log, ['v2']);

    reg.define('x', {});
    assert.equal(reg.stats('x').destructor, false);
    reg.alloc({}, 'x', () => 1);
    reg.freeAll('x');
    assert.deepEqual(log, ['v2']);
  });

  test('a definition must be an object with a function destructor', () => {
    const reg = new ShadowRegistry();
    assert.throws(
      () => reg.define('x', null as never),
      errorLike(TypeError, 'ERR_INVALID_ARG_TYPE', 'definition must be an object', 'null'),
    );
    assert.throws(
      () => reg.define('x', { destructor: 'nope' as never }),
      errorLike(TypeError, 'ERR_INVALID_ARG_TYPE', 'destructor must be a function', '"nope"'),
    );
  });
});

describe('shadow: introspection', () => {
  test('count and ids report live variables; stats adds bookkeeping and definition', () => {
    const reg = new ShadowRegistry();
    const s = Symbol('sym-id');
    assert.deepEqual(reg.ids(), []);
    const a = {};
    const b = {};
    reg.alloc(a, 'x', () => 1);
    reg.alloc(b, 'x', () => 2);
    reg.alloc(a, s, () => 3);
    reg.define('defined-only', { destructor: () => {} });
    assert.equal(reg.count('x'), 2);
    assert.equal(reg.count(s), 1);
    assert.equal(reg.count('defined-only'), 0);
    assert.deepEqual(reg.ids(), ['x', s], 'ids with live variables, in first-use order');
    assert.deepEqual(reg.stats('x'), { live: 2, tracked: 2, destructor: false });
    assert.deepEqual(reg.stats('defined-only'), { live: 0, tracked: 0, destructor: true });
    reg.free(a, 'x');
    assert.equal(reg.count('x'), 1);
    reg.freeAll(s);
    assert.deepEqual(reg.ids(), ['x']);
  });

  test('the default registry is one process-wide ShadowRegistry', async () => {
    assert.ok(shadow instanceof ShadowRegistry);
    const again = await import('../src/shadow/index.ts');
    assert.equal(again.shadow, shadow);
    const obj = {};
    const id = Symbol('default-registry-test');
    shadow.alloc(obj, id, () => 'x');
    assert.equal(shadow.get(obj, id), 'x');
    shadow.freeAll(id);
    assert.equal(shadow.count(id), 0);
  });
});

describe('shadow: keys and ids', () => {
  const ops: [string, (reg: ShadowRegistry, key: unknown) => unknown][] = [
    ['shadow.alloc', (reg, key) => reg.alloc(key as object, 'x')],
    ['shadow.get', (reg, key) => reg.get(key as object, 'x')],
    ['shadow.getOrAlloc', (reg, key) => reg.getOrAlloc(key as object, 'x')],
    ['shadow.free', (reg, key) => reg.free(key as object, 'x')],
  ];
  const badKeys: [unknown, string][] = [
    [42, 'number 42'],
    ['conn', 'string "conn"'],
    [true, 'boolean true'],
    [10n, 'bigint 10n'],
    [Symbol('k'), 'Symbol(k)'],
    [null, 'null'],
    [undefined, 'undefined'],
  ];

  for (const [op, call] of ops) {
    test(`${op} refuses a key that is not an object or function, naming it`, () => {
      const reg = new ShadowRegistry();
      for (const [key, shown] of badKeys) {
        assert.throws(
          () => call(reg, key),
          errorLike(
            TypeError,
            'ERR_INVALID_ARG_TYPE',
            `${op}: obj must be`,
            'object or function',
            `got ${shown}`,
          ),
        );
      }
      assert.deepEqual(reg.ids(), [], 'nothing was allocated');
    });
  }

  test('ids must be non-empty strings or symbols, for every operation', () => {
    const reg = new ShadowRegistry();
    const calls: [string, (id: unknown) => unknown][] = [
      ['shadow.alloc', (id) => reg.alloc({}, id as string)],
      ['shadow.get', (id) => reg.get({}, id as string)],
      ['shadow.getOrAlloc', (id) => reg.getOrAlloc({}, id as string)],
      ['shadow.free', (id) => reg.free({}, id as string)],
      ['shadow.freeAll', (id) => reg.freeAll(id as string)],
      ['shadow.define', (id) => reg.define(id as string, {})],
      ['shadow.count', (id) => reg.count(id as string)],
      ['shadow.stats', (id) => reg.stats(id as string)],
      ['shadowId', (id) => shadowId(id as string)],
    ];
    for (const [op, call] of calls) {
      for (const [id, shown] of [
        [42, 'number 42'],
        ['', 'an empty string'],
        [{}, 'an object'],
        [undefined, 'undefined'],
      ] as const) {
        assert.throws(
          () => call(id),
          errorLike(
            TypeError,
            'ERR_INVALID_ARG_TYPE',
            `${op}: the shadow variable id`,
            'string or a symbol',
            `got ${shown}`,
          ),
        );
      }
    }
  });

  test('constructors and destructors must be functions when given', () => {
    const reg = new ShadowRegistry();
    const obj = {};
    assert.throws(
      () => reg.alloc(obj, 'x', 5 as never),
      errorLike(
        TypeError,
        'ERR_INVALID_ARG_TYPE',
        'shadow.alloc: ctor must be a function',
        'number 5',
      ),
    );
    assert.throws(
      () => reg.free(obj, 'x', {} as never),
      errorLike(TypeError, 'ERR_INVALID_ARG_TYPE', 'shadow.free: dtor must be a function'),
    );
    assert.throws(
      () => reg.freeAll('x', 'f' as never),
      errorLike(TypeError, 'ERR_INVALID_ARG_TYPE', 'shadow.freeAll: dtor must be a function'),
    );
  });

  test('functions of every kind are keys, by identity', () => {
    const reg = new ShadowRegistry();
    function declared(): void {}
    const arrow = (): void => {};
    class Klass {}
    const bound = declared.bind(null);
    const keys: object[] = [declared, arrow, Klass, bound, async () => {}, function* gen() {}];
    keys.forEach((fn, i) => reg.alloc(fn, 'calls', () => ({ i })));
    keys.forEach((fn, i) => assert.deepEqual(reg.get(fn, 'calls'), { i }));
    assert.equal(reg.count('calls'), keys.length);
    assert.equal(reg.get(declared, 'calls'), reg.get(declared, 'calls'));
    assert.notEqual(
      reg.get(bound, 'calls'),
      reg.get(declared, 'calls'),
      'a bound function is its own key',
    );
  });

  test('frozen objects, proxies and null-prototype objects are keys without being modified', () => {
    const reg = new ShadowRegistry();
    const frozen = Object.freeze({ a: 1 });
    const target = {};
    const proxy = new Proxy(target, {});
    const bare = Object.create(null) as object;
    reg.alloc(frozen, 'x', () => 'frozen');
    reg.alloc(proxy, 'x', () => 'proxy');
    reg.alloc(bare, 'x', () => 'bare');
    assert.equal(reg.get(frozen, 'x'), 'frozen');
    assert.equal(reg.get(proxy, 'x'), 'proxy');
    assert.equal(reg.get(target, 'x'), undefined, 'a proxy and its target are different keys');
    assert.equal(reg.get(bare, 'x'), 'bare');
  });

  test('symbols are ids: unique by identity, distinct from strings, named in errors', () => {
    const reg = new ShadowRegistry();
    const obj = {};
    const a = Symbol('lock');
    const b = Symbol('lock');
    const registered = Symbol.for('livepatch.test.lock');
    reg.alloc(obj, a, () => 'a');
    reg.alloc(obj, b, () => 'b');
    reg.alloc(obj, 'lock', () => 'string');
    reg.alloc(obj, registered, () => 'registered');
    assert.equal(reg.get(obj, a), 'a');
    assert.equal(reg.get(obj, b), 'b');
    assert.equal(reg.get(obj, 'lock'), 'string');
    assert.equal(reg.get(obj, Symbol.for('livepatch.test.lock')), 'registered');
    assert.throws(
      () => reg.alloc(obj, a, () => 'again'),
      errorLike(Error, 'ERR_SHADOW_EXISTS', 'Symbol(lock)'),
    );
    assert.equal(reg.freeAll(a), 1);
    assert.equal(reg.get(obj, b), 'b');
  });
});

describe('shadow: typed ids', () => {
  test('shadowId returns the name itself and types get/alloc/free (checked by tsc)', () => {
    const reg = new ShadowRegistry();
    const conns = shadowId<{ count: number }>('conn-count');

    const obj = {};
    const made: { count: number } = reg.alloc(obj, conns, () => ({ count: 1 }));
    const got: { count: number } | undefined = reg.get(obj, conns);
    const same: { count: number } = reg.getOrAlloc(obj, conns, () => ({ count: 0 }));
    assert.equal(got, made);
    assert.equal(same, made);
    reg.free(obj, conns, (_o, data) => {
      const n: number = data.count;
      assert.equal(n, 1);
    });
    reg.define(conns, { destructor: (_o, data) => void data.count.toFixed() });

    // The same name as a plain string is the same variable, only untyped (unknown).
    reg.alloc(obj, conns, () => ({ count: 7 }));
    const untyped: unknown = reg.get(obj, 'conn-count');
    assert.deepEqual(untyped, { count: 7 });
    // Untyped ids infer the type from the constructor.
    const inferred = reg.alloc({}, 'inferred', () => ({ n: 1 }));
    const n: number = inferred.n;
    assert.equal(n, 1);

    // Lines below must fail type checking (tsc reports an unused @ts-expect-error otherwise).
    // @ts-expect-error the data type is { count: number }, not string
    const wrong: string | undefined = reg.get(obj, conns);
    // @ts-expect-error the constructor must build the id's type
    assert.throws(() => reg.alloc(obj, conns, () => ({ count: 'one' })));
    // @ts-expect-error no constructor: `{}` is not a { count: number }
    assert.throws(() => reg.alloc(obj, conns));
    const wide = shadowId<{ count: number; extra: string }>('wide');
    // @ts-expect-error ids of different value types do not mix
    const mixed: ShadowId<{ count: number; extra: string }> = conns;
    void wrong;
    void wide;
    void mixed;

    // Last, because assert.equal narrows its argument's type (the brand would be lost above).
    assert.equal(conns, 'conn-count');
    const sym = Symbol('typed');
    assert.equal(shadowId<string>(sym), sym);
  });
});

describe('shadow: patterns from docs/shadow.md', () => {
  test('adding a field to live objects: a patched function counts per connection', () => {
    const reg = new ShadowRegistry();
    const messages = shadowId<{ received: number }>('conn-messages');
    // Stands for a patched `onMessage(conn)`: the old connection objects have no such field.
    const onMessage = (conn: object): number =>
      ++reg.getOrAlloc(conn, messages, () => ({ received: 0 })).received;
    const c1 = { id: 1 };
    const c2 = { id: 2 };
    onMessage(c1);
    onMessage(c1);
    onMessage(c2);
    assert.equal(reg.get(c1, messages)?.received, 2);
    assert.equal(reg.get(c2, messages)?.received, 1);
    // The patch is removed: its state frees the variables.
    assert.equal(reg.freeAll(messages), 2);
  });

  test('a lock that survives atomic replace: v1 and v2 of a function share one variable', async () => {
    const reg = new ShadowRegistry();
    const lockId = shadowId<{ tail: Promise<void> }>('account-lock');
    const newLock = (): { tail: Promise<void> } => ({ tail: Promise.resolve() });
    const log: string[] = [];
    function withLock(version: string) {
      return async (account: object, step: () => Promise<void>): Promise<void> => {
        const lock = reg.getOrAlloc(account, lockId, newLock);
        const prev = lock.tail;
        let release!: () => void;
        lock.tail = new Promise<void>((resolve) => (release = resolve));
        await prev;
        log.push(`${version}:start`);
        await step();
        log.push(`${version}:end`);
        release();
      };
    }
    const v1 = withLock('v1'); // the first patch
    const v2 = withLock('v2'); // the replace patch, built from new source
    const account = {};
    let openV1!: () => void;
    const v1Step = new Promise<void>((resolve) => (openV1 = resolve));
    const first = v1(account, () => v1Step);
    const second = v2(account, async () => {});
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.deepEqual(log, ['v1:start'], 'v2 waits on the lock v1 holds');
    openV1();
    await Promise.all([first, second]);
    assert.deepEqual(log, ['v1:start', 'v1:end', 'v2:start', 'v2:end']);
    assert.equal(reg.count(lockId), 1);
  });
});

describe('shadow: never leaks', () => {
  test('variables of collected objects are reclaimed; no destructor runs for them', async (t) => {
    const result = await runNode(['--expose-gc', fixture('shadow', 'gc-reclaim.ts'), '20000']);
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as {
      total: number;
      kept: number;
      allocated: number;
      rounds: number;
      live: number;
      tracked: number;
      keptIntact: boolean;
      freedByFreeAll: number;
      destructorRuns: number;
      destructorOnlyForKept: boolean;
      idsAfterFreeAll: string[];
      heapBefore: number;
      heapAllocated: number;
      heapAfter: number;
    };
    const mb = (n: number): string => `${(n / 1048576).toFixed(1)} MB`;
    t.diagnostic(
      `heapUsed before ${mb(report.heapBefore)}, with ${report.total} variables ` +
        `${mb(report.heapAllocated)}, after collection ${mb(report.heapAfter)} ` +
        `(${report.rounds} gc rounds)`,
    );
    assert.equal(report.allocated, report.total);
    assert.equal(
      report.live,
      report.kept,
      'only the objects still referenced keep their variables',
    );
    assert.equal(report.tracked, report.kept, 'the bookkeeping of collected objects is pruned too');
    assert.equal(report.keptIntact, true, 'variables of live objects are untouched');
    assert.equal(report.freedByFreeAll, report.kept);
    assert.equal(report.destructorRuns, report.kept, 'destructors ran for explicit frees only');
    assert.equal(report.destructorOnlyForKept, true);
    assert.deepEqual(report.idsAfterFreeAll, []);
  });
});
