/**
 * States and per-state callbacks (seed 003): catalogue scenarios 5 (failing pre_patch) and 9
 * (introduce, carry over on replace, downgrade, block_disable), shadow variables owned by states,
 * async callbacks, and the busy rule while callbacks run.
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { getCore } from '../src/core/api.ts';
import { applyPatch, loadPatch, PatchError, shadow, type StateDefinition } from '../src/index.ts';
import type { StateContext } from '../src/state/states.ts';
import { Deferred } from './helpers/gate.ts';
import { loadCjs } from './support/instrumented.ts';
import { cleanupPatches } from './support/patches.ts';

getCore().events.setLog('off');

const src = `function greet(n) { return 'hello ' + n; } exports.greet = greet;`;
type Mod = { greet(n: string): string };

/** A state whose callbacks append `<patch>:<callback>:<id>` to a log. */
function logged(
  log: string[],
  patch: string,
  id: string,
  extra: Partial<StateDefinition> = {},
): StateDefinition {
  const cb = (name: string) => (ctx: StateContext) => {
    log.push(`${patch}:${name}:${ctx.id}`);
  };
  return {
    id,
    prePatch: cb('prePatch'),
    postPatch: cb('postPatch'),
    preUnpatch: cb('preUnpatch'),
    postUnpatch: cb('postUnpatch'),
    ...extra,
  };
}

describe('scenario 5: failing pre_patch', () => {
  beforeEach(cleanupPatches);
  it('refuses the enable, changes nothing, and tears down only what was set up', async () => {
    const m = loadCjs<Mod>(src);
    const log: string[] = [];
    const p = loadPatch({
      name: 'p5',
      objects: [{ module: m.file, functions: [{ name: 'greet', replacement: () => 'patched' }] }],
      states: [
        logged(log, 'p5', 'first'),
        logged(log, 'p5', 'second', {
          prePatch: () => {
            log.push('p5:prePatch:second');
            throw new Error('no memory for the cache');
          },
        }),
        logged(log, 'p5', 'third'),
      ],
    });
    await assert.rejects(
      p.enable(),
      (e: Error & { code?: string }) =>
        e.code === 'ESTATECALLBACK' &&
        /prePatch of state 'second' in patch 'p5' failed: no memory/.test(e.message),
    );
    assert.deepEqual(log, ['p5:prePatch:first', 'p5:prePatch:second', 'p5:postUnpatch:first']);
    assert.equal(m.exports.greet('x'), 'hello x', 'no code was redirected');
    assert.equal(p.status, 'disabled');
    // Nothing is left busy: the patch can be enabled once the callback succeeds.
    await applyPatch({
      name: 'after',
      objects: [{ module: m.file, functions: [{ name: 'greet', replacement: () => 'ok' }] }],
    });
    assert.equal(m.exports.greet('x'), 'ok');
  });
});

