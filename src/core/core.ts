/**
 * The patch core: loads patches, owns their records, enables and disables them through
 * transitions, stacks them, performs atomic replace with no-op entries, and patches modules that
 * load later before their code runs. Every operation verifies everything first and changes
 * nothing when verification fails. Semantics follow the kernel's livepatch (docs/patches.md).
 */
import {
  gateFor,
  pushEntry,
  refresh,
  removeEntry,
  replacementKindProblem,
  setGateFactory,
  type Replacement,
  type StackEntry,
} from '../runtime/redirect.ts';
import type { Gate, Slot } from '../runtime/slot.ts';
import { table, getAppRoot, type LoadedModule } from '../runtime/table.ts';
import {
  defaultTransitionOptions,
  Transition,
  type TaskSide,
  type TransitionOptions,
  type TransitionReport,
} from '../transition/transition.ts';
import { callVersion, enterCall } from '../runtime/context.ts';
import { validate, type PatchDefinition } from './definition.ts';
import { EventBus } from './events.ts';
import { PatchFunc, PatchObject, PatchRecord, type PatchStatus } from './patch.ts';
import {
  freeOwnedShadow,
  planDisable,
  planEnable,
  runCallback,
  type StateCallbackName,
  type StateRecord,
} from '../state/states.ts';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export class PatchError extends Error {
  readonly code: string;
  constructor(message: string, code: string) {
    super(message);
    this.name = 'PatchError';
    this.code = code;
  }
}

export interface FunctionState {
  readonly name: string;
  readonly pos: number;
  readonly nop: boolean;
  readonly transition: boolean;
  /** Copies of the module this function is installed in. */
  readonly patched: number;
}

export interface ObjectState {
  readonly module: string;
  readonly hash: string | null;
  readonly nop: boolean;
  /** True when every loaded copy of the module is patched; false when none is loaded yet. */
  readonly patched: boolean;
  readonly loaded: number;
  readonly functions: readonly FunctionState[];
}

export interface PatchInfo {
  readonly name: string;
  readonly status: PatchStatus;
  readonly enabled: boolean;
  readonly transition: boolean;
  readonly replace: boolean;
  readonly forced: boolean;
  /** 1-based position in the patch stack (load order), as the kernel's stack_order. */
  readonly stackOrder: number;
  readonly origin: string;
  readonly objects: readonly ObjectState[];
  readonly states: readonly string[];
}

export class LivepatchCore {
  readonly events = new EventBus();
  /** Loaded patches in stack order (the kernel's klp_patches list). */
  private readonly patches: PatchRecord[] = [];
  private transition: Transition | null = null;
  /** An operation between its start and its end (callbacks included): one at a time. */
  private busy: { readonly patch: PatchRecord; readonly op: 'enable' | 'disable' } | null = null;
  private transitionOptions: TransitionOptions = defaultTransitionOptions;

  constructor() {
    table.onModule((mod) => this.onModuleLoad(mod));
    setGateFactory((slot, stack) => this.gate(slot, stack));
  }

  // ---- queries ------------------------------------------------------------------------------

  list(): PatchInfo[] {
    return this.patches.map((p) => this.info(p));
  }

  get(name: string): PatchRecord | undefined {
    return this.patches.find((p) => p.name === name);
  }

  info(p: PatchRecord): PatchInfo {
    return {
      name: p.name,
      status: p.status,
      enabled: p.status === 'enabled' || p.status === 'enabling',
      transition: this.transition?.patch === p,
      replace: p.replace,
      forced: p.forced,
      stackOrder: this.patches.indexOf(p) + 1,
      origin: p.origin,
      states: p.states.map((s) => s.id),
      objects: p.objects.map((o) => {
        const loaded = this.modulesFor(o).length;
        return {
          module: o.module,
          hash: o.hash ?? null,
          nop: o.nop,
          patched: loaded > 0 && o.patched.size >= loaded,
          loaded,
          functions: o.funcs.map((f) => ({
            name: f.name,
            pos: f.pos,
            nop: f.nop,
            transition: f.transition,
            patched: f.installed.size,
          })),
        };
      }),
    };
  }

  /** The transition in progress, if any. */
  get currentTransition(): Transition | null {
    return this.transition;
  }

