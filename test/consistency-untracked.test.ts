/**
 * Frames that began while no transition ran: only their count per function is known, not their
 * task (docs/consistency.md, "How frames are known"). Each one holds every unbounded task that
 * existed when the transition started, until it ends; tasks started during the transition, and
 * bounded tasks, are not affected. Also: frames begun during an earlier transition, reverse and
 * force with such frames live, and what the stall report says. Concurrency is driven by explicit
 * gates, never by time.
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { getCore } from '../src/core/api.ts';
import { humanLine } from '../src/core/events.ts';
import { loadPatch, PatchError, runTask, runUnbounded, transitionStatus } from '../src/index.ts';
import { Deferred } from './helpers/gate.ts';
import { loadCjs, type Loaded } from './support/instrumented.ts';
import { cleanupPatches } from './support/patches.ts';
import {
  enableUntilStalled,
  holdTransition,
  patchFor,
  settled,
  source,
  turn,
  type Mod,
} from './support/transitions.ts';

getCore().events.setLog('off');
getCore().configureTransitions({ retryMs: 0, warnAfterMs: 0 });

/**
 * A module with a worker suspended in `loop` (its frame began between transitions), and a patch
 * of it whose transition has started and is held by that frame.
 */
async function transitionHeldByWorker(): Promise<{
  m: Loaded<Mod>;
  inLoop: Deferred<void>;
  worker: Promise<string[]>;
  p: ReturnType<typeof loadPatch>;
  enabling: ReturnType<ReturnType<typeof loadPatch>['enable']>;
}> {
  const m = loadCjs<Mod>(source);
  const inLoop = new Deferred<void>();
  const worker = suspendedInLoop(m, inLoop);
  const p = loadPatch(patchFor(m));
  const enabling = p.enable();
  await turn();
  return { m, inLoop, worker, p, enabling };
}

/** An unbounded task suspended in `loop` until `gate` resolves; its frame begins now. */
function suspendedInLoop(
  m: Loaded<Mod>,
  gate: Deferred<void>,
  label = 'worker',
): Promise<string[]> {
  return runUnbounded(label, async (end) => {
    const seen = await m.exports.loop(gate.promise);
    end();
    return seen;
  });
}

describe('frames that began before the transition', () => {
  beforeEach(cleanupPatches);

  it('a suspended async frame begun before the transition holds every unbounded task that existed then, until it ends; the report names it', async () => {
    const m = loadCjs<Mod>(source);
    const fn = `loop in ${m.module.displayName}`;
    const inLoop = new Deferred<void>();
    const worker = suspendedInLoop(m, inLoop);
    const otherGate = new Deferred<void>();
    const other = runUnbounded('other', async (end) => {
      await otherGate.promise;
      const v = m.exports.step();
      end();
      return v;
    });
    const p = loadPatch(patchFor(m));
    const enabling = p.enable();
    const enabled = settled(enabling);
    await turn();
    const report = transitionStatus()!;
    const held = { function: fn, count: 1, owner: 'not tracked' };
    assert.deepEqual(report.untracked, [held]);
    assert.deepEqual(
      report.pending.map((t) => [t.label, t.kind, t.reason, t.frames]),
      ['main', 'worker', 'other'].map((label) => [
        label,
        'unbounded',
        'frames begun before the transition',
        [held],
      ]),
      'the frame is not attributed: every unbounded task that existed holds it',
    );
    otherGate.resolve();
    assert.equal(
      await other,
      'old',
      'a task inside no patched frame still waits: the owner of the frame is not known',
    );
    assert.equal(m.exports.step(), 'old', 'the root task waits too');
    await turn();
    assert.equal(enabled.done, false, 'the transition waits for the frame');
    inLoop.resolve();
    assert.deepEqual(await worker, ['old', 'old'], 'the frame ran old code to its end');
    await enabling;
    assert.equal(m.exports.step(), 'new');
    assert.equal(transitionStatus(), null);
  });

  it('a task started during the transition is not held by frames that began before it', async () => {
    const { m, inLoop, worker, enabling } = await transitionHeldByWorker();
    const go = new Deferred<void>();
    const late = runUnbounded('late', async (end) => {
      await go.promise;
      const seen = [m.exports.step(), ...(await m.exports.loop(Promise.resolve()))];
      end();
      return seen;
    });
    const request = runTask(async () => {
      await go.promise;
      return m.exports.step();
    });
    assert.ok(
      transitionStatus()!.pending.every((t) => t.label !== 'late'),
      'a new task starts on the target side',
    );
    go.resolve();
    assert.deepEqual(await late, ['new', 'new', 'new']);
    assert.equal(await request, 'new');
    inLoop.resolve();
    assert.deepEqual(await worker, ['old', 'old']);
    await enabling;
  });

  it('a bounded task keeps its side until it ends; its frame begun before the transition holds the unbounded tasks meanwhile', async () => {
    const m = loadCjs<Mod>(source);
    const inLoop = new Deferred<void>();
    const job = runTask(() => m.exports.loop(inLoop.promise), { label: 'job' });
    const p = loadPatch(patchFor(m));
    const enabling = p.enable();
    const enabled = settled(enabling);
    await turn();
    const report = transitionStatus()!;
    assert.deepEqual(
      report.pending.map((t) => [t.label, t.reason]),
      [
        ['main', 'frames begun before the transition'],
        ['job', 'in flight'],
      ],
    );
    assert.deepEqual(
      report.pending[1]!.frames,
      [],
      'a bounded task waits for its end, not for frames',
    );
    inLoop.resolve();
    assert.deepEqual(await job, ['old', 'old']);
    await enabling;
    assert.equal(enabled.done, true);
    assert.equal(m.exports.step(), 'new');
  });

  it('a generator held open since before the transition holds it until it is closed', async () => {
    const m = loadCjs<Mod>(source);
    const it = m.exports.gen();
    assert.equal(it.next().value, 'old');
    const p = loadPatch(patchFor(m));
    const enabling = p.enable();
    const enabled = settled(enabling);
    await turn();
    assert.deepEqual(transitionStatus()!.untracked, [
      { function: `gen in ${m.module.displayName}`, count: 1, owner: 'not tracked' },
    ]);
    assert.equal(enabled.done, false);
    it.return(undefined);
    await enabling;
    assert.equal(enabled.done, true, 'closing the generator ended its frame');
  });

  it('names the frames in the stall event', async () => {
    const m = loadCjs<Mod>(source);
    const inLoop = new Deferred<void>();
    const worker = suspendedInLoop(m, inLoop);
    const { event, enabling } = await enableUntilStalled(patchFor(m));
    const report = event['report'] as { untracked: { function: string; count: number }[] };
    assert.deepEqual(
      report.untracked.map((f) => [f.function, f.count]),
      [[`loop in ${m.module.displayName}`, 1]],
    );
    assert.match(
      humanLine(event),
      new RegExp(
        `main \\(frames begun before the transition: loop in ${m.module.displayName.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\)`,
      ),
    );
    inLoop.resolve();
    await worker;
    await enabling;
  });
});

