/**
 * Builds the package's `dist/`: the JavaScript with rolldown, the type declarations with tsc.
 *
 * Why a bundler: `node --import livepatch/register` loads the loader before the app, and as one
 * ES module per source file that was 18 modules, each resolved, stat'ed, compiled and linked on
 * every start: an empty program started 13–14 ms later than under plain Node, 7 ms later once
 * bundled (30 interleaved runs on the development VM; docs/architecture.md, "Loader: the warm
 * start").
 *
 * The entries are the package's public entries plus every module the code loads lazily by path
 * (`createRequire(import.meta.url)('../instrument/transform.js')`, …): those stay files of their
 * own at their source path. Every module that two entries share goes into one chunk,
 * `dist/chunks/livepatch-<hash>.js`, so a start loads `loader/register.js` and that chunk, and
 * singletons (the function table, the loader, the transition) exist once however the package is
 * reached. Every file that reads `import.meta.url` therefore sits one directory below the code
 * root, in `src/` as in `dist/` (test/build.test.ts runs the built package). Dependencies are not
 * bundled: they are the package's `dependencies`.
 *
 *   node scripts/build.ts [--outdir DIR] [--no-types] [--entry NAME=FILE]
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build as rolldown } from 'rolldown';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SRC = path.join(REPO, 'src') + path.sep;

/** Output name (without `.js`) → source: public entries, then the modules loaded by path. */
export const ENTRIES: Readonly<Record<string, string>> = {
  index: 'src/index.ts',
  'loader/register': 'src/loader/register.ts',
  'cli/main': 'src/cli/main.ts',
  'instrument/transform': 'src/instrument/transform.ts',
  'loader/typescript': 'src/loader/typescript.ts',
  'loader/sourcemap': 'src/loader/sourcemap.ts',
};

export interface BuildOptions {
  /** Output directory (default `dist` in the repository). */
  readonly outdir?: string;
  /** Also emit `.d.ts` declarations with tsc (default true). */
  readonly types?: boolean;
  /** More entries (output name → file), for tools built beside the package (benchmarks). */
  readonly extraEntries?: Readonly<Record<string, string>>;
}

/** Builds the JavaScript (and declarations) into a fresh directory; returns its path. */
export async function build(opts: BuildOptions = {}): Promise<string> {
  const outdir = path.resolve(REPO, opts.outdir ?? 'dist');
  fs.rmSync(outdir, { recursive: true, force: true });
  await rolldown({
    cwd: REPO,
    input: Object.fromEntries(
      Object.entries({ ...ENTRIES, ...opts.extraEntries }).map(([name, file]) => [
        name,
        path.resolve(REPO, file),
      ]),
    ),
    platform: 'node',
    // Builtins and the package's dependencies stay imports.
    external: [/^node:/, /^[^./]/],
    logLevel: 'warn',
    output: {
      dir: outdir,
      format: 'esm',
      entryFileNames: '[name].js',
      chunkFileNames: 'chunks/[name]-[hash].js',
      sourcemap: true,
      codeSplitting: {
        groups: [{ name: 'livepatch', test: (id) => id.startsWith(SRC), minShareCount: 2 }],
      },
    },
  });
  if (opts.types !== false) {
    const tsc = path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = spawnSync(
      process.execPath,
      [tsc, '-p', 'tsconfig.json', '--emitDeclarationOnly', '--outDir', outdir],
      { cwd: REPO, encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(`tsc (declarations) failed:\n${r.stdout}${r.stderr}`);
  }
  return outdir;
}

if (
  process.argv[1] !== undefined &&
  path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)
) {
  const { values } = parseArgs({
    options: {
      outdir: { type: 'string' },
      'no-types': { type: 'boolean', default: false },
      entry: { type: 'string', multiple: true, default: [] },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(`Usage: node scripts/build.ts [--outdir DIR] [--no-types] [--entry NAME=FILE]

Builds dist/ (or DIR): the JavaScript bundled with rolldown, declarations with tsc.
  --outdir DIR   write there instead of dist/ (emptied first)
  --no-types     skip the .d.ts declarations
  --entry N=FILE one more entry, FILE built to N.js (repeatable; for tools such as the benchmarks)`);
    process.exit(0);
  }
  const extraEntries: Record<string, string> = {};
  for (const e of values.entry) {
    const eq = e.indexOf('=');
    if (eq <= 0)
      throw new Error(
        `--entry ${e}: expected NAME=FILE, such as bench-internals=bench/lib/internals.ts`,
      );
    extraEntries[e.slice(0, eq)] = e.slice(eq + 1);
  }
  const out = await build({ outdir: values.outdir, types: !values['no-types'], extraEntries });
  console.log(`built ${out}`);
}
