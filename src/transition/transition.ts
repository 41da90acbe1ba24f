/**
 * A transition moves every task from one side of a patch to the other (the kernel's
 * klp_transition), under the per-task consistency model:
 *
 * - a task created during the transition starts on the target side: new work never waits;
 * - a bounded task keeps the side it started on until it ends, so a request never mixes versions;
 * - an unbounded task switches when it holds no live frame — running or suspended — of a function
 *   in the transition. Frames that began during a transition are counted per task; frames that
 *   began between transitions only per function (Slot.n), so each of those holds every unbounded
 *   task that existed when the transition started. Switching happens only in checks that run
 *   outside any task's code (from a microtask or a timer), so no synchronous frame of an old
 *   version can be on the stack then;
 * - the transition completes when no task is left on the old side; force ends it at once;
 *   reversing flips the target, and tasks already switched come back under the same rules.
 *
 * Each task's side is kept lazily: a task that has not switched in this transition is on the
 * side every task had when the transition started.
 */
import type { PatchRecord } from '../core/patch.ts';
import { setFrameTracker, type FrameTracker, type Slot } from '../runtime/slot.ts';
import type { StatePlan } from '../state/states.ts';
import {
  currentTask,
  liveTasks,
  nextTaskId,
  rootTask,
  setTaskObserver,
  type Task,
  type TaskObserver,
} from './tasks.ts';

export type TaskSide = 'patched' | 'unpatched';

/** What a transition needs from the core. */
export interface TransitionOwner {
  completeTransition(t: Transition): Promise<void>;
  reversed(t: Transition): void;
  readonly events: { emit(type: TransitionEventType, fields: Record<string, unknown>): unknown };
}

type TransitionEventType =
  'transition.started' | 'transition.forced' | 'transition.tasks-switched' | 'transition.stalled';

export interface TransitionOptions {
  /** Full re-check period while a transition runs (the kernel retries every second). */
  readonly retryMs: number;
  /** Emit `transition.stalled` with the stall report after this long, then every such period. */
  readonly warnAfterMs: number;
  /** After this long: 'reverse' or 'force' the transition, or do nothing ('none'). */
  readonly timeoutMs: number;
  readonly onTimeout: 'none' | 'reverse' | 'force';
}

export const defaultTransitionOptions: TransitionOptions = {
  retryMs: 1000,
  warnAfterMs: 30_000,
  timeoutMs: 0,
  onTimeout: 'none',
};

/** Live frames of one function in the transition. */
export interface HeldFrames {
  /** `name in module`. */
  readonly function: string;
  readonly count: number;
  /**
   * 'this task': frames the task entered during the transition. 'not tracked': frames that began
   * before the transition, whose task is not known; they hold every unbounded task that existed
   * when the transition started.
   */
  readonly owner: 'this task' | 'not tracked';
}

export interface PendingTask {
  readonly task: number;
  readonly kind: 'bounded' | 'unbounded';
  readonly label: string;
  /** Milliseconds since the transition started. */
  readonly waitingMs: number;
  /**
   * Requests and streams in flight in this task's context that are not tasks of their own: they
   * began between transitions, in their connection's task (docs/consistency.md, "Tasks").
   */
  readonly inFlight: number;
  /**
   * Why it has not switched: a bounded task is 'in flight' until it ends, an unbounded one while
   * `inFlight` is not 0; otherwise an unbounded task holds 'live frames' of its own, or only
   * 'frames begun before the transition' (owner not tracked).
   */
  readonly reason: 'in flight' | 'live frames' | 'frames begun before the transition';
  /** Live frames of functions in the transition that hold it. */
  readonly frames: readonly HeldFrames[];
}

export interface TransitionReport {
  readonly patch: string;
  readonly target: TaskSide;
  readonly startedAt: string;
  readonly elapsedMs: number;
  readonly forced: boolean;
  readonly pending: readonly PendingTask[];
  /**
   * Live frames of functions in the transition that began before it started (owner not tracked),
   * e.g. "2 frames of loop in src/worker.js that began before the transition".
   */
  readonly untracked: readonly HeldFrames[];
}

let nextTransitionId = 1;

