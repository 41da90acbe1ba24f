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
 * was created in (the connection's, or none), not the task's. So the task's own emitters (the
 * request and response, the stream, the socket) emit inside the task too.
 */
import type net from 'node:net';
import type { EventEmitter } from 'node:events';
import type http from 'node:http';
import type http2 from 'node:http2';
import { AsyncLocalStorage } from 'node:async_hooks';
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

/** Runs `fn(...args)` in the context captured by `AsyncLocalStorage.snapshot()`. */
type InContext = <A extends unknown[], R>(fn: (...args: A) => R, ...args: A) => R;

const applyEmit = (emit: Emit, self: EventEmitter, args: unknown[]): boolean =>
  Reflect.apply(emit, self, args);

/** From now on, everything `emitter` emits runs in the context `inTask` captured. */
function emitIn(emitter: unknown, inTask: InContext): void {
  const target = emitter as EventEmitter | null | undefined;
  if (target === null || typeof target !== 'object' || typeof target.emit !== 'function') return;
  const emit = target.emit as Emit;
  Object.defineProperty(target, 'emit', {
    value: function emit_(this: EventEmitter, ...args: unknown[]): boolean {
      return inTask(applyEmit, emit, this, args);
    },
    writable: true,
    configurable: true,
    enumerable: false,
  });
}

/**
 * Runs in the new task's context, before the server's listeners: the task's emitters emit in it
 * from now on (an emitter of a nested task, the request of an HTTP/2 stream, takes the inner one).
 */
function emitInTask(event: string | symbol, args: unknown[]): void {
  const inTask = AsyncLocalStorage.snapshot() as InContext;
  emitIn(args[0], inTask);
  if (event === 'request') emitIn(args[1], inTask);
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
  // Forwards the call as made, inside the task's context, without a closure per call. A spread
  // call of the untouched rest parameter measured as fast as forwarding `arguments`.
  const forward = (self: EventEmitter, event: string | symbol, args: unknown[]): boolean => {
    emitInTask(event, args);
    return next.call(self, event, ...args);
  };
  const wrapped = function (
    this: EventEmitter,
    event: string | symbol,
    ...args: unknown[]
  ): boolean {
    let task: Task | null = null;
    if (event === 'request') task = requestTask(args[0], args[1]);
    else if (event === 'connection') task = connectionTask(args[0]);
    else if (event === 'stream') task = streamTask(args[0], args[1]);
    if (task === null) return next.call(this, event, ...args);
    return storage.run(task, forward, this, event, args);
  };
  Object.defineProperty(proto, 'emit', {
    value: wrapped,
    writable: true,
    configurable: true,
    enumerable: false,
  });
}
