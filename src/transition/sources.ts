/**
 * Where tasks begin: every HTTP, HTTPS and HTTP/2 request is a bounded task (until its response
 * has finished or its connection closed), every HTTP/2 stream too, and every connection a server
 * accepts is an unbounded task (its message loop) until the socket closes. Installed by wrapping
 * the servers' `emit` for those events only, so handlers run inside the task's async context.
 */
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import type { EventEmitter } from 'node:events';
import { endTask, startTask, storage, type Task } from './tasks.ts';

type Emit = (this: EventEmitter, event: string | symbol, ...args: unknown[]) => boolean;
type Starter = (args: unknown[]) => Task | null;

const installed = new WeakSet<object>();

/** Wraps `proto.emit` so the given events run inside a new task. */
function wrap(proto: { emit: Emit }, starters: Record<string, Starter>): void {
  if (installed.has(proto)) return;
  installed.add(proto);
  const next = proto.emit;
  const wrapped: Emit = function (this: EventEmitter, event, ...args) {
    const starter = typeof event === 'string' ? starters[event] : undefined;
    if (starter === undefined) return Reflect.apply(next, this, [event, ...args]) as boolean;
    const task = starter(args);
    if (task === null) return Reflect.apply(next, this, [event, ...args]) as boolean;
    return storage.run(task, () => Reflect.apply(next, this, [event, ...args]) as boolean);
  };
  Object.defineProperty(proto, 'emit', { value: wrapped, writable: true, configurable: true, enumerable: false });
}

/** A request task ends when its response has finished or its connection closed. */
function requestTask(args: unknown[]): Task | null {
  const req = args[0] as http.IncomingMessage | undefined;
  const res = args[1] as http.ServerResponse | undefined;
  if (res === undefined || typeof res.once !== 'function') return null;
  const task = startTask('bounded', `${req?.method ?? 'REQUEST'} ${req?.url ?? ''}`.trim());
  const end = (): void => endTask(task);
  res.once('finish', end);
  res.once('close', end);
  return task;
}

function streamTask(args: unknown[]): Task | null {
  const stream = args[0] as http2.ServerHttp2Stream | undefined;
  const headers = (args[1] ?? {}) as http2.IncomingHttpHeaders;
  if (stream === undefined || typeof stream.once !== 'function') return null;
  const task = startTask('bounded', `${String(headers[':method'] ?? 'STREAM')} ${String(headers[':path'] ?? '')}`.trim());
  stream.once('close', () => endTask(task));
  return task;
}

function connectionTask(args: unknown[]): Task | null {
  const socket = args[0] as net.Socket | undefined;
  if (socket === undefined || typeof socket.once !== 'function') return null;
  const task = startTask('unbounded', `connection ${socket.remoteAddress ?? ''}:${socket.remotePort ?? ''}`);
  socket.once('close', () => endTask(task));
  return task;
}

let done = false;

export function installTaskSources(): void {
  if (done) return;
  done = true;
  // Base classes first, so the subclasses' wrappers delegate to them.
  wrap(net.Server.prototype as unknown as { emit: Emit }, { connection: connectionTask });
  wrap(http.Server.prototype as unknown as { emit: Emit }, { request: requestTask });
  wrap(https.Server.prototype as unknown as { emit: Emit }, { request: requestTask });
  for (const server of [http2.createServer(), http2.createSecureServer({ allowHTTP1: false })]) {
    wrap(Object.getPrototypeOf(server) as { emit: Emit }, { stream: streamTask, request: requestTask });
  }
}
