/**
 * Where tasks begin and end on a real HTTP server. While a transition runs, a request is a task
 * of its own that ends when its response closes (after it was sent, or when the client went away
 * first), a pipelined request queued behind another one ends with its connection (Node 22 emits
 * no event on such a response), and a connection task ends with its socket. Between transitions a
 * request runs in its connection's task and holds it until the same ends. No request may stay
 * live or held forever: it would hold every later transition. And a task holds all of its work,
 * not only the server's listener: a request's body events, an HTTP/2 stream's data and a raw
 * connection's socket data run in their task, with whatever they start. Ordering comes from the
 * server's own events, never from time.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { installTaskSources } from '../src/transition/sources.ts';
import {
  currentTask,
  liveTasks,
  setTaskObserver,
  type Task,
  type TaskObserver,
} from '../src/transition/tasks.ts';
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

/**
 * The tests of a describe block run as if a transition ran: the task sources give requests and
 * streams tasks of their own only then (the transition is what observes the tasks).
 */
function duringTransition(): void {
  const observer: TaskObserver = {
    taskStarted: () => undefined,
    taskMaySwitch: () => undefined,
    frameLeft: () => undefined,
  };
  before(() => setTaskObserver(observer));
  after(() => setTaskObserver(null));
}

/** A request as the server saw it arrive: its response, the task it ran in, its socket. */
interface Arrival {
  readonly res: http.ServerResponse;
  readonly task: Task;
  readonly socket: net.Socket;
}

/**
 * A server whose requests wait for the test: per path, `expect(path)` makes a promise of its
 * arrival, a gate (`release`) that lets it answer, and a promise of its response's close.
 */
function gatedServer() {
  const arrived = new Map<string, Deferred<Arrival>>();
  const release = new Map<string, Deferred<void>>();
  const closed = new Map<string, Deferred<void>>();
  const expect = (path: string): void => {
    arrived.set(path, new Deferred());
    release.set(path, new Deferred());
    closed.set(path, new Deferred());
  };
  const server = http.createServer(async (req, res) => {
    const path = req.url!;
    res.on('close', () => closed.get(path)!.resolve());
    arrived.get(path)!.resolve({ res, task: currentTask(), socket: req.socket });
    await release.get(path)!.promise;
    if (!res.destroyed) res.end(path);
  });
  return { arrived, release, closed, expect, server };
}

