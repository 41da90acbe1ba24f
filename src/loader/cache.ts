/**
 * The on-disk transform cache: one entry per transformed module, named by a key over the source
 * content, the transform versions and the options, holding the final code and the module's
 * metadata, so a warm start neither parses nor transforms; and an index from a file's identity
 * on disk (its stats) to the entry of its content, so a warm start of an unchanged file does not
 * read or hash the source either.
 *
 * A module's source map is a file of its own beside the entry (`<key>.map`), named by the code
 * through a relative sourceMappingURL (Node resolves only relative ones): the code stays the size
 * of the source, for the disk, for V8, and for the memory that keeps every module's source.
 *
 * Entry layout (`<key>.entry`, the key being the sha256 of the entry's identity): a header line
 *   `livepatch-cache <schema> <key> <source sha256> <format> <functions> <identityBytes>
 *    <metaBytes> <codeBytes> <encoding>`
 * then the identity (what the key was computed from: compared on every read, so that reading an
 * entry needs no hashing), the metadata (JSON, deflated: decoded only when something asks for
 * the module's functions), and the code verbatim, in `latin1` when it is all ASCII (decoded by a
 * copy, without a UTF-8 pass) or `utf8`. Lengths are in bytes and must match the file exactly,
 * so a truncated entry is a miss. Code and metadata are read into buffers of their own: the code
 * string handed to Node is not a slice of a larger string, which would keep the whole entry in
 * memory. (Code read from a pack is such a slice, on purpose: see Pack.)
 *
 * The index (`<launch>.idx`, one per command line: see SourceIndex) is a log of lines, read once
 * per process. Beside it, a pack per program started that way (`<launch>.<program>.pack.idx`:
 * see Pack) holds copies of the entries that program loads, so that a warm start reads them in
 * two reads of one file instead of one file each. Entry files stay the reference: a pack only
 * saves reads. (`.idx`, so that `livepatch cache` counts and clears packs with the index.)
 *
 * Several processes may share a directory: entries, maps and packs are written to a temporary
 * file in the same directory and renamed over the final name (atomic on POSIX file systems), so a
 * reader sees a whole file or none; index lines are appended whole. Whatever cannot be read or
 * validated is a miss; whatever cannot be written is skipped. The cache never fails a module
 * load.
 */
import path from 'node:path';

import type {
  FunctionInfo,
  ModuleFormat,
  RefusedFunction,
  SourceMapV3,
} from '../instrument/types.ts';
import { crypto, fs, quickHash, zlib } from './builtins.ts';

/** Bump when the layout of an entry or what the loader stores in it changes. */
export const CACHE_SCHEMA = 3;
const MAGIC = 'livepatch-cache';
/** Longer than any valid header line (two hashes, a few numbers). */
const MAX_HEADER = 512;
/** Longer than any identity (versions, URL, TypeScript settings). */
const MAX_IDENTITY = 32 * 1024;

/** What the instrumenter said about a module, with positions already in the original source. */
export interface CachedMeta {
  readonly functions: readonly FunctionInfo[];
  readonly refused: readonly RefusedFunction[];
  readonly moduleBindings: readonly string[];
  readonly prefix: string;
}

/** What the loader stores. */
export interface CacheEntry {
  /** The format the code is to be loaded as (decided by detection when Node left it open). */
  readonly format: ModuleFormat;
  /** Final code (a sourceMappingURL is added when the map is stored beside it). */
  readonly code: string;
  readonly meta: CachedMeta;
}

/** What the loader reads back: the metadata stays encoded until asked for. */
export interface CachedEntry {
  readonly format: ModuleFormat;
  readonly code: string;
  /** sha256 (hex) of the original source the entry was made from. */
  readonly hash: string;
  /** How many functions the metadata lists (the slots the code uses). */
  readonly functionCount: number;
  /** Decodes the metadata; throws when it is damaged. */
  readMeta(): CachedMeta;
}

/** A file's identity on disk: what changes when its content may have changed. */
export interface FileStamp {
  readonly dev: bigint;
  readonly ino: bigint;
  readonly size: bigint;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
}

/** What the index knows of a file with a given stamp. */
export interface SourceRecord {
  /** sha256 (hex) of its bytes as Node's load step returned them. */
  readonly hash: string;
  /** The key of the entry made from them (under the versions and options of that time). */
  readonly key: string;
  /** The format Node's load step reported (null when it reported none). */
  readonly format: string | null;
}

