/**
 * Shadow variable ids and argument checking: the typed-id helper (`shadowId<T>()`), the id and
 * key validation every registry operation shares, and the wording of their errors.
 *
 * An id is a plain string or symbol at run time, so the state subsystem can use the same value
 * as a state id ("a state may own the shadow variable of the same id"). The value type lives
 * only in the type system, as a phantom brand.
 */

/**
 * Phantom brand carrying a shadow variable's value type. Declared only: it never exists at run
 * time, so nothing can read it, and a plain string or symbol is still a valid (untyped) id.
 */
declare const shadowValue: unique symbol;

/**
 * An id that names a kind of shadow variable: a non-empty string or any symbol. `T` is the
 * type of the attached data; untyped ids (a plain string or symbol) give `unknown`.
 *
 * The brand is a function type `(value: T) => T` so `T` is invariant: an id for
 * `{ count: number }` is not accepted where an id for `{ count: number; extra: string }` is.
 */
export type ShadowId<T = unknown> = (string | symbol) & {
  readonly [shadowValue]?: (value: T) => T;
};

/** Builds the data of a new shadow variable for `obj`; must not return `undefined`. */
export type ShadowConstructor<T> = (obj: object) => T;

/** Releases what a shadow variable holds; runs on explicit frees only (see docs/shadow.md). */
export type ShadowDestructor<T> = (obj: object, data: T) => void;

/**
 * A typed id: `const conns = shadowId<{ count: number }>('conn-count')` makes
 * `shadow.get(obj, conns)` a `{ count: number } | undefined`. Returns `name` itself.
 */
export function shadowId<T>(name: string | symbol): ShadowId<T> {
  checkId('shadowId', name);
  return name as ShadowId<T>;
}

/** Throws the TypeError for a bad id; `op` names the calling operation in the message. */
export function checkId(op: string, id: unknown): asserts id is string | symbol {
  if (typeof id === 'symbol' || (typeof id === 'string' && id !== '')) return;
  throw argError(
    `${op}: the shadow variable id must be a non-empty string or a symbol ` +
      `(e.g. 'conn-count' or shadowId<T>('conn-count')), got ${describe(id)}`,
  );
}

/** Throws the TypeError for a key that cannot carry shadow data. */
export function checkKey(op: string, obj: unknown): asserts obj is object {
  if ((typeof obj === 'object' && obj !== null) || typeof obj === 'function') return;
  throw argError(
    `${op}: obj must be the object or function to attach shadow data to ` +
      `(primitives, null and undefined cannot carry it), got ${describe(obj)}`,
  );
}

/** Throws the TypeError for a constructor or destructor argument that is not a function. */
export function checkCallback(op: string, name: string, fn: unknown): void {
  if (fn === undefined || typeof fn === 'function') return;
  throw argError(`${op}: ${name} must be a function or omitted, got ${describe(fn)}`);
}

/** An id as it reads in messages: strings quoted, symbols as `Symbol(description)`. */
export function idText(id: string | symbol): string {
  return typeof id === 'symbol' ? id.toString() : JSON.stringify(id);
}

/** An Error carrying a Node-style `code`, so callers can branch without parsing messages. */
export function codedError(code: string, message: string): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}

function argError(message: string): TypeError & { code: string } {
  return Object.assign(new TypeError(message), { code: 'ERR_INVALID_ARG_TYPE' });
}

/** A received value as it reads in messages: its type, and the value for primitives. */
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  switch (typeof value) {
    case 'string':
      return value === '' ? 'an empty string' : `string ${JSON.stringify(value)}`;
    case 'symbol':
      return value.toString();
    case 'bigint':
      return `bigint ${value}n`;
    case 'number':
    case 'boolean':
      return `${typeof value} ${String(value)}`;
    case 'function':
      return 'a function';
    default:
      return 'an object';
  }
}
