/**
 * What a replacement can reach of the call it replaces: `this`, `new.target`, the original's
 * enclosing variables, the module's top-level bindings, the class's private members, `super`,
 * and the version below it. The gate records the call in a few module variables (no allocation);
 * `callContext()` turns them into an object, and must be called synchronously at the start of
 * the replacement, before it calls anything else that is patched.
 */
import { ScopeOp } from './key.ts';
import type { ScopeAccessor, Slot, VersionCall } from './slot.ts';
import type { Replacement } from './redirect.ts';
import { entryBelow } from './redirect.ts';

let curSlot: Slot | null = null;
let curFn: Replacement | null = null;
let curThis: unknown;
let curNewTarget: unknown;
let curScope: ScopeAccessor | undefined;

export function enterCall(
  slot: Slot,
  fn: Replacement,
  self: unknown,
  newTarget: unknown,
  scope: ScopeAccessor | undefined,
): void {
  curSlot = slot;
  curFn = fn;
  curThis = self;
  curNewTarget = newTarget;
  curScope = scope;
}

/**
 * What a gate returns to run `fn`: called by the entry check right after the gate recorded the
 * call (enterCall), with only the call's arguments evaluated in between (its parameters, or a
 * spread of `arguments` or of its rest parameter), so the recorded `this` is this call's.
 */
export function callVersion(fn: Replacement): VersionCall {
  return (...args) => Reflect.apply(fn, curThis, args);
}

export interface CallContext {
  /** `module > function` of the replaced function. */
  readonly target: string;
  readonly this: unknown;
  readonly newTarget: unknown;
  /** Reads a binding the original can see: an enclosing function's variable or a top-level one. */
  get(name: string): unknown;
  /** Writes such a binding (a `const` or an import throws TypeError, as in the original). */
  set(name: string, value: unknown): void;
  /** Reads, writes or tests a `#private` member of an enclosing class on `obj`. */
  getPrivate(obj: object, name: `#${string}`): unknown;
  setPrivate(obj: object, name: `#${string}`, value: unknown): void;
  hasPrivate(obj: object, name: `#${string}`): boolean;
  /** `super[key]` of the original method. */
  superGet(key: PropertyKey): unknown;
  /** `super(...args)` of a derived constructor; returns the initialized `this`. */
  superCall(...args: unknown[]): unknown;
  /** Calls the version below this one (another patch's, or the original code) with this call's `this`. */
  original(...args: unknown[]): unknown;
}

/** The context of the replacement call in progress. */
export function callContext(): CallContext {
  if (curSlot === null) {
    throw new Error(
      'callContext() was called outside a replacement call: call it synchronously at the start of the replacement, before any await or other patched call',
    );
  }
  const ctx = callContextFor(curSlot, curFn, curThis, curNewTarget, curScope);
  curSlot = null;
  curFn = null;
  curScope = undefined;
  return ctx;
}

export function callContextFor(
  slot: Slot,
  fn: Replacement | null,
  self: unknown,
  newTarget: unknown,
  scope: ScopeAccessor | undefined,
): CallContext {
  const info = slot.info;
  const mod = slot.module;
  const target = slot.label;

  /** The accessor that reads `name` and the name's index there. */
  const binding = (name: string): { accessor: ScopeAccessor; index: number } => {
    const local = scope !== undefined ? info.scope.indexOf(name) : -1;
    if (local >= 0) return { accessor: scope!, index: local };
    const top = mod.accessor !== null ? mod.bindingIndex(name) : -1;
    if (top >= 0) return { accessor: mod.accessor!, index: top };
    const reachable = [...new Set([...info.scope, ...mod.meta.moduleBindings])].sort();
    throw new ReferenceError(
      `'${name}' is not reachable from the replacement of ${target}: it is neither a variable the original uses from an enclosing function nor a top-level binding of the module` +
        (reachable.length > 0
          ? ` (reachable: ${reachable.slice(0, 20).join(', ')}${reachable.length > 20 ? ', …' : ''})`
          : ''),
    );
  };
  const privateMember = (name: string): { accessor: ScopeAccessor; index: number } => {
    const index = info.privates.indexOf(name);
    if (index < 0 || scope === undefined) {
      throw new ReferenceError(
        `'${name}' is not a private member of a class enclosing ${target}` +
          (info.privates.length > 0 ? ` (private members: ${info.privates.join(', ')})` : ''),
      );
    }
    return { accessor: scope, index };
  };
  const requireScope = (what: string, ok: boolean): ScopeAccessor => {
    if (!ok || scope === undefined)
      throw new SyntaxError(
        `${what} is not available in the replacement of ${target}: the original is not a ${what === 'super(...)' ? 'derived class constructor' : 'method'}`,
      );
    return scope;
  };
  const op = (
    at: { accessor: ScopeAccessor; index: number },
    code: number,
    a?: unknown,
    b?: unknown,
  ): unknown => at.accessor(code, at.index, a, b);

  return {
    target,
    this: self,
    newTarget,
    get: (name) => op(binding(name), ScopeOp.get),
    set: (name, value) => {
      // The generated accessor answers a write to a read-only binding with the module record
      // instead of assigning it (src/instrument/analyze.ts, isWritable).
      if (op(binding(name), ScopeOp.set, value) === mod) {
        throw new TypeError(
          `'${name}' is read-only to the replacement of ${target}: it is a const, an import, or a function or class declaration the program never reassigns. Replace a function by patching it (that reaches every reference); keep new state in a shadow variable (docs/shadow.md) or in a new binding of the patch`,
        );
      }
    },
    getPrivate: (obj, name) => op(privateMember(name), ScopeOp.privateGet, obj),
    setPrivate: (obj, name, value) => {
      op(privateMember(name), ScopeOp.privateSet, obj, value);
    },
    hasPrivate: (obj, name) => op(privateMember(name), ScopeOp.privateHas, obj) === true,
    superGet: (key) => requireScope('super', info.superAccess)(ScopeOp.superGet, 0, key),
    superCall: (...args) => {
      const value = requireScope('super(...)', info.kind === 'derived-constructor')(
        ScopeOp.superCall,
        0,
        args,
      );
      self = value;
      return value;
    },
    original: (...args) => callBelow(slot, fn, self, newTarget, scope, args),
  };
}