export interface CacheStats {
  hits: number;
  misses: number;
  writes: number;
  /** Entries present but unreadable or invalid (treated as misses). */
  invalid: number;
  writeErrors: number;
  /** Modules whose source was neither read nor hashed: the index knew the file (see pipeline). */
  indexHits: number;
  /** Index records written. */
  indexWrites: number;
  /** Entries served from an index's pack (counted in `hits` too). */
  packHits: number;
  /** Packs written. */
  packWrites: number;
}

export class TransformCache {
  readonly dir: string;
  readonly stats: CacheStats = {
    hits: 0,
    misses: 0,
    writes: 0,
    invalid: 0,
    writeErrors: 0,
    indexHits: 0,
    indexWrites: 0,
    packHits: 0,
    packWrites: 0,
  };
  #dirReady = false;
  #writable = true;
  readonly #onWriteError: (error: unknown) => void;

  constructor(dir: string, onWriteError: (error: unknown) => void = () => {}) {
    this.dir = path.resolve(dir);
    this.#onWriteError = onWriteError;
  }

  /**
   * What an entry depends on: the content hash of the module's source and everything else the
   * output depends on (versions, URL, format, options), serialised unambiguously.
   */
  static identity(sourceHash: string, parts: readonly unknown[]): string {
    return JSON.stringify([CACHE_SCHEMA, sourceHash, ...parts]);
  }

  /** The key (file name) of the entry with this identity: its sha256. */
  static key(identity: string): string {
    return contentHash(identity);
  }

