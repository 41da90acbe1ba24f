/**
 * The on-disk transform cache: one file per transformed module, named by a key over the source
 * content, the transform versions and the options, holding the final code (with its inline
 * source map) and the module's metadata, so a warm start neither parses nor transforms.
 *
 * A module's source map is a file of its own beside the entry (`<key>.map`), named by the code
 * through a relative sourceMappingURL (Node resolves only relative ones): the code stays the size
 * of the source, for the disk, for V8, and for the memory that keeps every module's source.
 *
 * Entry layout: a header line `livepatch-cache <schema> <metaLength> <codeLength>`, the metadata
 * as JSON, then the code verbatim (not JSON-escaped: reading it back is a slice, not a parse).
 * Lengths are in UTF-16 code units and must match exactly, so a truncated entry is a miss.
 *
 * Several processes may share a directory: an entry is written to a temporary file in the same
 * directory and renamed over the final name (atomic on POSIX file systems), so a reader sees a
 * whole entry or none. Whatever cannot be read or validated is a miss; whatever cannot be written
 * is skipped. The cache never fails a module load.
 */
import crypto, { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import type {
  FunctionInfo,
  ModuleFormat,
  RefusedFunction,
  SourceMapV3,
} from '../instrument/types.ts';

/** Bump when the layout of an entry or what the loader stores in it changes. */
export const CACHE_SCHEMA = 2;
const MAGIC = 'livepatch-cache';

/** What the instrumenter said about a module, with positions already in the original source. */
export interface CachedMeta {
  readonly functions: readonly FunctionInfo[];
  readonly refused: readonly RefusedFunction[];
  readonly moduleBindings: readonly string[];
  readonly prefix: string;
}

export interface CacheEntry {
  /** The format the code is to be loaded as (decided by detection when Node left it open). */
  readonly format: ModuleFormat;
  /** Final code, inline source map included. */
  readonly code: string;
  readonly meta: CachedMeta;
}

export interface CacheStats {
  hits: number;
  misses: number;
  writes: number;
  /** Entries present but unreadable or invalid (treated as misses). */
  invalid: number;
  writeErrors: number;
}

export class TransformCache {
  readonly dir: string;
  readonly stats: CacheStats = { hits: 0, misses: 0, writes: 0, invalid: 0, writeErrors: 0 };
  #dirReady = false;
  #writable = true;
  readonly #onWriteError: (error: unknown) => void;

  constructor(dir: string, onWriteError: (error: unknown) => void = () => {}) {
    this.dir = path.resolve(dir);
    this.#onWriteError = onWriteError;
  }

  /**
   * The key of a module: sha256 over the content hash of its source and everything else the
   * output depends on (versions, URL, format, options), serialised unambiguously.
   */
  static key(sourceHash: string, parts: readonly unknown[]): string {
    return createHash('sha256')
      .update(JSON.stringify([CACHE_SCHEMA, sourceHash, ...parts]))
      .digest('hex');
  }

  #file(key: string): string {
    return path.join(this.dir, `${key}.entry`);
  }

  get(key: string): CacheEntry | null {
    let text: string;
    try {
      text = fs.readFileSync(this.#file(key), 'utf8');
    } catch {
      this.stats.misses++;
      return null;
    }
    const entry = parseEntry(text, key);
    if (!entry) {
      this.stats.invalid++;
      this.stats.misses++;
      return null;
    }
    this.stats.hits++;
    return entry;
  }

  /**
   * Store an entry, and its source map as a file beside it. Returns the entry as stored (its code
   * now refers to the map file), or null when nothing could be written: the caller then inlines
   * the map. Never throws.
   */
  set(
    key: string,
    entry: CacheEntry,
    map: SourceMapV3 | null,
    moduleFile: string,
  ): CacheEntry | null {
    if (!this.#writable) return null;
    try {
      if (!this.#dirReady) {
        fs.mkdirSync(this.dir, { recursive: true });
        this.#dirReady = true;
      }
      let code = entry.code;
      if (map) {
        const ref = relativeUrl(path.dirname(moduleFile), path.join(this.dir, `${key}.map`));
        if (ref === null) return null; // another drive: no relative URL reaches it
        // The map first: an entry never refers to a map that is not there.
        this.#writeAtomic(`${key}.map`, JSON.stringify(map));
        code += `\n//# sourceMappingURL=${ref}\n`;
      }
      const meta = JSON.stringify({ key, format: entry.format, meta: entry.meta });
      this.#writeAtomic(
        `${key}.entry`,
        `${MAGIC} ${CACHE_SCHEMA} ${meta.length} ${code.length}\n${meta}${code}`,
      );
      this.stats.writes++;
      return { ...entry, code };
    } catch (error) {
      this.stats.writeErrors++;
      // A read-only or full disk will not get better during this process: stop trying.
      this.#writable = false;
      this.#onWriteError(error);
      return null;
    }
  }

  /** Write to a temporary file in the same directory, then rename it over the final name. */
  #writeAtomic(name: string, data: string): void {
    const file = path.join(this.dir, name);
    // pid plus randomness: unique across processes and their worker threads.
    const tmp = `${file}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`;
    try {
      fs.writeFileSync(tmp, data);
      // rename replaces a file another process wrote meanwhile: same key, same content.
      fs.renameSync(tmp, file);
    } catch (error) {
      fs.rmSync(tmp, { force: true });
      throw error;
    }
  }
}

/** `to` as a URL relative to the directory `from` (what a sourceMappingURL may hold). */
function relativeUrl(from: string, to: string): string | null {
  const rel = path.relative(from, to);
  if (path.isAbsolute(rel)) return null;
  return rel.split(path.sep).map(encodeURIComponent).join('/');
}

function parseEntry(text: string, key: string): CacheEntry | null {
  const eol = text.indexOf('\n');
  if (eol === -1 || eol > 80) return null;
  const [magic, schema, metaLength, codeLength] = text.slice(0, eol).split(' ');
  if (magic !== MAGIC || Number(schema) !== CACHE_SCHEMA) return null;
  const metaEnd = eol + 1 + Number(metaLength);
  if (!Number.isInteger(metaEnd) || text.length !== metaEnd + Number(codeLength)) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(text.slice(eol + 1, metaEnd));
  } catch {
    return null;
  }
  if (!raw || typeof raw !== 'object') return null;
  const e = raw as Record<string, unknown>;
  if (e.key !== key) return null;
  if (e.format !== 'commonjs' && e.format !== 'module') return null;
  const meta = e.meta as Record<string, unknown> | null | undefined;
  if (
    !meta ||
    typeof meta !== 'object' ||
    !Array.isArray(meta.functions) ||
    !Array.isArray(meta.refused) ||
    !Array.isArray(meta.moduleBindings) ||
    typeof meta.prefix !== 'string'
  ) {
    return null;
  }
  return { format: e.format, code: text.slice(metaEnd), meta: meta as unknown as CachedMeta };
}

/** sha256 (hex) of a module's original source bytes: its identity for patches and the cache. */
export function contentHash(source: string | Uint8Array): string {
  // One-shot crypto.hash (Node 21.7+) skips the Hash object: measurably faster per module.
  return oneShot
    ? oneShot('sha256', source, 'hex')
    : createHash('sha256').update(source).digest('hex');
}

const oneShot = (
  crypto as unknown as { hash?: (alg: string, data: string | Uint8Array, enc: 'hex') => string }
).hash;
