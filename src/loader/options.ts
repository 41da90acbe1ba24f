/**
 * Loader settings: programmatic options layered over the environment (LIVEPATCH_* variables),
 * resolved once when the loader is installed.
 */
import path from 'node:path';

import {
  createModuleFilter,
  parsePatternList,
  type FilterRule,
  type ModuleFilter,
} from './filter.ts';
import { fs } from './builtins.ts';

export interface LoaderOptions {
  /**
   * The application's root directory: included by default, anchors relative patterns and holds
   * the default cache. Default: LIVEPATCH_ROOT, else the package of the main script, else the
   * package of the working directory, else the working directory.
   */
  readonly root?: string;
  /** Replaces the default include rules (the app root and node_modules). Env: LIVEPATCH_INCLUDE. */
  readonly include?: readonly FilterRule[];
  /** Added to LIVEPATCH_EXCLUDE and to livepatch's own files, which are always excluded. */
  readonly exclude?: readonly FilterRule[];
  /** Use the on-disk transform cache (default true; LIVEPATCH_CACHE=0 turns it off). */
  readonly cache?: boolean;
  /** Cache directory. Default: LIVEPATCH_CACHE_DIR, else `<root>/node_modules/.cache/livepatch`. */
  readonly cacheDir?: string;
  /**
   * Serve unchanged files from the cache without reading or hashing them, trusting their stats
   * (device, inode, size, mtime, ctime); default true, LIVEPATCH_CACHE_INDEX=0 turns it off.
   */
  readonly cacheIndex?: boolean;
  /**
   * Source maps, and Node applying them to stack traces (env LIVEPATCH_SOURCE_MAPS):
   * - 'app' / true (default): every instrumented file gets a map (debuggers read it); Node maps
   *   stack frames of files outside node_modules, as its own `setSourceMapsSupport(true)` does.
   *   Frames in dependencies keep their line (the instrumenter adds no lines) and show columns
   *   of the instrumented code;
   * - 'all': Node maps frames in node_modules too, also through the maps dependencies ship
   *   (compiled packages' own sources), as `--enable-source-maps` would; a slower start;
   * - false / '0': no maps.
   */
  readonly sourceMaps?: boolean | 'app' | 'all';
  /** Turn on Node's compile cache (V8 code cache) next to ours (default: with the cache). */
  readonly compileCache?: boolean;
}

export interface ResolvedLoaderOptions {
  readonly root: string;
  readonly filter: ModuleFilter;
  /** null when the transform cache is off. */
  readonly cacheDir: string | null;
  /** Whether the cache's index may serve unchanged files before Node reads them. */
  readonly cacheIndex: boolean;
  /** How long ago (ms) a file must have changed for the index to record it. */
  readonly cacheIndexSettleMs: number;
  readonly sourceMaps: boolean;
  /** Whether Node maps stack frames of files under node_modules too. */
  readonly sourceMapsInNodeModules: boolean;
  /** Whether the maps files under node_modules carry themselves are composed in. */
  readonly composeNodeModulesMaps: boolean;
  readonly compileCache: boolean;
}

/** Where the defaults come from; the running process unless told otherwise (tests, the CLI). */
export interface OptionsContext {
  readonly env: Record<string, string | undefined>;
  /** The program's main script, or null when there is none to take the root from. */
  readonly mainScript: string | null;
  readonly cwd: string;
}

export function resolveLoaderOptions(
  options: LoaderOptions = {},
  context: OptionsContext = {
    env: process.env,
    mainScript: process.argv[1] ?? null,
    cwd: process.cwd(),
  },
): ResolvedLoaderOptions {
  const { env, mainScript, cwd } = context;
  // Module URLs are real paths: a root reached through a symlink must be resolved the same way,
  // or no module would be found under it.
  const root = realpathOr(
    path.resolve(options.root ?? nonEmpty(env.LIVEPATCH_ROOT) ?? defaultRoot(mainScript, cwd)),
  );
  const include = options.include ?? parsePatternList(env.LIVEPATCH_INCLUDE);
  const exclude = [...(parsePatternList(env.LIVEPATCH_EXCLUDE) ?? []), ...(options.exclude ?? [])];
  const cacheOn = options.cache ?? !isOff(env.LIVEPATCH_CACHE);
  const cacheDir = cacheOn
    ? path.resolve(
        root,
        options.cacheDir ??
          nonEmpty(env.LIVEPATCH_CACHE_DIR) ??
          path.join(root, 'node_modules', '.cache', 'livepatch'),
      )
    : null;
  const envMaps = env.LIVEPATCH_SOURCE_MAPS?.trim();
  const maps = options.sourceMaps ?? (isOff(envMaps) ? false : envMaps === 'all' ? 'all' : 'app');
  const settle = Number(nonEmpty(env.LIVEPATCH_CACHE_INDEX_SETTLE_MS) ?? NaN);
  return {
    root,
    filter: createModuleFilter({ root, include, exclude }),
    cacheDir,
    cacheIndex: cacheDir !== null && (options.cacheIndex ?? !isOff(env.LIVEPATCH_CACHE_INDEX)),
    cacheIndexSettleMs: Number.isFinite(settle) && settle >= 0 ? settle : 2000,
    sourceMaps: maps !== false,
    sourceMapsInNodeModules: maps === 'all',
    composeNodeModulesMaps: maps === 'all',
    compileCache: (options.compileCache ?? true) && cacheDir !== null,
  };
}

function defaultRoot(mainScript: string | null, cwd: string): string {
  if (
    mainScript &&
    path.isAbsolute(mainScript) &&
    !mainScript.split(/[\\/]/).includes('node_modules')
  ) {
    const pkg = packageRoot(path.dirname(mainScript));
    if (pkg) return pkg;
  }
  return packageRoot(cwd) ?? cwd;
}

function packageRoot(start: string): string | null {
  let dir = start;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

function isOff(value: string | undefined): boolean {
  return value !== undefined && /^(?:0|false|off|no)$/i.test(value.trim());
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

function realpathOr(dir: string): string {
  try {
    return fs.realpathSync(dir);
  } catch {
    return dir;
  }
}
