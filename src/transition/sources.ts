/**
 * Where tasks begin: every connection a server accepts is an unbounded task (its message loop)
 * until the socket closes, and every HTTP, HTTPS and HTTP/2 request and HTTP/2 stream is bounded
 * work, until its response (or stream) has closed.
 *
 * A request is a task of its own only while a transition runs. Between transitions it runs in
 * the context it arrived in (its connection's task) and holds that task on its side until it
 * ends (Task.inFlight): a transition that starts then finds the connection in flight, keeps it on
 * the old side until its requests have ended, and gives every later request a task of its own on
 * the new side. Either way no request mixes versions, but the common case pays a counter and a
 * listener instead of an async context per request (about 4% of a small HTTP server's CPU on
 * Node 26, docs/benchmarks.md).
 *
 * Every Node server class (http, https, http2, tls) inherits `emit` from net.Server, so one
 * wrapper there covers them all without loading https or http2 at start-up; it acts only on
 * those events, and runs their listeners inside the task's async context.
 *
 * The listeners of the server's event are not all of a task's work: Node emits a request's body
 * and its end from the connection's parser, an HTTP/2 stream's data from its session, and a
 * socket's data from its handle, and those callbacks run in the async context their C++ object
 * was created in (the connection's, or none), not the task's. So the task's own emitter (the
 * request, the stream, the socket) emits inside the task too; a response needs nothing: its
 * `finish` and `close` follow the writes that the request's code makes in its task.
 */
import type net from 'node:net';
import type { EventEmitter } from 'node:events';
import type http from 'node:http';
import type http2 from 'node:http2';
import { AsyncResource } from 'node:async_hooks';
import { currentTask, endTask, startTask, storage, transitionRunning, type Task } from './tasks.ts';

type Emit = (this: EventEmitter, event: string | symbol, ...args: unknown[]) => boolean;

function requestLabel(req: unknown): string {
  const { method, url } = (req ?? {}) as http.IncomingMessage;
  return `${typeof method === 'string' ? method : 'REQUEST'} ${typeof url === 'string' ? url : ''}`.trim();
}

/**
 * Calls `done` once when a request's response has closed. ServerResponse emits 'close' on the
 * tick after 'finish', or when its socket closes first (Node 22.15+, 24, 26; the HTTP/2 compat
 * response emits it with 'finish' when its stream closes), so one listener is enough. The
 * exception: on Node 22 a pipelined response still queued behind another one gets no event at all
 * when the connection closes, so such a response also listens on the socket.
 */
function onResponseClose(req: unknown, res: http.ServerResponse, done: () => void): void {
  const socket = res.socket === null ? (req as http.IncomingMessage | undefined)?.socket : null;
  if (socket != null && !socket.destroyed) {
    let open = true;
    const end = (): void => {
      if (!open) return;
      open = false;
      socket.removeListener('close', end);
      done();
    };
    socket.on('close', end);
    res.on('close', end);
  } else {
    res.on('close', done);
  }
}

/** Calls `done` once when the request (`request`, …: `[req, res]`) or stream (`[stream]`) closes. */
function onClose(event: string | symbol, args: unknown[], done: () => void): void {
  if (event === 'stream') (args[0] as EventEmitter).on('close', done);
  else onResponseClose(args[0], args[1] as http.ServerResponse, done);
}

function streamLabel(headers: unknown): string {
  const h = (headers ?? {}) as http2.IncomingHttpHeaders;
  return `${String(h[':method'] ?? 'STREAM')} ${String(h[':path'] ?? '')}`.trim();
}

/** While a transition runs: the request or stream is a task of its own. */
function ownTask(event: string | symbol, args: unknown[]): Task {
  const task =
    event === 'stream'
      ? startTask('bounded', streamLabel, args[1])
      : startTask('bounded', requestLabel, args[0]);
  onClose(event, args, () => endTask(task));
  return task;
}

/** Between transitions: the request or stream holds the task it runs in until it closes. */
function holdUntilClosed(event: string | symbol, args: unknown[]): void {
  const task = currentTask();
  // The request, or the stream's headers: what names it in a report, and what releases it.
  const work = event === 'stream' ? args[1] : args[0];
  let held = true;
  task.hold(work, event === 'stream' ? streamLabel : requestLabel);
  onClose(event, args, () => {
    // Once, even if an application emits 'close' itself.
    if (held) task.release(work);
    held = false;
  });
}

function connectionLabel(socket: unknown): string {
  const s = socket as net.Socket;
  // Unknown once the socket has closed (a label read late, from a context the connection left).
  return s.remoteAddress === undefined
    ? 'connection'
    : `connection ${s.remoteAddress}:${s.remotePort ?? ''}`;
}

const isEmitter = (x: unknown): x is EventEmitter =>
  typeof x === 'object' && x !== null && typeof (x as EventEmitter).on === 'function';

