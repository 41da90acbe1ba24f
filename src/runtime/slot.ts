/**
 * The per-function record of the runtime: the function's gate, its live-frame count and its
 * identity. The entry check does not read the slot: it reads the function's gate cell, a
 * non-enumerable global property named in the generated code, which holds the gate or null. V8
 * compiles a global property that has never changed to a constant, with a dependency that
 * deoptimizes the code when the property changes, so the unpatched check costs nothing in
 * optimized code; installing a gate is that change (docs/architecture.md, "The entry check").
 */
import type { FunctionInfo } from '../instrument/types.ts';
import type { LoadedModule } from './table.ts';

/**
 * Scope accessor generated inside a function (or, for the module's top-level bindings, by the
 * module header): `op` is a ScopeOp (key.ts), `index` a position in FunctionInfo.scope,
 * FunctionInfo.privates or the module's moduleBindings.
 */
export type ScopeAccessor = (op: number, index: number, a?: unknown, b?: unknown) => unknown;

/**
 * Called by the entry check with the call's `this`, `new.target` (undefined where the function
 * cannot be constructed) and scope accessor, the trailing ones left out where they are undefined
 * anyway. Returns the function that the check then calls with the call's arguments (the declared
 * parameters, or all of them where the original could see them), which runs the chosen version
 * with that `this` (see VersionCall); or undefined to let the original body run. Called as a
 * plain function (no receiver). Two short calls instead of one that passes everything: fewer
 * bytes of bytecode in every function (docs/architecture.md, "The entry check").
 */
export type Gate = (
  thisArg?: unknown,
  newTarget?: unknown,
  scope?: ScopeAccessor,
) => VersionCall | undefined;

/** Runs one version with the `this` its gate just recorded (context.ts, `callVersion`). */
export type VersionCall = (...args: unknown[]) => unknown;

/**
 * Who owns a live frame that began while a transition ran: the task it began in. `x` hands the
 * frame back to it (src/transition/tasks.ts).
 */
export interface FrameOwner {
  left(slot: Slot): void;
}

/**
 * Per-task frame accounting, installed by the running transition (src/transition/transition.ts)
 * and removed when it ends. Between transitions it is null and frames are only counted per slot.
 */
export interface FrameTracker {
  /** A frame begins in the current task; returns that task. */
  enter(slot: Slot): FrameOwner;
  /** The last live frame of `slot` that began between transitions ended. */
  untrackedDrained(slot: Slot): void;
}

let tracker: FrameTracker | null = null;

export function setFrameTracker(t: FrameTracker | null): void {
  tracker = t;
}

/** An empty cell; one descriptor for every module start (one definition per function). */
const EMPTY = { value: null, writable: false, enumerable: false, configurable: true } as const;

/** Defines (or changes) a gate cell: read-only to code, so that only the runtime changes it. */
export function defineCell(name: string, gate: Gate | null): void {
  Object.defineProperty(globalThis, name, gate === null ? EMPTY : { ...EMPTY, value: gate });
}

export class Slot {
  /** Global name of the gate cell that the entry check reads. */
  readonly cell: string;
  #gate: Gate | null = null;
  /** Set for exactly one call: run the original body (used by `callContext().original`). */
  bypass = false;
  /**
   * Live frames that began while no transition ran: their task is not tracked (that would cost an
   * AsyncLocalStorage lookup and a map update on every call). A transition that starts while some
   * are live treats them as held by every unbounded task that exists then (docs/consistency.md).
   */
  n = 0;
  readonly module: LoadedModule;
  readonly info: FunctionInfo;
  /** Position in the module's function list (FunctionInfo.index, known before the list is read). */
  readonly index: number;
  constructor(module: LoadedModule, info: FunctionInfo, index: number, cell: string) {
    this.module = module;
    this.info = info;
    this.index = index;
    this.cell = cell;
  }
  /** The gate, or null while nothing is installed (the function runs its own code). */
  get gate(): Gate | null {
    return this.#gate;
  }
  set gate(gate: Gate | null) {
    // An unchanged cell stays unchanged: every change deoptimizes the code that read it.
    if (gate === this.#gate) return;
    this.#gate = gate;
    defineCell(this.cell, gate);
  }
  /**
   * A frame of this async function / generator begins (short names: they are written into every
   * such body). Between transitions only the counter moves; the token is `undefined`.
   */
  e(): FrameOwner | undefined {
    if (tracker === null) {
      this.n++;
      return undefined;
    }
    return tracker.enter(this);
  }
  /**
   * `x`, then `value`: an async function's frame ends at its `return value` (used instead of a
   * `finally` where the function's own code runs nothing on exit; see the instrumenter).
   */
  y<T>(token: FrameOwner | undefined, value?: T): T | undefined {
    this.x(token);
    return value;
  }
  /** The frame that `e` returned `token` for ended (its `finally`, or its `return` through `y`). */
  x(token: FrameOwner | undefined): void {
    if (token === undefined) {
      if (--this.n === 0 && tracker !== null) tracker.untrackedDrained(this);
      return;
    }
    token.left(this);
  }
  /** `module > name[,pos]`, for messages. */
  get label(): string {
    return `${this.info.name}${this.info.pos > 0 ? `,${this.info.pos}` : ''} in ${this.module.displayName}`;
  }
}
