/**
 * The module hooks: synchronous, in-thread `module.registerHooks` resolve and load hooks, so that
 * `require()` and `import` of app files and node_modules alike go through the pipeline; plus the
 * `livepatch:slots` virtual module that hands each instrumented ES module its function slots
 * (the resolve hook, which only maps their specifier, is registered when the first one loads).
 *
 * Node's behaviour these hooks rely on is measured on 22.23, 24.21 and 26.10 and written down in
 * docs/loader.md ("What Node's hooks hand us").
 */
import module from 'node:module';
import { fileURLToPath } from 'node:url';

import { SLOTS_URL_PREFIX, slotsUrlFor } from '../runtime/key.ts';
import { fs } from './builtins.ts';
import { classify, isJsxUrl } from './format.ts';
import { isLivepatchFile, type ModuleFilter } from './filter.ts';
import type { CodeOutcome, Pipeline } from './pipeline.ts';

/**
 * The URL of an importing module's slots module. A custom scheme is fine as a resolved URL; as
 * a specifier, Node 22 asserts on it inside require(esm) (docs/loader.md), hence a mapping.
 */

type RegisterHooks = (hooks: { resolve?: ResolveHook; load?: LoadHook }) => { deregister(): void };

type ResolveHook = (
  specifier: string,
  context: ResolveContext,
  nextResolve: (specifier: string, context?: Partial<ResolveContext>) => ResolveResult,
) => ResolveResult;
type LoadHook = (
  url: string,
  context: LoadContext,
  nextLoad: (url: string, context?: Partial<LoadContext>) => LoadResult,
) => LoadResult;

interface ResolveContext {
  conditions: string[];
  importAttributes: Record<string, string>;
  parentURL: string | undefined;
}
interface ResolveResult {
  url: string;
  format?: string | null | undefined;
  shortCircuit?: boolean;
  importAttributes?: Record<string, string>;
}
interface LoadContext {
  conditions?: string[];
  format?: string | null | undefined;
  importAttributes?: Record<string, string>;
}
interface LoadResult {
  format: string | null | undefined;
  source?: string | ArrayBuffer | ArrayBufferView | null | undefined;
  shortCircuit?: boolean;
  /** Node 22 only; see the load hook. */
  shouldBeReloadedByCJSLoader?: boolean;
}

export interface HookDeps {
  readonly filter: ModuleFilter;
  readonly pipeline: Pipeline;
  readonly slotsModuleSource: (slotsUrl: string) => string;
}

export interface InstalledHooks {
  deregister(): void;
}

/** Register the hooks with Node. Requires Node 22.15+ (`module.registerHooks`). */
export function registerLoaderHooks(deps: HookDeps): InstalledHooks {
  const register = (module as unknown as { registerHooks?: RegisterHooks }).registerHooks;
  if (typeof register !== 'function') {
    throw new Error(
      `livepatch needs module.registerHooks (Node.js 22.15 or newer); this is ${process.version}`,
    );
  }
  // The resolve hook only maps the slots specifier that instrumented ES modules import, so it
  // is registered with the first of them (before Node resolves its imports). Until then Node
  // resolves every require() and import without a hook, which is faster: with one, each
  // resolution also converts the file name to a URL and back.
  let resolveHook: { deregister(): void } | null = null;
  const needSlots = (): void => {
    resolveHook ??= register({ resolve: createResolveHook() });
  };
  const loadHook = register({ load: createLoadHook(deps, needSlots) });
  return {
    deregister() {
      loadHook.deregister();
      resolveHook?.deregister();
    },
  };
}

export function createResolveHook(): ResolveHook {
  return function livepatchResolve(specifier, context, nextResolve) {
    // One URL per importing module, so each gets its own slots module instance.
    const slotsUrl = slotsUrlFor(specifier, context.parentURL ?? '');
    if (slotsUrl !== null) return { url: slotsUrl, format: 'module', shortCircuit: true };
    return nextResolve(specifier, context);
  };
}

