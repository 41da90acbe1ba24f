/**
 * The function table: every instrumented module that has run, its functions and their slots.
 * The loader registers a module's metadata before Node evaluates it; the module's header then
 * calls `enter`, which creates (or, for a re-evaluation of the same source, reuses) its slots
 * and tells listeners — the patch core applies pending patches there, before any module code.
 *
 * A module's function list can be registered as a count plus a way to read the list: a warm start
 * then creates the slots from the count and reads the list only when something asks for the
 * module's functions (a listing, a lookup, a patch). typescript.js has 21,717 functions, and
 * decoding their records on every start cost more than the rest of its registration.
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { FunctionInfo, ModuleFormat, RefusedFunction } from '../instrument/types.ts';
import { parseSlotsUrl, RUNTIME_KEY } from './key.ts';
import { defineCell, Slot, type ScopeAccessor } from './slot.ts';

export interface ModuleMeta {
  readonly url: string;
  readonly filename: string;
  readonly format: ModuleFormat;
  /** sha256 (hex) of the original source bytes. */
  readonly hash: string;
  /** How many functions (slots) the module has; known without reading the function list. */
  readonly functionCount: number;
  /** Read on first use when the loader registered the module with a count (see ModuleDetails). */
  readonly functions: readonly FunctionInfo[];
  readonly refused: readonly RefusedFunction[];
  readonly moduleBindings: readonly string[];
}

/** What generated code receives from `enter`: its slots and where to register its accessor. */
export interface ModuleInstance {
  /** Slot `i` (created on first use: only async functions and generators read theirs). */
  s(i: number): Slot;
  b(accessor: ScopeAccessor): void;
}

/** The part of a module's metadata that can be read on first use. */
export interface ModuleDetails {
  readonly functions: readonly FunctionInfo[];
  readonly refused: readonly RefusedFunction[];
  readonly moduleBindings: readonly string[];
}

interface MetaBase {
  readonly url?: string;
  readonly filename: string;
  readonly format: ModuleFormat;
  readonly hash: string;
}

/**
 * What the loader registers: the lists themselves, or their count and a function that returns
 * them (called at most once, on first use; it may throw, and is then called again next time).
 */
export type RegisteredMeta =
  | (MetaBase & ModuleDetails)
  | (MetaBase & { readonly functionCount: number; readonly details: () => ModuleDetails });

/** Module metadata whose function lists are read on first use. */
class LazyModuleMeta implements ModuleMeta {
  readonly url: string;
  readonly filename: string;
  readonly format: ModuleFormat;
  readonly hash: string;
  readonly functionCount: number;
  #details: ModuleDetails | null;
  #read: (() => ModuleDetails) | null;
  #onRead: ((functions: readonly FunctionInfo[]) => void) | null = null;
  constructor(url: string, meta: RegisteredMeta) {
    this.url = url;
    this.filename = meta.filename;
    this.format = meta.format;
    this.hash = meta.hash;
    if ('details' in meta) {
      this.functionCount = meta.functionCount;
      this.#details = null;
      this.#read = meta.details;
    } else {
      this.functionCount = meta.functions.length;
      this.#details = {
        functions: meta.functions,
        refused: meta.refused,
        moduleBindings: meta.moduleBindings,
      };
      this.#read = null;
    }
  }
  /** The function list if it has been read; otherwise null, and `then` runs when it is. */
  functionsOr(then: (functions: readonly FunctionInfo[]) => void): readonly FunctionInfo[] | null {
    if (this.#details !== null) return this.#details.functions;
    this.#onRead = then;
    return null;
  }
  #get(): ModuleDetails {
    if (this.#details === null) {
      const details = this.#read!();
      if (details.functions.length !== this.functionCount) {
        // The generated code indexes slots 0..count-1: a list of another length cannot be theirs.
        throw new Error(
          `livepatch: the function list of ${this.url} has ${details.functions.length} entries, its code ${this.functionCount} slots; clear the transform cache and restart`,
        );
      }
      this.#details = details;
      this.#read = null;
      const onRead = this.#onRead;
      this.#onRead = null;
      onRead?.(details.functions);
    }
    return this.#details;
  }
  get functions(): readonly FunctionInfo[] {
    return this.#get().functions;
  }
  get refused(): readonly RefusedFunction[] {
    return this.#get().refused;
  }
  get moduleBindings(): readonly string[] {
    return this.#get().moduleBindings;
  }
}

/**
 * A slot's `info` until its module's function list is read; reading the list, by any means,
 * gives every slot its record. LoadedModule hands slots out (findFunction, slotsNamed) only after
 * reading the list, and the generated code never reads `info`: reading it earlier is a livepatch
 * bug, reported as such.
 */
