/**
 * The per-task consistency model: catalogue scenarios 6 (consistency), 7 (force and reverse) and
 * 11 (the hammer), a generator held open, real HTTP requests, stall reports, and state teardown
 * after a reversed transition. Concurrency is driven by explicit gates, never by time.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { beforeEach, describe, it } from 'node:test';
import { getCore } from '../src/core/api.ts';
import {
  callContext,
  forceTransition,
  loadPatch,
  onEvent,
  PatchError,
  runTask,
  runUnbounded,
  transitionStatus,
  type LivepatchEvent,
} from '../src/index.ts';
import { Deferred } from './helpers/gate.ts';
import {
  enableUntilStalled,
  holdTransition,
  patchFor,
  settled,
  source,
  turn,
  type Mod,
} from './support/transitions.ts';
import { loadCjs } from './support/instrumented.ts';
import { cleanupPatches } from './support/patches.ts';

getCore().events.setLog('off');
getCore().configureTransitions({ retryMs: 0, warnAfterMs: 0 });

describe('scenario 6: consistency', () => {
  beforeEach(cleanupPatches);

  it('a bounded task in flight finishes on old code, including its later calls; one that starts after runs new code', async () => {
    const m = loadCjs<Mod>(source);
    const gate = new Deferred<void>();
    const inflight = runTask(async () => {
      const a = m.exports.step();
      await gate.promise;
      return [a, m.exports.step()];
    });
    const p = loadPatch(patchFor(m));
    const enabling = p.enable();
    const enabled = settled(enabling);
    await turn();
    assert.deepEqual(
      await runTask(() => [m.exports.step(), m.exports.step()]),
      ['new', 'new'],
      'a task started after enabling runs new code at once',
    );
    assert.equal(enabled.done, false, 'the transition waits for the task in flight');
    const report = transitionStatus()!;
    assert.equal(report.pending.length, 1);
    assert.equal(report.pending[0]!.kind, 'bounded');
    assert.equal(report.pending[0]!.reason, 'in flight');
    gate.resolve();
    assert.deepEqual(await inflight, ['old', 'old'], 'the task in flight never saw new code');
    await enabling;
    assert.equal(p.status, 'enabled');
    assert.equal(transitionStatus(), null);
  });

  it('an unbounded task suspended inside a patched function keeps old code until that frame completes, then switches; one inside none switches at once', async () => {
    const m = loadCjs<Mod>(source);
    // Frames are counted per task only while a transition runs (docs/consistency.md): the tasks
    // begin their frames during the transition of an unrelated patch, which then completes.
    const earlier = await holdTransition();
    const inLoop = new Deferred<void>();
    const afterLoop = new Deferred<void>();
    const worker = runUnbounded('worker', async (end) => {
      const inside = await m.exports.loop(inLoop.promise);
      await afterLoop.promise;
      const later = m.exports.step();
      end();
      return { inside, later };
    });
    const idleGate = new Deferred<void>();
    const idle = runUnbounded('idle', async (end) => {
      await idleGate.promise;
      const v = m.exports.step();
      end();
      return v;
    });
    await earlier.complete();
    const p = loadPatch(patchFor(m));
    const enabling = p.enable();
    const enabled = settled(enabling);
    await turn();
    const pending = transitionStatus()!.pending;
    assert.deepEqual(
      pending.map((t) => t.label),
      ['worker'],
      'only the task inside a patched frame is held',
    );
    assert.deepEqual(pending[0]!.frames, [
      { function: `loop in ${m.module.displayName}`, count: 1, owner: 'this task' },
    ]);
    idleGate.resolve();
    assert.equal(await idle, 'new', 'a task inside no patched frame switched at once');
    assert.equal(enabled.done, false);
    inLoop.resolve();
    await turn();
    afterLoop.resolve();
    assert.deepEqual(await worker, { inside: ['old', 'old'], later: 'new' });
    await enabling;
  });

  it('the transition completes only when the old side is empty', async () => {
    const m = loadCjs<Mod>(source);
    const gates = [new Deferred<void>(), new Deferred<void>()];
    const tasks = gates.map((g) =>
      runTask(async () => {
        await g.promise;
        return m.exports.step();
      }),
    );
    const p = loadPatch(patchFor(m));
    const enabling = p.enable();
    const enabled = settled(enabling);
    await turn();
    assert.equal(transitionStatus()!.pending.length, 2);
    gates[0]!.resolve();
    assert.equal(await tasks[0], 'old');
    await turn();
    assert.equal(enabled.done, false);
    assert.equal(transitionStatus()!.pending.length, 1);
    gates[1]!.resolve();
    assert.equal(await tasks[1], 'old');
    await enabling;
    assert.equal(enabled.done, true);
  });

  it('a generator held open blocks the transition until it finishes', async () => {
    const m = loadCjs<Mod>(source);
    const next = new Deferred<void>();
    const reading = runUnbounded('reader', async (end) => {
      const it = m.exports.gen();
      const first = it.next().value as string;
      await next.promise;
      const second = it.next().value as string;
      it.next();
      end();
      return [first, second];
    });
    const p = loadPatch(patchFor(m));
    const enabling = p.enable();
    await turn();
    const report = transitionStatus()!;
    // The generator began before the transition, so its task is not tracked: it holds every
    // unbounded task that existed then, the root task too (docs/consistency.md).
    assert.deepEqual(
      report.pending.map((t) => t.label),
      ['main', 'reader'],
    );
    assert.match(report.pending[1]!.frames[0]!.function, /^gen in /);
    next.resolve();
    assert.deepEqual(
      await reading,
      ['old', 'old'],
      'the open generator kept old code for its own calls',
    );
    await enabling;
  });

  it('real HTTP requests: one in flight finishes on old code, one that starts after runs new code', async () => {
    const m = loadCjs<Mod>(source);
    const release = new Deferred<void>();
    const arrived = new Deferred<void>();
    const server = http.createServer(async (req, res) => {
      const first = m.exports.step();
      if (req.url === '/slow') {
        arrived.resolve();
        await release.promise;
      }
      res.end(JSON.stringify([first, m.exports.step()]));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const get = (path: string) =>
      new Promise<string>((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
            let body = '';
            res.on('data', (c: Buffer) => (body += c.toString()));
            res.on('end', () => resolve(body));
          })
          .on('error', reject);
      });
    try {
      const slow = get('/slow');
      await arrived.promise;
      const p = loadPatch(patchFor(m));
      const enabling = p.enable();
      await turn();
      assert.equal(await get('/fast'), '["new","new"]');
      release.resolve();
      assert.equal(await slow, '["old","old"]');
      await enabling;
    } finally {
      server.close();
    }
  });
  it('real HTTP requests with a body: one whose body ends after the patch still finishes on old code', async () => {
    const m = loadCjs<Mod>(source);
    const arrived = new Deferred<void>();
    // The usual shape of a handler that reads a body: the answer is made in the body's 'end'.
    const server = http.createServer((req, res) => {
      const first = m.exports.step();
      if (req.url === '/slow') arrived.resolve();
      req.resume();
      req.on('end', () => res.end(JSON.stringify([first, m.exports.step()])));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const post = (path: string, body: string[]) => {
      let req!: http.ClientRequest;
      const answer = new Promise<string>((resolve, reject) => {
        req = http.request(
          {
            host: '127.0.0.1',
            port,
            path,
            method: 'POST',
            agent: false,
            headers: { 'content-length': body.join('').length },
          },
          (res) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c.toString()));
            res.on('end', () => resolve(text));
          },
        );
        req.on('error', reject);
      });
      req.write(body[0]);
      return { answer, finish: () => req.end(body[1]) };
    };
    try {
      const slow = post('/slow', ['the first half, ', 'the rest']);
      await arrived.promise;
      const p = loadPatch(patchFor(m));
      const enabling = p.enable();
      await turn();
      const fast = post('/fast', ['all of it', '']);
      fast.finish();
      assert.equal(await fast.answer, '["new","new"]');
      slow.finish();
      assert.equal(await slow.answer, '["old","old"]', 'the request did not mix versions');
      await enabling;
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('scenario 6: one connection, requests on both sides', () => {
  beforeEach(cleanupPatches);
  it('a request in flight holds its connection on old code; one pipelined behind it after the patch runs new code; the transition ends with the first', async () => {
    const m = loadCjs<Mod>(source);
    const arrived = new Map([
      ['/slow', new Deferred<void>()],
      ['/fast', new Deferred<void>()],
    ]);
    const release = new Deferred<void>();
    const answers = new Map<string, string[]>();
    const closed = new Map([
      ['/slow', new Deferred<void>()],
      ['/fast', new Deferred<void>()],
    ]);
    const server = http.createServer(async (req, res) => {
      const url = req.url!;
      const first = m.exports.step();
      res.on('close', () => closed.get(url)!.resolve());
      arrived.get(url)!.resolve();
      if (url === '/slow') await release.promise;
      answers.set(url, [first, m.exports.step()]);
      res.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const client = net.connect(port, '127.0.0.1');
    client.on('error', () => undefined);
    client.resume();
    try {
      client.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
      await arrived.get('/slow')!.promise;
      const enabling = loadPatch(patchFor(m)).enable();
      const done = settled(enabling);
      await turn();
      const status = transitionStatus()!;
      const label = `GET /slow on connection 127.0.0.1:${client.localPort}`;
      const connection = status.pending.find((t) => t.label === label);
      assert.ok(connection, `the connection is on the old side, named by its request: ${label}`);
      assert.equal(connection.reason, 'in flight');
      assert.equal(connection.inFlight, 1, 'held by its request');
      // The second request, on the same connection while the first is in flight (pipelined).
      client.write('GET /fast HTTP/1.1\r\nHost: x\r\n\r\n');
      await arrived.get('/fast')!.promise;
      await turn();
      assert.equal(done.done, false, 'the first request still holds the transition');
      release.resolve();
      await closed.get('/slow')!.promise;
      await closed.get('/fast')!.promise;
      await enabling;
      assert.deepEqual(answers.get('/slow'), ['old', 'old'], 'the first request did not mix');
      assert.deepEqual(answers.get('/fast'), ['new', 'new'], 'the second ran new code');
    } finally {
      client.destroy();
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('scenario 7: force and reverse', () => {
  beforeEach(cleanupPatches);

  it('force completes a stalled transition and marks the patch forced', async () => {
    const m = loadCjs<Mod>(source);
    const gate = new Deferred<void>();
    const stuck = runTask(async () => {
      await gate.promise;
      return m.exports.step();
    });
    const events: LivepatchEvent[] = [];
    const stop = onEvent((e) => events.push(e));
    const p = loadPatch(patchFor(m));
    const enabling = p.enable();
    await turn();
    forceTransition();
    await enabling;
    stop();
    assert.equal(p.status, 'enabled');
    assert.equal(p.info().forced, true);
    assert.ok(events.some((e) => e.type === 'transition.forced' && e['switched'] === 1));
    gate.resolve();
    assert.equal(
      await stuck,
      'new',
      'a forced task runs the target version from then on (documented consequence)',
    );
    assert.throws(
      () => forceTransition(),
      (e: PatchError) => e.code === 'ENOTRANSITION',
    );
  });

  it('disabling mid-transition reverses it: switched tasks come back, the enable reports the reversal', async () => {
    const m = loadCjs<Mod>(source);
    const gate = new Deferred<void>();
    const old = runTask(async () => {
      await gate.promise;
      return m.exports.step();
    });
    const p = loadPatch(patchFor(m));
    const enabling = p.enable();
    await turn();
    const newer = new Deferred<void>();
    const startedOnNew = runTask(async () => {
      const a = m.exports.step();
      await newer.promise;
      return [a, m.exports.step()];
    });
    const disabling = p.disable();
    await turn();
    assert.equal(m.exports.step(), 'old', 'the root task went back at once');
    assert.deepEqual(
      transitionStatus()!.pending.map((t) => t.kind),
      ['bounded'],
      'the task that started on new code keeps it until it ends',
    );
    newer.resolve();
    assert.deepEqual(await startedOnNew, ['new', 'new']);
    await disabling;
    await assert.rejects(enabling, (e: PatchError) => e.code === 'EREVERSED');
    assert.equal(p.status, 'disabled');
    gate.resolve();
    assert.equal(await old, 'old');
  });

  it('one transition at a time: another enable is refused as busy, naming the patch in transition', async () => {
    const m = loadCjs<Mod>(source);
    const gate = new Deferred<void>();
    const task = runTask(async () => {
      await gate.promise;
    });
    const p = loadPatch(patchFor(m));
    const enabling = p.enable();
    const other = loadPatch({ name: 'other', objects: [] });
    await assert.rejects(
      other.enable(),
      (e: PatchError) => e.code === 'EBUSY' && /'v2' is in transition to patched/.test(e.message),
    );
    gate.resolve();
    await task;
    await enabling;
  });

  it('a reversed transition runs only the teardown that matches what was set up', async () => {
    const m = loadCjs<Mod>(source);
    const log: string[] = [];
    const gate = new Deferred<void>();
    const busy = runTask(async () => {
      await gate.promise;
    });
    const p = loadPatch({
      ...patchFor(m),
      states: [
        {
          id: 'cache',
          prePatch: () => {
            log.push('prePatch');
          },
          postPatch: () => {
            log.push('postPatch');
          },
          preUnpatch: () => {
            log.push('preUnpatch');
          },
          postUnpatch: () => {
            log.push('postUnpatch');
          },
        },
      ],
    });
    const enabling = p.enable();
    await turn();
    const disabling = p.disable();
    gate.resolve();
    await busy;
    await disabling;
    await assert.rejects(enabling, (e: PatchError) => e.code === 'EREVERSED');
    assert.deepEqual(log, ['prePatch', 'postUnpatch']);
  });
});

describe('stall reports', () => {
  beforeEach(cleanupPatches);
  it('emits transition.stalled with the pending tasks after the configured wait', async () => {
    const m = loadCjs<Mod>(source);
    const gate = new Deferred<void>();
    const task = runTask(
      async () => {
        await gate.promise;
      },
      { label: 'job 42' },
    );
    const { event, enabling } = await enableUntilStalled(patchFor(m));
    const report = event['report'] as { pending: { label: string }[] };
    assert.deepEqual(
      report.pending.map((t) => t.label),
      ['job 42'],
    );
    gate.resolve();
    await task;
    await enabling;
  });
});

describe('scenario 11: the hammer', () => {
  beforeEach(cleanupPatches);
  it('hundreds of concurrent tasks never fail a call nor observe a mix while patches are applied, replaced and reverted', async () => {
    const src = `
function a() { return 'v0'; } function b() { return 'v0'; } function c() { return 'v0'; }
async function work(n) { const seen = []; for (let i = 0; i < n; i++) { seen.push(a()); await null; seen.push(b()); await null; seen.push(c()); } return seen; }
exports.a = a; exports.b = b; exports.c = c; exports.work = work;`;
    const m = loadCjs<{
      a(): string;
      b(): string;
      c(): string;
      work(n: number): Promise<string[]>;
    }>(src);
    // Unbounded tasks follow the kernel's rule: their unit of consistency is a live frame of a
    // function in the patch, so the patch includes `work`; its replacement reaches a, b and c
    // through the module's scope like the original does.
    const work = async function (n: number): Promise<string[]> {
      const ctx = callContext();
      const [a, b, c] = ['a', 'b', 'c'].map((k) => ctx.get(k) as () => string);
      const seen: string[] = [];
      for (let i = 0; i < n; i++) {
        seen.push(a!());
        await null;
        seen.push(b!());
        await null;
        seen.push(c!());
      }
      return seen;
    };
    const version = (tag: string, replace = false) => ({
      name: `hammer-${tag}`,
      replace,
      objects: [
        {
          module: m.file,
          functions: [
            ...['a', 'b', 'c'].map((name) => ({ name, replacement: () => tag })),
            { name: 'work', replacement: work },
          ],
        },
      ],
    });
    const observations: string[][] = [];
    let failures = 0;
    const spawn = (count: number): Promise<void>[] =>
      Array.from({ length: count }, (_, i) =>
        (i % 2 === 0
          ? runTask(async () => {
              const seen: string[] = [];
              for (let k = 0; k < 3; k++) {
                seen.push(m.exports.a());
                await turn();
                seen.push(m.exports.b(), m.exports.c());
              }
              return seen;
            })
          : runUnbounded(`loop ${i}`, async (end) => {
              const seen = await m.exports.work(3);
              end();
              return seen;
            })
        ).then(
          (seen) => {
            observations.push(seen);
          },
          () => {
            failures++;
          },
        ),
      );
    const all: Promise<void>[] = [];
    for (let round = 0; round < 6; round++) {
      all.push(...spawn(60));
      const a = loadPatch(version(`A${round}`));
      const enablingA = a.enable();
      all.push(...spawn(60));
      await enablingA;
      all.push(...spawn(60));
      const b = loadPatch(version(`B${round}`, true));
      const enablingB = b.enable();
      all.push(...spawn(60));
      await enablingB;
      all.push(...spawn(60));
      if (round % 2 === 0) {
        const disabling = b.disable();
        all.push(...spawn(60));
        await disabling;
        b.remove();
      } else {
        // Reverse mid-transition: enable C, then disable it before it completes.
        const c = loadPatch(version(`C${round}`));
        const enablingC = c.enable();
        all.push(...spawn(30));
        const disablingC = c.disable();
        all.push(...spawn(30));
        await disablingC;
        await enablingC.catch(() => undefined);
        c.remove();
        await b.disable();
        b.remove();
      }
    }
    await Promise.all(all);
    assert.equal(failures, 0, 'no call failed');
    assert.ok(observations.length >= 1500, `ran ${observations.length} tasks`);
    const mixed = observations.filter((seen) => new Set(seen).size !== 1);
    assert.deepEqual(mixed, [], 'every task observed exactly one version');
    const versions = new Set(observations.map((seen) => seen[0]));
    assert.ok(versions.size >= 4, `tasks ran several versions: ${[...versions].join(', ')}`);
  });
});