describe('scenario 9: states across patches', () => {
  beforeEach(cleanupPatches);

  it('introduces a state (pre then post) and removes it on disable (pre then post unpatch)', async () => {
    const m = loadCjs<Mod>(src);
    const log: string[] = [];
    const p = await applyPatch({
      name: 'A',
      objects: [{ module: m.file, functions: [{ name: 'greet', replacement: () => 'A' }] }],
      states: [logged(log, 'A', 's')],
    });
    assert.deepEqual(log, ['A:prePatch:s', 'A:postPatch:s']);
    await p.disable();
    assert.deepEqual(log, ['A:prePatch:s', 'A:postPatch:s', 'A:preUnpatch:s', 'A:postUnpatch:s']);
  });

  it('carries a state over on atomic replace without callbacks, with its data', async () => {
    const m = loadCjs<Mod>(src);
    const log: string[] = [];
    await applyPatch({
      name: 'A',
      objects: [{ module: m.file, functions: [{ name: 'greet', replacement: () => 'A' }] }],
      states: [
        logged(log, 'A', 's', {
          prePatch: (ctx) => {
            log.push('A:prePatch:s');
            ctx.data = { lock: 'held' };
          },
        }),
      ],
    });
    let seenPrevious: unknown;
    const b = await applyPatch({
      name: 'B',
      replace: true,
      objects: [{ module: m.file, functions: [{ name: 'greet', replacement: () => 'B' }] }],
      states: [
        logged(log, 'B', 's', {
          postUnpatch: (ctx) => {
            seenPrevious = ctx.data;
            log.push('B:postUnpatch:s');
          },
        }),
      ],
    });
    assert.deepEqual(log, ['A:prePatch:s', 'A:postPatch:s'], 'a carried state runs no callback');
    assert.deepEqual(getCore().get('B')!.states[0]!.data, { lock: 'held' });
    assert.equal(m.exports.greet('x'), 'B');
    await b.disable();
    assert.deepEqual(
      log.slice(2),
      ['B:preUnpatch:s', 'B:postUnpatch:s'],
      'the new owner tears it down',
    );
    assert.deepEqual(seenPrevious, { lock: 'held' });
  });

  it('downgrade: a replace patch that drops a state runs the OLD patch teardown', async () => {
    const m = loadCjs<Mod>(src);
    const log: string[] = [];
    await applyPatch({
      name: 'v2',
      objects: [{ module: m.file, functions: [{ name: 'greet', replacement: () => 'v2' }] }],
      states: [logged(log, 'v2', 'fast-path')],
    });
    log.length = 0;
    await applyPatch({
      name: 'v1',
      replace: true,
      objects: [{ module: m.file, functions: [{ name: 'greet', replacement: () => 'v1' }] }],
    });
    assert.deepEqual(log, ['v2:preUnpatch:fast-path', 'v2:postUnpatch:fast-path']);
    assert.equal(getCore().get('v2'), undefined, 'the replaced patch is gone');
  });

  it('a replace patch keeping one state and adding another, then disabled, tears both down', async () => {
    const m = loadCjs<Mod>(src);
    const log: string[] = [];
    await applyPatch({ name: 'A', objects: [], states: [logged(log, 'A', 'kept')] });
    const b = await applyPatch({
      name: 'B',
      replace: true,
      objects: [{ module: m.file, functions: [{ name: 'greet', replacement: () => 'B' }] }],
      states: [logged(log, 'B', 'kept'), logged(log, 'B', 'added')],
    });
    assert.deepEqual(log, [
      'A:prePatch:kept',
      'A:postPatch:kept',
      'B:prePatch:added',
      'B:postPatch:added',
    ]);
    log.length = 0;
    await b.disable();
    assert.deepEqual(log, [
      'B:preUnpatch:kept',
      'B:preUnpatch:added',
      'B:postUnpatch:kept',
      'B:postUnpatch:added',
    ]);
  });

  it('two non-replace patches each own their state; one state shared by both is removed only with the last', async () => {
    const log: string[] = [];
    const a = await applyPatch({
      name: 'A',
      objects: [],
      states: [logged(log, 'A', 'a-only'), logged(log, 'A', 'shared')],
    });
    const b = await applyPatch({
      name: 'B',
      objects: [],
      states: [logged(log, 'B', 'b-only'), logged(log, 'B', 'shared')],
    });
    assert.deepEqual(log, [
      'A:prePatch:a-only',
      'A:prePatch:shared',
      'A:postPatch:a-only',
      'A:postPatch:shared',
      'B:prePatch:b-only',
      'B:postPatch:b-only',
    ]);
    log.length = 0;
    await a.disable();
    assert.deepEqual(log, ['A:preUnpatch:a-only', 'A:postUnpatch:a-only'], "B still has 'shared'");
    log.length = 0;
    await b.disable();
    assert.deepEqual(log, [
      'B:preUnpatch:b-only',
      'B:preUnpatch:shared',
      'B:postUnpatch:b-only',
      'B:postUnpatch:shared',
    ]);
  });

  it('block_disable refuses disable, and a replace that drops such a state', async () => {
    const m = loadCjs<Mod>(src);
    const p = await applyPatch({
      name: 'locked',
      objects: [{ module: m.file, functions: [{ name: 'greet', replacement: () => 'L' }] }],
      states: [{ id: 'schema-v2', blockDisable: true }],
    });
    await assert.rejects(
      p.disable(),
      (e: PatchError) => e.code === 'EBLOCKED' && /block_disable/.test(e.message),
    );
    const r = loadPatch({ name: 'drops', replace: true, objects: [] });
    await assert.rejects(
      r.enable(),
      (e: PatchError) => e.code === 'EINCOMPATIBLE' && /drops state 'schema-v2'/.test(e.message),
    );
    assert.equal(m.exports.greet('x'), 'L');
    const keeps = await applyPatch({
      name: 'keeps',
      replace: true,
      objects: [],
      states: [{ id: 'schema-v2', blockDisable: true }],
    });
    assert.equal(p.status, 'removed');
    assert.equal(keeps.status, 'enabled');
    assert.equal(m.exports.greet('x'), 'hello x');
  });
});