/** `needSlots`: called before an instrumented ES module, which imports its slots, is returned. */
export function createLoadHook(deps: HookDeps, needSlots: () => void = () => {}): LoadHook {
  const { pipeline } = deps;
  const toLoadResult = (outcome: CodeOutcome): LoadResult => {
    if (outcome.format === 'module' && outcome.instrumented) needSlots();
    return loadResult(outcome);
  };
  return function livepatchLoad(url, context, nextLoad) {
    if (url.startsWith(SLOTS_URL_PREFIX)) {
      return { format: 'module', source: deps.slotsModuleSource(url), shortCircuit: true };
    }
    // Modules loaded while we transform (lazily loaded parts of the transformer itself) are ours,
    // not the app's: never instrument them, and never recurse into the pipeline.
    if (pipeline.busy || !url.startsWith('file:')) return nextLoad(url, context);
    // Files left out of instrumentation still get TypeScript compiled (Node's type stripping
    // refuses enums, namespaces, parameter properties and anything under node_modules), so
    // excluding a file never stops the program from running.
    const instrument = deps.filter(url);
    if (!instrument && (!isCompiledLanguage(url) || isLivepatchFile(url))) {
      return nextLoad(url, context);
    }

    // An unchanged file the cache knows is served without Node's load step: no read, no hash.
    let probe = null;
    if (instrument) {
      const early = pipeline.beforeLoad(url, context);
      if ('outcome' in early) return toLoadResult(early.outcome);
      probe = early.probe;
    }

    let result: LoadResult;
    let loadError: unknown = null;
    try {
      result = nextLoad(url, context);
    } catch (error) {
      // Node's default load refuses some files we can compile: .jsx/.tsx through `import`, and
      // TypeScript whose format it decides by stripping types (an enum there fails). Read those
      // ourselves; if we cannot compile them either, Node's own error is the one to throw.
      if (!isRecoverable(error) || !canReadOurselves(url)) throw error;
      loadError = error;
      result = { format: undefined, source: fs.readFileSync(fileURLToPath(url)) };
    }
    const classified = classify(url, result.format);
    if (!classified || result.source == null) return result;
    if (typeof result.source !== 'string' && !ArrayBuffer.isView(result.source)) return result;

    // Indexed only when skipping Node's load step next time changes nothing but the time: not
    // when it threw (we read the file ourselves), nor when it detected ES module syntax in a file
    // whose package has no `type` (it may warn about that: MODULE_TYPELESS_PACKAGE_JSON). Those
    // loads run it every time.
    const index =
      probe !== null && loadError === null && (context.format != null || !isModule(result.format))
        ? { probe, nodeFormat: result.format }
        : null;
    const outcome = pipeline.run(
      url,
      result.source as string | Uint8Array,
      classified,
      instrument,
      index,
    );
    if (outcome.kind === 'original') {
      if (loadError !== null) throw loadError;
      return result;
    }
    return toLoadResult(outcome);
  };
}

function loadResult(outcome: CodeOutcome): LoadResult {
  if (outcome.format === 'commonjs') {
    // Node 22 compiles a CommonJS module whose source comes from a load hook, when it is
    // reached through `import`, with a reduced `require` (no require.cache, no
    // require.extensions). This flag, which Node 22's own default load sets, sends it through
    // the real CommonJS loader, which takes the source we return. Node 24+ ignore it.
    return {
      format: 'commonjs',
      source: outcome.code,
      shortCircuit: true,
      shouldBeReloadedByCJSLoader: true,
    };
  }
  return { format: outcome.format, source: outcome.code, shortCircuit: true };
}

function isModule(format: string | null | undefined): boolean {
  return format === 'module' || format === 'module-typescript';
}

const RECOVERABLE_LOAD_ERRORS = new Set([
  'ERR_UNKNOWN_FILE_EXTENSION',
  'ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX',
  'ERR_INVALID_TYPESCRIPT_SYNTAX',
  'ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING',
  'ERR_NO_TYPESCRIPT',
]);

function isRecoverable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && RECOVERABLE_LOAD_ERRORS.has(code);
}

/** TypeScript or JSX: languages Node cannot (fully) run by itself. */
function isCompiledLanguage(url: string): boolean {
  return isJsxUrl(url) || /\.(?:ts|mts|cts)$/.test(new URL(url).pathname);
}

function canReadOurselves(url: string): boolean {
  return url.startsWith('file:') && isCompiledLanguage(url);
}