  #file(key: string): string {
    return path.join(this.dir, `${key}.entry`);
  }

  /**
   * The entry of `key`, if it has this identity; null otherwise. `quiet`: a missing or invalid
   * entry is not counted (the caller will ask again, and that is counted).
   */
  get(key: string, identity: string, quiet = false): CachedEntry | null {
    let fd: number;
    try {
      fd = fs.openSync(this.#file(key), 'r');
    } catch {
      if (!quiet) this.stats.misses++;
      return null;
    }
    let entry: CachedEntry | null;
    try {
      entry = readEntry(fd, key, identity);
    } catch {
      entry = null;
    } finally {
      fs.closeSync(fd);
    }
    if (!entry) {
      if (!quiet) {
        this.stats.invalid++;
        this.stats.misses++;
      }
      return null;
    }
    this.stats.hits++;
    return entry;
  }

  /**
   * Store an entry, and its source map as a file beside it. Returns the code as stored (it now
   * refers to the map file), or null when nothing could be written: the caller then inlines the
   * map. Never throws.
   */
  set(
    key: string,
    identity: string,
    sourceHash: string,
    entry: CacheEntry,
    map: SourceMapV3 | null,
    moduleFile: string,
  ): string | null {
    if (!this.#writable) return null;
    try {
      this.#ensureDir();
      let code = entry.code;
      if (map) {
        const ref = relativeUrl(path.dirname(moduleFile), path.join(this.dir, `${key}.map`));
        if (ref === null) return null; // another drive: no relative URL reaches it
        // The map first: an entry never refers to a map that is not there.
        this.#writeAtomic(`${key}.map`, [Buffer.from(JSON.stringify(map))]);
        code += `\n//# sourceMappingURL=${ref}\n`;
      }
      const id = Buffer.from(identity);
      const meta = zlib().deflateSync(JSON.stringify(entry.meta));
      // One byte per character exactly when every character is ASCII.
      const ascii = Buffer.byteLength(code) === code.length;
      const codeBytes = Buffer.from(code, ascii ? 'latin1' : 'utf8');
      const header =
        `${MAGIC} ${CACHE_SCHEMA} ${key} ${sourceHash} ${entry.format} ` +
        `${entry.meta.functions.length} ${id.length} ${meta.length} ${codeBytes.length} ` +
        `${ascii ? 'latin1' : 'utf8'}\n`;
      this.#writeAtomic(`${key}.entry`, [Buffer.from(header), id, meta, codeBytes]);
      this.stats.writes++;
      return code;
    } catch (error) {
      this.#failed(error);
      return null;
    }
  }

  /**
   * The index of source files for one command line (`launch`: whatever decides how Node loads
   * files), read on first lookup; with the pack of one program started that way (`program`: the
   * main script), whose modules it holds.
   */
  index(launch: string, program = ''): SourceIndex {
    const base = path.join(this.dir, quickHash(launch));
    return new SourceIndex(this, `${base}.idx`, `${base}.${quickHash(program)}.pack.idx`);
  }

  /** Remove an entry found damaged, so that the next start rebuilds it. Never throws. */
  discard(key: string): void {
    try {
      fs.rmSync(this.#file(key), { force: true });
    } catch {
      // Whoever cannot remove it reads it as damaged again and rebuilds it again.
    }
  }

  /** The bytes of the entry file of `key` (what a pack copies), or null. Never throws. */
  entryBytes(key: string): Buffer | null {
    try {
      return fs.readFileSync(this.#file(key));
    } catch {
      return null;
    }
  }

  /**
   * Run a write for the index (SourceIndex), with the directory made. Returns false when nothing
   * was written. Failures are not reported: the index only saves time, and a cache that is
   * complete but read-only (made at build time, say) must not warn on every start.
   */
  writeForIndex(write: () => void): boolean {
    if (!this.#writable) return false;
    try {
      this.#ensureDir();
      write();
      return true;
    } catch {
      return false;
    }
  }

  /** Replace a file of the cache directory atomically with `parts`, written in order. */
  replaceForIndex(file: string, parts: readonly Uint8Array[]): void {
    this.#writeAtomic(path.basename(file), parts);
  }

  #ensureDir(): void {
    if (!this.#dirReady) {
      fs.mkdirSync(this.dir, { recursive: true });
      this.#dirReady = true;
    }
  }

  #failed(error: unknown): void {
    this.stats.writeErrors++;
    // A read-only or full disk will not get better during this process: stop trying.
    this.#writable = false;
    this.#onWriteError(error);
  }

  /** Write to a temporary file in the same directory, then rename it over the final name. */
  #writeAtomic(name: string, parts: readonly Uint8Array[]): void {
    const file = path.join(this.dir, name);
    // pid plus randomness: unique across processes and their worker threads.
    const tmp = `${file}.${process.pid}-${crypto().randomBytes(6).toString('hex')}.tmp`;
    try {
      const fd = fs.openSync(tmp, 'w');
      try {
        for (const part of parts) writeAll(fd, part);
      } finally {
        fs.closeSync(fd);
      }
      // rename replaces a file another process wrote meanwhile: same key, same content.
      fs.renameSync(tmp, file);
    } catch (error) {
      fs.rmSync(tmp, { force: true });
      throw error;
    }
  }
}

/**
 * What the loader knows of source files by their stats: for a file loaded a given way (URL, the
 * format Node's resolution gave, the conditions), the stamp it had, the content hash Node's load
 * step then gave, the key of the entry made from it, and the format Node reported. One file per
 * command line, read once per process: a warm start of 260 modules would otherwise open 260
 * small files.
 *
 * Line: `<identity>\t<dev> <ino> <size> <mtimeNs> <ctimeNs>\t<sha256>\t<key>\t<format or ->`,
 * the identity being JSON text (which holds no tab or newline). Processes append their lines
 * with one write each (O_APPEND); a reader keeps the last well-formed line of each identity and
 * skips anything else (a line being written). Even where appends of several machines can overlap
 * (NFS), what remains of an overwritten line is the end of a line, which matches no identity.
 * When the log holds many stale lines a process rewrites it (temporary file and rename); lines
 * others append meanwhile are lost, which costs them a normal load next time.
 *
 * It also serves entries from the pack of the program started this way (see Pack), and writes
 * the pack anew when the pack lacked an entry this process used.
 */
export class SourceIndex {
  readonly file: string;
  readonly packFile: string;
  readonly #cache: TransformCache;
  /** Identity → the rest of its last line, checked when looked up. */
  #lines: Map<string, string> | null = null;
  #pending: string[] = [];
  #flushQueued = false;
  #failed = false;
  /** undefined: not opened yet; null: none, not usable, or replaced by this process. */
  #pack: Pack | null | undefined = undefined;
  /** Keys of the entries this process served through the index or recorded. */
  readonly #used = new Set<string>();
  /** Keys whose copy in the pack could not be used: served and packed from their files. */
  readonly #unusable = new Set<string>();
  /** The pack lacks a good copy of an entry this process used. */
  #packLacks = false;
  /**
   * A process writes the pack at most once: one that keeps loading modules now and then would
   * otherwise rewrite all of it each time. What it uses afterwards is packed by a later start.
   */
  #packWritten = false;

  constructor(cache: TransformCache, file: string, packFile: string) {
    this.#cache = cache;
    this.file = file;
    this.packFile = packFile;
  }

  /** The identity of a load of a file: how Node loads it. */
  static identity(
    url: string,
    format: string | null,
    conditions: readonly string[] | null,
  ): string {
    return JSON.stringify([url, format, conditions]);
  }

  /** What the index knows of the file, if it still has this stamp; null otherwise. */
  lookup(identity: string, stamp: FileStamp): SourceRecord | null {
    const rest = this.#load().get(identity);
    if (rest === undefined) return null;
    const f = rest.split('\t');
    if (f.length !== 4 || f[0] !== stampText(stamp)) return null;
    const [, hash, key, format] = f;
    if (!HEX64.test(hash) || !HEX64.test(key) || !FORMAT_WORD.test(format)) return null;
    return { hash, key, format: format === '-' ? null : format };
  }

  /**
   * The entry of a key the index named, with this identity: from the pack when it holds a good
   * copy, else from its file (and the pack is written anew at the next flush). A miss is not
   * counted: the caller loads the module the usual way, which counts it. Never throws.
   */
  entry(key: string, identity: string): CachedEntry | null {
    const pack = this.#openPack();
    if (pack !== null && pack.has(key) && !this.#unusable.has(key)) {
      // Its metadata is checked only when decoded (by the pipeline, when something asks for the
      // module's functions): a copy damaged there is left out of the next pack too.
      const entry = pack.read(key, identity, () => this.#packDamaged(key));
      if (entry !== null) {
        this.#used.add(key);
        this.#cache.stats.hits++;
        this.#cache.stats.packHits++;
        return entry;
      }
      // Made under other versions (then its file is as old, and the module gets a new key), or
      // damaged: the file tells, and if it serves the module, the next pack takes its copy.
      this.#unusable.add(key);
    }
    const entry = this.#cache.get(key, identity, true);
    if (entry !== null) {
      this.#used.add(key);
      this.#lacks();
    }
    return entry;
  }

  /** Remember what the file holds at this stamp; written soon after, in one append. */
  record(identity: string, stamp: FileStamp, record: SourceRecord): void {
    const format = record.format ?? '-';
    if (!FORMAT_WORD.test(format) || !HEX64.test(record.hash) || !HEX64.test(record.key)) return;
    const rest = `${stampText(stamp)}\t${record.hash}\t${record.key}\t${format}`;
    this.#pending.push(`${identity}\t${rest}\n`);
    this.#load().set(identity, rest);
    this.#schedule();
    this.#used.add(record.key);
    const pack = this.#openPack();
    if (pack === null || !pack.has(record.key) || this.#unusable.has(record.key)) this.#lacks();
  }

  /**
   * Append what was recorded, and write the pack anew if it lacks entries this process used.
   * Never throws; after a failed append, writes nothing more.
   */
  flush(): void {
    this.#flushQueued = false;
    if (this.#pending.length > 0) {
      const data = this.#pending.join('');
      const count = this.#pending.length;
      this.#pending = [];
      // One write call per flush: appends of other processes cannot come between its lines.
      if (!this.#failed && this.#cache.writeForIndex(() => fs.appendFileSync(this.file, data))) {
        this.#cache.stats.indexWrites += count;
      } else {
        this.#failed = true;
      }
    }
    if (this.#packLacks && !this.#packWritten && !this.#failed) this.#writePack();
  }

  /** The metadata of the pack's copy of `key` turned out damaged when decoded. */
  #packDamaged(key: string): void {
    this.#unusable.add(key);
    this.#lacks();
  }

  #lacks(): void {
    this.#packLacks = true;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    // After the current burst of loads, and at exit for a process that ends first.
    setImmediate(() => this.flush()).unref();
    flushAtExit(this);
  }

  #openPack(): Pack | null {
    if (this.#pack === undefined) this.#pack = Pack.open(this.packFile);
    return this.#pack;
  }

  /**
   * Write the pack anew: the entries this process used, and those of the old pack that the
   * index still refers to (the program may load other modules on other runs; a file that
   * changed drops its old entry). Copies come from the old pack where it holds them whole, else
   * from the entry files; keys with neither are left out. Never throws.
   */
  #writePack(): void {
    this.#packWritten = true;
    const old = this.#pack ?? null;
    // Not used again: modules this process loads from now on are read from their files, rather
    // than from the new pack's code, most of which this process already holds.
    this.#pack = null;
    const keys = new Set(this.#used);
    if (old !== null) {
      const referred = new Set<string>();
      for (const rest of this.#load().values()) referred.add(rest.split('\t')[2] ?? '');
      for (const key of old.keys()) if (referred.has(key)) keys.add(key);
    }
    const latin1: (readonly [Buffer, Buffer])[] = [];
    const utf8: (readonly [Buffer, Buffer])[] = [];
    for (const key of keys) {
      const parts =
        (old !== null && !this.#unusable.has(key) ? old.parts(key) : null) ??
        splitEntry(this.#cache.entryBytes(key), key);
      if (parts === null) continue;
      (parseHeader(parts[0], 0)?.encoding === 'latin1' ? latin1 : utf8).push(parts);
    }
    // Latin-1 code first: a warm start reads that part of the code section into one string, and
    // the code stored as UTF-8 (decoded per module) not at all.
    const heads: Uint8Array[] = [];
    const codes: Uint8Array[] = [];
    let headBytes = 0;
    let codeBytes = 0;
    for (const [head, code] of [...latin1, ...utf8]) {
      heads.push(head);
      codes.push(code);
      headBytes += head.length;
      codeBytes += code.length;
    }
    // Before the rename, which some systems refuse over an open file.
    old?.close();
    if (heads.length === 0) return;
    const header = Buffer.from(
      `${PACK_MAGIC} ${CACHE_SCHEMA} ${heads.length} ${headBytes} ${codeBytes}\n`,
    );
    const written = this.#cache.writeForIndex(() =>
      this.#cache.replaceForIndex(this.packFile, [header, ...heads, ...codes]),
    );
    if (written) this.#cache.stats.packWrites++;
  }

  #load(): Map<string, string> {
    if (this.#lines !== null) return this.#lines;
    const lines = new Map<string, string>();
    let text = '';
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch {
      // no index yet
    }
    let count = 0;
    let at = 0;
    for (;;) {
      const eol = text.indexOf('\n', at);
      if (eol === -1) break; // the rest, if any, is a line being written
      const tab = text.indexOf('\t', at);
      if (tab > at && tab < eol) {
        lines.set(text.slice(at, tab), text.slice(tab + 1, eol));
        count++;
      }
      at = eol + 1;
    }
    this.#lines = lines;
    if (count > 2 * lines.size + 256) this.#compact(lines);
    return lines;
  }

  /** Rewrite the log with the last line of each identity only. */
  #compact(lines: Map<string, string>): void {
    let data = '';
    for (const [identity, rest] of lines) data += `${identity}\t${rest}\n`;
    this.#cache.writeForIndex(() => this.#cache.replaceForIndex(this.file, [Buffer.from(data)]));
  }
}

/** Indexes that had something to write: flushed at exit, by one listener however many there are. */
const flushedAtExit = new Set<SourceIndex>();

function flushAtExit(index: SourceIndex): void {
  if (flushedAtExit.size === 0) {
    process.once('exit', () => {
      for (const i of flushedAtExit) i.flush();
    });
  }
  flushedAtExit.add(index);
}

const PACK_MAGIC = 'livepatch-pack';
/** Longer than any valid pack header line. */
const MAX_PACK_HEADER = 128;

/** An entry in a pack: its header line checked, where its parts are. */
interface PackedEntry {
  readonly header: EntryHeader;
  readonly identity: string;
  /**
   * Position of the entry's head (header line, identity, metadata) in the pack's head section;
   * its metadata is the head's last `header.metaLength` bytes.
   */
  readonly headAt: number;
  readonly headLength: number;
  /** Position of the code in the pack's code section. */
  readonly codeAt: number;
}

/**
 * A pack: copies of the entries one program loads through an index, in one file. A warm start
 * reads the heads of all of them with one read, and the code of all of them with another into
 * one string; each module's code is then a slice of that string, made without copying. The
 * string is large enough for Node to keep outside V8's heap, so the modules' code costs the
 * young generation's garbage collector nothing either; and it stays in memory as long as any
 * module does, as each module's source would anyway (V8 keeps a script's source). Code stored
 * as UTF-8 (not all ASCII) is read and decoded per entry; it is written after the Latin-1 code,
 * which alone goes into that string (V8 counts the string, outside its heap or not, towards the
 * memory at which it starts a full collection).
 *
 * Layout: a header line `livepatch-pack <schema> <count> <headBytes> <codeBytes>`, then the
 * heads of the entries (each entry file up to its code: header line, identity, metadata), then
 * their codes in the same order. Each head is checked as an entry file's is, and an entry's
 * identity is compared when it is read. A pack whose header is malformed, whose heads do not add
 * up to their section, or whose size is not what its header says is not used at all.
 *
 * The file stays open while the pack is in use: a pack another process renames over it meanwhile
 * does not change what this one reads (POSIX keeps the replaced file until it is closed).
 */
class Pack {
  readonly #fd: number;
  /** Position of the head section in the file, and its size. */
  readonly #headBase: number;
  readonly #headBytes: number;
  /** Position of the code section in the file. */
  readonly #codeBase: number;
  readonly #entries: Map<string, PackedEntry>;
  /**
   * The code section up to the end of its last Latin-1 entry, as one string (a byte per
   * character), read on first use.
   */
  #code: string | null = null;
  readonly #latin1Bytes: number;
  /**
   * The head section, once the file is closed: metadata is otherwise read from the file when a
   * module's function list is first asked for (most never are), rather than kept in memory from
   * the start (eslint: 280 KB for 262 modules, and memory decides when V8 starts marking).
   */
  #heads: Buffer | null = null;
  #closed = false;

  constructor(
    fd: number,
    headBase: number,
    headBytes: number,
    latin1Bytes: number,
    entries: Map<string, PackedEntry>,
  ) {
    this.#fd = fd;
    this.#headBase = headBase;
    this.#headBytes = headBytes;
    this.#codeBase = headBase + headBytes;
    this.#latin1Bytes = latin1Bytes;
    this.#entries = entries;
  }

  /** The pack in `file`, or null when there is none or it is not usable. Never throws. */
  static open(file: string): Pack | null {
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      return null;
    }
    try {
      const pack = readPack(fd);
      if (pack !== null) return pack;
    } catch {
      // as malformed
    }
    closeQuietly(fd);
    return null;
  }

  has(key: string): boolean {
    return this.#entries.has(key);
  }

  keys(): IterableIterator<string> {
    return this.#entries.keys();
  }

  /**
   * The entry of `key` if the pack holds it whole with this identity; null otherwise.
   * `onDamagedMeta` is called when its metadata, decoded later, turns out damaged. Never throws.
   */
  read(key: string, identity: string, onDamagedMeta: () => void): CachedEntry | null {
    const e = this.#entries.get(key);
    if (e === undefined || e.identity !== identity) return null;
    const { format, hash, functionCount, codeLength, encoding } = e.header;
    let code: string;
    try {
      if (encoding === 'latin1') {
        this.#code ??= this.#readAt(this.#latin1Bytes, 0)?.toString('latin1') ?? null;
        if (this.#code === null) return null;
        code = this.#code.slice(e.codeAt, e.codeAt + codeLength);
      } else {
        const bytes = this.#readAt(codeLength, e.codeAt);
        if (bytes === null) return null;
        code = bytes.toString('utf8');
      }
    } catch {
      return null;
    }
    return {
      format,
      code,
      hash,
      functionCount,
      readMeta: () => {
        try {
          const head = this.#head(e);
          if (head === null) throw new Error('pack unreadable');
          return decodeMeta(head.subarray(head.length - e.header.metaLength), functionCount);
        } catch (error) {
          onDamagedMeta();
          throw error;
        }
      },
    };
  }

  /** The head and the code of the entry of `key` as stored, or null. Never throws. */
  parts(key: string): readonly [Buffer, Buffer] | null {
    const e = this.#entries.get(key);
    if (e === undefined) return null;
    try {
      const head = this.#head(e);
      const code = this.#readAt(e.header.codeLength, e.codeAt);
      return head === null || code === null ? null : [head, code];
    } catch {
      return null;
    }
  }

  /**
   * Closes the file. The head section is read first (one read), so that the metadata of modules
   * loaded from this pack can still be read afterwards.
   */
  close(): void {
    if (this.#closed) return;
    try {
      this.#heads = readAt(this.#fd, this.#headBytes, this.#headBase);
    } catch {
      // Their function lists then fail to read, as from a damaged pack.
    }
    this.#closed = true;
    closeQuietly(this.#fd);
  }

  /** An entry's head: from the file, or from memory once closed; null when unreadable. */
  #head(e: PackedEntry): Buffer | null {
    if (this.#heads !== null) return this.#heads.subarray(e.headAt, e.headAt + e.headLength);
    return this.#closed ? null : readAt(this.#fd, e.headLength, this.#headBase + e.headAt);
  }

  /** Bytes of the code section, from `at`; null once closed or when the file is shorter. */
  #readAt(length: number, at: number): Buffer | null {
    return this.#closed ? null : readAt(this.#fd, length, this.#codeBase + at);
  }
}

/** The pack open in `fd`, its heads read and checked; null when malformed. */
function readPack(fd: number): Pack | null {
  const first = Buffer.allocUnsafe(MAX_PACK_HEADER);
  const got = readStart(fd, first);
  const eol = first.subarray(0, got).indexOf(10);
  if (eol === -1) return null;
  const f = first.toString('latin1', 0, eol).split(' ');
  if (f.length !== 5 || f[0] !== PACK_MAGIC || f[1] !== String(CACHE_SCHEMA)) return null;
  if (!COUNT.test(f[2]) || !COUNT.test(f[3]) || !COUNT.test(f[4])) return null;
  const [count, headBytes, codeBytes] = [Number(f[2]), Number(f[3]), Number(f[4])];
  const codeBase = eol + 1 + headBytes;
  if (codeBase + codeBytes !== fs.fstatSync(fd).size) return null;
  const heads = readAt(fd, headBytes, eol + 1);
  if (heads === null) return null;
  const entries = new Map<string, PackedEntry>();
  let at = 0;
  let codeAt = 0;
  let latin1Bytes = 0;
  for (let i = 0; i < count; i++) {
    const header = parseHeader(heads, at);
    if (header === null) return null;
    const idStart = at + header.headerLength;
    const metaStart = idStart + header.identityLength;
    const end = metaStart + header.metaLength;
    if (end > headBytes) return null;
    entries.set(header.key, {
      header,
      identity: heads.toString('utf8', idStart, metaStart),
      headAt: at,
      headLength: end - at,
      codeAt,
    });
    at = end;
    codeAt += header.codeLength;
    if (header.encoding === 'latin1') latin1Bytes = codeAt;
  }
  if (at !== headBytes || codeAt !== codeBytes) return null;
  return new Pack(fd, eol + 1, headBytes, latin1Bytes, entries);
}

/** An entry file's bytes as a pack stores them (head, code), if they are an entry of `key`. */
function splitEntry(bytes: Buffer | null, key: string): readonly [Buffer, Buffer] | null {
  if (bytes === null) return null;
  const h = parseHeader(bytes, 0);
  if (h === null || h.key !== key) return null;
  const codeStart = h.headerLength + h.identityLength + h.metaLength;
  if (codeStart + h.codeLength !== bytes.length) return null;
  return [bytes.subarray(0, codeStart), bytes.subarray(codeStart)];
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // nothing to do about it
  }
}

const HEX64 = /^[0-9a-f]{64}$/;
const FORMAT_WORD = /^[\w-]+$/;

function stampText(stamp: FileStamp): string {
  return `${stamp.dev} ${stamp.ino} ${stamp.size} ${stamp.mtimeNs} ${stamp.ctimeNs}`;
}

/** `to` as a URL relative to the directory `from` (what a sourceMappingURL may hold). */
function relativeUrl(from: string, to: string): string | null {
  const rel = path.relative(from, to);
  if (path.isAbsolute(rel)) return null;
  return rel.split(path.sep).map(encodeURIComponent).join('/');
}

function writeAll(fd: number, data: Uint8Array): void {
  let done = 0;
  while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done);
}

/** `length` bytes at `position`, in a buffer of their own; null when the file is shorter. */
function readAt(fd: number, length: number, position: number): Buffer | null {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, buf, done, length - done, position + done);
    if (n === 0) return null;
    done += n;
  }
  return buf;
}