describe('states own shadow variables', () => {
  beforeEach(cleanupPatches);
  it('a removed state frees every shadow variable of its id, running destructors', async () => {
    const destroyed: unknown[] = [];
    shadow.define('conn-meta', {
      destructor: (_obj: object, data: unknown) => {
        destroyed.push(data);
      },
    });
    const conns = [{}, {}, {}];
    const p = await applyPatch({
      name: 'meta',
      objects: [],
      states: [
        {
          id: 'conn-meta',
          ownsShadow: true,
          postPatch: () => {
            conns.forEach((c, i) => shadow.alloc(c, 'conn-meta', () => ({ i })));
          },
        },
      ],
    });
    assert.equal(shadow.count('conn-meta'), 3);
    await p.disable();
    assert.equal(shadow.count('conn-meta'), 0);
    assert.deepEqual(destroyed, [{ i: 0 }, { i: 1 }, { i: 2 }]);
    shadow.define('conn-meta', {});
  });

  it('a carried shadow-owning state keeps its variables across an atomic replace', async () => {
    const obj = {};
    await applyPatch({
      name: 'A',
      objects: [],
      states: [
        {
          id: 'lock',
          ownsShadow: true,
          postPatch: () => {
            shadow.alloc(obj, 'lock', () => ({ held: false }));
          },
        },
      ],
    });
    const b = await applyPatch({
      name: 'B',
      replace: true,
      objects: [],
      states: [{ id: 'lock', ownsShadow: true }],
    });
    assert.deepEqual(shadow.get(obj, 'lock'), { held: false });
    await b.disable();
    assert.equal(shadow.get(obj, 'lock'), undefined);
  });
});

describe('async callbacks', () => {
  beforeEach(cleanupPatches);
  it('awaits callbacks, and refuses another operation while they run', async () => {
    const m = loadCjs<Mod>(src);
    const gate = new Deferred<void>();
    const p = loadPatch({
      name: 'slow',
      objects: [{ module: m.file, functions: [{ name: 'greet', replacement: () => 'slow' }] }],
      states: [{ id: 'warm', prePatch: () => gate.promise }],
    });
    const other = loadPatch({ name: 'other', objects: [] });
    const enabling = p.enable();
    await assert.rejects(
      other.enable(),
      (e: PatchError) => e.code === 'EBUSY' && /'slow' is being enabled/.test(e.message),
    );
    assert.equal(m.exports.greet('x'), 'hello x', 'nothing is redirected before prePatch finishes');
    gate.resolve();
    await enabling;
    assert.equal(m.exports.greet('x'), 'slow');
    await other.enable();
  });
});

describe('state lookups and module loads during a transition', () => {
  beforeEach(cleanupPatches);

  it('getState finds a state of a patch; getPrevState sees the replaced one only during the transition', async () => {
    const { getState, getPrevState, runTask } = await import('../src/index.ts');
    await applyPatch({
      name: 'A',
      objects: [],
      states: [
        {
          id: 'lock',
          prePatch: (ctx) => {
            ctx.data = 'A-lock';
          },
        },
      ],
    });
    assert.deepEqual(getState('A', 'lock'), { id: 'lock', patch: 'A', data: 'A-lock' });
    assert.equal(getState('A', 'nope'), undefined);
    const hold = new Deferred<void>();
    const busy = runTask(async () => {
      await hold.promise;
    });
    const b = loadPatch({ name: 'B', replace: true, objects: [], states: [{ id: 'lock' }] });
    const enabling = b.enable();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(
      getPrevState('lock'),
      { id: 'lock', patch: 'A', data: 'A-lock' },
      'visible while B is in transition',
    );
    hold.resolve();
    await busy;
    await enabling;
    assert.equal(getPrevState('lock'), undefined, 'no transition, no previous state');
    assert.deepEqual(
      getState('B', 'lock'),
      { id: 'lock', patch: 'B', data: 'A-lock' },
      'carried with its data',
    );
  });

  it('callback order when a target module loads during the transition', async () => {
    const { runTask, onEvent } = await import('../src/index.ts');
    const { pathFor, sha256 } = await import('./support/instrumented.ts');
    const log: string[] = [];
    const stop = onEvent((e) => {
      if (e.type === 'module.patched-on-load' || e.type === 'transition.completed')
        log.push(e.type);
    });
    const file = pathFor('loads-mid-transition', 'commonjs');
    const lateSrc = `function greet() { return 'late-old'; } exports.atLoad = greet(); exports.greet = greet;`;
    const hold = new Deferred<void>();
    const busy = runTask(async () => {
      await hold.promise;
    });
    const p = loadPatch({
      name: 'mid',
      objects: [
        {
          module: file,
          hash: sha256(lateSrc),
          functions: [{ name: 'greet', replacement: () => 'late-new' }],
        },
      ],
      states: [logged(log, 'mid', 's')],
    });
    const enabling = p.enable();
    await new Promise((r) => setImmediate(r));
    const late = loadCjs<{ atLoad: string; greet(): string }>(lateSrc, 'loads-mid-transition');
    assert.equal(
      late.exports.atLoad,
      'late-new',
      'the root task is on the patched side: the module body ran new code',
    );
    hold.resolve();
    await busy;
    await enabling;
    stop();
    assert.deepEqual(log, [
      'mid:prePatch:s',
      'module.patched-on-load',
      'transition.completed',
      'mid:postPatch:s',
    ]);
  });
});
