/**
 * What the loader does to one module's source: (cache lookup) → TypeScript/JSX to JavaScript →
 * CommonJS-or-ESM decision → instrumentation → source map composition → (cache store) →
 * registration with the runtime. Decides, for every failure, whether Node gets the original
 * source (so Node reports a syntax error itself) or an uninstrumented module with a warning.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import type {
  FunctionInfo,
  InstrumentOptions,
  InstrumentResult,
  ModuleFormat,
  RefusedFunction,
  SourceMapV3,
} from '../instrument/types.ts';
import { TransformCache, contentHash, type CachedMeta, type CacheEntry } from './cache.ts';
import { detectFormat, type Classified } from './format.ts';
import { livepatchRoot } from './filter.ts';
import {
  composeMaps,
  inlineSourceMapComment,
  mapPositions,
  readExistingSourceMap,
} from './sourcemap.ts';
import {
  TsTransformError,
  transformTypeScript,
  tsSettingsFor,
  type TsSettings,
} from './typescript.ts';

/** What the loader registers with the runtime for each instrumented module. */
export interface LoadedModuleMeta {
  readonly functions: readonly FunctionInfo[];
  readonly refused: readonly RefusedFunction[];
  readonly moduleBindings: readonly string[];
  readonly prefix: string;
  /** sha256 hex of the original source bytes (before any TypeScript transform). */
  readonly hash: string;
  readonly format: ModuleFormat;
  /** Absolute path of the original file. */
  readonly filename: string;
}

/** The instrumenter and the runtime, as the loader uses them (swappable in tests). */
export interface LoaderBackend {
  instrument(source: string, opts: InstrumentOptions): InstrumentResult;
  /** Whether an error thrown by `instrument` means "the source does not parse". */
  isSyntaxError(error: unknown): boolean;
  registerModule(url: string, meta: LoadedModuleMeta): void;
  slotsModuleSource(parentUrl: string): string;
  /** Changes whenever the instrumenter's output may change; part of the cache key. */
  readonly version: string;
}

export type Outcome =
  /** Hand Node this code in this format. */
  | {
      readonly kind: 'code';
      readonly format: ModuleFormat;
      readonly code: string;
      readonly instrumented: boolean;
    }
  /** Hand Node what its own load step returned, unchanged. */
  | { readonly kind: 'original' };

export interface LoaderStats {
  /** Modules that reached the pipeline (passed the include/exclude filter). */
  modules: number;
  /** Modules instrumented by calling the instrumenter (cache misses). */
  instrumented: number;
  /** Modules served from the cache (no parse, no transform). */
  cached: number;
  /** TypeScript/JSX transforms performed. */
  typescript: number;
  /** Excluded TypeScript/JSX modules compiled but not instrumented. */
  compiledOnly: number;
  /** Sources that did not parse and were handed back to Node unchanged. */
  syntaxErrors: number;
  /** Modules loaded uninstrumented after an internal error (each with a warning). */
  fallbacks: number;
  cache: TransformCache['stats'] | null;
}

export interface PipelineOptions {
  readonly backend: LoaderBackend;
  readonly cache: TransformCache | null;
  readonly sourceMaps: boolean;
  /**
   * Compose with the maps that files under node_modules carry themselves (LIVEPATCH_SOURCE_MAPS=
   * all). Costly on a cold start (a fifth of it for a typical dependency tree), so by default a
   * dependency's frames point at its file as loaded; app files' own maps are always composed.
   */
  readonly composeNodeModulesMaps?: boolean;
  readonly warn: (message: string) => void;
}

const ERR_PREFIX = 'ERR_LIVEPATCH';

export class Pipeline {
  readonly stats: LoaderStats;
  readonly #opts: PipelineOptions;
  readonly #versions: readonly unknown[];

