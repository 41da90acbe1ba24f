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
 * The slots specifier an ES module imports: `#livepatch/slots?c=$lp_1a2b…_` names the prefix of
 * its gate cells, which the slots module defines (it is evaluated before any module of an import
 * cycle runs); `&s=3,5` names the slots it imports (tracked functions that can run before the
 * module body, see the instrumenter's header), and the slots module exports exactly those.
 */
export function slotsSpecifier(cells: string, slots: readonly number[]): string {
  return `${SLOTS_SPECIFIER}?c=${cells}${slots.length > 0 ? `&s=${slots.join(',')}` : ''}`;
}

/**
 * The slots module URL for `specifier` imported by `parentUrl`, or null when `specifier` is not
 * a slots specifier.
 */
export function slotsUrlFor(specifier: string, parentUrl: string): string | null {
  if (!specifier.startsWith(`${SLOTS_SPECIFIER}?`)) return null;
  return `${SLOTS_URL_PREFIX}${encodeURIComponent(parentUrl)}&${specifier.slice(SLOTS_SPECIFIER.length + 1)}`;
}

/** The importing module's URL, its gate cells' prefix and the slot indices a slots URL names. */
export function parseSlotsUrl(url: string): { parentUrl: string; cells: string; slots: number[] } {
  const params = new URLSearchParams(url.slice(url.indexOf('?') + 1));
  const parentUrl = params.get('of') ?? '';
  const cells = params.get('c') ?? '';
  const s = params.get('s');
  return { parentUrl, cells, slots: s === null ? [] : s.split(',').map(Number) };
}

/**
 * Scope accessor operations (see ScopeAccessor in slot.ts and the instrumenter's accessor): the
 * runtime asks a function's accessor only for what its FunctionInfo lists.
 */
export const ScopeOp = {
  /** Reads binding `index`. */
  get: 0,
  /** Writes binding `index`; a read-only one answers with the module record. */
  set: 1,
  /** Reads, writes and tests private member `index` on an object. */
  privateGet: 2,
  privateSet: 3,
  privateHas: 4,
  /** `super[key]`. */
  superGet: 5,
  /** `super(...args)`, returning the initialized `this`. */
  superCall: 6,
} as const;
