/**
 * The shadow variable registry: extra data attached to existing objects by (object, id), the
 * JavaScript form of the kernel's klp_shadow_*() API. Owns storage, lifetimes and destructors;
 * the state subsystem frees a state's variables through `freeAll(id)`.
 *
 * Storage, per id (one `Slot`):
 * - a `WeakMap<object, Entry>` holds the data. A WeakMap entry is an ephemeron: the data lives
 *   exactly as long as its object, even when the data refers back to the object (a back
 *   pointer, a closure over it), so attaching data never keeps an object alive.
 * - a `Set<WeakRef<object>>` makes the id enumerable, which a WeakMap is not; `freeAll` and
 *   `count` walk it. Insertion order is allocation order, so destructors run in that order.
 * - a `FinalizationRegistry` removes an object's WeakRef from the set after the object is
 *   collected, so the bookkeeping does not grow with every object ever shadowed.
 * Alternatives rejected: a `Map<object, data>` would keep every object alive (a leak); a
 * WeakMap alone cannot be enumerated; storing the data anywhere but the WeakMap (for example
 * in the finalization registry's held value) would keep an object alive whenever its data
 * refers to it.
 *
 * Destructors run on explicit frees only (`free`, `freeAll`), as in the kernel, where
 * `klp_shadow_free` takes the destructor. When an object is garbage collected its data goes with
 * it and no destructor runs: the data is unreachable by then (it is dropped in the same
 * collection as its object, and keeping it reachable for a late destructor is exactly the leak
 * above), and a destructor of `(obj, data)` could not be given the object anyway.
 */
import {
  checkCallback,
  checkId,
  checkKey,
  codedError,
  idText,
  type ShadowConstructor,
  type ShadowDestructor,
  type ShadowId,
} from './id.ts';

/**
 * The optional constructor argument: optional when an empty object `{}` (the default data) is
 * a valid `T`, required otherwise, so `alloc(obj, shadowId<number>('n'))` does not compile.
 */
export type ShadowConstructorArg<T> =
  Record<never, never> extends T ? [ctor?: ShadowConstructor<T>] : [ctor: ShadowConstructor<T>];

/** What `define(id, ...)` registers for an id. */
export interface ShadowDefinition<T> {
  /**
   * Run by `free` and `freeAll` when they are not given a destructor of their own. Omit it to
   * remove a destructor registered earlier.
   */
  readonly destructor?: ShadowDestructor<T> | undefined;
}

/** Diagnostics for one id, from `stats(id)`. */
export interface ShadowStats {
  /** Variables whose object is alive: what `count(id)` returns. */
  readonly live: number;
  /**
   * Bookkeeping entries: `live` plus objects already collected whose finalization callback has
   * not run yet. It falls back to `live` once the collector has reported them.
   */
  readonly tracked: number;
  /** Whether a destructor is registered for the id with `define`. */
  readonly destructor: boolean;
}

/** One shadow variable: its data, and the weak reference that makes it enumerable. */
interface Entry {
  readonly data: unknown;
  readonly ref: WeakRef<object>;
}

/** Everything stored for one id. */
class Slot {
  map = new WeakMap<object, Entry>();
  refs = new Set<WeakRef<object>>();
  destructor: ShadowDestructor<unknown> | undefined = undefined;
  /** Held value and unregister token are both the WeakRef: no allocation beyond it. */
  readonly finalizer: FinalizationRegistry<WeakRef<object>>;

  constructor(onCollected: (slot: Slot, ref: WeakRef<object>) => void) {
    this.finalizer = new FinalizationRegistry((ref) => onCollected(this, ref));
  }
}

/**
 * Shadow variables of one registry. The process-wide instance is `shadow` (index.ts); the patch
 * core and tests may create their own. All methods check their arguments and throw a TypeError
 * (code `ERR_INVALID_ARG_TYPE`) for a key that is not an object or function, or an id that is
 * not a non-empty string or a symbol.
 */
export class ShadowRegistry {
  readonly #slots = new Map<string | symbol, Slot>();
  /** (object, id) pairs whose constructor is running, to refuse re-entrant allocation. */
  readonly #constructing: { obj: object; id: string | symbol }[] = [];