export class Transition implements TaskObserver, FrameTracker {
  readonly id = nextTransitionId++;
  readonly patch: PatchRecord;
  target: TaskSide;
  /** The side every task was on when the transition started. */
  readonly startSide: TaskSide;
  /** The operation that started it; a reversal keeps it (so the right teardown runs). */
  readonly op: 'enable' | 'disable';
  /** States the operation sets up and tears down. */
  readonly plan: StatePlan;
  forced = false;
  readonly startedAt = Date.now();
  private readonly owner: TransitionOwner;
  private readonly options: TransitionOptions;
  private readonly done: Promise<void>;
  private resolveDone!: () => void;
  private rejectDone!: (err: unknown) => void;
  private finished = false;
  private readonly pending = new Set<Task>();
  private checkQueued = false;
  /** Tasks with a smaller id existed when the transition started: only they can hold untracked frames. */
  private firstNewTask = 0;
  private timers: NodeJS.Timeout[] = [];

  constructor(
    patch: PatchRecord,
    target: TaskSide,
    owner: TransitionOwner,
    op: 'enable' | 'disable',
    plan: StatePlan,
    options: TransitionOptions = defaultTransitionOptions,
  ) {
    this.patch = patch;
    this.target = target;
    this.startSide = target === 'patched' ? 'unpatched' : 'patched';
    this.owner = owner;
    this.op = op;
    this.plan = plan;
    this.options = options;
    this.done = new Promise<void>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
  }

  get active(): boolean {
    return !this.finished;
  }

  /** The side of a task in this transition. */
  sideOf(task: Task): TaskSide {
    return task.sideFor === this.id ? task.side : this.startSide;
  }

  /** The side whose version a call from the current task runs. */
  sideOfCurrentTask(): TaskSide {
    return this.sideOf(currentTask());
  }

  private slotCache: Set<Slot> | null = null;

  /** Slots of the functions in this transition (cached; see invalidate). */
  slots(): Set<Slot> {
    if (this.slotCache !== null) return this.slotCache;
    const set = new Set<Slot>();
    for (const obj of this.patch.objects)
      for (const fn of obj.funcs) for (const slot of fn.installed) set.add(slot);
    this.slotCache = set;
    return set;
  }

  /** A module loaded during the transition: its slots join the transition. */
  invalidate(): void {
    this.slotCache = null;
  }

  start(): Promise<void> {
    this.firstNewTask = nextTaskId();
    this.pending.add(rootTask);
    for (const task of liveTasks) this.pending.add(task);
    setTaskObserver(this);
    // From now on frames are counted per task; those that began before are counted per slot.
    setFrameTracker(this);
    this.owner.events.emit('transition.started', {
      patch: this.patch.name,
      target: this.target,
      tasks: this.pending.size,
    });
    const { retryMs, warnAfterMs, timeoutMs, onTimeout } = this.options;
    if (retryMs > 0) this.timers.push(setInterval(() => this.check(), retryMs).unref());
    if (warnAfterMs > 0) {
      this.timers.push(
        setInterval(
          () =>
            this.owner.events.emit('transition.stalled', {
              patch: this.patch.name,
              target: this.target,
              report: this.report(),
            }),
          warnAfterMs,
        ).unref(),
      );
    }
    if (timeoutMs > 0 && onTimeout !== 'none') {
      this.timers.push(
        setTimeout(() => {
          if (this.finished) return;
          if (onTimeout === 'force') this.force();
          else void this.reverse();
        }, timeoutMs).unref(),
      );
    }
    // The first check runs once the code that started the transition has returned: tasks that
    // hold no live frame switch then ("at once"), without racing that code's own frames.
    this.queueCheck();
    return this.done;
  }

  // Task observer: new tasks start on the target side; ends and frame exits may allow switching.
  taskStarted(task: Task): void {
    task.sideFor = this.id;
    task.side = this.target;
  }
  taskMaySwitch(task: Task): void {
    if (this.pending.has(task)) this.queueCheck();
  }
  frameLeft(task: Task, slot: Slot): void {
    if (this.pending.has(task) && task.kind === 'unbounded' && this.slots().has(slot))
      this.queueCheck();
  }

  // Frame tracker (Slot.e / Slot.x while the transition runs).
  enter(slot: Slot): Task {
    const task = currentTask();
    task.entered(slot);
    return task;
  }
  untrackedDrained(slot: Slot): void {
    if (this.slots().has(slot)) this.queueCheck();
  }

