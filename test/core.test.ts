/**
 * The patch core: catalogue scenarios 1–4 (basic, stacking, atomic replace, late modules), the
 * lifecycle's error cases, transactional enable, and the event sequences operators follow.
 */
import assert from 'node:assert/strict';
import { describe, it, beforeEach } from 'node:test';
import { getCore } from '../src/core/api.ts';
import {
  applyPatch,
  callContext,
  listPatches,
  loadPatch,
  PatchError,
  PatchDefinitionError,
  type PatchHandle,
} from '../src/index.ts';
import { loadCjs, loadEsm, pathFor, sha256 } from './support/instrumented.ts';
import { cleanupPatches, recordEvents } from './support/patches.ts';

getCore().events.setLog('off');

const calcSource = `
function add(a, b) { return a + b; }
function mul(a, b) { return a * b; }
exports.add = add; exports.mul = mul;
exports.sum = (xs) => xs.reduce((s, x) => add(s, x), 0);
`;

describe('scenario 1: basic enable, disable, remove', () => {
  beforeEach(cleanupPatches);
  it('changes behaviour on enable, reverts on disable, and the removed handle reports it', async () => {
    const m = loadCjs<{ add(a: number, b: number): number; sum(xs: number[]): number }>(calcSource);
    const captured = m.exports.add;
    const p = loadPatch({
      name: 'fix-add',
      objects: [
        {
          module: m.file,
          hash: sha256(calcSource),
          functions: [{ name: 'add', replacement: (a: number, b: number) => a + b + 1000 }],
        },
      ],
    });
    assert.equal(p.status, 'disabled');
    assert.equal(captured(1, 2), 3);
    await p.enable();
    assert.equal(p.status, 'enabled');
    assert.equal(
      captured(1, 2),
      1003,
      'a reference captured before enabling calls the new version',
    );
    assert.equal(m.exports.sum([1, 2]), 2003, 'internal callers call the new version too');
    await p.disable();
    assert.equal(captured(1, 2), 3);
    p.remove();
    assert.equal(p.status, 'removed');
    await assert.rejects(
      p.enable(),
      (e: PatchError) => e.code === 'EREMOVED' && /was removed/.test(e.message),
    );
    assert.throws(
      () => p.info(),
      (e: PatchError) => e.code === 'EREMOVED',
    );
    assert.equal(listPatches().length, 0);
  });

  it('writing the current state is an error, and a patch must be disabled before removal', async () => {
    const m = loadCjs(calcSource);
    const p = loadPatch({
      name: 'twice',
      objects: [{ module: m.file, functions: [{ name: 'add', replacement: () => 0 }] }],
    });
    await assert.rejects(p.disable(), (e: PatchError) => e.code === 'EALREADY');
    await p.enable();
    await assert.rejects(p.enable(), (e: PatchError) => e.code === 'EALREADY');
    assert.throws(
      () => p.remove(),
      (e: PatchError) => e.code === 'EBUSY' && /disable it before removing/.test(e.message),
    );
  });

  it('emits the documented event sequence', async () => {
    const m = loadCjs(calcSource);
    const { events, stop } = recordEvents();
    const p = loadPatch({
      name: 'evts',
      objects: [{ module: m.file, functions: [{ name: 'mul', replacement: () => 0 }] }],
    });
    await p.enable();
    await p.disable();
    p.remove();
    stop();
    assert.deepEqual(
      events.map((e) => e.type),
      // As the kernel: redirect (object.patched), then start the transition; unpatch at its end.
      // Here the only task is the idle root task: it switches at the first check.
      [
        'patch.loaded',
        'patch.enabling',
        'object.patched',
        'transition.started',
        'transition.tasks-switched',
        'transition.completed',
        'patch.enabled',
        'patch.disabling',
        'transition.started',
        'transition.tasks-switched',
        'object.unpatched',
        'transition.completed',
        'patch.disabled',
        'patch.removed',
      ],
    );
    const patched = events.find((e) => e.type === 'object.patched')!;
    assert.deepEqual(patched.functions, ['mul']);
    assert.equal(patched.patch, 'evts');
  });
});

