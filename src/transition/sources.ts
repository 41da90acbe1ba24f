/**
 * Where tasks begin: every HTTP, HTTPS and HTTP/2 request is a bounded task (until its response
 * has closed), every HTTP/2 stream too (until it closes), and every connection a server accepts
 * is an unbounded task (its message loop) until the socket closes.
 *
 * Every Node server class (http, https, http2, tls) inherits `emit` from net.Server, so one
 * wrapper there covers them all without loading https or http2 at start-up; it acts only on
 * those events, and runs their listeners inside the task's async context. This runs on every
 * request, so it does as little as it can: one listener, labels built only when read.
 */
import type net from 'node:net';
import type { EventEmitter } from 'node:events';
import type http from 'node:http';
import type http2 from 'node:http2';
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
  const forward = (self: EventEmitter, event: string | symbol, args: unknown[]): boolean =>
    next.call(self, event, ...args);
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
