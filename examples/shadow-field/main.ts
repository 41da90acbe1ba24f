/**
 * Example: a patch adds a field to objects that already exist. Session objects were created
 * before the patch and have no `lastUsed` field; the patch attaches one to each as a shadow
 * variable owned by a state, so disabling the patch frees every one of them.
 * Run: node src/cli/main.ts run examples/shadow-field/main.ts
 */
import { applyPatch, callContext, shadow, shadowId } from '../../src/index.ts';
import { all, describe, open, touch } from './sessions.js';

const lastUsed = shadowId<{ at: number }>('session-last-used');
let clock = 1000; // a deterministic clock for the example

const alice = open('alice');
touch(alice);
console.log('before:', describe(alice));

const patch = await applyPatch({
  name: 'session-last-used',
  objects: [
    {
      module: 'examples/shadow-field/sessions.js',
      functions: [
        {
          name: 'touch',
          replacement(session: { requests: number }) {
            const count = callContext().original(session) as number;
            shadow.getOrAlloc(session, lastUsed, () => ({ at: 0 })).at = ++clock;
            return count;
          },
        },
        {
          name: 'describe',
          replacement(session: object) {
            const original = callContext().original(session) as string;
            const seen = shadow.get(session, lastUsed);
            return seen === undefined
              ? `${original}, never used since the patch`
              : `${original}, last used at t=${seen.at}`;
          },
        },
      ],
    },
  ],
  // The state owns the shadow variable of the same id: removing the state frees them all.
  states: [{ id: 'session-last-used', ownsShadow: true }],
});

const bob = open('bob');
console.log('patched, untouched:', describe(alice));
touch(alice);
touch(bob);
console.log('patched:', all().map(describe).join(' | '));
console.log('shadow variables:', shadow.count(lastUsed));

await patch.disable();
console.log('disabled:', describe(alice), '| shadow variables:', shadow.count(lastUsed));
patch.remove();