/**
 * Entries up to this size (most modules) are read with one call into a buffer reused for every
 * read (reading is synchronous), which also tells their size without a stat.
 */
const SMALL_ENTRY = 64 * 1024;
let scratch: Buffer | null = null;

/** Fill `buf` from the start of the file; returns how many bytes there were (up to its size). */
function readStart(fd: number, buf: Buffer): number {
  let done = 0;
  while (done < buf.length) {
    const n = fs.readSync(fd, buf, done, buf.length - done, done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

const FORMATS: ReadonlySet<string> = new Set<ModuleFormat>(['commonjs', 'module']);
const COUNT = /^(?:0|[1-9]\d{0,9})$/;

/** An entry's header line, checked. */
interface EntryHeader {
  readonly key: string;
  readonly hash: string;
  readonly format: ModuleFormat;
  readonly functionCount: number;
  readonly identityLength: number;
  readonly metaLength: number;
  readonly codeLength: number;
  readonly encoding: 'latin1' | 'utf8';
  /** Bytes of the line, with its newline. */
  readonly headerLength: number;
}

/** The header line of the entry at `at` in `buf`; null when malformed or of another schema. */
function parseHeader(buf: Buffer, at: number): EntryHeader | null {
  const eol = buf.subarray(at, at + MAX_HEADER).indexOf(10);
  if (eol === -1) return null;
  const f = buf.toString('latin1', at, at + eol).split(' ');
  if (f.length !== 10 || f[0] !== MAGIC || f[1] !== String(CACHE_SCHEMA)) return null;
  const [, , key, hash, format, count, idLength, metaLength, codeLength, encoding] = f;
  if (!HEX64.test(key) || !HEX64.test(hash) || !FORMATS.has(format)) return null;
  for (const n of [count, idLength, metaLength, codeLength]) if (!COUNT.test(n)) return null;
  if (encoding !== 'latin1' && encoding !== 'utf8') return null;
  if (Number(idLength) > MAX_IDENTITY) return null;
  return {
    key,
    hash,
    format: format as ModuleFormat,
    functionCount: Number(count),
    identityLength: Number(idLength),
    metaLength: Number(metaLength),
    codeLength: Number(codeLength),
    encoding,
    headerLength: eol + 1,
  };
}

function readEntry(fd: number, key: string, identity: string): CachedEntry | null {
  scratch ??= Buffer.allocUnsafeSlow(SMALL_ENTRY);
  const start = readStart(fd, scratch);
  const whole = start < SMALL_ENTRY;
  const size = whole ? start : fs.fstatSync(fd).size;
  const h = parseHeader(scratch.subarray(0, start), 0);
  if (h === null || h.key !== key) return null;
  const idStart = h.headerLength;
  const metaStart = idStart + h.identityLength;
  const codeStart = metaStart + h.metaLength;
  if (codeStart + h.codeLength !== size || metaStart > start) return null;
  if (scratch.toString('utf8', idStart, metaStart) !== identity) return null;
  let meta: Buffer | null;
  let code: string;
  if (whole) {
    // Copies: the scratch buffer is read into again for the next entry.
    meta = Buffer.from(scratch.subarray(metaStart, codeStart));
    code = scratch.toString(h.encoding, codeStart, size);
  } else {
    meta = readAt(fd, h.metaLength, metaStart);
    const codeBytes = readAt(fd, h.codeLength, codeStart);
    if (!meta || !codeBytes) return null;
    code = codeBytes.toString(h.encoding);
  }
  const { functionCount } = h;
  const metaBytes = meta;
  return {
    format: h.format,
    code,
    hash: h.hash,
    functionCount,
    readMeta: () => decodeMeta(metaBytes, functionCount),
  };
}

function decodeMeta(bytes: Buffer, functionCount: number): CachedMeta {
  const raw = JSON.parse(zlib().inflateSync(bytes).toString('utf8')) as unknown;
  const meta = raw as Record<string, unknown> | null;
  if (
    !meta ||
    typeof meta !== 'object' ||
    !Array.isArray(meta.functions) ||
    meta.functions.length !== functionCount ||
    !Array.isArray(meta.refused) ||
    !Array.isArray(meta.moduleBindings) ||
    typeof meta.prefix !== 'string'
  ) {
    throw new Error('malformed metadata');
  }
  return meta as unknown as CachedMeta;
}

/** sha256 (hex) of a module's original source bytes: its identity for patches and the cache. */
export function contentHash(source: string | Uint8Array): string {
  // One-shot crypto.hash (Node 21.7+, so always here) skips the Hash object: measurably faster
  // per module.
  return crypto().hash('sha256', source, 'hex');
}
