/**
 * Tasks: the unit of consistency (the kernel's task_struct, for the event loop). A task is an
 * async context, carried by AsyncLocalStorage:
 *
 * - bounded tasks have a known end: an HTTP/HTTPS/HTTP2 request (until its response finished or
 *   its connection closed) and any unit of work run through `runTask` (until its promise settles);
 * - unbounded tasks have none: each server connection (its message loop), and the root task,
 *   which holds everything that runs outside any other task (start-up code, timers started there,
 *   background loops).
 *
 * Every task counts its live frames of instrumented async functions and generators (a suspended
 * frame is live, as a function on a kernel task's stack), per function slot. Counting is always
 * on, so frames that began before a transition are known when it starts.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { setFrameHooks, type Slot } from '../runtime/slot.ts';
import type { TaskSide } from './transition.ts';

export type TaskKind = 'bounded' | 'unbounded';

let nextId = 1;

export class Task {
  readonly id = nextId++;
  readonly kind: TaskKind;
  readonly label: string;
  readonly startedAt = Date.now();
  ended = false;
  /**
   * Live frames per instrumented async function / generator. Entries that drop to 0 stay: deleting
   * and re-inserting them on every call measured 90–190 ns per call, keeping them 15–25 ns; the
   * map is bounded by the number of distinct functions the task has entered.
   */
  readonly frames = new Map<Slot, number>();
  /** The transition in which `side` was set (a task not switched yet has the transition's start side). */
  sideFor = 0;
  side: TaskSide = 'unpatched';
  constructor(kind: TaskKind, label: string) {
    this.kind = kind;
    this.label = label;
  }
}

export const storage = new AsyncLocalStorage<Task>();
export const rootTask = new Task('unbounded', 'main');

/** Tasks alive now, besides the root task; the transition walks them. */
export const liveTasks = new Set<Task>();

/** Notified when a task starts or ends and when a tracked frame ends (a transition re-checks). */
export interface TaskObserver {
  taskStarted(task: Task): void;
  taskEnded(task: Task): void;
  frameLeft(task: Task, slot: Slot): void;
}

let observer: TaskObserver | null = null;
export function setTaskObserver(o: TaskObserver | null): void {
  observer = o;
}

export function currentTask(): Task {
  return storage.getStore() ?? rootTask;
}

export function startTask(kind: TaskKind, label: string): Task {
  const task = new Task(kind, label);
  liveTasks.add(task);
  observer?.taskStarted(task);
  return task;
}

export function endTask(task: Task): void {
  if (task.ended) return;
  task.ended = true;
  liveTasks.delete(task);
  observer?.taskEnded(task);
}

export interface RunTaskOptions {
  /** Shown in stall reports. */
  readonly label?: string;
}

/**
 * Runs `fn` as a bounded task: every call it makes to patched code, across its awaits, runs the
 * versions of the side it started on, until its promise settles. For frameworks and job runners.
 */
export function runTask<T>(fn: () => T | Promise<T>, options: RunTaskOptions = {}): Promise<Awaited<T>> {
  if (typeof fn !== 'function') throw new TypeError(`runTask(fn) needs a function, got ${typeof fn}`);
  const task = startTask('bounded', options.label ?? (fn.name !== '' ? fn.name : 'task'));
  return storage.run(task, async (): Promise<Awaited<T>> => {
    try {
      return await fn();
    } finally {
      endTask(task);
    }
  });
}

/** Runs `fn` in a new unbounded task that ends when `end` is called. */
export function runUnbounded<T>(label: string, fn: (end: () => void) => T): T {
  const task = startTask('unbounded', label);
  return storage.run(task, () => fn(() => endTask(task)));
}

// Frame accounting, called by instrumented async functions and generators (slot.e / slot.x).
setFrameHooks({
  enter(slot: Slot): Task {
    const task = storage.getStore() ?? rootTask;
    task.frames.set(slot, (task.frames.get(slot) ?? 0) + 1);
    return task;
  },
  leave(slot: Slot, token: unknown): void {
    // A frame that began before frame accounting was installed has no token.
    if (!(token instanceof Task)) return;
    const task = token;
    task.frames.set(slot, (task.frames.get(slot) ?? 1) - 1);
    observer?.frameLeft(task, slot);
  },
});
