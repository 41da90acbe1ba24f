/**
 * The records the core owns for a loaded patch (klp_patch → klp_object → klp_func). Callers
 * never hold these: they hold a PatchHandle (core.ts), which stays safe after the patch is
 * removed because it only looks records up (the lesson of seed 002: the core owns lifetimes).
 *
 * Objects and functions generated for atomic replace (no-op entries) live in the same lists as
 * the defined ones, flagged `nop`, so every walk treats them alike (seed 001).
 */
import type { Replacement, StackEntry } from '../runtime/redirect.ts';
import type { Slot } from '../runtime/slot.ts';
import type { LoadedModule } from '../runtime/table.ts';
import type { PatchDefinition } from './definition.ts';
import { StateRecord } from '../state/states.ts';

export type PatchStatus = 'disabled' | 'enabling' | 'enabled' | 'disabling' | 'removed';

/** One function version the patch installs on one slot; it is the slot's stack entry. */
export class PatchFunc implements StackEntry {
  readonly name: string;
  readonly pos: number;
  /** null: a no-op entry (run what is below, i.e. the original once replaced patches are gone). */
  readonly replacement: Replacement | null;
  readonly nop: boolean;
  readonly owner: string;
  /** Set while the function's patch is in transition (the kernel's func->transition). */
  transition = false;
  /** Slots this function is installed on (several for a module loaded in several copies). */
  readonly installed = new Set<Slot>();
  constructor(owner: string, name: string, pos: number, replacement: Replacement | null) {
    this.owner = owner;
    this.name = name;
    this.pos = pos;
    this.replacement = replacement;
    this.nop = replacement === null;
  }
  get label(): string {
    return this.pos > 0 ? `${this.name},${this.pos}` : this.name;
  }
}

export class PatchObject {
  readonly module: string;
  readonly hash: string | undefined;
  readonly funcs: PatchFunc[];
  readonly nop: boolean;
  /** Loaded modules this object is applied to (the kernel's obj->patched, per copy). */
  readonly patched = new Set<LoadedModule>();
  constructor(module: string, hash: string | undefined, funcs: PatchFunc[], nop: boolean) {
    this.module = module;
    this.hash = hash;
    this.funcs = funcs;
    this.nop = nop;
  }
  findFunc(name: string, pos: number): PatchFunc | undefined {
    return this.funcs.find((f) => f.name === name && f.pos === pos);
  }
}

export class PatchRecord {
  readonly name: string;
  readonly replace: boolean;
  readonly objects: PatchObject[];
  readonly states: readonly StateRecord[];
  status: PatchStatus = 'disabled';
  /** A transition of this patch was forced (see docs/consistency.md). */
  forced = false;
  /** Where the patch came from: 'api' or a bundle file / signer. */
  readonly origin: string;
  readonly loadedAt = new Date();
  constructor(def: PatchDefinition, origin: string) {
    this.name = def.name;
    this.replace = def.replace === true;
    this.origin = origin;
    this.states = (def.states ?? []).map((st) => new StateRecord(st, this));
    this.objects = def.objects.map(
      (o) =>
        new PatchObject(
          o.module,
          o.hash,
          o.functions.map((f) => {
            const parsed = /^(.*),(\d+)$/.exec(f.name);
            const name = parsed !== null && f.pos === undefined ? parsed[1]! : f.name;
            const pos = f.pos ?? (parsed !== null ? Number(parsed[2]) : 0);
            return new PatchFunc(def.name, name, pos, f.replacement);
          }),
          false,
        ),
    );
  }
  findObject(module: string): PatchObject | undefined {
    return this.objects.find((o) => o.module === module);
  }
  *funcs(): Generator<[PatchObject, PatchFunc]> {
    for (const obj of this.objects) for (const fn of obj.funcs) yield [obj, fn];
  }
  get active(): boolean {
    return this.status === 'enabling' || this.status === 'enabled' || this.status === 'disabling';
  }
}
