/**
 * Redirection: the per-function stack of installed versions (the kernel's `func_stack` in
 * `klp_ops`) and the gate that the entry check calls. The newest entry wins; removing it exposes
 * the one below; an entry without a replacement (a no-op, used by atomic replace) runs the
 * original code. While the stack's top is a no-op or the stack is empty, the slot has no gate
 * and the function runs at full speed.
 */
import { callVersion, enterCall } from './context.ts';
import type { Gate, Slot } from './slot.ts';
import { table, LookupError } from './table.ts';

/** A function version, or `null` for "run the original code". */
export type Replacement = (this: unknown, ...args: never[]) => unknown;

export interface StackEntry {
  readonly replacement: Replacement | null;
  /** Who installed it (a patch name), for messages and listings. */
  readonly owner: string;
}

const stacks = new WeakMap<Slot, StackEntry[]>();

/**
 * Computes a slot's gate from its stack. Replaceable so that the consistency model can route
 * each task to its side during a transition (see src/transition/).
 */
export type GateFactory = (slot: Slot, stack: readonly StackEntry[]) => Gate | null;

let gateFactory: GateFactory = defaultGate;

export function setGateFactory(factory: GateFactory | null): void {
  gateFactory = factory ?? defaultGate;
}

export function stackOf(slot: Slot): readonly StackEntry[] {
  return stacks.get(slot) ?? [];
}

export function pushEntry(slot: Slot, entry: StackEntry): void {
  validateReplacement(slot, entry.replacement);
  let stack = stacks.get(slot);
  if (stack === undefined) {
    stack = [];
    stacks.set(slot, stack);
  }
  stack.push(entry);
  refresh(slot);
}

export function removeEntry(slot: Slot, entry: StackEntry): boolean {
  const stack = stacks.get(slot);
  const i = stack?.indexOf(entry) ?? -1;
  if (stack === undefined || i < 0) return false;
  stack.splice(i, 1);
  refresh(slot);
  return true;
}

/** Recomputes the slot's gate (after a stack change or a change of gate factory). */
export function refresh(slot: Slot): void {
  slot.gate = gateFactory(slot, stackOf(slot));
}

/** The version below `entry` (null: the original code). */
export function entryBelow(slot: Slot, replacement: Replacement | null): StackEntry | null {
  const stack = stackOf(slot);
  const i = stack.findIndex((e) => e.replacement === replacement);
  return i > 0 ? stack[i - 1]! : null;
}

function defaultGate(slot: Slot, stack: readonly StackEntry[]): Gate | null {
  const top = stack[stack.length - 1];
  if (top === undefined || top.replacement === null) return null;
  return gateFor(slot, top.replacement);
}

/** The gate that runs one version: honours a pending bypass, records the call context. */
export function gateFor(slot: Slot, replacement: Replacement): Gate {
  const run = callVersion(replacement);
  return (self, newTarget, scope) => {
    if (slot.bypass) {
      slot.bypass = false;
      return undefined;
    }
    enterCall(slot, replacement, self, newTarget, scope);
    return run;
  };
}

function validateReplacement(slot: Slot, replacement: Replacement | null): void {
  if (replacement === null) return;
  if (typeof replacement !== 'function') {
    throw new TypeError(
      `the replacement for ${slot.label} must be a function, got ${typeof replacement}`,
    );
  }
  const problem = replacementKindProblem(slot, replacement);
  if (problem !== null) throw new TypeError(problem);
}

/**
 * Why `replacement` cannot stand in for the slot's function, or null. Generators need a
 * generator of the same kind: their callers iterate what they return.
 */
export function replacementKindProblem(slot: Slot, replacement: Replacement): string | null {
  const info = slot.info;
  if (!info.generator) return null;
  const ctor = (Object.getPrototypeOf(replacement) as { constructor?: { name?: string } } | null)
    ?.constructor?.name;
  if (ctor === (info.async ? 'AsyncGeneratorFunction' : 'GeneratorFunction')) return null;
  return `the replacement for ${slot.label} must be ${info.async ? 'an async generator function (async function*)' : 'a generator function (function*)'}, as the original is: its callers iterate what it returns`;
}

/** Target of a redirection: a loaded module and a function in it. */
export interface FunctionTarget {
  /** App-relative path, absolute path, file URL or package subpath of a loaded module. */
  readonly module: string;
  /** Qualified name, optionally with `,pos` (see docs/naming.md). */
  readonly function: string;
  readonly pos?: number;
}

export interface Redirection {
  readonly module: string;
  readonly function: string;
  /** False once removed. */
  readonly active: boolean;
  remove(): void;
}

/** Resolves a target to its slot, with errors that name the fix. */
export function resolveTarget(target: FunctionTarget): Slot {
  if (target === null || typeof target !== 'object') {
    throw new TypeError(`target must be { module, function }, got ${String(target)}`);
  }
  return table.find(target.module).findFunction(target.function, target.pos);
}

/**
 * Installs `replacement` for one function of a loaded module; every existing reference to the
 * function (closures, listeners, instances, bound copies, imported bindings) calls it from the
 * next call on. `remove()` undoes it and exposes what was below.
 */
export function redirect(
  target: FunctionTarget,
  replacement: Replacement,
  owner = 'redirect()',
): Redirection {
  const slot = resolveTarget(target);
  if (typeof replacement !== 'function') {
    throw new TypeError(
      `the replacement for ${slot.label} must be a function, got ${replacement === null ? 'null' : typeof replacement}`,
    );
  }
  const entry: StackEntry = { replacement, owner };
  pushEntry(slot, entry);
  let active = true;
  return {
    module: slot.module.displayName,
    function: slot.info.name + (slot.info.pos > 0 ? `,${slot.info.pos}` : ''),
    get active() {
      return active;
    },
    remove() {
      if (!active)
        throw new LookupError(`the redirection of ${slot.label} was already removed`, 'EREMOVED');
      active = false;
      removeEntry(slot, entry);
    },
  };
}
