/**
 * Tasks: the unit of consistency (the kernel's task_struct, for the event loop). A task is an
 * async context, carried by AsyncLocalStorage:
 *
 * - bounded tasks have a known end: an HTTP/HTTPS/HTTP2 request (until its response closed) and
 *   any unit of work run through `runTask` (until its promise settles);
 * - unbounded tasks have none: each server connection (its message loop), and the root task,
 *   which holds everything that runs outside any other task (start-up code, timers started there,
 *   background loops).
 *
 * While a transition runs, each task counts its live frames of instrumented async functions and
 * generators (a suspended frame is live, as a function on a kernel task's stack), per function
 * slot. Between transitions only the slots count them (src/runtime/slot.ts), so that nothing here
 * runs on a call when no patch is in transition.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { FrameOwner, Slot } from '../runtime/slot.ts';
import type { TaskSide } from './transition.ts';

export type TaskKind = 'bounded' | 'unbounded';

/** Builds a task's label from what its source kept (called at most once, when someone reads it). */
export type Describe = (a: unknown, b: unknown) => string;

let nextId = 1;

/** The id the next task will get: tasks with a smaller id existed before (see Transition.start). */
export function nextTaskId(): number {
  return nextId;
}

export class Task implements FrameOwner {
  readonly id = nextId++;
  readonly kind: TaskKind;
  ended = false;
  /**
   * Live frames per instrumented async function / generator that began while a transition ran
   * (allocated on the first one). Entries that drop to 0 stay: deleting and re-inserting them on
   * every call measured 90–190 ns per call, keeping them 15–25 ns; the map is bounded by the
   * number of distinct functions the task has entered.
   */
  frames: Map<Slot, number> | null = null;
  /** The transition in which `side` was set (a task not switched yet has the transition's start side). */
  sideFor = 0;
  side: TaskSide = 'unpatched';
  /**
   * Requests and streams that run in this task's context without a task of their own (they began
   * between transitions, see sources.ts) and have not ended: until they have, the task keeps its
   * side, as a bounded task would.
   */
  inFlight = 0;
  /** The latest work counted in `inFlight` while it is in flight, described when read. */
  private heldDescribe: Describe | null = null;
  private held: unknown;
  /** Neighbours in the list of live tasks (see LiveTasks). */
  prevLive: Task | null = null;
  nextLive: Task | null = null;
  // The label is built on first read: a request or connection task is usually never reported.
  private text: string | null;
  private describe: Describe | null;
  private a: unknown;
  private b: unknown;
  constructor(kind: TaskKind, label: string | Describe, a?: unknown, b?: unknown) {
    this.kind = kind;
    if (typeof label === 'string') {
      this.text = label;
      this.describe = null;
    } else {
      this.text = null;
      this.describe = label;
      this.a = a;
      this.b = b;
    }
  }
  /** Shown in stall reports. */
  get label(): string {
    if (this.text === null) {
      this.text = this.describe!(this.a, this.b);
      this.describe = null;
      this.a = this.b = undefined;
    }
    return this.text;
  }
  /**
   * For reports: the label of a task holding work in flight names that work first, e.g.
   * "GET /checkout on connection 127.0.0.1:50312" (the work is what an operator waits for).
   */
  get reportLabel(): string {
    if (this.inFlight === 0) return this.label;
    const more = this.inFlight - 1;
    const work =
      this.heldDescribe === null
        ? `${this.inFlight} in flight`
        : `${this.heldDescribe(this.held, undefined)}${more > 0 ? ` and ${more} more` : ''}`;
    return `${work} on ${this.label}`;
  }
  /**
   * Work (`work`, named by `describe(work)` when a report reads it) began in this task's context
   * without a task of its own: the task keeps its side until `release(work)`, called once.
   */
  hold(work: unknown, describe: Describe): void {
    this.inFlight++;
    this.heldDescribe = describe;
    this.held = work;
  }
  release(work: unknown): void {
    if (this.held === work) {
      this.heldDescribe = null;
      this.held = undefined;
    }
    if (--this.inFlight === 0) observer?.taskMaySwitch(this);
  }
  /** A frame of `slot` began in this task while a transition ran. */
  entered(slot: Slot): void {
    const frames = (this.frames ??= new Map());
    frames.set(slot, (frames.get(slot) ?? 0) + 1);
  }
  /** A frame that `entered` counted ended (called through Slot.x). */
  left(slot: Slot): void {
    const frames = this.frames!;
    frames.set(slot, frames.get(slot)! - 1);
    observer?.frameLeft(this, slot);
  }
}

export const storage = new AsyncLocalStorage<Task>();
export const rootTask = new Task('unbounded', 'main');

/**
 * Tasks alive now, besides the root task; the transition walks them. A list linked through the
 * tasks themselves: a task starts and ends on every request, and adding to and deleting from a
 * Set cost 130 ns per request more (bench/tasks.ts, "request task").
 */
class LiveTasks implements Iterable<Task> {
  private head: Task | null = null;
  private tail: Task | null = null;
  add(task: Task): void {
    task.prevLive = this.tail;
    if (this.tail === null) this.head = task;
    else this.tail.nextLive = task;
    this.tail = task;
  }
  delete(task: Task): void {
    if (task.prevLive === null) this.head = task.nextLive;
    else task.prevLive.nextLive = task.nextLive;
    if (task.nextLive === null) this.tail = task.prevLive;
    else task.nextLive.prevLive = task.prevLive;
    task.prevLive = task.nextLive = null;
  }
  *[Symbol.iterator](): Iterator<Task> {
    for (let t = this.head; t !== null; t = t.nextLive) yield t;
  }
}

export const liveTasks = new LiveTasks();

/**
 * Notified when a task starts, when it may switch (it ended, or the last work it held in flight
 * did), and when a tracked frame ends (a transition re-checks).
 */
export interface TaskObserver {
  taskStarted(task: Task): void;
  taskMaySwitch(task: Task): void;
  frameLeft(task: Task, slot: Slot): void;
}

let observer: TaskObserver | null = null;
export function setTaskObserver(o: TaskObserver | null): void {
  observer = o;
}

/** Whether a transition runs (it observes the tasks): only then do requests get tasks of their own. */
export function transitionRunning(): boolean {
  return observer !== null;
}

export function currentTask(): Task {
  return storage.getStore() ?? rootTask;
}

/** Starts a task; a label built by `describe(a, b)` is built only when read. */
export function startTask(
  kind: TaskKind,
  label: string | Describe,
  a?: unknown,
  b?: unknown,
): Task {
  const task = new Task(kind, label, a, b);
  liveTasks.add(task);
  observer?.taskStarted(task);
  return task;
}

export function endTask(task: Task): void {
  if (task.ended) return;
  task.ended = true;
  liveTasks.delete(task);
  observer?.taskMaySwitch(task);
}

export interface RunTaskOptions {
  /** Shown in stall reports. */
  readonly label?: string;
}

/**
 * Runs `fn` as a bounded task: every call it makes to patched code, across its awaits, runs the
 * versions of the side it started on, until its promise settles. For frameworks and job runners.
 */
export function runTask<T>(
  fn: () => T | Promise<T>,
  options: RunTaskOptions = {},
): Promise<Awaited<T>> {
  if (typeof fn !== 'function')
    throw new TypeError(`runTask(fn) needs a function, got ${typeof fn}`);
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