describe('task sources while a transition runs: HTTP requests are tasks', () => {
  duringTransition();
  const { arrived, release, closed, expect, server } = gatedServer();
  const socketClosed: Promise<void>[] = [];
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
    assert.equal((await arrived.get('/sent')!.promise).task.label, 'GET /sent');
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
    const queued = (await arrived.get('/queued')!.promise).res;
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

describe('task sources between transitions: a request holds the task it runs in', () => {
  const { arrived, release, closed, expect, server } = gatedServer();
  let port = 0;
  before(async () => {
    port = await listen(server);
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });
  /** A raw client connection that sends `requests` (pipelined when more than one). */
  const send = (...paths: string[]): net.Socket => {
    const client = net.connect(port, '127.0.0.1');
    client.on('error', () => undefined);
    client.resume();
    client.write(paths.map((p) => `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`).join(''));
    return client;
  };

  it("a request runs in its connection's task, held in flight until its response has closed", async () => {
    expect('/held');
    const client = send('/held');
    try {
      const { task } = await arrived.get('/held')!.promise;
      assert.equal(task.label, `connection 127.0.0.1:${client.localPort}`);
      assert.equal(task.inFlight, 1);
      assert.equal(task.reportLabel, `GET /held on ${task.label}`);
      assert.ok(!live().includes('GET /held'), 'the request is no task of its own');
      release.get('/held')!.resolve();
      await closed.get('/held')!.promise;
      assert.equal(task.inFlight, 0, 'released when its response closed');
      assert.ok(!task.ended, 'the connection stays open (keep-alive)');
    } finally {
      client.destroy();
    }
  });

  it('a request whose client goes away before the response releases its task', async () => {
    expect('/gone');
    const client = send('/gone');
    const { task } = await arrived.get('/gone')!.promise;
    assert.equal(task.inFlight, 1);
    client.destroy();
    await closed.get('/gone')!.promise;
    assert.equal(task.inFlight, 0);
    release.get('/gone')!.resolve();
  });

  it('pipelined requests both hold their connection; one queued behind is released when it closes', async () => {
    expect('/one');
    expect('/two');
    const client = send('/one', '/two');
    const { task, socket } = await arrived.get('/one')!.promise;
    assert.equal(
      (await arrived.get('/two')!.promise).task,
      task,
      'both run in the connection task',
    );
    assert.equal(task.inFlight, 2);
    assert.equal(
      task.reportLabel,
      `GET /two and 1 more on connection 127.0.0.1:${client.localPort}`,
      'a report names the latest request in flight',
    );
    // The server's side of the connection: once its 'close' has been emitted, every listener ran.
    const serverSide = new Promise((resolve) => socket.once('close', resolve));
    client.destroy();
    await serverSide;
    assert.ok(task.ended);
    assert.equal(task.inFlight, 0, 'neither request is left holding the connection');
    release.get('/one')!.resolve();
    release.get('/two')!.resolve();
  });

  it("a request's body events run in the task the request holds", async () => {
    const seen = new Seen(3);
    let held: Task | null = null;
    const server = http.createServer((req, res) => {
      held = currentTask();
      seen.watch(req, () => res.end('ok'));
    });
    const port = await listen(server);
    try {
      assert.equal(await postHttp1(port, '/body'), 200);
      await seen.done.promise;
      const label = held!.label;
      assert.match(label, /^connection 127\.0\.0\.1:/);
      assert.deepEqual(Object.fromEntries(seen.labels), {
        listener: label,
        data: label,
        end: label,
      });
    } finally {
      server.close();
    }
  });
});

/** Where listeners ran: the label of the current task at each named point. */
class Seen {
  readonly labels = new Map<string, string>();
  readonly done = new Deferred();
  readonly expected: number;
  constructor(expected: number) {
    this.expected = expected;
  }
  at(point: string): void {
    this.labels.set(point, currentTask().label);
    if (this.labels.size === this.expected) this.done.resolve();
  }
  /** Notes the listener that got `body` (here), its `data` and its `end`, then calls `then`. */
  watch(body: EventEmitter, then: () => void): void {
    this.at('listener');
    body.on('data', () => this.at('data'));
    body.on('end', () => {
      this.at('end');
      then();
    });
  }
}

/** POSTs a body to `path` over HTTP/1.1; resolves with the status of the answer. */
function postHttp1(
  port: number,
  path: string,
  headers: http.OutgoingHttpHeaders = {},
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: 'POST', path, agent: false, headers },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      },
    );
    req.on('error', reject);
    // With `Expect: 100-continue` the body waits for the server's go-ahead.
    if (headers.expect === undefined) req.end('a body');
    else req.on('continue', () => req.end('a body'));
  });
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
}

/**
 * Serves one HTTP/2 POST of `path` with a body and returns where `seen` found the server's
 * listeners (`settle` waits for what else the test needs before the session goes).
 */
async function servePost(
  server: http2.Http2Server,
  path: string,
  seen: Seen,
  settle: () => Promise<void> = async () => undefined,
): Promise<Record<string, string>> {
  const port = await listen(server);
  const client = http2.connect(`http://127.0.0.1:${port}`);
  try {
    const req = client.request({ ':method': 'POST', ':path': path });
    req.end('a body');
    req.resume();
    await new Promise((resolve) => req.on('end', resolve));
    await seen.done.promise;
    await settle();
    return Object.fromEntries(seen.labels);
  } finally {
    client.destroy();
    server.close();
  }
}

