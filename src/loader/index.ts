/**
 * The loader's public entry: `installLoader(options)` puts livepatch's module hooks in place so
 * every module loaded afterwards (`require` and `import`, JavaScript and TypeScript) is
 * instrumented. `livepatch/register` calls it for `node --import livepatch/register app.js`.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import type * as Instrumenter from '../instrument/transform.ts';
import { installRuntime } from '../runtime/global.ts';
import { registerModule, setAppRoot, slotsModuleSource } from '../runtime/table.ts';
import { fs, quickHash } from './builtins.ts';
import { createLoader, currentLoader, type Loader } from './install.ts';
import type { LoaderOptions } from './options.ts';
import type { LoaderBackend, LoaderStats } from './pipeline.ts';

export type { Loader, LoaderOptions, LoaderStats };
export type { FilterPredicate, FilterRule } from './filter.ts';

/** `.ts` when running from the sources, `.js` from dist: siblings are loaded in the same flavour. */
const EXT = path.extname(fileURLToPath(import.meta.url));

// The instrumenter (and its parser) is loaded on the first cache miss: a warm start, where every
// module comes from the transform cache, never parses anything and never loads it.
let instrumenter: typeof Instrumenter | undefined;
function loadInstrumenter(): typeof Instrumenter {
  return (instrumenter ??= createRequire(import.meta.url)(
    `../instrument/transform${EXT}`,
  ) as typeof Instrumenter);
}

/**
 * What the generated code depends on, for the cache key: the instrumenter's and the runtime's
 * files, by name, size and modification time, so that a change nobody versioned (TRANSFORM_VERSION)
 * still invalidates the cache. Their stats rather than their contents: reading and hashing them
 * cost every start a millisecond and loading crypto, which a warm start otherwise does without.
 * An edit changes the modification time (a rebuild, a checkout, an install of another version).
 */
function codeFingerprint(): string {
  let stamp = '';
  // In dist the runtime is bundled (scripts/build.ts): its code and whatever the instrumenter
  // shares with it are in chunks/. A directory that is not there is skipped.
  for (const dir of ['instrument', 'runtime', 'chunks']) {
    const dirPath = fileURLToPath(new URL(`../${dir}/`, import.meta.url));
    let names: string[];
    try {
      names = fs
        .readdirSync(dirPath)
        .filter((n) => n.endsWith(EXT) && !n.endsWith(`.d${EXT}`))
        .sort();
    } catch {
      names = [];
    }
    for (const name of names) {
      const st = fs.statSync(path.join(dirPath, name), { bigint: true });
      stamp += `${dir}/${name}:${st.size}:${st.mtimeNs}\n`;
    }
  }
  return quickHash(stamp);
}

/** The real instrumenter and runtime. */
export const livepatchBackend: LoaderBackend = {
  instrument: (source, opts) => loadInstrumenter().instrument(source, opts),
  isSyntaxError: (error) =>
    instrumenter !== undefined && error instanceof instrumenter.InstrumentSyntaxError,
  registerModule(url, meta) {
    registerModule(url, {
      filename: meta.filename,
      format: meta.format,
      hash: meta.hash,
      functionCount: meta.functionCount,
      details: meta.details,
    });
  },
  slotsModuleSource,
  version: codeFingerprint(),
};

/**
 * Install the runtime and the module hooks. Idempotent: a second call (or one from another copy
 * of livepatch) returns the loader already installed, whose options stay as they were.
 */
export function installLoader(options: LoaderOptions = {}): Loader {
  installRuntime();
  const already = currentLoader();
  const loader = createLoader(livepatchBackend, options);
  // Module names in listings and patches are relative to the same root the loader includes.
  if (!already) setAppRoot(loader.options.root);
  return loader;
}

/** The installed loader's counters, or null when no loader is installed. */
export function loaderStats(): LoaderStats | null {
  return currentLoader()?.stats ?? null;
}

export { currentLoader };
