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

/** Receives the end of a tracked frame (async function or generator); set by the transition code. */
export interface FrameHooks {
  leave(slot: Slot, token: number): void;
}

const noFrameHooks: FrameHooks = { leave() {} };
let frameHooks: FrameHooks = noFrameHooks;

export function setFrameHooks(hooks: FrameHooks | null): void {
  frameHooks = hooks ?? noFrameHooks;
}

export class Slot {
  /** The gate, or null: the only field the entry check reads on the fast path. */
  g: Gate | null = null;
  /** Frame token handed from the gate to a tracked function's body (0: untracked). */
  t = 0;
  /** Set for exactly one call: run the original body (used by `callContext().original`). */
  bypass = false;
  readonly module: LoadedModule;
  readonly info: FunctionInfo;
  constructor(module: LoadedModule, info: FunctionInfo) {
    this.module = module;
    this.info = info;
  }
  /** A tracked frame of this function ended. Short name: it is written into every tracked body. */
  x(token: number): void {
    frameHooks.leave(this, token);
  }
  /** `module > name[,pos]`, for messages. */
  get label(): string {
    return `${this.info.name}${this.info.pos > 0 ? `,${this.info.pos}` : ''} in ${this.module.displayName}`;
  }
}