  /**
   * Attach new data to `obj` under `id` and return it. `ctor(obj)` builds the data and runs
   * once; without it the data is a fresh `{}`. Throws an Error (code `ERR_SHADOW_EXISTS`)
   * naming the id if `obj` already has a variable of that id, without running `ctor`. If
   * `ctor` throws, nothing is attached and the error propagates.
   */
  alloc<T>(obj: object, id: ShadowId<T>, ...ctor: ShadowConstructorArg<T>): T {
    checkKey('shadow.alloc', obj);
    checkId('shadow.alloc', id);
    checkCallback('shadow.alloc', 'ctor', ctor[0]);
    if (this.#slots.get(id)?.map.has(obj)) {
      throw codedError(
        'ERR_SHADOW_EXISTS',
        `shadow.alloc: the object already has a shadow variable ${idText(id)}; ` +
          'use get() or getOrAlloc() to reach it, or free() it first',
      );
    }
    return this.#create('shadow.alloc', obj, id, ctor[0]) as T;
  }

  /** The data attached to `obj` under `id`, or `undefined` if there is none. */
  get<T>(obj: object, id: ShadowId<T>): T | undefined {
    checkKey('shadow.get', obj);
    checkId('shadow.get', id);
    return this.#slots.get(id)?.map.get(obj)?.data as T | undefined;
  }

  /**
   * The data attached to `obj` under `id`; if there is none, allocate it as `alloc` does, with
   * `ctor` run only then.
   */
  getOrAlloc<T>(obj: object, id: ShadowId<T>, ...ctor: ShadowConstructorArg<T>): T {
    checkKey('shadow.getOrAlloc', obj);
    checkId('shadow.getOrAlloc', id);
    checkCallback('shadow.getOrAlloc', 'ctor', ctor[0]);
    const entry = this.#slots.get(id)?.map.get(obj);
    if (entry) return entry.data as T;
    return this.#create('shadow.getOrAlloc', obj, id, ctor[0]) as T;
  }

  /**
   * Detach the variable `id` from `obj`, then run `dtor(obj, data)`, or the destructor
   * registered for the id when `dtor` is omitted. Returns whether there was a variable; freeing
   * a missing one does nothing, as `klp_shadow_free` does. The variable is gone before the
   * destructor runs, so a destructor that throws leaves it freed; its error propagates.
   */
  free<T>(obj: object, id: ShadowId<T>, dtor?: ShadowDestructor<T>): boolean {
    checkKey('shadow.free', obj);
    checkId('shadow.free', id);
    checkCallback('shadow.free', 'dtor', dtor);
    const slot = this.#slots.get(id);
    const entry = slot?.map.get(obj);
    if (!slot || !entry) return false;
    slot.map.delete(obj);
    slot.refs.delete(entry.ref);
    slot.finalizer.unregister(entry.ref);
    const destructor = dtor ?? slot.destructor;
    this.#dropIfUnused(id, slot);
    destructor?.(obj, entry.data as T);
    return true;
  }

  /**
   * Free every variable of `id` and return how many there were (objects alive). Every variable
   * is detached first; then the destructor (`dtor`, or the registered one) runs for each, in
   * allocation order. Destructors that throw do not stop the others: once all have run, the
   * errors are thrown together as an AggregateError (code `ERR_SHADOW_DESTRUCTOR`), and every
   * variable is freed regardless. Variables allocated by a destructor are new and are kept.
   */
  freeAll<T>(id: ShadowId<T>, dtor?: ShadowDestructor<T>): number {
    checkId('shadow.freeAll', id);
    checkCallback('shadow.freeAll', 'dtor', dtor);
    const slot = this.#slots.get(id);
    if (!slot) return 0;
    const victims: { obj: object; data: unknown }[] = [];
    for (const ref of slot.refs) {
      slot.finalizer.unregister(ref);
      const obj = ref.deref();
      const entry = obj === undefined ? undefined : slot.map.get(obj);
      if (obj !== undefined && entry) victims.push({ obj, data: entry.data });
    }
    // Fresh containers rather than clearing in place: a WeakMap cannot be cleared, and this
    // keeps the slot (and its registered destructor) for variables allocated from now on.
    slot.map = new WeakMap();
    slot.refs = new Set();
    const destructor = dtor ?? slot.destructor;
    this.#dropIfUnused(id, slot);
    if (destructor) {
      const errors: unknown[] = [];
      for (const { obj, data } of victims) {
        try {
          destructor(obj, data as T);
        } catch (err) {
          errors.push(err);
        }
      }
      if (errors.length > 0) {
        throw Object.assign(
          new AggregateError(
            errors,
            `shadow.freeAll: ${errors.length} of ${victims.length} destructors of shadow ` +
              `variable ${idText(id)} threw; all ${victims.length} variables were freed`,
          ),
          { code: 'ERR_SHADOW_DESTRUCTOR' },
        );
      }
    }
    return victims.length;
  }