  private queueCheck(): void {
    if (this.checkQueued || this.finished) return;
    this.checkQueued = true;
    queueMicrotask(() => {
      this.checkQueued = false;
      this.check();
    });
  }

  /** Switches every pending task that may switch; completes when none is left (klp_try_complete_transition). */
  check(): boolean {
    if (this.finished) return true;
    const slots = this.slots();
    const untracked = hasUntracked(slots);
    let switched = 0;
    for (const task of this.pending) {
      if (task.ended) {
        this.pending.delete(task);
        continue;
      }
      if (this.sideOf(task) === this.target) {
        this.pending.delete(task);
        continue;
      }
      if (task.kind === 'bounded' || task.inFlight > 0) continue;
      if (untracked && task.id < this.firstNewTask) continue;
      if (holdsFrames(task, slots)) continue;
      this.switchTask(task);
      switched++;
    }
    if (switched > 0) {
      this.owner.events.emit('transition.tasks-switched', {
        patch: this.patch.name,
        target: this.target,
        switched,
        remaining: this.pending.size,
      });
    }
    if (this.pending.size === 0) {
      this.complete();
      return true;
    }
    return false;
  }

  private switchTask(task: Task): void {
    task.sideFor = this.id;
    task.side = this.target;
    this.pending.delete(task);
  }

  private complete(): void {
    if (this.finished) return;
    this.finished = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    setTaskObserver(null);
    setFrameTracker(null);
    this.owner.completeTransition(this).then(this.resolveDone, this.rejectDone);
  }

  /**
   * Turns the transition around: the target flips; tasks that never switched are already there,
   * tasks that switched (or started) on the abandoned target go back under the same rules.
   */
  reverse(): Promise<void> {
    this.target = this.target === 'patched' ? 'unpatched' : 'patched';
    this.pending.clear();
    if (this.sideOf(rootTask) !== this.target) this.pending.add(rootTask);
    for (const task of liveTasks) if (this.sideOf(task) !== this.target) this.pending.add(task);
    this.owner.reversed(this);
    this.queueCheck();
    return this.done;
  }

  /** Switches every remaining task now; the patch is marked forced (docs/consistency.md). */
  force(): void {
    this.forced = true;
    this.patch.forced = true;
    const count = this.pending.size;
    for (const task of [...this.pending]) this.switchTask(task);
    this.owner.events.emit('transition.forced', {
      patch: this.patch.name,
      target: this.target,
      switched: count,
    });
    this.complete();
  }

  /** Pending tasks, how long they have waited and which frames hold them. */
  report(): TransitionReport {
    const slots = this.slots();
    const now = Date.now();
    const untracked: HeldFrames[] = [];
    for (const slot of slots)
      if (slot.n > 0) untracked.push({ function: slot.label, count: slot.n, owner: 'not tracked' });
    const pending: PendingTask[] = [];
    for (const task of this.pending) {
      if (task.ended || this.sideOf(task) === this.target) continue;
      const frames: HeldFrames[] = [];
      if (task.frames !== null) {
        for (const [slot, count] of task.frames)
          if (count > 0 && slots.has(slot))
            frames.push({ function: slot.label, count, owner: 'this task' });
      }
      const own = frames.length > 0;
      const heldBefore =
        task.kind === 'unbounded' && task.id < this.firstNewTask && untracked.length > 0;
      if (heldBefore) frames.push(...untracked);
      pending.push({
        task: task.id,
        kind: task.kind,
        label: task.reportLabel,
        waitingMs: now - this.startedAt,
        inFlight: task.inFlight,
        reason:
          task.kind === 'bounded' || task.inFlight > 0
            ? 'in flight'
            : heldBefore && !own
              ? 'frames begun before the transition'
              : 'live frames',
        frames,
      });
    }
    return {
      patch: this.patch.name,
      target: this.target,
      startedAt: new Date(this.startedAt).toISOString(),
      elapsedMs: now - this.startedAt,
      forced: this.forced,
      pending,
      untracked,
    };
  }
}

function holdsFrames(task: Task, slots: Set<Slot>): boolean {
  if (task.frames === null) return false;
  for (const [slot, count] of task.frames) if (count > 0 && slots.has(slot)) return true;
  return false;
}

/** Whether a frame of these functions that began before the transition (owner not tracked) is live. */
function hasUntracked(slots: Set<Slot>): boolean {
  for (const slot of slots) if (slot.n > 0) return true;
  return false;
}
