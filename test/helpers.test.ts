import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';

import { Deferred, Gate } from './helpers/gate.ts';
import { fixture, fixturesDir, nodeBin, repoRoot, runNode } from './helpers/node.ts';

describe('test helpers: Gate', () => {
  test('a waiter resolves only after open(), with the value given', async () => {
    const gate = new Gate<string>();
    const events: string[] = [];
    const waiter = gate.wait().then((value) => events.push(`released:${value}`));
    assert.equal(gate.waiters, 1);

    // Let every pending microtask and I/O callback run: the waiter must still be blocked.
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(events.length, 0);
    assert.equal(gate.opened, false);

    events.push('opening');
    gate.open('go');
    assert.equal(gate.opened, true);
    await waiter;
    assert.deepEqual(events, ['opening', 'released:go']);
  });

  test('waiting on an open gate resolves at once; opening twice throws', async () => {
    const gate = new Gate();
    gate.open();
    await gate.wait();
    assert.throws(() => gate.open(), /already open/);
  });

  test('many waiters are released together', async () => {
    const gate = new Gate<number>();
    const all = Promise.all([gate.wait(), gate.wait(), gate.wait()]);
    gate.open(7);
    assert.deepEqual(await all, [7, 7, 7]);
  });
});

describe('test helpers: Deferred', () => {
  test('resolve settles the promise', async () => {
    const d = new Deferred<number>();
    assert.equal(d.settled, false);
    d.resolve(42);
    assert.equal(d.settled, true);
    assert.equal(await d.promise, 42);
  });

  test('reject settles the promise with the reason', async () => {
    const d = new Deferred();
    d.reject(new Error('boom'));
    assert.equal(d.settled, true);
    await assert.rejects(d.promise, /boom/);
  });
});

describe('test helpers: runNode', () => {
  test('runs the test binary and collects stdout and the exit code', async () => {
    const result = await runNode(['-e', 'console.log(1)']);
    assert.deepEqual(result, { code: 0, signal: null, stdout: '1\n', stderr: '' });
  });

  test('reports a non-zero exit code and stderr', async () => {
    const result = await runNode(['-e', 'console.error("bad"); process.exit(3)']);
    assert.equal(result.code, 3);
    assert.equal(result.stderr, 'bad\n');
  });

  test('passes input, cwd and env to the child and hides the test runner marker', async () => {
    const script = `
      let data = '';
      process.stdin.setEncoding('utf8');
      process.stdin.on('data', (chunk) => (data += chunk));
      process.stdin.on('end', () => {
        console.log(JSON.stringify({
          input: data,
          cwd: process.cwd(),
          extra: process.env.LIVEPATCH_TEST_EXTRA,
          marker: process.env.NODE_TEST_CONTEXT ?? null,
          execPath: process.execPath,
        }));
      });
    `;
    const result = await runNode(['-e', script], {
      cwd: repoRoot,
      env: { LIVEPATCH_TEST_EXTRA: 'yes' },
      input: 'hello',
    });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), {
      input: 'hello',
      cwd: repoRoot,
      extra: 'yes',
      marker: null,
      execPath: nodeBin,
    });
  });

  test('fixture() resolves under test/fixtures', () => {
    assert.equal(fixturesDir, path.join(repoRoot, 'test', 'fixtures'));
    assert.equal(fixture('a', 'b.ts'), path.join(repoRoot, 'test', 'fixtures', 'a', 'b.ts'));
  });
});
