/**
 * Where tasks begin: every HTTP, HTTPS and HTTP/2 request is a bounded task (until its response
 * has closed), every HTTP/2 stream too (until it closes), and every connection a server accepts
 * is an unbounded task (its message loop) until the socket closes.
 *
 * Every Node server class (http, https, http2, tls) inherits `emit` from net.Server, so one
 * wrapper there covers them all without loading https or http2 at start-up; it acts only on
 * those events, and runs their listeners inside the task's async context. This runs on every
 * request, so it does as little as it can: one listener, labels built only when read.
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
import { endTask, startTask, storage, type Task } from './tasks.ts';

type Emit = (this: EventEmitter, event: string | symbol, ...args: unknown[]) => boolean;

function requestLabel(method: unknown, url: unknown): string {
  return `${typeof method === 'string' ? method : 'REQUEST'} ${typeof url === 'string' ? url : ''}`.trim();
}

/**
 * A request task ends when its response closes. ServerResponse emits 'close' on the tick after
 * 'finish', or when its socket closes first (Node 22.15+, 24, 26; the HTTP/2 compat response
 * emits it with 'finish' when its stream closes), so one listener is enough. The exception: on
 * Node 22 a pipelined response still queued behind another one gets no event at all when the
 * connection closes, so such a response also listens on the socket.
 */
function requestTask(req: unknown, res: unknown): Task | null {
  const r = res as http.ServerResponse | null | undefined;
  if (r === undefined || r === null || typeof r.on !== 'function') return null;
  const q = req as http.IncomingMessage | undefined;
  const task = startTask('bounded', requestLabel, q?.method, q?.url);
  const socket = r.socket === null ? q?.socket : null;
  if (socket != null && !socket.destroyed) {
    const end = (): void => {
      socket.removeListener('close', end);
      endTask(task);
    };
    socket.on('close', end);
    r.on('close', end);
  } else {
    r.on('close', () => endTask(task));
  }
  return task;
}

function streamLabel(headers: unknown): string {
  const h = (headers ?? {}) as http2.IncomingHttpHeaders;
  return `${String(h[':method'] ?? 'STREAM')} ${String(h[':path'] ?? '')}`.trim();
}

function streamTask(stream: unknown, headers: unknown): Task | null {
  const s = stream as http2.ServerHttp2Stream | null | undefined;
  if (s === undefined || s === null || typeof s.on !== 'function') return null;
  const task = startTask('bounded', streamLabel, headers);
  s.on('close', () => endTask(task));
  return task;
}

function connectionLabel(socket: unknown): string {
  const s = socket as net.Socket;
  // Unknown once the socket has closed (a label read late, from a context the connection left).
  return s.remoteAddress === undefined
    ? 'connection'
    : `connection ${s.remoteAddress}:${s.remotePort ?? ''}`;
}

function connectionTask(socket: unknown): Task | null {
  const s = socket as net.Socket | null | undefined;
  if (s === undefined || s === null || typeof s.on !== 'function') return null;
  // The peer address costs a system call: read it only for a report.
  const task = startTask('unbounded', connectionLabel, s);
  s.on('close', () => endTask(task));
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
    // A server with a listener for 'checkContinue' or 'checkExpectation' emits that instead of
    // 'request' for a request that carries an `Expect` header.
    if (event === 'request' || event === 'checkContinue' || event === 'checkExpectation') {
      task = requestTask(args[0], args[1]);
    } else if (event === 'connection') task = connectionTask(args[0]);
    else if (event === 'stream') task = streamTask(args[0], args[1]);
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
