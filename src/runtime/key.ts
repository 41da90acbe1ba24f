/**
 * The names shared by generated code and the runtime. Instrumented modules reach the runtime
 * through `globalThis[Symbol.for(RUNTIME_KEY)]`, so they need no import that could be resolved
 * differently from one package to another, and several copies of livepatch share one table.
 */
export const RUNTIME_KEY = 'livepatch.runtime';

/**
 * Specifier of the virtual module that hands an ES module its function slots. Not URL-shaped on
 * purpose: Node 22 asserts when a module reached through require() imports a custom-scheme URL.
 */
export const SLOTS_SPECIFIER = '#livepatch/slots';

/** What the loader resolves SLOTS_SPECIFIER to: this prefix and the importing module's URL. */
export const SLOTS_URL_PREFIX = 'livepatch:slots?of=';

/**
 * The slots module URL for `specifier` imported by `parentUrl`, or null when `specifier` is not
 * a slots specifier. Generated code writes `#livepatch/slots?3,5` when it imports slots 3 and 5
 * (functions that can run before the module body, see the instrumenter's header); the slots
 * module then exports exactly those and the module record, nothing for the other functions.
 */
export function slotsUrlFor(specifier: string, parentUrl: string): string | null {
  let list = '';
  if (specifier.startsWith(`${SLOTS_SPECIFIER}?`))
    list = specifier.slice(SLOTS_SPECIFIER.length + 1);
  else if (specifier !== SLOTS_SPECIFIER && specifier !== 'livepatch:slots') return null;
  return `${SLOTS_URL_PREFIX}${encodeURIComponent(parentUrl)}${list !== '' ? `&s=${list}` : ''}`;
}

/** The importing module's URL and the slot indices a slots module URL names. */
export function parseSlotsUrl(url: string): { parentUrl: string; slots: number[] } {
  const rest = url.slice(SLOTS_URL_PREFIX.length);
  const at = rest.indexOf('&s=');
  const parentUrl = decodeURIComponent(at === -1 ? rest : rest.slice(0, at));
  const slots =
    at === -1
      ? []
      : rest
          .slice(at + 3)
          .split(',')
          .map(Number);
  return { parentUrl, slots };
}

/** Scope accessor operations (see FunctionInfo and docs/architecture.md). */
export const ScopeOp = {
  get: 0,
  set: 1,
  privateGet: 2,
  privateSet: 3,
  privateHas: 4,
  superGet: 5,
  superCall: 6,
  thisValue: 7,
} as const;