function connectionTask(socket: unknown): Task | null {
  if (!isEmitter(socket)) return null;
  // The peer address costs a system call: read it only for a report.
  const task = startTask('unbounded', connectionLabel, socket);
  socket.on('close', () => endTask(task));
  return task;
}

/**
 * The async context of the task an emitter belongs to, kept by an AsyncResource made in it
 * (`AsyncLocalStorage.snapshot()` keeps one too, but it binds a function: 665 against 21 ns per
 * request on Node 26, in a one-off loop).
 */
const SCOPE = Symbol('livepatch.task');
type Scoped = EventEmitter & { [SCOPE]?: AsyncResource };

/** Marks the `emit` functions defined here, which run an instance's events in its scope. */
const SCOPED_EMIT = Symbol('livepatch.scopedEmit');
const isScopedEmit = (emit: unknown): boolean =>
  typeof emit === 'function' && (emit as { [SCOPED_EMIT]?: true })[SCOPED_EMIT] === true;

/** Gives `proto` an `emit` that runs the events of an instance carrying a scope inside it. */
function defineScopedEmit(proto: Scoped): void {
  const inherited = proto.emit as Emit;
  const emit = function emit(this: Scoped, ...args: unknown[]): boolean {
    const scope = this[SCOPE];
    if (scope === undefined) return Reflect.apply(inherited, this, args);
    return scope.runInAsyncScope(inherited, this, ...args);
  };
  Object.defineProperty(emit, SCOPED_EMIT, { value: true });
  Object.defineProperty(proto, 'emit', {
    value: emit,
    writable: true,
    configurable: true,
    enumerable: false,
  });
}

/**
 * From now on, everything `emitter` emits runs in `scope`'s context (its task's). The `emit` of
 * its prototype does that for any instance that carries a scope, defined once per class (a
 * subclass inherits it): a property store per request, rather than a function and a property
 * definition.
 */
function emitInScope(emitter: unknown, scope: AsyncResource): void {
  const target = emitter as Scoped | null | undefined;
  if (target === null || typeof target !== 'object' || typeof target.emit !== 'function') return;
  if (!isScopedEmit(target.emit)) {
    const proto = Object.getPrototypeOf(target) as Scoped | null;
    // An instance with an `emit` of its own keeps it, and its events where Node emits them.
    if (proto === null || isScopedEmit(proto.emit)) return;
    defineScopedEmit(proto);
  }
  target[SCOPE] = scope;
}

const newScope = (): AsyncResource =>
  new AsyncResource('LIVEPATCH_TASK', { requireManualDestroy: true });

const enterTask = (task: Task): AsyncResource => {
  storage.enterWith(task);
  return newScope();
};

/**
 * A resource that holds the current async context with `task` as livepatch's store. Entered
 * inside a throwaway resource of the current context, whose exit puts that context back as it
 * was: `storage.run(task, …)` would copy the whole context a second time to restore it (on Node
 * 24 and 26, where a context is an immutable map): bench/tasks.ts's request row fell from 0.37
 * to 0.18 µs on Node 26 without it (docs/benchmarks.md).
 */
function taskScope(task: Task): AsyncResource {
  return newScope().runInAsyncScope(enterTask, null, task);
}

let done = false;

export function installTaskSources(): void {
  if (done) return;
  done = true;
  // process.getBuiltinModule, not an import: an ES module import of a builtin builds its ES
  // module facade on every start (see src/loader/builtins.ts).
  const { Server } = process.getBuiltinModule('node:net');
  const proto = Server.prototype as unknown as { emit: Emit };
  const next = proto.emit;
  const wrapped = function (
    this: EventEmitter,
    event: string | symbol,
    ...args: unknown[]
  ): boolean {
    let task: Task | null = null;
    if (event === 'connection') task = connectionTask(args[0]);
    else if (
      // A server with a listener for 'checkContinue' or 'checkExpectation' emits that instead of
      // 'request' for a request that carries an `Expect` header.
      event === 'request' ||
      event === 'stream' ||
      event === 'checkContinue' ||
      event === 'checkExpectation'
    ) {
      // What closes: the response (args[1]) or the stream (args[0]). Not an emitter: an event
      // emitted by hand, left alone.
      if (isEmitter(event === 'stream' ? args[0] : args[1])) {
        if (transitionRunning()) task = ownTask(event, args);
        else holdUntilClosed(event, args);
      }
    }
    if (task === null) return next.call(this, event, ...args);
    const scope = taskScope(task);
    // The request, the stream or the socket: its later events belong to this task too.
    emitInScope(args[0], scope);
    return scope.runInAsyncScope(next, this, event, ...args);
  };
  Object.defineProperty(proto, 'emit', {
    value: wrapped,
    writable: true,
    configurable: true,
    enumerable: false,
  });
}
