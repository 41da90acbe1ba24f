/**
 * Shared by the consistency tests: the module they patch and its patch, a way to let pending
 * work run without timing, and a transition of an unrelated patch held open by a bounded task, so
 * that frames begun meanwhile are counted per task (they are only while a transition runs).
 */
import assert from 'node:assert/strict';
import { getCore } from '../../src/core/api.ts';
import { loadPatch, onEvent, runTask, type LivepatchEvent } from '../../src/index.ts';
import { Deferred } from '../helpers/gate.ts';
import { loadCjs } from './instrumented.ts';

/** A sync function, an async one that calls it across an await, and a generator that calls it. */
export const source = `
function step() { return 'old'; }
async function loop(gate) { const a = step(); await gate; const b = step(); return [a, b]; }
function* gen() { yield step(); yield step(); }
exports.step = step; exports.loop = loop; exports.gen = gen;
`;
export type Mod = {
  step(): string;
  loop(gate: Promise<void>): Promise<string[]>;
  gen(): Generator<string>;
};

/** A patch of all three functions of `source`, whose versions return `tag`. */
export function patchFor(
  m: { file: string },
  name = 'v2',
  tag = 'new',
): Parameters<typeof loadPatch>[0] {
  return {
    name,
    objects: [
      {
        module: m.file,
        functions: [
          { name: 'step', replacement: () => tag },
          { name: 'loop', replacement: async () => [tag, tag] },
          {
            name: 'gen',
            replacement: function* () {
              yield tag;
            },
          },
        ],
      },
    ],
  };
}

/** Lets pending microtasks and immediates run (no timing involved). */
export function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Whether a promise has settled, readable synchronously. */
export function settled(p: Promise<unknown>): { readonly done: boolean } {
  const state = { done: false };
  p.then(
    () => (state.done = true),
    () => (state.done = true),
  );
  return state;
}

/**
 * Enables `patch` with stall warnings after 1 ms and returns the first `transition.stalled`
 * event, and the enable() promise. The stall timer is unref'd (a stuck transition must
 * not keep a process alive), so the event loop is held open while waiting for it.
 */
export async function enableUntilStalled(
  patch: Parameters<typeof loadPatch>[0],
): Promise<{ event: LivepatchEvent; enabling: Promise<unknown> }> {
  getCore().configureTransitions({ warnAfterMs: 1 });
  const stalled = new Deferred<LivepatchEvent>();
  const stop = onEvent((e) => {
    if (e.type === 'transition.stalled') stalled.resolve(e);
  });
  const enabling = loadPatch(patch).enable();
  const keepAlive = setInterval(() => undefined, 60_000);
  try {
    return { event: await stalled.promise, enabling };
  } finally {
    clearInterval(keepAlive);
    stop();
    getCore().configureTransitions({ warnAfterMs: 0 });
  }
}

export interface HeldTransition {
  /** Lets the holding task end and waits for the transition to complete. */
  complete(): Promise<void>;
}

let held = 0;

export async function holdTransition(): Promise<HeldTransition> {
  const m = loadCjs<{ unrelated(): string }>(
    `function unrelated() { return 'old'; } exports.unrelated = unrelated;`,
  );
  const release = new Deferred<void>();
  const holder = runTask(() => release.promise, { label: 'holder' });
  const enabling = loadPatch({
    name: `unrelated-${++held}`,
    objects: [{ module: m.file, functions: [{ name: 'unrelated', replacement: () => 'new' }] }],
  }).enable();
  await new Promise((resolve) => setImmediate(resolve));
  assert.notEqual(getCore().currentTransition, null, 'the holding transition runs');
  return {
    async complete() {
      release.resolve();
      await holder;
      await enabling;
    },
  };
}
