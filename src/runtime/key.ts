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