function callBelow(
  slot: Slot,
  fn: Replacement | null,
  self: unknown,
  newTarget: unknown,
  scope: ScopeAccessor | undefined,
  args: unknown[],
): unknown {
  const below = fn === null ? null : entryBelow(slot, fn);
  if (below !== null && below.replacement !== null) {
    enterCall(slot, below.replacement, self, newTarget, scope);
    return Reflect.apply(below.replacement, self, args);
  }
  const callee = originalFunction(slot, self, scope);
  if (slot.info.generator) {
    const it = Reflect.apply(callee, self, args) as Iterator<unknown>;
    return slot.info.async
      ? bypassAsyncGenerator(slot, it as unknown as AsyncIterator<unknown>)
      : bypassGenerator(slot, it);
  }
  slot.bypass = true;
  try {
    // An arrow's newTarget is its enclosing function's (informational): an arrow is only called.
    const construct = newTarget !== undefined && slot.info.kind !== 'arrow';
    return construct
      ? Reflect.construct(
          callee as unknown as new (...a: unknown[]) => unknown,
          args,
          newTarget as AnyFunction,
        )
      : Reflect.apply(callee, self, args);
  } finally {
    slot.bypass = false;
  }
}

// The body of a generator runs at its first next(): set the bypass right before delegating.
function* bypassGenerator(slot: Slot, it: Iterator<unknown>): Generator<unknown, unknown, unknown> {
  slot.bypass = true;
  try {
    return yield* { [Symbol.iterator]: () => it };
  } finally {
    slot.bypass = false;
  }
}
async function* bypassAsyncGenerator(
  slot: Slot,
  it: AsyncIterator<unknown>,
): AsyncGenerator<unknown, unknown, unknown> {
  slot.bypass = true;
  try {
    return yield* { [Symbol.asyncIterator]: () => it };
  } finally {
    slot.bypass = false;
  }
}

type AnyFunction = (...args: never[]) => unknown;

/** The function object whose original code runs under a bypass (see FunctionInfo.callee). */
function originalFunction(
  slot: Slot,
  self: unknown,
  scope: ScopeAccessor | undefined,
): AnyFunction {
  const { callee, heldBy } = slot.info;
  const fail = (why: string): never => {
    throw new Error(
      `the original code of ${slot.label} cannot be called from a replacement: ${why}`,
    );
  };
  if (heldBy !== undefined) {
    return fail(
      `it is held only by '${heldBy}', a variable its enclosing function just calls or passes to calls, which the runtime does not read (reading it would slow every call of the enclosing function); replace it without calling the original, or patch the enclosing function`,
    );
  }
  if (callee === undefined) {
    return fail(
      'the function is anonymous and not bound to a name or property the runtime can reach; replace it without calling the original, or patch its caller',
    );
  }
  let value: unknown;
  if (callee.binding === 'this') {
    value = self;
  } else {
    const accessor = callee.viaModule ? slot.module.accessor : scope;
    const index = callee.viaModule
      ? slot.module.bindingIndex(callee.binding)
      : slot.info.scope.indexOf(callee.binding);
    if (accessor === null || accessor === undefined || index < 0)
      return fail(`the binding '${callee.binding}' is not reachable`);
    value = accessor(ScopeOp.get, index);
  }
  const isObject = (v: unknown): v is object =>
    v !== null && (typeof v === 'object' || typeof v === 'function');
  for (const key of callee.path ?? [])
    value = isObject(value) ? (value as Record<string, unknown>)[key] : undefined;
  if (callee.member !== undefined) {
    const owner = callee.member.onPrototype
      ? (value as { prototype?: unknown } | null)?.prototype
      : value;
    const desc = isObject(owner)
      ? Object.getOwnPropertyDescriptor(owner, callee.member.key)
      : undefined;
    value = desc?.[callee.member.accessor];
  }
  const where = [
    callee.binding,
    ...(callee.path ?? []),
    ...(callee.member !== undefined ? [callee.member.key] : []),
  ].join('.');
  if (typeof value !== 'function') return fail(`'${where}' no longer holds the function`);
  return value as AnyFunction;
}
