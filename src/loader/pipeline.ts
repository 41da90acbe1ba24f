/**
 * What the loader does to one module's source: (cache lookup) → TypeScript/JSX to JavaScript →
 * CommonJS-or-ESM decision → instrumentation → source map composition → (cache store) →
 * registration with the runtime. Decides, for every failure, whether Node gets the original
 * source (so Node reports a syntax error itself) or an uninstrumented module with a warning.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import type {
  InstrumentOptions,
  InstrumentResult,
  ModuleFormat,
  SourceMapV3,
} from '../instrument/types.ts';
import {
  SourceIndex,
  TransformCache,
  contentHash,
  type CachedEntry,
  type CachedMeta,
  type CacheEntry,
  type FileStamp,
  type SourceRecord,
} from './cache.ts';
import { fs } from './builtins.ts';
import { classify, detectFormat, type Classified } from './format.ts';
import { livepatchRoot } from './filter.ts';
import type * as SourceMaps from './sourcemap.ts';
import type * as TypeScript from './typescript.ts';
import type { TsSettings } from './typescript.ts';

/** What the loader registers with the runtime for each instrumented module. */
export interface LoadedModuleMeta {
  /** How many functions (slots) the code has. */
  readonly functionCount: number;
  /**
   * The module's functions and the rest of the instrumenter's metadata. From the cache this is
   * decoded on first call (a listing, a lookup, a patch), not at load; it may throw.
   */
  details(): CachedMeta;
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
  slotsModuleSource(slotsUrl: string): string;
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

export type CodeOutcome = Extract<Outcome, { readonly kind: 'code' }>;

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
  /**
   * Serve files the cache's index knows unchanged without Node's load step (see `beforeLoad`).
   * Default: true when there is a cache.
   */
  readonly sourceIndex?: boolean;
  /**
   * How long ago (ms) a file must have last changed before its stats are trusted to identify its
   * content; younger files are read and hashed as usual. Default 2000.
   */
  readonly indexSettleMs?: number;
  /** The clock compared with file times (tests). */
  readonly now?: () => number;
  readonly warn: (message: string) => void;
}

/** What the load hook's context says about how a module is being loaded. */
export interface LoadRequest {
  readonly format?: string | null | undefined;
  readonly conditions?: readonly string[] | undefined;
  readonly importAttributes?: Readonly<Record<string, string>> | undefined;
}

/** A file looked up in the index before Node's load step: what recording it afterwards needs. */
export interface SourceProbe {
  /** How the file is being loaded (SourceIndex.identity). */
  readonly identity: string;
  /** The file's stamp before Node read it. */
  readonly stamp: FileStamp;
  /** What the index holds for this stamp (its entry was missing or is of other versions). */
  readonly known: SourceRecord | null;
}

/** Passed to `run` when the module may be recorded in the index. */
export interface IndexNote {
  readonly probe: SourceProbe;
  /** The format Node's load step reported. */
  readonly nodeFormat: string | null | undefined;
}

const ERR_PREFIX = 'ERR_LIVEPATCH';