describe('task sources while a transition runs: the whole of a task runs in it', () => {
  duringTransition();
  it("a request's body events, and what they start, run in the request's task", async () => {
    const seen = new Seen(4);
    const server = http.createServer((req, res) =>
      seen.watch(req, () =>
        setImmediate(() => {
          seen.at('started from end');
          res.end('ok');
        }),
      ),
    );
    const port = await listen(server);
    try {
      assert.equal(await postHttp1(port, '/body'), 200);
      await seen.done.promise;
      assert.deepEqual(Object.fromEntries(seen.labels), {
        listener: 'POST /body',
        data: 'POST /body',
        end: 'POST /body',
        'started from end': 'POST /body',
      });
    } finally {
      server.close();
    }
  });

  it("a request announced by 'checkContinue' is a task like any other", async () => {
    const seen = new Seen(3);
    const server = http.createServer();
    server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
      res.writeContinue();
      seen.watch(req, () => res.end('ok'));
    });
    const port = await listen(server);
    try {
      assert.equal(await postHttp1(port, '/continue', { expect: '100-continue' }), 200);
      await seen.done.promise;
      assert.deepEqual(Object.fromEntries(seen.labels), {
        listener: 'POST /continue',
        data: 'POST /continue',
        end: 'POST /continue',
      });
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it("a connection's socket events, and what they start, run in the connection's task", async () => {
    const seen = new Seen(3);
    const server = net.createServer((socket) => {
      seen.at('listener');
      socket.on('data', () => {
        seen.at('data');
        setImmediate(() => {
          seen.at('started from data');
          socket.end();
        });
      });
    });
    const port = await listen(server);
    const client = net.connect(port, '127.0.0.1');
    try {
      client.on('error', () => undefined);
      client.write('hello');
      client.resume();
      await seen.done.promise;
      const connection = `connection 127.0.0.1:${client.localPort}`;
      assert.deepEqual(Object.fromEntries(seen.labels), {
        listener: connection,
        data: connection,
        'started from data': connection,
      });
    } finally {
      client.destroy();
      server.close();
    }
  });

  it("an upgraded connection's messages (a websocket's) run in the connection's task", async () => {
    const labels: string[] = [];
    const received = new Deferred();
    let text = '';
    const server = http.createServer();
    server.on('upgrade', (_req: http.IncomingMessage, socket: net.Socket) => {
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n',
      );
      socket.on('data', (d: Buffer) => {
        labels.push(currentTask().label);
        text += d.toString();
        if (text === 'onetwo') received.resolve();
      });
    });
    const port = await listen(server);
    const client = net.connect(port, '127.0.0.1');
    try {
      client.on('error', () => undefined);
      client.once('data', () => {
        client.write('one');
        client.write('two');
      });
      client.write('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n');
      await received.promise;
      const connection = `connection 127.0.0.1:${client.localPort}`;
      assert.ok(labels.length > 0);
      assert.deepEqual(
        labels.filter((l) => l !== connection),
        [],
        `every message ran in ${connection}`,
      );
    } finally {
      client.destroy();
      server.close();
    }
  });

  it("an HTTP/2 stream's events run in the stream's task, which ends when it closes", async () => {
    const seen = new Seen(3);
    const streamClosed = new Deferred();
    const server = http2.createServer();
    server.on('stream', (stream: http2.ServerHttp2Stream) => {
      stream.on('close', () => streamClosed.resolve());
      seen.watch(stream, () => {
        stream.respond({ ':status': 200 });
        stream.end('ok');
      });
    });
    const labels = await servePost(server, '/stream', seen, async () => {
      await streamClosed.promise;
      await turn();
    });
    assert.deepEqual(labels, {
      listener: 'POST /stream',
      data: 'POST /stream',
      end: 'POST /stream',
    });
    assert.ok(!live().includes('POST /stream'), 'the stream task ended with the stream');
  });

  it("an HTTP/2 compatibility request's body events run in the request's task", async () => {
    const seen = new Seen(3);
    const server = http2.createServer((req, res) => seen.watch(req, () => res.end('ok')));
    assert.deepEqual(await servePost(server, '/compat', seen), {
      listener: 'POST /compat',
      data: 'POST /compat',
      end: 'POST /compat',
    });
  });
});