  /** Retry period, stall warning and timeout of transitions started from now on. */
  configureTransitions(options: Partial<TransitionOptions>): TransitionOptions {
    const next = { ...this.transitionOptions, ...options };
    for (const key of ['retryMs', 'warnAfterMs', 'timeoutMs'] as const) {
      if (!Number.isFinite(next[key]) || next[key] < 0)
        throw new TypeError(
          `${key} must be a number of milliseconds >= 0 (0 turns it off), got ${String(next[key])}`,
        );
    }
    if (!['none', 'reverse', 'force'].includes(next.onTimeout))
      throw new TypeError(
        `onTimeout must be 'none', 'reverse' or 'force', got ${String(next.onTimeout)}`,
      );
    this.transitionOptions = next;
    return next;
  }

  /** The stall report of the transition in progress (null when none runs). */
  transitionReport(): TransitionReport | null {
    return this.transition?.report() ?? null;
  }

  /** Switches every remaining task of the transition now; an error when no transition runs. */
  force(): void {
    if (this.transition === null)
      throw new PatchError(
        'no transition is in progress: force only applies to a transition that has not completed',
        'ENOTRANSITION',
      );
    this.transition.force();
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  /** Registers a patch (disabled). Names are unique among loaded patches. */
  load(def: PatchDefinition, origin = 'api'): PatchRecord {
    try {
      validate(def);
    } catch (err) {
      this.events.emit('patch.refused', {
        patch: typeof def?.name === 'string' ? def.name : undefined,
        reason: (err as Error).message,
      });
      throw err;
    }
    if (this.get(def.name) !== undefined) {
      const err = new PatchError(
        `a patch named '${def.name}' is already loaded; remove it first or give the new one another name`,
        'EEXIST',
      );
      this.events.emit('patch.refused', { patch: def.name, reason: err.message });
      throw err;
    }
    const record = new PatchRecord(def, origin);
    this.patches.push(record);
    this.events.emit('patch.loaded', { patch: record.name, origin, replace: record.replace });
    return record;
  }

  /**
   * Enables a loaded, disabled patch. Verifies target hashes, that every named function exists in
   * every loaded target module, replacement kinds and state compatibility, before anything
   * changes; then runs `prePatch` of the states it introduces, redirects, and starts the
   * transition. Resolves when the transition and the post callbacks are done.
   */
  enable(p: PatchRecord): Promise<void> {
    return this.operate(p, 'enabled', () => this.startEnable(p));
  }

  /** Runs an operation's synchronous start; a refusal becomes a rejection, never a throw. */
  private operate(
    p: PatchRecord,
    wanted: 'enabled' | 'disabled',
    start: () => Promise<void>,
  ): Promise<void> {
    let started: Promise<void>;
    try {
      started = start();
    } catch (err) {
      started = Promise.reject(err);
    }
    return this.settle(p, wanted, started);
  }

  /**
   * Resolves when the operation's transition ends with the patch in `wanted`; rejects if it was
   * reversed. The promise is marked handled: a caller that ignores it must not crash the process
   * (events report every outcome); a caller that awaits it still gets the rejection.
   */
  private settle(
    p: PatchRecord,
    wanted: 'enabled' | 'disabled',
    done: Promise<void>,
  ): Promise<void> {
    const result = done.then(() => {
      if (p.status !== wanted && !(wanted === 'disabled' && p.status === 'removed')) {
        throw new PatchError(
          `the ${wanted === 'enabled' ? 'enable' : 'disable'} of patch '${p.name}' was reversed; the patch is ${p.status}`,
          'EREVERSED',
        );
      }
    });
    result.catch(() => undefined);
    return result;
  }

  private startEnable(p: PatchRecord): Promise<void> {
    this.assertLive(p);
    if (p.status === 'enabled' || p.status === 'enabling') {
      throw new PatchError(`patch '${p.name}' is already enabled`, 'EALREADY');
    }
    if (p.status === 'disabling') {
      // Re-enabling mid-disable reverses that transition (the kernel's klp_reverse_transition).
      return this.transition!.reverse();
    }
    this.assertNotBusy(p, 'enable');
    this.verifyOrRefuse(p);
    this.busy = { patch: p, op: 'enable' };
    return this.enableSteps(p).finally(() => {
      if (this.busy?.patch === p && this.transition === null) this.busy = null;
    });
  }

  private async enableSteps(p: PatchRecord): Promise<void> {
    const plan = planEnable(
      p,
      this.patches.filter((o) => o.active),
    );
    // Set up what the new states need, then let replaced states begin their teardown. A failure
    // undoes exactly what succeeded, in reverse order, and leaves the process as it was.
    const undo: { state: StateRecord; callback: StateCallbackName }[] = [];
    try {
      for (const st of plan.introduced) {
        await this.callback(st, 'prePatch');
        undo.push({ state: st, callback: 'postUnpatch' });
      }
      for (const st of plan.removed) {
        await this.callback(st, 'preUnpatch');
        undo.push({ state: st, callback: 'postPatch' });
      }
    } catch (err) {
      for (const { state, callback } of undo.reverse())
        await this.callbackReported(state, callback);
      for (const st of plan.introduced) if (undo.some((u) => u.state === st)) freeOwnedShadow(st);
      this.events.emit('patch.refused', { patch: p.name, reason: (err as Error).message });
      throw err;
    }
    // Modules may have loaded while callbacks ran: verify again right before changing anything.
    let verified: Plan;
    try {
      verified = this.verify(p);
    } catch (err) {
      for (const { state, callback } of undo.reverse())
        await this.callbackReported(state, callback);
      this.events.emit('patch.refused', { patch: p.name, reason: (err as Error).message });
      throw err;
    }
    // From here on every step is infallible bookkeeping.
    if (p.replace) this.addNops(p);
    // A re-enabled patch goes to the top of the stack, as a newly loaded one would.
    this.patches.splice(this.patches.indexOf(p), 1);
    this.patches.push(p);
    p.status = 'enabling';
    this.events.emit('patch.enabling', { patch: p.name, target: 'patched' });
    const transition = new Transition(p, 'patched', this, 'enable', plan, this.transitionOptions);
    this.transition = transition;
    for (const [, fn] of p.funcs()) fn.transition = true;
    for (const obj of p.objects) {
      for (const mod of this.modulesFor(obj)) this.patchObject(p, obj, mod, verified.slots);
    }
    return transition.start();
  }

  /** Disables an enabled patch; mid-enable it reverses the transition. */
  disable(p: PatchRecord): Promise<void> {
    return this.operate(p, 'disabled', () => this.startDisable(p));
  }

  private startDisable(p: PatchRecord): Promise<void> {
    this.assertLive(p);
    if (p.status === 'disabled' || p.status === 'disabling') {
      throw new PatchError(`patch '${p.name}' is already disabled`, 'EALREADY');
    }
    const blocking = p.states.find((s) => s.def.blockDisable === true);
    if (blocking !== undefined) {
      throw new PatchError(
        `patch '${p.name}' cannot be disabled: its state '${blocking.id}' has block_disable set (its changes cannot be undone); replace it with a patch that keeps the state instead`,
        'EBLOCKED',
      );
    }
    if (p.status === 'enabling') return this.transition!.reverse();
    this.assertNotBusy(p, 'disable');
    this.busy = { patch: p, op: 'disable' };
    return this.disableSteps(p).finally(() => {
      if (this.busy?.patch === p && this.transition === null) this.busy = null;
    });
  }

  private async disableSteps(p: PatchRecord): Promise<void> {
    const plan = planDisable(
      p,
      this.patches.filter((o) => o.active),
    );
    const done: StateRecord[] = [];
    try {
      for (const st of plan.removed) {
        await this.callback(st, 'preUnpatch');
        done.push(st);
      }
    } catch (err) {
      for (const st of done.reverse()) await this.callbackReported(st, 'postPatch');
      this.events.emit('patch.refused', { patch: p.name, reason: (err as Error).message });
      throw err;
    }
    p.status = 'disabling';
    this.events.emit('patch.disabling', { patch: p.name, target: 'unpatched' });
    const transition = new Transition(
      p,
      'unpatched',
      this,
      'disable',
      plan,
      this.transitionOptions,
    );
    this.transition = transition;
    for (const [, fn] of p.funcs()) fn.transition = true;
    for (const [, fn] of p.funcs()) for (const slot of fn.installed) refresh(slot);
    return transition.start();
  }

  /** Removes a disabled patch. Handles kept by callers stay safe and report it as removed. */
  remove(p: PatchRecord, reason?: string): void {
    this.assertLive(p);
    if (p.status !== 'disabled') {
      throw new PatchError(
        `patch '${p.name}' is ${p.status}; disable it before removing it`,
        'EBUSY',
      );
    }
    this.patches.splice(this.patches.indexOf(p), 1);
    p.status = 'removed';
    this.events.emit('patch.removed', {
      patch: p.name,
      ...(reason !== undefined ? { reason } : {}),
    });
  }

  // ---- transition callbacks (called by Transition) ------------------------------------------

  /**
   * All tasks reached the target: finish the operation (klp_complete_transition), then run the
   * post callbacks that match what the operation set up or tore down.
   */
  async completeTransition(t: Transition): Promise<void> {
    const p = t.patch;
    const plan = t.plan;
    for (const [, fn] of p.funcs()) fn.transition = false;
    const replaced: PatchRecord[] = [];
    if (t.target === 'patched') {
      if (p.replace) {
        for (const old of [...this.patches]) {
          if (old === p || !old.active) continue;
          this.unpatchAll(old);
          old.status = 'disabled';
          replaced.push(old);
        }
        this.discardNops(p);
      }
      p.status = 'enabled';
    } else {
      this.unpatchAll(p);
      if (p.replace) this.discardNops(p);
      p.status = 'disabled';
    }
    for (const [, fn] of p.funcs()) for (const slot of fn.installed) refresh(slot);
    this.transition = null;
    this.events.emit('transition.completed', { patch: p.name, target: t.target, forced: t.forced });
    try {
      if (t.op === 'enable' && t.target === 'patched') {
        for (const { from, to } of plan.carried) {
          to.data = from.data;
          this.events.emit('state.carried', { patch: p.name, state: to.id, from: from.patch.name });
        }
        for (const st of plan.introduced) await this.callbackReported(st, 'postPatch');
        for (const st of plan.removed) await this.teardown(st);
      } else if (t.op === 'enable') {
        // Reversed enable: undo prePatch, and give replaced states back what preUnpatch took.
        for (const st of [...plan.introduced].reverse()) await this.teardown(st);
        for (const st of plan.removed) await this.callbackReported(st, 'postPatch');
      } else if (t.target === 'unpatched') {
        for (const st of plan.removed) await this.teardown(st);
      } else {
        // Reversed disable: the states stay; undo their preUnpatch.
        for (const st of plan.removed) await this.callbackReported(st, 'postPatch');
      }
      for (const old of replaced) {
        this.events.emit('patch.disabled', { patch: old.name, reason: `replaced by '${p.name}'` });
        this.remove(old, `replaced by '${p.name}'`);
      }
      this.events.emit(t.target === 'patched' ? 'patch.enabled' : 'patch.disabled', {
        patch: p.name,
      });
    } finally {
      this.busy = null;
    }
  }

  /** postUnpatch, then the owned shadow variable goes with the state. */
  private async teardown(st: StateRecord): Promise<void> {
    await this.callbackReported(st, 'postUnpatch');
    freeOwnedShadow(st);
  }

  /** Runs a callback; a failure propagates (pre callbacks refuse the operation). */
  private async callback(st: StateRecord, name: StateCallbackName): Promise<void> {
    if (st.def[name] === undefined) return;
    try {
      await runCallback(st, name, this.previousState(st));
      this.events.emit('state.callback', { patch: st.patch.name, state: st.id, callback: name });
    } catch (err) {
      this.events.emit('state.callback', {
        patch: st.patch.name,
        state: st.id,
        callback: name,
        reason: (err as Error).message,
      });
      throw err;
    }
  }

  /** Runs a callback that cannot refuse anything (post callbacks, undo): a failure is reported. */
  private async callbackReported(st: StateRecord, name: StateCallbackName): Promise<void> {
    try {
      await this.callback(st, name);
    } catch (err) {
      process.emitWarning(`livepatch: ${(err as Error).message}`, {
        code: 'LIVEPATCH_STATE_CALLBACK',
      });
    }
  }

  /** The same state in another active patch (the one being replaced), newest first. */
  previousState(st: StateRecord): StateRecord | undefined {
    for (let i = this.patches.length - 1; i >= 0; i--) {
      const o = this.patches[i]!;
      if (o === st.patch || !o.active) continue;
      const found = o.states.find((x) => x.id === st.id);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  /** The transition turned around; the patch's status follows its new target. */
  reversed(t: Transition): void {
    t.patch.status = t.target === 'patched' ? 'enabling' : 'disabling';
    this.events.emit('transition.reversed', { patch: t.patch.name, target: t.target });
  }

  // ---- internals ----------------------------------------------------------------------------

  private assertLive(p: PatchRecord): void {
    if (p.status === 'removed') {
      throw new PatchError(`patch '${p.name}' was removed; load it again to use it`, 'EREMOVED');
    }
  }

  private assertNotBusy(p: PatchRecord, what: string): void {
    if (this.busy !== null && this.transition === null) {
      throw new PatchError(
        `cannot ${what} patch '${p.name}': patch '${this.busy.patch.name}' is being ${this.busy.op}d (its state callbacks are running); wait for it`,
        'EBUSY',
      );
    }
    if (this.transition !== null) {
      throw new PatchError(
        `cannot ${what} patch '${p.name}': patch '${this.transition.patch.name}' is in transition to ${this.transition.target}; wait for it, force it, or reverse it`,
        'EBUSY',
      );
    }
  }

  /** Loaded copies of an object's module (current evaluations only). */
  private modulesFor(obj: PatchObject): LoadedModule[] {
    return table.match(obj.module).filter((m) => m.current);
  }

  /** verify() that reports the refusal as an event. */
  private verifyOrRefuse(p: PatchRecord): Plan {
    try {
      return this.verify(p);
    } catch (err) {
      this.events.emit('patch.refused', { patch: p.name, reason: (err as Error).message });
      throw err;
    }
  }

  /** Checks everything enable needs; throws the first problem, changes nothing. */
  private verify(p: PatchRecord): Plan {
    const slots = new Map<PatchFunc, Map<LoadedModule, Slot>>();
    for (const obj of p.objects) {
      for (const mod of this.modulesFor(obj)) this.resolveObject(p, obj, mod, slots);
    }
    if (p.replace) {
      const ids = new Set(p.states.map((s) => s.id));
      for (const old of this.patches) {
        if (old === p || !old.active) continue;
        const dropped = old.states.find((s) => s.def.blockDisable === true && !ids.has(s.id));
        if (dropped !== undefined) {
          throw new PatchError(
            `replace patch '${p.name}' is incompatible: it drops state '${dropped.id}' of patch '${old.name}', which has block_disable set; the new patch must keep that state`,
            'EINCOMPATIBLE',
          );
        }
      }
    }
    return { slots };
  }

  /** Hash check and function lookup of one object in one loaded module. */
  private resolveObject(
    p: PatchRecord,
    obj: PatchObject,
    mod: LoadedModule,
    into: Map<PatchFunc, Map<LoadedModule, Slot>>,
  ): void {
    if (obj.hash !== undefined && obj.hash !== mod.meta.hash) {
      throw new PatchError(
        `patch '${p.name}' was built against another version of ${mod.displayName}: expected source sha256 ${obj.hash}, the loaded module has ${mod.meta.hash}; rebuild the patch against the running source`,
        'EHASH',
      );
    }
    for (const fn of obj.funcs) {
      let slot: Slot;
      try {
        slot = mod.findFunction(fn.name, fn.pos);
      } catch (err) {
        throw new PatchError(
          `patch '${p.name}': ${(err as Error).message}`,
          (err as { code?: string }).code ?? 'ENOFUNCTION',
        );
      }
      if (fn.replacement !== null) checkKind(p, fn, slot);
      let perModule = into.get(fn);
      if (perModule === undefined) into.set(fn, (perModule = new Map()));
      perModule.set(mod, slot);
    }
  }

  private patchObject(
    p: PatchRecord,
    obj: PatchObject,
    mod: LoadedModule,
    slots: Map<PatchFunc, Map<LoadedModule, Slot>>,
  ): void {
    for (const fn of obj.funcs) {
      const slot = slots.get(fn)?.get(mod) ?? mod.findFunction(fn.name, fn.pos);
      pushEntry(slot, fn);
      fn.installed.add(slot);
    }
    obj.patched.add(mod);
    this.transition?.invalidate();
    this.events.emit('object.patched', {
      patch: p.name,
      module: mod.displayName,
      functions: obj.funcs.map((f) => f.label),
    });
  }

  private unpatchAll(p: PatchRecord): void {
    for (const obj of p.objects) {
      if (obj.patched.size === 0) continue;
      for (const fn of obj.funcs) {
        for (const slot of fn.installed) removeEntry(slot, fn);
        fn.installed.clear();
      }
      for (const mod of obj.patched) {
        this.events.emit('object.unpatched', {
          patch: p.name,
          module: mod.displayName,
          functions: obj.funcs.map((f) => f.label),
        });
      }
      obj.patched.clear();
    }
  }

  /** Atomic replace: a no-op entry for every function an active patch patches that `p` does not. */
  private addNops(p: PatchRecord): void {
    for (const old of this.patches) {
      if (old === p || !old.active) continue;
      for (const [oldObj, oldFn] of old.funcs()) {
        let obj = p.objects.find((o) => sameModule(o.module, oldObj.module));
        if (obj === undefined) {
          obj = new PatchObject(oldObj.module, oldObj.hash, [], true);
          p.objects.push(obj);
        }
        if (obj.findFunc(oldFn.name, oldFn.pos) === undefined)
          obj.funcs.push(new PatchFunc(p.name, oldFn.name, oldFn.pos, null));
      }
    }
  }

  private discardNops(p: PatchRecord): void {
    for (const obj of p.objects) {
      for (const fn of obj.funcs.filter((f) => f.nop)) {
        for (const slot of fn.installed) removeEntry(slot, fn);
        obj.funcs.splice(obj.funcs.indexOf(fn), 1);
      }
    }
    for (const obj of p.objects.filter((o) => o.nop)) p.objects.splice(p.objects.indexOf(obj), 1);
  }

  /** A module started evaluating: apply every active patch that names it, or fail its load. */
  private onModuleLoad(mod: LoadedModule): void {
    const work: { p: PatchRecord; obj: PatchObject }[] = [];
    for (const p of this.patches) {
      if (!p.active) continue;
      for (const obj of p.objects) if (moduleMatches(mod, obj.module)) work.push({ p, obj });
    }
    if (work.length === 0) return;
    const slots = new Map<PatchFunc, Map<LoadedModule, Slot>>();
    for (const { p, obj } of work) {
      try {
        this.resolveObject(p, obj, mod, slots);
      } catch (err) {
        const reason = (err as Error).message;
        this.events.emit('module.load-refused', { patch: p.name, module: mod.displayName, reason });
        throw new PatchError(
          `livepatch: cannot load ${mod.displayName}: ${reason}`,
          'ELOADREFUSED',
        );
      }
    }
    for (const { p, obj } of work) {
      this.patchObject(p, obj, mod, slots);
      this.events.emit('module.patched-on-load', {
        patch: p.name,
        module: mod.displayName,
        functions: obj.funcs.map((f) => f.label),
      });
    }
  }

  /** The gate of a slot: the top version, or — for a function in transition — the caller's side. */
  private gate(slot: Slot, stack: readonly StackEntry[]): Gate | null {
    const top = stack[stack.length - 1];
    if (top === undefined) return null;
    if (!(top instanceof PatchFunc) || !top.transition || this.transition === null) {
      return top.replacement === null ? null : gateFor(slot, top.replacement);
    }
    const transition = this.transition;
    // Each side's version and the function that runs it (null: the original code).
    const side = (fn: Replacement | null) => (fn === null ? null : { fn, run: callVersion(fn) });
    const newer = side(top.replacement);
    const older = side(stack.length > 1 ? stack[stack.length - 2]!.replacement : null);
    return (self, newTarget, scope) => {
      if (slot.bypass) {
        slot.bypass = false;
        return undefined;
      }
      const taskSide: TaskSide = transition.sideOfCurrentTask();
      const version = taskSide === 'patched' ? newer : older;
      if (version === null) return undefined;
      enterCall(slot, version.fn, self, newTarget, scope);
      return version.run;
    };
  }
}

interface Plan {
  readonly slots: Map<PatchFunc, Map<LoadedModule, Slot>>;
}

function checkKind(p: PatchRecord, fn: PatchFunc, slot: Slot): void {
  const problem = replacementKindProblem(slot, fn.replacement!);
  if (problem !== null) throw new PatchError(`patch '${p.name}': ${problem}`, 'EKIND');
}

/** Does an object's module spec name this loaded module? (Inverse of table.match.) */
export function moduleMatches(mod: LoadedModule, spec: string): boolean {
  if (spec === mod.url) return true;
  if (spec.startsWith('file:')) return spec === mod.url;
  if (path.isAbsolute(spec)) return pathToFileURL(path.normalize(spec)).href === mod.url;
  const rel = spec.replace(/^\.\//, '');
  if (pathToFileURL(path.resolve(getAppRoot(), rel)).href === mod.url) return true;
  return mod.meta.filename.endsWith(
    `${path.sep}node_modules${path.sep}${rel.split('/').join(path.sep)}`,
  );
}

function sameModule(a: string, b: string): boolean {
  return a.replace(/^\.\//, '') === b.replace(/^\.\//, '');
}