describe('frames that began during an earlier transition', () => {
  beforeEach(cleanupPatches);

  it('stay counted per task: only their task is held, and it switches when the frame ends', async () => {
    const m = loadCjs<Mod>(source);
    const earlier = await holdTransition();
    const inLoop = new Deferred<void>();
    const worker = suspendedInLoop(m, inLoop);
    const untrackedGate = new Deferred<void>();
    await earlier.complete();
    // This one begins between transitions: not tracked.
    const second = suspendedInLoop(m, untrackedGate, 'second');
    const p = loadPatch(patchFor(m));
    const enabling = p.enable();
    const enabled = settled(enabling);
    await turn();
    const report = transitionStatus()!;
    const fn = `loop in ${m.module.displayName}`;
    assert.deepEqual(
      report.untracked,
      [{ function: fn, count: 1, owner: 'not tracked' }],
      'the frame begun during the earlier transition is not counted here',
    );
    const worker1 = report.pending.find((t) => t.label === 'worker')!;
    assert.equal(worker1.reason, 'live frames');
    assert.deepEqual(worker1.frames, [
      { function: fn, count: 1, owner: 'this task' },
      { function: fn, count: 1, owner: 'not tracked' },
    ]);
    untrackedGate.resolve();
    assert.deepEqual(await second, ['old', 'old']);
    await turn();
    assert.deepEqual(
      transitionStatus()!.pending.map((t) => t.label),
      ['worker'],
      'with the untracked frame gone, only the owner of the tracked one is held',
    );
    inLoop.resolve();
    assert.deepEqual(await worker, ['old', 'old']);
    await enabling;
    assert.equal(enabled.done, true);
  });
});

describe('reverse and force with frames begun before the transition', () => {
  beforeEach(cleanupPatches);

  it('reverse: tasks that never switched are already back; a task started during the transition comes back when its own frames end', async () => {
    const { m, inLoop, worker, p, enabling } = await transitionHeldByWorker();
    // Started during the transition (on the patched side), inside the replacement generator.
    const close = new Deferred<void>();
    const after = new Deferred<void>();
    const late = runUnbounded('late', async (end) => {
      const it = m.exports.gen();
      const first = it.next().value as string;
      await close.promise;
      it.return(undefined);
      await after.promise;
      const then = m.exports.step();
      end();
      return [first, then];
    });
    const disabling = p.disable();
    const disabled = settled(disabling);
    await turn();
    const report = transitionStatus()!;
    assert.deepEqual(
      report.pending.map((t) => [t.label, t.reason]),
      [['late', 'live frames']],
      'the untracked frame holds only tasks that existed when the transition started',
    );
    assert.equal(disabled.done, false);
    close.resolve();
    // The late task is still alive, and so is the frame begun before the transition.
    await disabling;
    await assert.rejects(enabling, (e: PatchError) => e.code === 'EREVERSED');
    after.resolve();
    assert.deepEqual(
      await late,
      ['new', 'old'],
      'the late task kept its side while its frame was live, then came back',
    );
    inLoop.resolve();
    assert.deepEqual(await worker, ['old', 'old']);
  });

  it('force: completes with the frame live; the next transition counts it again', async () => {
    const { m, inLoop, worker, p, enabling } = await transitionHeldByWorker();
    getCore().force();
    await enabling;
    assert.equal(p.info().forced, true);
    assert.equal(m.exports.step(), 'new');
    const disabling = p.disable();
    const disabled = settled(disabling);
    await turn();
    assert.deepEqual(
      transitionStatus()!.untracked.map((f) => f.count),
      [1],
      'the frame is still live and still counted',
    );
    assert.equal(disabled.done, false);
    inLoop.resolve();
    // The worker was forced to the patched side while inside the old frame: its second call runs
    // the new version (the documented consequence of force).
    assert.deepEqual(await worker, ['old', 'new']);
    await disabling;
  });
});
