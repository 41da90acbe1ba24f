/**
 * The runtime helpers that compiled TypeScript decorators call, with `tsc`'s semantics (the
 * `__decorate`, `__metadata` and `__param` of tslib). Transformed modules read them from a global
 * symbol instead of importing a package the project may not have (see typescript.ts).
 */

export const TS_HELPERS_KEY = 'livepatch.tsHelpers';

type Decorator = (...args: unknown[]) => unknown;

interface ReflectWithMetadata {
  decorate?: (
    decorators: Decorator[],
    target: object,
    key?: PropertyKey,
    desc?: unknown,
  ) => unknown;
  metadata?: (key: unknown, value: unknown) => Decorator;
}

const reflect = (): ReflectWithMetadata => Reflect as unknown as ReflectWithMetadata;

function decorate(
  this: unknown,
  decorators: (Decorator | undefined)[],
  target: object,
  key?: PropertyKey,
  desc?: PropertyDescriptor | null,
): unknown {
  const argc = arguments.length;
  let result: unknown =
    argc < 3
      ? target
      : desc === null
        ? (desc = Object.getOwnPropertyDescriptor(target, key!))
        : desc;
  const r = reflect();
  if (typeof r.decorate === 'function') {
    result = r.decorate(decorators as Decorator[], target, key, desc);
  } else {
    for (let i = decorators.length - 1; i >= 0; i--) {
      const d = decorators[i];
      if (d)
        result =
          (argc < 3 ? d(result) : argc > 3 ? d(target, key, result) : d(target, key)) || result;
    }
  }
  if (argc > 3 && result) Object.defineProperty(target, key!, result as PropertyDescriptor);
  return result;
}

function decorateMetadata(key: unknown, value: unknown): Decorator | undefined {
  const r = reflect();
  if (typeof r.metadata === 'function') return r.metadata(key, value);
  return undefined;
}

function decorateParam(index: number, decorator: Decorator): Decorator {
  return (target: unknown, key: unknown) => decorator(target, key, index);
}

const helpers = { decorate, decorateMetadata, decorateParam };

/** Names of the helpers provided, as oxc-transform names them. */
export const tsHelperNames: readonly string[] = Object.keys(helpers);

/** Make the helpers reachable by transformed modules. Idempotent; an existing copy is kept. */
export function installTsHelpers(): void {
  const key = Symbol.for(TS_HELPERS_KEY);
  if (Object.prototype.hasOwnProperty.call(globalThis, key)) return;
  Object.defineProperty(globalThis, key, { value: Object.freeze({ ...helpers }) });
}
