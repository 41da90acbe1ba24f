/**
 * States and their callbacks, in the model seed 003 proposes for the kernel: callbacks belong to
 * a state, run when the state is *introduced* (no other active patch has its id) or *removed*
 * (no remaining patch has it), and never when an atomic replace merely *carries* it. A state the
 * new patch drops is torn down by the callbacks of the patch that had it, so downgrades work. A
 * state may own the shadow variable of the same id, which is freed when the state is removed.
 *
 * This module computes the plan of an operation and runs callbacks; the core decides when.
 */
import type { StateDefinition } from '../core/definition.ts';
import type { PatchRecord } from '../core/patch.ts';
import { shadow } from '../shadow/index.ts';

/** What a state callback receives. */
export interface StateContext {
  /** The state's id (also the id of the shadow variable it may own). */
  readonly id: string;
  /** Name of the patch whose callback runs. */
  readonly patch: string;
  /** The same state in the patch being replaced, while an atomic replace carries or drops it. */
  readonly previous: { readonly patch: string; readonly data: unknown } | undefined;
  /** Data kept with the state; carried over when an atomic replace keeps the state. */
  data: unknown;
}

export type StateCallbackName = 'prePatch' | 'postPatch' | 'preUnpatch' | 'postUnpatch';

/** A state of one patch, as the core keeps it. */
export class StateRecord {
  readonly def: StateDefinition;
  readonly patch: PatchRecord;
  data: unknown = undefined;
  constructor(def: StateDefinition, patch: PatchRecord) {
    this.def = def;
    this.patch = patch;
  }
  get id(): string {
    return this.def.id;
  }
}

/** The states an operation sets up and tears down, each with the patch whose callbacks run. */
export interface StatePlan {
  /** States the patch introduces: prePatch now, postPatch at completion (postUnpatch if reversed). */
  readonly introduced: StateRecord[];
  /** States that disappear: preUnpatch now, postUnpatch at completion (postPatch if reversed). */
  readonly removed: StateRecord[];
  /** States an atomic replace keeps: no callbacks; data moves to the new patch's record. */
  readonly carried: { readonly from: StateRecord; readonly to: StateRecord }[];
}

/** Plan for enabling `p` while `active` patches (other than p) are in force. */
export function planEnable(p: PatchRecord, active: readonly PatchRecord[]): StatePlan {
  const others = active.filter((o) => o !== p);
  const has = (patches: readonly PatchRecord[], id: string) =>
    patches.some((o) => o.states.some((s) => s.id === id));
  const introduced = p.states.filter((s) => !has(others, s.id));
  const removed: StateRecord[] = [];
  const carried: { from: StateRecord; to: StateRecord }[] = [];
  if (p.replace) {
    const ids = new Set(p.states.map((s) => s.id));
    for (const o of others) {
      for (const s of o.states) {
        if (!ids.has(s.id)) {
          // Torn down once, by the newest patch that has it (whose callbacks know its latest form).
          const existing = removed.findIndex((r) => r.id === s.id);
          if (existing >= 0) removed.splice(existing, 1);
          removed.push(s);
        }
      }
    }
    for (const s of p.states) {
      const from = [...others]
        .reverse()
        .flatMap((o) => o.states)
        .find((o) => o.id === s.id);
      if (from !== undefined) carried.push({ from, to: s });
    }
  }
  return { introduced, removed, carried };
}

/** Plan for disabling `p`: its states that no other active patch has are removed. */
export function planDisable(p: PatchRecord, active: readonly PatchRecord[]): StatePlan {
  const others = active.filter((o) => o !== p);
  const removed = p.states.filter((s) => !others.some((o) => o.states.some((x) => x.id === s.id)));
  return { introduced: [], removed, carried: [] };
}

export class StateCallbackError extends Error {
  readonly code = 'ESTATECALLBACK';
  readonly state: string;
  readonly patch: string;
  readonly callback: StateCallbackName;
  constructor(state: StateRecord, callback: StateCallbackName, cause: unknown) {
    super(
      `${callback} of state '${state.id}' in patch '${state.patch.name}' failed: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
    this.name = 'StateCallbackError';
    this.state = state.id;
    this.patch = state.patch.name;
    this.callback = callback;
  }
}

/** Runs one callback of a state (if defined); the context's data is written back to the record. */
export async function runCallback(
  state: StateRecord,
  name: StateCallbackName,
  previous?: StateRecord,
): Promise<void> {
  const fn = state.def[name];
  if (fn === undefined) return;
  const ctx: StateContext = {
    id: state.id,
    patch: state.patch.name,
    previous:
      previous !== undefined ? { patch: previous.patch.name, data: previous.data } : undefined,
    data: state.data,
  };
  try {
    await fn(ctx);
  } catch (err) {
    throw new StateCallbackError(state, name, err);
  } finally {
    state.data = ctx.data;
  }
}

/** A removed state that owns its shadow variable frees every variable of its id (destructors run). */
export function freeOwnedShadow(state: StateRecord): number {
  return state.def.ownsShadow === true ? shadow.freeAll(state.id) : 0;
}
