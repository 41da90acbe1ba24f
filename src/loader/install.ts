/**
 * Installing the loader with a given backend (the real instrumenter and runtime in index.ts, a
 * stand-in in tests): TypeScript helpers, source-map support, the caches, then the hooks. Once
 * per process: a second install, from this or another copy of livepatch, returns the first.
 */
import module from 'node:module';
import path from 'node:path';

import { TransformCache } from './cache.ts';
import { registerLoaderHooks } from './hooks.ts';
import { resolveLoaderOptions, type LoaderOptions, type ResolvedLoaderOptions } from './options.ts';
import { Pipeline, type LoaderBackend, type LoaderStats } from './pipeline.ts';
import { installTsHelpers } from './ts-helpers.ts';

export interface Loader {
  readonly options: ResolvedLoaderOptions;
  /** Counters since the loader was installed (live object). */
  readonly stats: LoaderStats;
  /** Where Node's compile cache went, when it was turned on by us or was already on. */
  readonly compileCacheDir: string | null;
  /** Stop transforming modules loaded from now on (already loaded ones stay instrumented). */
  uninstall(): void;
}

const LOADER_KEY = Symbol.for('livepatch.loader');

/** The loader installed in this process, if any. */
export function currentLoader(): Loader | null {
  return (globalThis as unknown as Record<symbol, Loader | undefined>)[LOADER_KEY] ?? null;
}

/** Print a warning on stderr the way Node prints its own (honours --no-warnings). */
export function warn(message: string): void {
  process.emitWarning(message, { type: 'LivepatchWarning', code: 'LIVEPATCH_LOADER' });
}

export function createLoader(backend: LoaderBackend, options: LoaderOptions = {}): Loader {
  const existing = currentLoader();
  if (existing) return existing;

  const resolved = resolveLoaderOptions(options);
  installTsHelpers();
  // Before any module compiles: Node reads a module's source map only when maps are on then.
  if (resolved.sourceMaps) enableSourceMapSupport(resolved.sourceMapsInNodeModules);

  let cacheWarned = false;
  const cache = resolved.cacheDir
    ? new TransformCache(resolved.cacheDir, (error) => {
        if (cacheWarned) return;
        cacheWarned = true;
        warn(
          `livepatch: cannot write the transform cache in ${resolved.cacheDir} ` +
            `(${(error as Error).message}); continuing without storing transforms. ` +
            'Set LIVEPATCH_CACHE_DIR to a writable directory, or LIVEPATCH_CACHE=0.',
        );
      })
    : null;

  const compileCacheDir = resolved.compileCache ? enableCompileCache(resolved.cacheDir!) : null;
  const pipeline = new Pipeline({
    backend,
    cache,
    sourceMaps: resolved.sourceMaps,
    composeNodeModulesMaps: resolved.composeNodeModulesMaps,
    sourceIndex: resolved.cacheIndex,
    indexSettleMs: resolved.cacheIndexSettleMs,
    warn,
  });
  const hooks = registerLoaderHooks({
    filter: resolved.filter,
    pipeline,
    slotsModuleSource: (slotsUrl) => backend.slotsModuleSource(slotsUrl),
  });

  const loader: Loader = {
    options: resolved,
    stats: pipeline.stats,
    compileCacheDir,
    uninstall() {
      hooks.deregister();
      delete (globalThis as unknown as Record<symbol, Loader | undefined>)[LOADER_KEY];
    },
  };
  Object.defineProperty(globalThis, LOADER_KEY, { value: loader, configurable: true });
  return loader;
}

/**
 * Make Node apply source maps to stack traces. Must run before modules are compiled: Node reads
 * a module's map when it compiles it (measuring every line, and on Node 22 reading and decoding
 * the map at once, a cost in proportion to the code). `nodeModules: false` (the default,
 * LIVEPATCH_SOURCE_MAPS=app) leaves files under node_modules out, as Node's own
 * `setSourceMapsSupport(true)` does; their frames keep the right line (the instrumenter adds no
 * lines) with columns of the generated code. A `--enable-source-maps` already in force is left as
 * it is. (Here rather than in sourcemap.ts, which a warm start does not load.)
 */
function enableSourceMapSupport(nodeModules: boolean): void {
  const m = module as unknown as {
    setSourceMapsSupport?: (enabled: boolean, options?: object) => void;
    getSourceMapsSupport?: () => { enabled: boolean };
  };
  if (typeof m.setSourceMapsSupport === 'function') {
    if (!m.getSourceMapsSupport?.().enabled) m.setSourceMapsSupport(true, { nodeModules });
    return;
  }
  process.setSourceMapsEnabled(true);
}

/**
 * Node's compile cache (V8 code cache, Node 22.8+) keys on the source actually compiled, so once
 * our transform result comes from our cache, V8 skips compiling it too. It goes next to our
 * cache unless NODE_COMPILE_CACHE already chose a place (or NODE_DISABLE_COMPILE_CACHE is set).
 */
function enableCompileCache(cacheDir: string): string | null {
  const m = module as unknown as {
    enableCompileCache?: (dir?: string) => { status: number; directory?: string };
    constants?: { compileCacheStatus?: Record<string, number> };
  };
  if (typeof m.enableCompileCache !== 'function') return null;
  try {
    const result = m.enableCompileCache(path.join(cacheDir, 'v8'));
    return result.directory ?? null;
  } catch {
    return null;
  }
}