export class Pipeline {
  readonly stats: LoaderStats;
  readonly #opts: PipelineOptions;
  readonly #versions: readonly unknown[];
  /** The index of source files, with a cache unless turned off. */
  readonly #index: SourceIndex | null;
  readonly #settleNs: bigint;
  readonly #now: () => number;
  #busy = false;

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
      opts.sourceMaps,
      opts.composeNodeModulesMaps ?? false,
    ];
    // What decides which hooks sit below ours and how Node loads files: records are only valid
    // for the same command line (--import, --require, --loader, --conditions, …).
    const launch = JSON.stringify([process.execArgv, process.env.NODE_OPTIONS ?? '']);
    // The pack holds what one program loads: programs started alike load different modules.
    const program = process.argv[1] ?? '';
    this.#index =
      opts.cache && (opts.sourceIndex ?? true) ? opts.cache.index(launch, program) : null;
    this.#settleNs = BigInt(Math.max(0, Math.round(opts.indexSettleMs ?? 2000))) * 1_000_000n;
    this.#now = opts.now ?? Date.now;
  }

  /**
   * True while the loader itself works (transforming, or reading a module's functions): modules
   * loaded meanwhile are the transformer's own lazily loaded parts, not the app's. The hooks pass
   * them through untouched and never re-enter the pipeline.
   */
  get busy(): boolean {
    return this.#busy;
  }

  #guard<T>(fn: () => T): T {
    const was = this.#busy;
    this.#busy = true;
    try {
      return fn();
    } finally {
      this.#busy = was;
    }
  }

  /**
   * A warm start of an unchanged file, before Node's load step: when the index has a record of
   * the file with the same stamp (device, inode, size, mtime and ctime in nanoseconds) and the
   * entry of the content it names is there, the module is served and registered without the
   * source being read or hashed. Returns `{ outcome }` then; otherwise `{ probe }` for `run` to
   * record the file once Node has read it (null: nothing to record).
   *
   * Only loads whose result does not depend on Node's load step are served: no import
   * attributes (Node validates them there); and a file is recorded only when Node's step
   * returned its bytes unchanged and detected no ES module (see `#record` and the load hook).
   */
  beforeLoad(
    url: string,
    request: LoadRequest,
  ): { outcome: CodeOutcome } | { probe: SourceProbe | null } {
    const cache = this.#opts.cache;
    const index = this.#index;
    if (index === null || cache === null) return { probe: null };
    const attributes = request.importAttributes;
    if (attributes && Object.keys(attributes).length > 0) return { probe: null };
    return this.#guard(() => {
      const filename = fileURLToPath(url);
      const stamp = stampOf(filename);
      if (stamp === null) return { probe: null }; // Node reports a missing file its own way
      const identity = SourceIndex.identity(
        url,
        request.format ?? null,
        request.conditions ?? null,
      );
      const record = index.lookup(identity, stamp);
      if (record === null) return { probe: { identity, stamp, known: null } };
      const probe: SourceProbe = { identity, stamp, known: record };
      const classified = classify(url, record.format);
      if (!classified) return { probe };
      const ts = classified.lang === 'js' ? null : typescript().tsSettingsFor(filename);
      // The entry must be of these versions and options; a miss is counted once, by `run`.
      const entryId = this.#identity(record.hash, url, classified, ts);
      const entry = index.entry(record.key, entryId);
      if (!entry) return { probe };
      const details = this.#details(entry, record.key, entryId, url, filename, classified, ts);
      try {
        this.#register(url, filename, entry.hash, entry.format, entry.functionCount, details);
      } catch (error) {
        if (isDeliberate(error)) throw error;
        return { probe }; // the usual path loads it again, and falls back with the source at hand
      }
      this.stats.modules++;
      this.stats.cached++;
      cache.stats.indexHits++;
      return {
        outcome: { kind: 'code', format: entry.format, code: entry.code, instrumented: true },
      };
    });
  }

  /**
   * Transform one module: instrument it, or (when `instrument` is false) only compile its
   * TypeScript/JSX. Throws only deliberate livepatch errors (a patch that fails to apply).
   * `index`: record the file in the cache's index afterwards (see `beforeLoad`).
   */
  run(
    url: string,
    source: string | Uint8Array,
    classified: Classified,
    instrument = true,
    index: IndexNote | null = null,
  ): Outcome {
    return this.#guard(() => this.#run(url, source, classified, instrument, index));
  }

  #run(
    url: string,
    source: string | Uint8Array,
    classified: Classified,
    instrument: boolean,
    index: IndexNote | null,
  ): Outcome {
    const { cache } = this.#opts;
    const filename = fileURLToPath(url);
    const text =
      typeof source === 'string'
        ? source
        : Buffer.from(source.buffer, source.byteOffset, source.byteLength).toString('utf8');
    if (!instrument) return this.#compileOnly(url, filename, text, classified);
    this.stats.modules++;
    const hash = contentHash(source);
    const ts: TsSettings | null =
      classified.lang === 'js' ? null : typescript().tsSettingsFor(filename);
    const identity = this.#identity(hash, url, classified, ts);
    const key = cache ? TransformCache.key(identity) : '';

    let format: ModuleFormat;
    let code: string;
    let functionCount: number;
    let details: () => CachedMeta;
    const cached = cache ? cache.get(key, identity) : null;
    if (cached) {
      this.stats.cached++;
      format = cached.format;
      code = cached.code;
      functionCount = cached.functionCount;
      details = this.#details(cached, key, identity, url, filename, classified, ts);
    } else {
      const built = this.#build(url, filename, text, classified, ts);
      if (built.kind !== 'entry') return built.outcome;
      const { meta } = built.entry;
      format = built.entry.format;
      // With a cache the map goes to a file beside the entry, referred to by the code; without
      // one (or if that fails), inline.
      code =
        cache?.set(key, identity, hash, built.entry, built.map, filename) ??
        (built.map
          ? built.entry.code + sourceMaps().inlineSourceMapComment(built.map)
          : built.entry.code);
      functionCount = meta.functions.length;
      details = () => meta;
    }

    try {
      this.#register(url, filename, hash, format, functionCount, details);
    } catch (error) {
      if (isDeliberate(error)) throw error;
      return this.#fallback(url, filename, text, classified, ts, error, 'registering');
    }
    if (index !== null) this.#record(index, filename, source, hash, key);
    return { kind: 'code', format, code, instrumented: true };
  }

  /** The identity of a module's entry; the TypeScript compiler's version counts for TypeScript only. */
  #identity(hash: string, url: string, classified: Classified, ts: TsSettings | null): string {
    return TransformCache.identity(hash, [
      ...this.#versions,
      url,
      classified.lang,
      classified.format,
      ts,
      ts ? oxcTransformVersion() : null,
    ]);
  }

  #register(
    url: string,
    filename: string,
    hash: string,
    format: ModuleFormat,
    functionCount: number,
    details: () => CachedMeta,
  ): void {
    this.#opts.backend.registerModule(url, { functionCount, details, hash, format, filename });
  }

  /**
   * The metadata of a cached entry, decoded when first asked for. Damaged (it is checked only
   * then), it is rebuilt from the file, if the file still has the content the module was loaded
   * from, and the entry rewritten; otherwise the error says what to do.
   */
  #details(
    entry: CachedEntry,
    key: string,
    identity: string,
    url: string,
    filename: string,
    classified: Classified,
    ts: TsSettings | null,
  ): () => CachedMeta {
    return () => {
      try {
        return entry.readMeta();
      } catch {
        const cache = this.#opts.cache!;
        cache.stats.invalid++;
        cache.discard(key);
        return this.#guard(() =>
          this.#rebuildMeta(key, identity, url, filename, classified, ts, entry),
        );
      }
    };
  }

  #rebuildMeta(
    key: string,
    identity: string,
    url: string,
    filename: string,
    classified: Classified,
    ts: TsSettings | null,
    { hash, functionCount }: CachedEntry,
  ): CachedMeta {
    const damaged = `livepatch: the function list of ${filename} in the transform cache is damaged`;
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(filename);
    } catch (error) {
      throw new Error(
        `${damaged}, and the file cannot be read to rebuild it (${String(error)}); restart the process to patch this module`,
        { cause: error },
      );
    }
    // Through import Node hands the bytes over, through require() their UTF-8 decoding.
    const text = bytes.toString('utf8');
    if (contentHash(bytes) !== hash && contentHash(text) !== hash) {
      throw new Error(
        `${damaged}, and the file changed since the module was loaded; restart the process to patch this module`,
      );
    }
    const built = this.#build(url, filename, text, classified, ts);
    if (built.kind !== 'entry' || built.entry.meta.functions.length !== functionCount) {
      throw new Error(
        `${damaged}, and rebuilding it from the file failed; restart the process to patch this module`,
      );
    }
    this.#opts.cache?.set(key, identity, hash, built.entry, built.map, filename);
    return built.entry.meta;
  }

  /**
   * Record a file in the index, so that the next start serves it before Node's load step. Only
   * when the result can be trusted to be the same next time:
   * - the file last changed at least the settle time ago. A later change then gives it a new
   *   ctime (ctime cannot be set by programs), while a change in the same clock tick as our read
   *   could have left every stat as it was;
   * - what Node's load step returned is the file's content on disk, so no hook below ours
   *   transformed it (such files go through Node's load step every time);
   * - its stamp did not change while it was read.
   */
  #record(
    { probe, nodeFormat }: IndexNote,
    filename: string,
    source: string | Uint8Array,
    hash: string,
    key: string,
  ): void {
    if (this.#index === null || this.#opts.cache === null) return;
    if (probe.known?.key === key && probe.known.hash === hash) return; // nothing new
    const horizon = BigInt(Math.floor(this.#now())) * 1_000_000n - this.#settleNs;
    if (probe.stamp.ctimeNs > horizon || probe.stamp.mtimeNs > horizon) return;
    try {
      const same =
        typeof source === 'string'
          ? fs.readFileSync(filename, 'utf8') === source
          : fs.readFileSync(filename).equals(source);
      const after = stampOf(filename);
      if (!same || after === null || !sameStamp(after, probe.stamp)) return;
    } catch {
      return;
    }
    this.#index.record(probe.identity, probe.stamp, { hash, key, format: nodeFormat ?? null });
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
    const { backend } = this.#opts;
    let js = text;
    let tsMap: SourceMapV3 | null = null;
    if (ts && classified.lang !== 'js') {
      const { transformTypeScript, TsTransformError } = typescript();
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
      result = backend.instrument(js, { url, format, filename, sourceMap: this.#opts.sourceMaps });
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
      functions = sourceMaps().mapPositions(functions, tsMap);
      refused = sourceMaps().mapPositions(refused, tsMap);
    }
    let map: SourceMapV3 | null = null;
    if (this.#opts.sourceMaps && result.map) {
      const maps: SourceMapV3[] = [result.map];
      if (tsMap) maps.push(tsMap);
      else if (this.#opts.composeNodeModulesMaps || !isUnderNodeModules(filename)) {
        const existing = sourceMaps().readExistingSourceMap(text, filename);
        if (existing) maps.push(existing);
      }
      try {
        map = sourceMaps().composeMaps(maps, filename, url);
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
        const out = typescript().transformTypeScript(
          text,
          filename,
          classified.lang,
          classified.format,
          ts,
        );
        const format =
          classified.format === 'auto' ? detectFormat(out.code, filename) : classified.format;
        c = { js: out.code, tsMap: out.map, format };
      }
      const code = c.tsMap ? this.#withTsMap(c.js, c.tsMap, filename, url) : c.js;
      return { kind: 'code', format: c.format, code, instrumented: false };
    } catch {
      return { kind: 'original' };
    }
  }

  #compileOnly(url: string, filename: string, text: string, classified: Classified): Outcome {
    if (classified.lang === 'js') return { kind: 'original' };
    try {
      const { tsSettingsFor, transformTypeScript } = typescript();
      const ts = tsSettingsFor(filename);
      const out = transformTypeScript(text, filename, classified.lang, classified.format, ts);
      this.stats.compiledOnly++;
      const format =
        classified.format === 'auto' ? detectFormat(out.code, filename) : classified.format;
      const code = this.#withTsMap(out.code, out.map, filename, url);
      return { kind: 'code', format, code, instrumented: false };
    } catch {
      return { kind: 'original' }; // Node reports what it makes of it
    }
  }

  /** Compiled TypeScript as loaded uninstrumented: its map inline, when maps are on. */
  #withTsMap(code: string, tsMap: SourceMapV3, filename: string, url: string): string {
    if (!this.#opts.sourceMaps) return code;
    const { composeMaps, inlineSourceMapComment } = sourceMaps();
    return code + inlineSourceMapComment(composeMaps([tsMap], filename, url));
  }

  #warn(filename: string, error: unknown, doing: string): void {
    const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    this.#opts.warn(
      `livepatch: internal error while ${doing} ${filename}; loading it uninstrumented ` +
        `(its functions cannot be patched). ${detail}`,
    );
  }
}

function stampOf(filename: string): FileStamp | null {
  try {
    const st = fs.statSync(filename, { bigint: true, throwIfNoEntry: false });
    if (!st || !st.isFile()) return null;
    return { dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs };
  } catch {
    return null;
  }
}

function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return (
    a.dev === b.dev &&
    a.ino === b.ino &&
    a.size === b.size &&
    a.mtimeNs === b.mtimeNs &&
    a.ctimeNs === b.ctimeNs
  );
}

