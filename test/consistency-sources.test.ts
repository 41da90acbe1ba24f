/**
 * Where tasks begin and end on a real HTTP server: a request task ends when its response closes
 * (after it was sent, or when the client went away first), a pipelined request queued behind
 * another one ends with its connection (Node 22 emits no event on such a response), and a
 * connection task ends with its socket. No request may stay a live task forever: a live bounded
 * task would hold every later transition. Ordering comes from the server's own events, never
 * from time.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { installTaskSources } from '../src/transition/sources.ts';
import { currentTask, liveTasks } from '../src/transition/tasks.ts';
import { Deferred } from './helpers/gate.ts';

installTaskSources();

/** Labels of the live tasks (labels are built when read). */
function live(): string[] {
  return [...liveTasks].map((t) => t.label);
}

/** Lets pending microtasks and immediates run (no timing involved). */
function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe('task sources: HTTP', () => {
  const arrived = new Map<string, Deferred<http.ServerResponse>>();
  const release = new Map<string, Deferred<void>>();
  const closed = new Map<string, Deferred<void>>();
  const seen = new Map<string, string>();
  const socketClosed: Promise<void>[] = [];
  const expect = (path: string): void => {
    arrived.set(path, new Deferred());
    release.set(path, new Deferred());
    closed.set(path, new Deferred());
  };
  const server = http.createServer(async (req, res) => {
    const path = req.url!;
    seen.set(path, currentTask().label);
    res.on('close', () => closed.get(path)!.resolve());
    arrived.get(path)!.resolve(res);
    await release.get(path)!.promise;
    if (!res.destroyed) res.end(path);
  });
  server.on('connection', (socket: net.Socket) => {
    socketClosed.push(new Promise((resolve) => socket.once('close', () => resolve())));
  });
  let port = 0;
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('a request runs in its own task, which ends when its response has been sent', async () => {
    expect('/sent');
    const body = new Promise<string>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: '/sent', agent: false }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve(text));
        })
        .on('error', reject);
    });
    await arrived.get('/sent')!.promise;
    assert.equal(seen.get('/sent'), 'GET /sent');
    assert.ok(live().includes('GET /sent'), 'the request is a live task while it runs');
    assert.ok(
      live().some((l) => l.startsWith('connection 127.0.0.1:')),
      'its connection is one too',
    );
    release.get('/sent')!.resolve();
    assert.equal(await body, '/sent');
    await closed.get('/sent')!.promise;
    assert.ok(!live().includes('GET /sent'), 'the task ended when the response closed');
  });

  it('a request whose client goes away before the response ends with its connection', async () => {
    expect('/abandoned');
    const client = net.connect(port, '127.0.0.1');
    client.on('error', () => undefined);
    client.write('GET /abandoned HTTP/1.1\r\nHost: x\r\n\r\n');
    await arrived.get('/abandoned')!.promise;
    assert.ok(live().includes('GET /abandoned'));
    const serverSide = socketClosed[socketClosed.length - 1]!;
    client.destroy();
    await serverSide;
    await closed.get('/abandoned')!.promise;
    assert.ok(!live().includes('GET /abandoned'), 'the task ended although no response was sent');
    release.get('/abandoned')!.resolve();
  });

  it('a pipelined request queued behind another ends when the connection closes', async () => {
    expect('/first');
    expect('/queued');
    const client = net.connect(port, '127.0.0.1');
    client.on('error', () => undefined);
    client.write('GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /queued HTTP/1.1\r\nHost: x\r\n\r\n');
    await arrived.get('/first')!.promise;
    const queued = await arrived.get('/queued')!.promise;
    assert.equal(queued.socket, null, 'the second response waits behind the first (pipelining)');
    const connection = `connection 127.0.0.1:${client.localPort}`;
    assert.deepEqual(
      live()
        .filter((l) => l === 'GET /first' || l === 'GET /queued' || l === connection)
        .sort(),
      ['GET /first', 'GET /queued', connection],
    );
    const serverSide = socketClosed[socketClosed.length - 1]!;
    client.destroy();
    await serverSide;
    await turn();
    const left = live().filter(
      (l) => l === 'GET /first' || l === 'GET /queued' || l === connection,
    );
    assert.deepEqual(left, [], 'neither request, nor the connection, is left as a live task');
    release.get('/first')!.resolve();
    release.get('/queued')!.resolve();
  });
});
