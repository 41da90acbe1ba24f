/**
 * Where tasks begin: every HTTP, HTTPS and HTTP/2 request is a bounded task (until its response
 * has finished or its connection closed), every HTTP/2 stream too, and every connection a server
 * accepts is an unbounded task (its message loop) until the socket closes.
 *
 * Every Node server class (http, https, http2, tls) inherits `emit` from net.Server, so one
 * wrapper there covers them all without loading https or http2 at start-up; it acts only on
 * those events, and runs their listeners inside the task's async context.
 */
import net from 'node:net';
import type { EventEmitter } from 'node:events';
import type http from 'node:http';
import type http2 from 'node:http2';
import { endTask, startTask, storage, type Task } from './tasks.ts';

type Emit = (this: EventEmitter, event: string | symbol, ...args: unknown[]) => boolean;
type Starter = (args: unknown[]) => Task | null;

/** A request task ends when its response has finished or its connection closed. */
function requestTask(args: unknown[]): Task | null {
  const req = args[0] as http.IncomingMessage | undefined;
  const res = args[1] as http.ServerResponse | undefined;
  if (res === undefined || res === null || typeof res.once !== 'function') return null;
  const task = startTask('bounded', `${req?.method ?? 'REQUEST'} ${req?.url ?? ''}`.trim());
  const end = (): void => endTask(task);
  res.once('finish', end);
  res.once('close', end);
  return task;
}

function streamTask(args: unknown[]): Task | null {
  const stream = args[0] as http2.ServerHttp2Stream | undefined;
  const headers = (args[1] ?? {}) as http2.IncomingHttpHeaders;
  if (stream === undefined || stream === null || typeof stream.once !== 'function') return null;
  const task = startTask('bounded', `${String(headers[':method'] ?? 'STREAM')} ${String(headers[':path'] ?? '')}`.trim());
  stream.once('close', () => endTask(task));
  return task;
}

function connectionTask(args: unknown[]): Task | null {
  const socket = args[0] as net.Socket | undefined;
  if (socket === undefined || socket === null || typeof socket.once !== 'function') return null;
  const task = startTask('unbounded', `connection ${socket.remoteAddress ?? ''}:${socket.remotePort ?? ''}`);
  socket.once('close', () => endTask(task));
  return task;
}

const starters: Record<string, Starter> = { connection: connectionTask, request: requestTask, stream: streamTask };

let done = false;

export function installTaskSources(): void {
  if (done) return;
  done = true;
  const proto = net.Server.prototype as unknown as { emit: Emit };
  const next = proto.emit;
  const wrapped: Emit = function (this: EventEmitter, event, ...args) {
    const starter = typeof event === 'string' ? starters[event] : undefined;
    const task = starter === undefined ? null : starter(args);
    if (task === null) return Reflect.apply(next, this, [event, ...args]) as boolean;
    return storage.run(task, () => Reflect.apply(next, this, [event, ...args]) as boolean);
  };
  Object.defineProperty(proto, 'emit', { value: wrapped, writable: true, configurable: true, enumerable: false });
}