function isUnderNodeModules(filename: string): boolean {
  return filename.split(path.sep).includes('node_modules');
}

/** Errors the runtime throws on purpose (a patch for this module failed): the load must fail. */
function isDeliberate(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith(ERR_PREFIX);
}

/** `.ts` when running from the sources, `.js` from dist: siblings are loaded in the same flavour. */
const EXT = path.extname(fileURLToPath(import.meta.url));

// The TypeScript settings and compiler, and the source-map code, loaded on first use (as the
// instrumenter is, in index.ts): a warm start of JavaScript needs neither, and every module
// loaded at start-up costs it time. By `../loader/`, not `./`: in dist this code is bundled into
// a chunk in `dist/chunks/`, one level below the root as `src/loader/` is (scripts/build.ts).
let typescriptModule: typeof TypeScript | undefined;
function typescript(): typeof TypeScript {
  return (typescriptModule ??= createRequire(import.meta.url)(
    `../loader/typescript${EXT}`,
  ) as typeof TypeScript);
}
let sourceMapsModule: typeof SourceMaps | undefined;
function sourceMaps(): typeof SourceMaps {
  return (sourceMapsModule ??= createRequire(import.meta.url)(
    `../loader/sourcemap${EXT}`,
  ) as typeof SourceMaps);
}

function readVersion(file: string): string {
  try {
    return String((JSON.parse(fs.readFileSync(file, 'utf8')) as { version?: unknown }).version);
  } catch {
    return 'unknown';
  }
}

const livepatchVersion = readVersion(path.join(livepatchRoot, 'package.json'));

// Looked up on the first TypeScript module: resolving a package costs a start-up that loads
// only JavaScript a millisecond or two.
let oxcVersion: string | undefined;
function oxcTransformVersion(): string {
  if (oxcVersion === undefined) {
    try {
      oxcVersion = readVersion(
        createRequire(import.meta.url).resolve('oxc-transform/package.json'),
      );
    } catch {
      oxcVersion = 'unknown';
    }
  }
  return oxcVersion;
}