describe('scenario 2: stacking', () => {
  beforeEach(cleanupPatches);
  it('newest enabled patch wins; disabling it exposes the one below', async () => {
    const m = loadCjs<{ add(a: number, b: number): number }>(calcSource);
    const a = await applyPatch({
      name: 'A',
      objects: [{ module: m.file, functions: [{ name: 'add', replacement: () => 'A' }] }],
    });
    const b = await applyPatch({
      name: 'B',
      objects: [{ module: m.file, functions: [{ name: 'add', replacement: () => 'B' }] }],
    });
    assert.equal(m.exports.add(1, 1), 'B');
    assert.deepEqual(
      listPatches().map((p) => [p.name, p.stackOrder]),
      [
        ['A', 1],
        ['B', 2],
      ],
    );
    await b.disable();
    assert.equal(m.exports.add(1, 1), 'A');
    await b.enable();
    assert.equal(m.exports.add(1, 1), 'B', 're-enabled patch goes back on top');
    await a.disable();
    assert.equal(m.exports.add(1, 1), 'B', 'disabling a lower patch leaves the top one in force');
    await b.disable();
    assert.equal(m.exports.add(1, 1), 2);
  });

  it('a replacement reaches the version below it through callContext().original', async () => {
    const m = loadCjs<{ add(a: number, b: number): number }>(calcSource);
    await applyPatch({
      name: 'double',
      objects: [
        {
          module: m.file,
          functions: [
            {
              name: 'add',
              replacement(a: number, b: number) {
                return (callContext().original(a, b) as number) * 2;
              },
            },
          ],
        },
      ],
    });
    await applyPatch({
      name: 'plus1',
      objects: [
        {
          module: m.file,
          functions: [
            {
              name: 'add',
              replacement(a: number, b: number) {
                return (callContext().original(a, b) as number) + 1;
              },
            },
          ],
        },
      ],
    });
    assert.equal(m.exports.add(2, 3), 11);
  });
});

describe('scenario 3: atomic replace', () => {
  beforeEach(cleanupPatches);
  it('a replace patch takes over: unnamed functions run the original, older patches go away', async () => {
    const m = loadCjs<{ add(a: number, b: number): number; mul(a: number, b: number): number }>(
      calcSource,
    );
    const a = await applyPatch({
      name: 'A',
      objects: [
        {
          module: m.file,
          functions: [
            { name: 'add', replacement: () => 'A-add' },
            { name: 'mul', replacement: () => 'A-mul' },
          ],
        },
      ],
    });
    const { events, stop } = recordEvents();
    const b = await applyPatch({
      name: 'B',
      replace: true,
      objects: [{ module: m.file, functions: [{ name: 'mul', replacement: () => 'B-mul' }] }],
    });
    stop();
    assert.equal(m.exports.add(2, 3), 5, 'f runs the original');
    assert.equal(m.exports.mul(2, 3), 'B-mul', 'g runs B');
    assert.equal(a.status, 'removed');
    assert.deepEqual(
      listPatches().map((p) => p.name),
      ['B'],
    );
    const info = b.info();
    assert.deepEqual(
      info.objects.flatMap((o) => o.functions.map((f) => [f.name, f.nop])),
      [['mul', false]],
      'no-op entries are discarded after the transition',
    );
    const removed = events.find((e) => e.type === 'patch.removed');
    assert.equal(removed?.patch, 'A');
    assert.match(String(removed?.reason), /replaced by 'B'/);
  });

  it('replace over patches of two modules creates no-op objects for the module it does not name', async () => {
    const m1 = loadCjs<{ add(a: number, b: number): number }>(calcSource);
    const m2 = loadCjs<{ add(a: number, b: number): number }>(calcSource);
    await applyPatch({
      name: 'A',
      objects: [
        { module: m1.file, functions: [{ name: 'add', replacement: () => 'A1' }] },
        { module: m2.file, functions: [{ name: 'add', replacement: () => 'A2' }] },
      ],
    });
    await applyPatch({
      name: 'B',
      replace: true,
      objects: [{ module: m1.file, functions: [{ name: 'mul', replacement: () => 'B' }] }],
    });
    assert.equal(m1.exports.add(1, 1), 2);
    assert.equal(m2.exports.add(1, 1), 2);
  });

  it('disabling the replace patch leaves the original everywhere', async () => {
    const m = loadCjs<{ add(a: number, b: number): number }>(calcSource);
    await applyPatch({
      name: 'A',
      objects: [{ module: m.file, functions: [{ name: 'add', replacement: () => 'A' }] }],
    });
    const b = await applyPatch({ name: 'B', replace: true, objects: [] });
    assert.equal(m.exports.add(1, 1), 2);
    await b.disable();
    assert.equal(m.exports.add(1, 1), 2);
  });
});

