/**
 * The per-function record that an instrumented function's entry check reads: `g` (the gate) is
 * null while nothing is installed, so the unpatched cost is one property load and a compare on
 * an object whose shape never changes (FACTS.md: an array slot instead costs 12–15%).
 */
import type { FunctionInfo } from '../instrument/types.ts';
import type { LoadedModule } from './table.ts';

/** Scope accessor generated inside a function: see ScopeOp in key.ts. */
export type ScopeAccessor = (op: number, name: string, a?: unknown, b?: unknown) => unknown;

/**
 * Called by the entry check with the call's `this`, arguments, `new.target` and scope accessor.
 * Returns the call's result, or the slot itself to let the original body run.
 */
export type Gate = (
  thisArg: unknown,
  args: ArrayLike<unknown>,
  newTarget: unknown,
  scope: ScopeAccessor | undefined,
) => unknown;

/**
 * Live-frame accounting of instrumented async functions and generators, installed by the task
 * module (src/transition/tasks.ts): `enter` returns a token that `leave` gets back.
 */
export interface FrameHooks {
  enter(slot: Slot): unknown;
  leave(slot: Slot, token: unknown): void;
}

const noFrameHooks: FrameHooks = { enter: () => undefined, leave() {} };
let frameHooks: FrameHooks = noFrameHooks;

export function setFrameHooks(hooks: FrameHooks | null): void {
  frameHooks = hooks ?? noFrameHooks;
}

export class Slot {
  /** The gate, or null: the only field the entry check reads on the fast path. */
  g: Gate | null = null;
  /** Set for exactly one call: run the original body (used by `callContext().original`). */
  bypass = false;
  readonly module: LoadedModule;
  readonly info: FunctionInfo;
  constructor(module: LoadedModule, info: FunctionInfo) {
    this.module = module;
    this.info = info;
  }
  /** A tracked frame of this function starts (short names: they are written into every tracked body). */
  e(): unknown {
    return frameHooks.enter(this);
  }
  /** A tracked frame of this function ended. */
  x(token: unknown): void {
    frameHooks.leave(this, token);
  }
  /** `module > name[,pos]`, for messages. */
  get label(): string {
    return `${this.info.name}${this.info.pos > 0 ? `,${this.info.pos}` : ''} in ${this.module.displayName}`;
  }
}