const UNREAD_INFO: FunctionInfo = new Proxy({} as FunctionInfo, {
  get(_target, key) {
    throw new Error(
      `livepatch: internal error: a function's info (${String(key)}) was read before its module's function list`,
    );
  },
});

/** What the instrumenter's cell prefixes look like: identifier prefix, digest, `_`. */
const CELLS = /^\$lp\d*_[0-9a-f]{12}_$/;

export class LoadedModule implements ModuleInstance {
  readonly meta: ModuleMeta;
  /**
   * Slots created so far, by index. A slot is made when something asks for it: the header of an
   * async function or generator (which counts its frames there), a lookup, a listing, a patch.
   * Creating all of them at start cost eslint 340 KB of heap for 4,733 functions that nothing
   * patches, and heap size decides when V8 starts marking (docs/architecture.md).
   */
  readonly #slots: (Slot | undefined)[] = [];
  /** The function records, once read (null until then: slots get UNREAD_INFO). */
  #functions: readonly FunctionInfo[] | null;
  /** Module-level accessor of the latest evaluation. */
  accessor: ScopeAccessor | null = null;
  /** How many times the module's code has been evaluated (CommonJS cache deletion re-runs it). */
  evaluations = 0;
  /** False once a newer evaluation with different source took this URL over. */
  current = true;
  /** Slots by name; built with the slots' records, on first lookup. */
  private byNameMap: Map<string, Slot[]> | null = null;
  /** Positions of the top-level bindings in the module accessor; built on first use. */
  private bindingIndexMap: Map<string, number> | null = null;
  /** Global name prefix of the module's gate cells (cell `i` is this prefix and `i`). */
  readonly cells: string;
  constructor(meta: ModuleMeta, cells: string) {
    this.meta = meta;
    this.cells = cells;
    this.#functions =
      meta instanceof LazyModuleMeta
        ? meta.functionsOr((functions) => {
            this.#functions = functions;
            for (const slot of this.#slots)
              if (slot !== undefined)
                (slot as { info: FunctionInfo }).info = functions[slot.index]!;
          })
        : meta.functions;
    for (let i = 0; i < meta.functionCount; i++) defineCell(`${cells}${i}`, null);
  }
  s(i: number): Slot {
    let slot = this.#slots[i];
    if (slot === undefined) {
      if (!(Number.isInteger(i) && i >= 0 && i < this.meta.functionCount))
        throw new RangeError(
          `livepatch: ${this.url} has no function slot ${i} (it has ${this.meta.functionCount}); clear the transform cache and restart`,
        );
      const info = this.#functions !== null ? this.#functions[i]! : UNREAD_INFO;
      slot = new Slot(this, info, i, `${this.cells}${i}`);
      this.#slots[i] = slot;
    }
    return slot;
  }
  /** Every slot of the module, in index order (creates those not made yet). */
  allSlots(): Slot[] {
    return Array.from({ length: this.meta.functionCount }, (_, i) => this.s(i));
  }
  /** Reads the function list (on first use; the slots get their records then). */
  private get byName(): Map<string, Slot[]> {
    if (this.byNameMap === null) {
      void this.meta.functions; // reading it gives the slots their records (constructor)
      this.byNameMap = indexByName(this.allSlots());
    }
    return this.byNameMap;
  }
  b(accessor: ScopeAccessor): void {
    this.accessor = accessor;
  }
  /** Index of a top-level binding in the module accessor, or -1. */
  bindingIndex(name: string): number {
    this.bindingIndexMap ??= new Map(this.meta.moduleBindings.map((n, i) => [n, i]));
    return this.bindingIndexMap.get(name) ?? -1;
  }
  get url(): string {
    return this.meta.url;
  }
  /** Path relative to the app root when inside it, else the absolute path. */
  get displayName(): string {
    return displayPath(this.meta.filename);
  }
  slotsNamed(name: string): readonly Slot[] {
    return this.byName.get(name) ?? [];
  }
  /** Finds one function by qualified name and position; errors name the fix. */
  findFunction(name: string, pos?: number): Slot {
    const parsed = parseFunctionName(name, pos);
    const candidates = this.slotsNamed(parsed.name);
    const refused = this.meta.refused.find((r) => r.name === parsed.name);
    if (candidates.length === 0) {
      if (refused !== undefined) {
        throw new LookupError(
          `function '${parsed.name}' in ${this.displayName} (line ${refused.line}) is not patchable: ${refused.reason}`,
          'ENOTPATCHABLE',
        );
      }
      throw new LookupError(
        `no function '${parsed.name}' in ${this.displayName}${suggest(parsed.name, [...this.byName.keys()])}. ` +
          `List the module's functions with listFunctions('${this.displayName}').`,
        'ENOFUNCTION',
      );
    }
    if (parsed.pos === 0) {
      if (candidates.length === 1) return candidates[0]!;
      const where = candidates
        .map((c) => `${parsed.name},${c.info.pos} (line ${c.info.line})`)
        .join(', ');
      throw new LookupError(
        `'${parsed.name}' is ambiguous in ${this.displayName}: ${candidates.length} functions have that name; name one with its position: ${where}`,
        'EAMBIGUOUS',
      );
    }
    const found = candidates.find((c) => c.info.pos === parsed.pos);
    if (found === undefined) {
      throw new LookupError(
        `'${parsed.name}' has no position ${parsed.pos} in ${this.displayName}: positions are ${candidates.length > 1 ? `1 to ${candidates.length}` : 'not used for a unique name (omit it)'}`,
        'ENOFUNCTION',
      );
    }
    return found;
  }
}

function indexByName(slots: readonly Slot[]): Map<string, Slot[]> {
  const byName = new Map<string, Slot[]>();
  for (const slot of slots) {
    const list = byName.get(slot.info.name);
    if (list === undefined) byName.set(slot.info.name, [slot]);
    else list.push(slot);
  }
  return byName;
}

export class LookupError extends Error {
  readonly code: string;
  constructor(message: string, code: string) {
    super(message);
    this.name = 'LookupError';
    this.code = code;
  }
}

/** `name,3` → { name, pos: 3 }; an explicit `pos` argument wins. */
export function parseFunctionName(name: string, pos?: number): { name: string; pos: number } {
  if (typeof name !== 'string' || name.length === 0) {
    throw new TypeError(
      `function name must be a non-empty string such as 'Pool#query' or 'createServer>onRequest', got ${describe(name)}`,
    );
  }
  const m = /^(.*),(\d+)$/.exec(name);
  if (pos !== undefined) {
    if (!Number.isInteger(pos) || pos < 0)
      throw new TypeError(`position must be a positive integer (1-based), got ${describe(pos)}`);
    return { name: m !== null ? m[1]! : name, pos };
  }
  return m !== null ? { name: m[1]!, pos: Number(m[2]) } : { name, pos: 0 };
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function suggest(name: string, names: string[]): string {
  const last = name.split(/[>#.]/).pop() ?? name;
  const close = names
    .filter((n) => n !== name && (n.endsWith(last) || n.includes(`${last}`)))
    .slice(0, 5);
  return close.length > 0 ? ` (did you mean ${close.map((c) => `'${c}'`).join(', ')}?)` : '';
}

let appRoot = process.cwd();

/** The directory app-relative module names are resolved against (default: the working directory). */
export function setAppRoot(dir: string): void {
  appRoot = path.resolve(dir);
}
export function getAppRoot(): string {
  return appRoot;
}

function displayPath(filename: string): string {
  const rel = path.relative(appRoot, filename);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel)
    ? rel.split(path.sep).join('/')
    : filename;
}

export type ModuleListener = (mod: LoadedModule) => void;

class FunctionTable {
  /** Metadata registered by the loader, waiting for the module's header to run. */
  private readonly pending = new Map<string, ModuleMeta>();
  /** The current module of each URL. */
  private readonly modules = new Map<string, LoadedModule>();
  private readonly listeners = new Set<ModuleListener>();
  /** Gate cell prefixes in use, and the module URL that holds each. */
  private readonly cellOwners = new Map<string, string>();

  register(meta: ModuleMeta): void {
    this.pending.set(meta.url, meta);
  }

  /**
   * Called by generated code when a module starts evaluating, with the prefix of its gate cells
   * (chosen by the instrumenter, see cellPrefix in src/instrument/transform.ts).
   */
  enter(url: string, cells: string): LoadedModule {
    const meta = this.pending.get(url);
    const existing = this.modules.get(url);
    if (meta === undefined) {
      if (existing !== undefined) {
        existing.evaluations++;
        return existing;
      }
      throw new Error(
        `livepatch: instrumented module ${url} started without its metadata; it was transformed by another livepatch runtime or its cache entry is stale. Clear the transform cache (LIVEPATCH_CACHE_DIR) and restart.`,
      );
    }
    if (existing !== undefined && existing.meta.hash === meta.hash) {
      // Same source evaluated again (CommonJS cache deletion): old and new closures share slots
      // and gate cells, so a patch covers both.
      this.pending.delete(url);
      existing.evaluations++;
      return existing;
    }
    // Checked before anything changes: the module fails to start and the table is as it was.
    if (typeof cells !== 'string' || !CELLS.test(cells))
      throw new Error(
        `livepatch: instrumented module ${url} names no valid gate cells (${String(cells)}); it was transformed by another livepatch version. Clear the transform cache (LIVEPATCH_CACHE_DIR) and restart.`,
      );
    const holder = this.cellOwners.get(cells);
    if (holder !== undefined)
      throw new Error(
        `livepatch: the gate cells of ${url} (${cells}) are already those of ${holder}: two modules' digests collide. Report this; renaming either file avoids it.`,
      );
    this.pending.delete(url);
    this.cellOwners.set(cells, url);
    if (existing !== undefined) existing.current = false;
    const mod = new LoadedModule(meta, cells);
    mod.evaluations = 1;
    this.modules.set(url, mod);
    for (const listener of this.listeners) listener(mod);
    return mod;
  }

  /**
   * Source for the virtual module that gives an ES module its module record and the slots it
   * imports (`slotsUrl` from slotsUrlFor; see SLOTS_SPECIFIER).
   */
  slotsModuleSource(slotsUrl: string): string {
    const { parentUrl, cells, slots: wanted } = parseSlotsUrl(slotsUrl);
    const meta = this.pending.get(parentUrl) ?? this.modules.get(parentUrl)?.meta;
    if (meta === undefined)
      throw new Error(`livepatch: no instrumented module ${parentUrl} is being loaded`);
    const slots = wanted
      .filter((i) => Number.isInteger(i) && i >= 0 && i < meta.functionCount)
      .map((i) => `s${i}=m.s(${i})`)
      .join(',');
    return (
      `const m=globalThis[Symbol.for(${JSON.stringify(RUNTIME_KEY)})].enter(${JSON.stringify(parentUrl)},${JSON.stringify(cells)});` +
      (slots.length > 0 ? `export const ${slots};` : '') +
      'export{m};'
    );
  }

  onModule(listener: ModuleListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  all(): LoadedModule[] {
    return [...this.modules.values()];
  }

  byUrl(url: string): LoadedModule | undefined {
    return this.modules.get(url);
  }

  /**
   * Finds a loaded module by file URL, absolute path, app-relative path, or package subpath
   * (`pkg/lib/x.js`, matched under any node_modules); errors name the fix.
   */
  find(spec: string): LoadedModule {
    const found = this.match(spec);
    if (found.length === 1) return found[0]!;
    if (found.length > 1) {
      throw new LookupError(
        `'${spec}' matches ${found.length} loaded modules: ${found.map((m) => m.meta.filename).join(', ')}; name one by absolute path`,
        'EAMBIGUOUS',
      );
    }
    throw new LookupError(
      `no instrumented module '${spec}' is loaded${suggest(
        path.basename(spec),
        this.all().map((m) => m.displayName),
      )}. ` +
        `Name it by path relative to the app root (${appRoot}), absolute path, file URL or package subpath; ` +
        `modules excluded from instrumentation cannot be patched.`,
      'ENOMODULE',
    );
  }

  /** Every loaded module the spec names (empty when none). */
  match(spec: string): LoadedModule[] {
    if (typeof spec !== 'string' || spec.length === 0) {
      throw new TypeError(
        `module must be a non-empty string (an app-relative path such as 'src/pool.ts'), got ${describe(spec)}`,
      );
    }
    const byUrl = this.modules.get(spec);
    if (byUrl !== undefined) return [byUrl];
    let file: string | null = null;
    if (spec.startsWith('file:')) file = fileURLToPath(spec);
    else if (path.isAbsolute(spec)) file = path.normalize(spec);
    if (file !== null) {
      const mod = this.modules.get(pathToFileURL(file).href);
      return mod !== undefined ? [mod] : [];
    }
    const rel = spec.replace(/^\.\//, '');
    const local = this.modules.get(pathToFileURL(path.resolve(appRoot, rel)).href);
    if (local !== undefined) return [local];
    const suffix = `${path.sep}node_modules${path.sep}${rel.split('/').join(path.sep)}`;
    return this.all().filter((m) => m.meta.filename.endsWith(suffix));
  }
}

export const table = new FunctionTable();

/** Loader entry: metadata of a module about to be evaluated. */
export function registerModule(url: string, meta: RegisteredMeta): void {
  table.register(new LazyModuleMeta(url, meta));
}

export function slotsModuleSource(slotsUrl: string): string {
  return table.slotsModuleSource(slotsUrl);
}
