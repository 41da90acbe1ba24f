/**
 * The demo and the examples run as users run them (`livepatch run …`) and show what they claim.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { repoRoot, runNode } from './helpers/node.ts';

async function runExample(
  entry: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runNode(['src/cli/main.ts', 'run', entry], {
    cwd: repoRoot,
    env: { LIVEPATCH_LOG: 'off', LIVEPATCH_CACHE: '0' },
  });
}

describe('examples', () => {
  it('the demo fixes a running service without a restart and no request sees a mix', async () => {
    const r = await runExample('examples/demo/main.ts');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /alice pays 42/);
    assert.match(r.stdout, /refused before any of its code runs: EBADSIGNATURE/);
    assert.match(r.stdout, /1 task\(s\) still on the old side: GET \/checkout\?user=bob/);
    assert.match(r.stdout, /carol, who started after, pays 54/);
    assert.match(r.stdout, /bob quoted and charged \[42,42\]/);
    assert.match(r.stdout, /erin pays 42 \(the original again\)/);
    assert.match(r.stdout, /demo complete/);
  });

  it('shadow-field: a patch adds a field to live objects, freed with its state', async () => {
    const r = await runExample('examples/shadow-field/main.ts');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      /patched: alice: 2 requests, last used at t=1001 \| bob: 1 requests, last used at t=1002/,
    );
    assert.match(r.stdout, /disabled: alice: 2 requests \| shadow variables: 0/);
  });

  it('replace-lock: a lock in a state-owned shadow variable survives atomic replace', async () => {
    const r = await runExample('examples/replace-lock/main.ts');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /unpatched: two concurrent increments give 1 \(one update lost\)/);
    assert.match(r.stdout, /v1: two concurrent increments give 3/);
    assert.match(r.stdout, /same lock object after replace: true \(created by v1\)/);
    assert.match(r.stdout, /after disabling v2 the lock is freed: true/);
  });
});
