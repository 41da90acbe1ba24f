/**
 * The in-process API of the patch core: one core per process (shared through globalThis so that
 * two copies of livepatch agree), and PatchHandle, the caller's safe reference to a patch.
 */
import { LivepatchCore, PatchError, type PatchInfo } from './core.ts';
import type { PatchDefinition } from './definition.ts';
import type { Listener } from './events.ts';
import type { PatchRecord, PatchStatus } from './patch.ts';
import { table } from '../runtime/table.ts';
import type { FunctionInfo, RefusedFunction } from '../instrument/types.ts';
import type { TransitionOptions, TransitionReport } from '../transition/transition.ts';
import { installTaskSources } from '../transition/sources.ts';

const CORE_KEY = Symbol.for('livepatch.core');

export function getCore(): LivepatchCore {
  const holder = globalThis as unknown as Record<symbol, LivepatchCore | undefined>;
  let core = holder[CORE_KEY];
  if (core === undefined) {
    installTaskSources();
    core = new LivepatchCore();
    Object.defineProperty(globalThis, CORE_KEY, { value: core, enumerable: false });
  }
  return core;
}

/**
 * A caller's reference to a loaded patch. It stays valid forever: once the patch is removed,
 * every operation fails with a clear error (code EREMOVED) instead of touching freed state.
 */
export class PatchHandle {
  readonly #record: PatchRecord;
  constructor(record: PatchRecord) {
    this.#record = record;
  }
  get name(): string {
    return this.#record.name;
  }
  get status(): PatchStatus {
    return this.#record.status;
  }
  /** The patch's state as the control endpoint shows it. */
  info(): PatchInfo {
    if (this.#record.status === 'removed') {
      throw new PatchError(
        `patch '${this.#record.name}' was removed; load it again to use it`,
        'EREMOVED',
      );
    }
    return getCore().info(this.#record);
  }
  /** Enables the patch; resolves when its transition completes. */
  enable(): Promise<void> {
    return getCore().enable(this.#record);
  }
  /** Disables the patch (reverses an enable in transition); resolves when the transition completes. */
  disable(): Promise<void> {
    return getCore().disable(this.#record);
  }
  /** Removes a disabled patch. */
  remove(): void {
    getCore().remove(this.#record);
  }
}

/** Loads a hand-written patch (disabled). */
export function loadPatch(def: PatchDefinition): PatchHandle {
  return new PatchHandle(getCore().load(def, 'api'));
}

/** Loads and enables in one step (the kernel's klp_enable_patch); the patch is loaded even if enabling fails. */
export async function applyPatch(def: PatchDefinition): Promise<PatchHandle> {
  const handle = loadPatch(def);
  try {
    await handle.enable();
  } catch (err) {
    if (handle.status === 'disabled') handle.remove();
    throw err;
  }
  return handle;
}

/** Every loaded patch, in stack order. */
export function listPatches(): PatchInfo[] {
  return getCore().list();
}

/** A handle to a loaded patch by name, or undefined. */
export function findPatch(name: string): PatchHandle | undefined {
  const record = getCore().get(name);
  return record === undefined ? undefined : new PatchHandle(record);
}

/** Subscribes to lifecycle events (docs/events.md); returns the unsubscribe function. */
export function onEvent(listener: Listener): () => void {
  return getCore().events.on(listener);
}

export interface ModuleFunctions {
  readonly module: string;
  readonly url: string;
  readonly hash: string;
  readonly functions: readonly FunctionInfo[];
  readonly refused: readonly RefusedFunction[];
}

/** The functions of a loaded module with their qualified names and original locations. */
export function listFunctions(module: string): ModuleFunctions {
  const mod = table.find(module);
  return {
    module: mod.displayName,
    url: mod.url,
    hash: mod.meta.hash,
    functions: mod.meta.functions,
    refused: mod.meta.refused,
  };
}

/** Every instrumented module loaded so far. */
export function listModules(): {
  module: string;
  url: string;
  functions: number;
  evaluations: number;
}[] {
  return table.all().map((m) => ({
    module: m.displayName,
    url: m.url,
    functions: m.meta.functionCount,
    evaluations: m.evaluations,
  }));
}

/** The stall report of the transition in progress: pending tasks, waits, holding frames (null when none runs). */
export function transitionStatus(): TransitionReport | null {
  return getCore().transitionReport();
}

/** Forces the transition in progress: every remaining task switches now (ENOTRANSITION when none runs). */
export function forceTransition(): void {
  getCore().force();
}

/** Retry period, stall warning and timeout for transitions started from now on. */
export function configureTransitions(options: Partial<TransitionOptions>): TransitionOptions {
  return getCore().configureTransitions(options);
}

/** A state as patch authors look it up. */
export interface StateView {
  readonly id: string;
  readonly patch: string;
  readonly data: unknown;
}

/** The state `id` of a loaded patch (the kernel's klp_get_state), or undefined. */
export function getState(patch: string, id: string): StateView | undefined {
  const st = getCore()
    .get(patch)
    ?.states.find((s) => s.id === id);
  return st === undefined ? undefined : { id: st.id, patch: st.patch.name, data: st.data };
}

/**
 * During a transition: the state `id` in the patch being replaced or stacked upon — the newest
 * active patch other than the one in transition that has it (the kernel's klp_get_prev_state).
 * Undefined outside a transition or when no such patch has it.
 */
export function getPrevState(id: string): StateView | undefined {
  const t = getCore().currentTransition;
  if (t === null) return undefined;
  const own = t.patch.states.find((s) => s.id === id);
  const prev =
    own !== undefined
      ? getCore().previousState(own)
      : getCore()
          .list()
          .reverse()
          .map((p) => getCore().get(p.name)!)
          .find((p) => p !== t.patch && p.active)
          ?.states.find((s) => s.id === id);
  return prev === undefined ? undefined : { id: prev.id, patch: prev.patch.name, data: prev.data };
}
