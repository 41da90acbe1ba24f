/**
 * The patch model as patch authors write it (the kernel's klp_patch / klp_object / klp_func /
 * klp_state), and its validation. The core copies a definition into records it owns (patch.ts).
 */
import type { Replacement } from '../runtime/redirect.ts';
import type { StateContext } from '../state/states.ts';

export interface FunctionDefinition {
  /** Qualified name in the module (docs/naming.md), optionally with `,pos`. */
  readonly name: string;
  /** 1-based position among functions of the same name (the kernel's old_sympos). */
  readonly pos?: number;
  /** The new version; it reaches the original's scope and code through callContext(). */
  readonly replacement: Replacement;
}

export interface ObjectDefinition {
  /** App-relative path (`src/pool.ts`), package subpath (`pg/lib/client.js`), absolute path or file URL. */
  readonly module: string;
  /** sha256 (hex) of the module's source the patch was written against; omitted: not checked. */
  readonly hash?: string;
  readonly functions: readonly FunctionDefinition[];
}

/** A state callback; it may be async. Order and timing: docs/states.md. */
export type StateCallback = (ctx: StateContext) => void | Promise<void>;

/**
 * A change a patch makes beyond redirecting code (data set up, hooks installed), with the
 * callbacks that make and undo it. Callbacks run when the state is introduced or removed, never
 * when an atomic replace carries it (seed 003).
 */
export interface StateDefinition {
  readonly id: string;
  /** Its changes cannot be undone: the patch cannot be disabled, nor replaced by one without it. */
  readonly blockDisable?: boolean;
  /** Owns the shadow variable of the same id: freed (destructors run) when the state is removed. */
  readonly ownsShadow?: boolean;
  /** Before any code is redirected; throwing refuses the enable. */
  readonly prePatch?: StateCallback;
  /** After every task runs the new code. */
  readonly postPatch?: StateCallback;
  /** Before the transition that removes the state; throwing refuses the disable. */
  readonly preUnpatch?: StateCallback;
  /** After no task runs the code that used the state. */
  readonly postUnpatch?: StateCallback;
}

export interface PatchDefinition {
  /** Unique among loaded patches. */
  readonly name: string;
  /** Atomic replace: take over every enabled patch (the kernel's `replace`). */
  readonly replace?: boolean;
  readonly objects: readonly ObjectDefinition[];
  readonly states?: readonly StateDefinition[];
}

export class PatchDefinitionError extends TypeError {
  readonly code = 'EINVALIDPATCH';
  constructor(message: string) {
    super(message);
    this.name = 'PatchDefinitionError';
  }
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$/;
const HASH = /^[0-9a-f]{64}$/;

/** Checks a definition's shape; every message names the field and the fix. Returns it typed. */
export function definePatch<T extends PatchDefinition>(def: T): T {
  validate(def);
  return def;
}

export function validate(def: PatchDefinition): void {
  const fail = (msg: string): never => {
    throw new PatchDefinitionError(
      `invalid patch${typeof def?.name === 'string' ? ` '${def.name}'` : ''}: ${msg}`,
    );
  };
  if (def === null || typeof def !== 'object')
    fail(`a patch definition must be an object, got ${String(def)}`);
  if (typeof def.name !== 'string' || !NAME.test(def.name)) {
    fail(
      `name must be 1–128 characters of letters, digits and . _ @ + - (starting with a letter or digit), got ${JSON.stringify(def.name)}`,
    );
  }
  if (def.replace !== undefined && typeof def.replace !== 'boolean')
    fail(`replace must be a boolean, got ${typeof def.replace}`);
  if (!Array.isArray(def.objects)) fail('objects must be an array of { module, hash?, functions }');
  const seenModules = new Set<string>();
  def.objects.forEach((obj, i) => {
    const where = `objects[${i}]`;
    if (obj === null || typeof obj !== 'object')
      fail(`${where} must be an object { module, hash?, functions }`);
    if (typeof obj.module !== 'string' || obj.module.length === 0)
      fail(`${where}.module must name a module, e.g. 'src/pool.js'`);
    if (seenModules.has(obj.module))
      fail(`${where}.module '${obj.module}' appears twice; put all its functions in one object`);
    seenModules.add(obj.module);
    if (obj.hash !== undefined && (typeof obj.hash !== 'string' || !HASH.test(obj.hash))) {
      fail(
        `${where}.hash must be the sha256 of the module's source as 64 lowercase hex digits ('sha256sum <file>' or listFunctions(module).hash gives it)`,
      );
    }
    if (!Array.isArray(obj.functions))
      fail(`${where}.functions must be an array of { name, replacement }`);
    const seenFns = new Set<string>();
    obj.functions.forEach((fn, j) => {
      const fw = `${where}.functions[${j}]`;
      if (fn === null || typeof fn !== 'object')
        fail(`${fw} must be an object { name, pos?, replacement }`);
      if (typeof fn.name !== 'string' || fn.name.length === 0)
        fail(`${fw}.name must be a qualified function name such as 'Pool#query'`);
      if (fn.pos !== undefined && (!Number.isInteger(fn.pos) || fn.pos < 0))
        fail(`${fw}.pos must be a positive integer`);
      if (typeof fn.replacement !== 'function')
        fail(`${fw}.replacement for '${fn.name}' must be a function, got ${typeof fn.replacement}`);
      const key = `${fn.name},${fn.pos ?? 0}`;
      if (seenFns.has(key)) fail(`${fw}: '${fn.name}' is patched twice in '${obj.module}'`);
      seenFns.add(key);
    });
  });
  if (def.states !== undefined) {
    if (!Array.isArray(def.states)) fail('states must be an array of { id, … }');
    const ids = new Set<string>();
    def.states.forEach((s, i) => {
      if (s === null || typeof s !== 'object' || typeof s.id !== 'string' || s.id.length === 0)
        fail(`states[${i}].id must be a non-empty string`);
      if (ids.has(s.id)) fail(`states[${i}]: state '${s.id}' is declared twice`);
      ids.add(s.id);
      for (const cb of ['prePatch', 'postPatch', 'preUnpatch', 'postUnpatch'] as const) {
        if (s[cb] !== undefined && typeof s[cb] !== 'function')
          fail(`states[${i}].${cb} must be a function`);
      }
    });
  }
}
