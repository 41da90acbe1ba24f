/**
 * A transition moves every task from one side of a patch to the other (the kernel's
 * klp_transition). This first version switches all tasks at once, so a transition completes as
 * soon as it starts; the per-task consistency model (bounded tasks, live-frame checks, stall
 * reports) replaces `sideOfCurrentTask` and the completion rule without changing this interface.
 */
import type { PatchRecord } from '../core/patch.ts';
import type { StatePlan } from '../state/states.ts';

export type TaskSide = 'patched' | 'unpatched';

/** What a transition needs from the core. */
export interface TransitionOwner {
  completeTransition(t: Transition): Promise<void>;
  reversed(t: Transition): void;
  readonly events: { emit(type: 'transition.started' | 'transition.forced', fields: Record<string, unknown>): unknown };
}

export class Transition {
  readonly patch: PatchRecord;
  target: TaskSide;
  /** The operation that started it; a reversal keeps it (so the right teardown runs). */
  readonly op: 'enable' | 'disable';
  /** States the operation sets up and tears down. */
  readonly plan: StatePlan;
  forced = false;
  readonly startedAt = Date.now();
  private readonly owner: TransitionOwner;
  private readonly done: Promise<void>;
  private resolveDone!: () => void;
  private rejectDone!: (err: unknown) => void;
  private finished = false;

  constructor(patch: PatchRecord, target: TaskSide, owner: TransitionOwner, op: 'enable' | 'disable', plan: StatePlan) {
    this.patch = patch;
    this.target = target;
    this.owner = owner;
    this.op = op;
    this.plan = plan;
    this.done = new Promise<void>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
  }

  /** The side whose version a call from the current task runs. */
  sideOfCurrentTask(): TaskSide {
    return this.target;
  }

  start(): Promise<void> {
    this.owner.events.emit('transition.started', { patch: this.patch.name, target: this.target });
    this.tryComplete();
    return this.done;
  }

  /** Completes when no task is left on the old side (here: at once). */
  tryComplete(): boolean {
    if (this.finished) return true;
    this.finished = true;
    this.owner.completeTransition(this).then(this.resolveDone, this.rejectDone);
    return true;
  }

  /** Turns the transition around (disable during enable, or the reverse). */
  reverse(): Promise<void> {
    this.target = this.target === 'patched' ? 'unpatched' : 'patched';
    this.owner.reversed(this);
    this.tryComplete();
    return this.done;
  }

  /** Switches every remaining task now; the patch is marked forced. */
  force(): void {
    this.forced = true;
    this.patch.forced = true;
    this.owner.events.emit('transition.forced', { patch: this.patch.name, target: this.target });
    this.tryComplete();
  }
}
