/**
 * Shared by the consistency tests: a transition of an unrelated patch held open by a bounded task,
 * so that frames begun meanwhile are counted per task (they are only while a transition runs).
 */
import assert from 'node:assert/strict';
import { getCore } from '../../src/core/api.ts';
import { loadPatch, runTask } from '../../src/index.ts';
import { Deferred } from '../helpers/gate.ts';
import { loadCjs } from './instrumented.ts';

export interface HeldTransition {
  /** Lets the holding task end and waits for the transition to complete. */
  complete(): Promise<void>;
}

let held = 0;

export async function holdTransition(): Promise<HeldTransition> {
  const m = loadCjs<{ unrelated(): string }>(`function unrelated() { return 'old'; } exports.unrelated = unrelated;`);
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