describe('scenario 4: modules that load later', () => {
  beforeEach(cleanupPatches);
  it('patches a CommonJS module before its own top-level code runs', async () => {
    const src = `function version() { return 'old'; } exports.atLoad = version(); exports.version = version;`;
    const file = pathFor('late-cjs', 'commonjs');
    const { events, stop } = recordEvents();
    await applyPatch({
      name: 'late',
      objects: [
        {
          module: file,
          hash: sha256(src),
          functions: [{ name: 'version', replacement: () => 'new' }],
        },
      ],
    });
    assert.equal(listPatches()[0]!.objects[0]!.patched, false);
    const m = loadCjs<{ atLoad: string; version(): string }>(src, 'late-cjs');
    stop();
    assert.equal(
      m.exports.atLoad,
      'new',
      "the module's top-level code already called the patched version",
    );
    assert.equal(m.exports.version(), 'new');
    assert.equal(listPatches()[0]!.objects[0]!.patched, true);
    assert.ok(events.some((e) => e.type === 'module.patched-on-load' && e.patch === 'late'));
  });

  it('patches an ES module before its body runs', async () => {
    const src = `export function version() { return 'old'; } export const atLoad = version();`;
    const file = pathFor('late-esm', 'module');
    await applyPatch({
      name: 'late-esm',
      objects: [{ module: file, functions: [{ name: 'version', replacement: () => 'new' }] }],
    });
    const m = await loadEsm<{ atLoad: string }>(src, 'late-esm');
    assert.equal(m.exports.atLoad, 'new');
  });

  it('fails the load with an error naming the patch and the function when it cannot patch', async () => {
    const src = `function other() {} exports.other = other;`;
    const file = pathFor('late-bad', 'commonjs');
    const { events, stop } = recordEvents();
    await applyPatch({
      name: 'needs-missing',
      objects: [{ module: file, functions: [{ name: 'missing', replacement: () => 0 }] }],
    });
    assert.throws(
      () => loadCjs(src, 'late-bad'),
      (e: Error) => /cannot load .*late-bad\.cjs.*needs-missing.*'missing'/s.test(e.message),
    );
    stop();
    assert.ok(events.some((e) => e.type === 'module.load-refused'));
  });

  it('fails the load when the late module is another version than the patch was built for', async () => {
    const src = `function f() {} exports.f = f;`;
    const file = pathFor('late-hash', 'commonjs');
    await applyPatch({
      name: 'wrong-hash',
      objects: [
        {
          module: file,
          hash: sha256('something else'),
          functions: [{ name: 'f', replacement: () => 0 }],
        },
      ],
    });
    assert.throws(() => loadCjs(src, 'late-hash'), /wrong-hash.*another version/s);
  });
});