  constructor(opts: PipelineOptions) {
    this.#opts = opts;
    this.stats = {
      modules: 0,
      instrumented: 0,
      cached: 0,
      typescript: 0,
      compiledOnly: 0,
      syntaxErrors: 0,
      fallbacks: 0,
      cache: opts.cache?.stats ?? null,
    };
    this.#versions = [
      livepatchVersion,
      opts.backend.version,
      oxcTransformVersion,
      opts.sourceMaps,
      opts.composeNodeModulesMaps ?? false,
    ];
  }

  /**
   * Transform one module: instrument it, or (when `instrument` is false) only compile its
   * TypeScript/JSX. Throws only deliberate livepatch errors (a patch that fails to apply).
   */
  run(
    url: string,
    source: string | Uint8Array,
    classified: Classified,
    instrument = true,
  ): Outcome {
    const { backend, cache } = this.#opts;
    const filename = fileURLToPath(url);
    const text =
      typeof source === 'string'
        ? source
        : Buffer.from(source.buffer, source.byteOffset, source.byteLength).toString('utf8');
    if (!instrument) return this.#compileOnly(url, filename, text, classified);
    this.stats.modules++;
    const hash = contentHash(source);
    const ts: TsSettings | null = classified.lang === 'js' ? null : tsSettingsFor(filename);
    const key = cache
      ? TransformCache.key(hash, [...this.#versions, url, classified.lang, classified.format, ts])
      : '';

    let entry: CacheEntry | null = cache ? cache.get(key) : null;
    if (entry) {
      this.stats.cached++;
    } else {
      const built = this.#build(url, filename, text, classified, ts);
      if (built.kind !== 'entry') return built.outcome;
      // With a cache the map goes to a file beside the entry, referred to by the code; without
      // one (or if that fails), inline.
      entry = cache?.set(key, built.entry, built.map, filename) ?? null;
      entry ??= {
        ...built.entry,
        code: built.map ? built.entry.code + inlineSourceMapComment(built.map) : built.entry.code,
      };
    }

    try {
      backend.registerModule(url, { ...entry.meta, hash, format: entry.format, filename });
    } catch (error) {
      if (isDeliberate(error)) throw error;
      return this.#fallback(url, filename, text, classified, ts, error, 'registering');
    }
    return { kind: 'code', format: entry.format, code: entry.code, instrumented: true };
  }

  #build(
    url: string,
    filename: string,
    text: string,
    classified: Classified,
    ts: TsSettings | null,
  ):
    | { kind: 'entry'; entry: CacheEntry; map: SourceMapV3 | null }
    | { kind: 'done'; outcome: Outcome } {
    const { backend, sourceMaps } = this.#opts;
    let js = text;
    let tsMap: SourceMapV3 | null = null;
    if (ts && classified.lang !== 'js') {
      try {
        const out = transformTypeScript(text, filename, classified.lang, classified.format, ts);
        this.stats.typescript++;
        js = out.code;
        tsMap = out.map;
      } catch (error) {
        if (error instanceof TsTransformError) {
          this.stats.syntaxErrors++;
          return { kind: 'done', outcome: { kind: 'original' } };
        }
        this.#warn(filename, error, 'compiling TypeScript in');
        this.stats.fallbacks++;
        return { kind: 'done', outcome: { kind: 'original' } };
      }
    }
    const format: ModuleFormat =
      classified.format === 'auto' ? detectFormat(js, filename) : classified.format;

    let result: InstrumentResult;
    try {
      result = backend.instrument(js, { url, format, filename, sourceMap: sourceMaps });
      this.stats.instrumented++;
    } catch (error) {
      if (backend.isSyntaxError(error)) {
        this.stats.syntaxErrors++;
        return { kind: 'done', outcome: { kind: 'original' } };
      }
      return {
        kind: 'done',
        outcome: this.#fallback(url, filename, text, classified, ts, error, 'instrumenting', {
          js,
          tsMap,
          format,
        }),
      };
    }

    let functions = result.functions;
    let refused = result.refused;
    if (tsMap) {
      // The instrumenter saw compiled JavaScript; patches and listings speak of the .ts file.
      functions = mapPositions(functions, tsMap);
      refused = mapPositions(refused, tsMap);
    }
    let map: SourceMapV3 | null = null;
    if (sourceMaps && result.map) {
      const maps: SourceMapV3[] = [result.map];
      if (tsMap) maps.push(tsMap);
      else if (this.#opts.composeNodeModulesMaps || !isUnderNodeModules(filename)) {
        const existing = readExistingSourceMap(text, filename);
        if (existing) maps.push(existing);
      }
      try {
        map = composeMaps(maps, filename, url);
      } catch {
        // A map we cannot compose costs only the stack-trace mapping, never the module.
      }
    }
    const meta: CachedMeta = {
      functions,
      refused,
      moduleBindings: result.moduleBindings,
      prefix: result.prefix,
    };
    return { kind: 'entry', entry: { format, code: result.code, meta }, map };
  }

  /**
   * Load the module uninstrumented after an internal error: JavaScript as Node would load it,
   * TypeScript compiled (Node's own type stripping would refuse enums and the like).
   */
  #fallback(
    url: string,
    filename: string,
    text: string,
    classified: Classified,
    ts: TsSettings | null,
    error: unknown,
    doing: string,
    compiled?: { js: string; tsMap: SourceMapV3 | null; format: ModuleFormat },
  ): Outcome {
    this.stats.fallbacks++;
    this.#warn(filename, error, doing);
    if (!ts || classified.lang === 'js') return { kind: 'original' };
    try {
      let c = compiled;
      if (!c) {
        const out = transformTypeScript(text, filename, classified.lang, classified.format, ts);
        const format =
          classified.format === 'auto' ? detectFormat(out.code, filename) : classified.format;
        c = { js: out.code, tsMap: out.map, format };
      }
      let code = c.js;
      if (this.#opts.sourceMaps && c.tsMap)
        code += inlineSourceMapComment(composeMaps([c.tsMap], filename, url));
      return { kind: 'code', format: c.format, code, instrumented: false };
    } catch {
      return { kind: 'original' };
    }
  }

  #compileOnly(url: string, filename: string, text: string, classified: Classified): Outcome {
    if (classified.lang === 'js') return { kind: 'original' };
    try {
      const ts = tsSettingsFor(filename);
      const out = transformTypeScript(text, filename, classified.lang, classified.format, ts);
      this.stats.compiledOnly++;
      const format =
        classified.format === 'auto' ? detectFormat(out.code, filename) : classified.format;
      const code = this.#opts.sourceMaps
        ? out.code + inlineSourceMapComment(composeMaps([out.map], filename, url))
        : out.code;
      return { kind: 'code', format, code, instrumented: false };
    } catch {
      return { kind: 'original' }; // Node reports what it makes of it
    }
  }

  #warn(filename: string, error: unknown, doing: string): void {
    const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    this.#opts.warn(
      `livepatch: internal error while ${doing} ${filename}; loading it uninstrumented ` +
        `(its functions cannot be patched). ${detail}`,
    );
  }
}

function isUnderNodeModules(filename: string): boolean {
  return filename.split(path.sep).includes('node_modules');
}

/** Errors the runtime throws on purpose (a patch for this module failed): the load must fail. */
function isDeliberate(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith(ERR_PREFIX);
}

function readVersion(file: string): string {
  try {
    return String((JSON.parse(fs.readFileSync(file, 'utf8')) as { version?: unknown }).version);
  } catch {
    return 'unknown';
  }
}

const livepatchVersion = readVersion(path.join(livepatchRoot, 'package.json'));

const oxcTransformVersion = (() => {
  try {
    return readVersion(createRequire(import.meta.url).resolve('oxc-transform/package.json'));
  } catch {
    return 'unknown';
  }
})();
