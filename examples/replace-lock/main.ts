/**
 * Example: a lock that survives atomic replace. Patch v1 serializes `increment` with a lock kept
 * in a shadow variable owned by state 'counter-lock'. Patch v2 replaces v1 atomically and keeps
 * the state: no callback runs, the same lock object stays in force (calls queued on it keep their
 * order), and v2 changes only the step. Disabling v2 removes the state and frees the lock.
 * Run: node src/cli/main.ts run examples/replace-lock/main.ts
 */
import {
  applyPatch,
  callContext,
  shadow,
  shadowId,
  type StateDefinition,
} from '../../src/index.ts';
import * as counter from './counter.js';

interface Lock {
  tail: Promise<unknown>;
  created: string;
}
const lockId = shadowId<Lock>('counter-lock');
// Shadow variables hang off an object; the module's exports object stands for "the counter".
const owner = counter as object;

const lockState = (patch: string): StateDefinition => ({
  id: 'counter-lock',
  ownsShadow: true,
  prePatch: () => {
    shadow.getOrAlloc(owner, lockId, () => ({ tail: Promise.resolve(), created: patch }));
  },
});

function serialized(multiplier: number) {
  return function (this: unknown, step: number): Promise<number> {
    const ctx = callContext();
    const lock = shadow.get(owner, lockId)!;
    const run = lock.tail.then(() => ctx.original(step * multiplier) as Promise<number>);
    lock.tail = run.catch(() => undefined);
    return run;
  };
}

await Promise.all([counter.increment(1), counter.increment(1)]);
console.log('unpatched: two concurrent increments give', counter.current(), '(one update lost)');

await applyPatch({
  name: 'counter-lock-v1',
  objects: [
    {
      module: 'examples/replace-lock/counter.js',
      functions: [{ name: 'increment', replacement: serialized(1) }],
    },
  ],
  states: [lockState('v1')],
});
await Promise.all([counter.increment(1), counter.increment(1)]);
console.log('v1: two concurrent increments give', counter.current());
const lockOfV1 = shadow.get(owner, lockId);

const v2 = await applyPatch({
  name: 'counter-lock-v2',
  replace: true,
  objects: [
    {
      module: 'examples/replace-lock/counter.js',
      functions: [{ name: 'increment', replacement: serialized(10) }],
    },
  ],
  states: [lockState('v2')],
});
await Promise.all([counter.increment(1), counter.increment(1)]);
const lockOfV2 = shadow.get(owner, lockId);
console.log('v2 (atomic replace): two concurrent increments of 10 give', counter.current());
console.log(
  'same lock object after replace:',
  lockOfV1 === lockOfV2,
  `(created by ${lockOfV2?.created})`,
);

await v2.disable();
console.log('after disabling v2 the lock is freed:', shadow.get(owner, lockId) === undefined);
v2.remove();