  /**
   * Register what is known about an id, today its destructor, used by `free` and `freeAll`
   * when they are not given one. A later `define` replaces the earlier one; `define(id, {})`
   * removes the registration. Defining an id does not allocate anything.
   */
  define<T>(id: ShadowId<T>, definition: ShadowDefinition<T>): void {
    checkId('shadow.define', id);
    if (typeof definition !== 'object' || definition === null) {
      throw Object.assign(
        new TypeError(
          'shadow.define: definition must be an object such as { destructor }, ' +
            `got ${definition === null ? 'null' : typeof definition}`,
        ),
        { code: 'ERR_INVALID_ARG_TYPE' },
      );
    }
    checkCallback('shadow.define', 'destructor', definition.destructor);
    const destructor = definition.destructor as ShadowDestructor<unknown> | undefined;
    if (destructor) {
      this.#slotFor(id).destructor = destructor;
    } else {
      const slot = this.#slots.get(id);
      if (slot) {
        slot.destructor = undefined;
        this.#dropIfUnused(id, slot);
      }
    }
  }

  /** Number of variables of `id` whose object is alive. */
  count(id: string | symbol): number {
    checkId('shadow.count', id);
    const slot = this.#slots.get(id);
    if (!slot) return 0;
    let live = 0;
    for (const ref of slot.refs) if (ref.deref() !== undefined) live++;
    return live;
  }

  /** Ids that have at least one variable whose object is alive, in first-use order. */
  ids(): (string | symbol)[] {
    const out: (string | symbol)[] = [];
    for (const [id, slot] of this.#slots) {
      for (const ref of slot.refs) {
        if (ref.deref() !== undefined) {
          out.push(id);
          break;
        }
      }
    }
    return out;
  }

  /** Diagnostics for `id`: live variables, bookkeeping entries, and whether it is defined. */
  stats(id: string | symbol): ShadowStats {
    checkId('shadow.stats', id);
    const slot = this.#slots.get(id);
    return {
      live: this.count(id),
      tracked: slot?.refs.size ?? 0,
      destructor: slot?.destructor !== undefined,
    };
  }

  #create(
    op: string,
    obj: object,
    id: string | symbol,
    ctor: ShadowConstructor<unknown> | undefined,
  ): unknown {
    // A constructor that allocates its own (object, id) would attach twice; the kernel rules
    // this out by running the constructor under its lock.
    if (this.#constructing.some((c) => c.obj === obj && c.id === id)) {
      throw codedError(
        'ERR_SHADOW_REENTRANT',
        `${op}: the constructor of shadow variable ${idText(id)} tried to allocate the same ` +
          'variable for the same object again',
      );
    }
    this.#constructing.push({ obj, id });
    let data: unknown;
    try {
      data = ctor ? ctor(obj) : {};
    } finally {
      this.#constructing.pop();
    }
    // `get` returning undefined must mean "no variable", so undefined cannot be the data.
    if (data === undefined) {
      throw Object.assign(
        new TypeError(
          `${op}: the constructor of shadow variable ${idText(id)} returned undefined; ` +
            'return the data to attach (null is allowed)',
        ),
        { code: 'ERR_INVALID_RETURN_VALUE' },
      );
    }
    // Looked up again: the constructor may have freed or redefined the id meanwhile.
    const slot = this.#slotFor(id);
    const ref = new WeakRef(obj);
    slot.map.set(obj, { data, ref });
    slot.refs.add(ref);
    slot.finalizer.register(obj, ref, ref);
    return data;
  }

  #slotFor(id: string | symbol): Slot {
    let slot = this.#slots.get(id);
    if (!slot) {
      slot = new Slot((s, ref) => {
        s.refs.delete(ref);
        this.#dropIfUnused(id, s);
      });
      this.#slots.set(id, slot);
    }
    return slot;
  }

  /** Forget an id with no variables and no definition, so one-off ids do not accumulate. */
  #dropIfUnused(id: string | symbol, slot: Slot): void {
    if (slot.refs.size === 0 && slot.destructor === undefined && this.#slots.get(id) === slot) {
      this.#slots.delete(id);
    }
  }
}