describe('transactional enable and bad input', () => {
  beforeEach(cleanupPatches);
  it('refuses a wrong target hash and changes nothing', async () => {
    const m = loadCjs<{ add(a: number, b: number): number; mul(a: number, b: number): number }>(
      calcSource,
    );
    const p = loadPatch({
      name: 'bad-hash',
      objects: [
        { module: m.file, hash: sha256('x'), functions: [{ name: 'add', replacement: () => 0 }] },
      ],
    });
    await assert.rejects(
      async () => p.enable(),
      (e: PatchError) => e.code === 'EHASH' && /rebuild the patch/.test(e.message),
    );
    assert.equal(p.status, 'disabled');
    assert.equal(m.exports.add(1, 1), 2);
  });

  it('refuses when one of several functions is missing, leaving the others untouched', async () => {
    const m = loadCjs<{ add(a: number, b: number): number }>(calcSource);
    const p = loadPatch({
      name: 'partial',
      objects: [
        {
          module: m.file,
          functions: [
            { name: 'add', replacement: () => 'new' },
            { name: 'nope', replacement: () => 0 },
          ],
        },
      ],
    });
    await assert.rejects(
      async () => p.enable(),
      (e: PatchError) => e.code === 'ENOFUNCTION' && /no function 'nope'/.test(e.message),
    );
    assert.equal(m.exports.add(1, 1), 2, 'the resolvable function was not redirected');
    assert.equal(p.status, 'disabled');
  });

  it('refuses an ambiguous name and says how to name each function', async () => {
    const m = loadCjs(`exports.a = [1].map(() => 1); exports.b = [2].map(() => 2);`);
    const p = loadPatch({
      name: 'amb',
      objects: [{ module: m.file, functions: [{ name: 'map()', replacement: () => 0 }] }],
    });
    await assert.rejects(async () => p.enable(), /ambiguous.*map\(\),1.*map\(\),2/s);
  });

  it('refuses a second patch with the same name, and malformed definitions with the field named', () => {
    loadPatch({ name: 'dup', objects: [] });
    assert.throws(
      () => loadPatch({ name: 'dup', objects: [] }),
      (e: PatchError) => e.code === 'EEXIST',
    );
    assert.throws(() => loadPatch({ name: '', objects: [] }), PatchDefinitionError);
    assert.throws(
      () =>
        loadPatch({
          name: 'x',
          objects: [{ module: 'a.js', functions: [{ name: 'f', replacement: 42 as never }] }],
        }),
      /objects\[0\]\.functions\[0\]\.replacement/,
    );
    assert.throws(
      () => loadPatch({ name: 'x', objects: [{ module: 'a.js', hash: 'abc', functions: [] }] }),
      /hash must be the sha256/,
    );
  });

  it('refuses a replacement of the wrong kind for a generator', async () => {
    const m = loadCjs(`function* g() { yield 1; } exports.g = g;`);
    const p = loadPatch({
      name: 'kind',
      objects: [{ module: m.file, functions: [{ name: 'g', replacement: () => [1] }] }],
    });
    await assert.rejects(
      async () => p.enable(),
      (e: PatchError) => e.code === 'EKIND',
    );
  });

  it('accepts a module that is not loaded yet: enabling waits for it (a late module)', async () => {
    const p = loadPatch({
      name: 'nomod',
      objects: [
        { module: 'src/does-not-exist.js', functions: [{ name: 'f', replacement: () => 0 }] },
      ],
    });
    await p.enable();
    assert.equal(p.info().objects[0]!.loaded, 0);
    assert.equal(p.info().objects[0]!.patched, false);
  });

  it('a direct redirect() of a module that is not loaded names the fix', async () => {
    const { redirect } = await import('../src/index.ts');
    assert.throws(
      () => redirect({ module: 'src/does-not-exist.js', function: 'f' }, () => 0),
      (e: Error & { code?: string }) =>
        e.code === 'ENOMODULE' && /Name it by path relative to the app root/.test(e.message),
    );
  });
});

describe('handles stay safe', () => {
  beforeEach(cleanupPatches);
  it('a handle to a removed patch never affects a new patch of the same name', async () => {
    const m = loadCjs<{ add(a: number, b: number): number }>(calcSource);
    const old: PatchHandle = loadPatch({ name: 'same', objects: [] });
    old.remove();
    const fresh = await applyPatch({
      name: 'same',
      objects: [{ module: m.file, functions: [{ name: 'add', replacement: () => 'fresh' }] }],
    });
    await assert.rejects(old.disable(), (e: PatchError) => e.code === 'EREMOVED');
    assert.equal(fresh.status, 'enabled');
    assert.equal(m.exports.add(1, 1), 'fresh');
  });
});

describe('event log output', () => {
  it('writes human lines by default, JSON lines on request, nothing when off', async () => {
    const { EventBus } = await import('../src/core/events.ts');
    const lines: string[] = [];
    const bus = new EventBus('human', (l) => lines.push(l));
    bus.emit('patch.enabled', { patch: 'fix-auth' });
    bus.setLog('json');
    bus.emit('object.patched', { patch: 'fix-auth', module: 'src/auth.js', functions: ['check'] });
    bus.setLog('off');
    bus.emit('patch.removed', { patch: 'fix-auth' });
    assert.equal(lines.length, 2);
    assert.equal(lines[0], "livepatch: patch 'fix-auth' enabled");
    const json = JSON.parse(lines[1]!) as Record<string, unknown>;
    assert.equal(json['type'], 'object.patched');
    assert.deepEqual(json['functions'], ['check']);
    assert.match(String(json['time']), /^\d{4}-\d{2}-\d{2}T/);
  });

  it('a throwing subscriber does not break the operation', async () => {
    const { EventBus } = await import('../src/core/events.ts');
    const bus = new EventBus('off');
    const seen: string[] = [];
    bus.on(() => {
      throw new Error('subscriber bug');
    });
    bus.on((e) => seen.push(e.type));
    const warned = new Promise<Error>((resolve) => process.once('warning', resolve));
    bus.emit('patch.loaded', { patch: 'x' });
    assert.deepEqual(seen, ['patch.loaded']);
    assert.match((await warned).message, /listener threw on patch\.loaded/);
  });
});
