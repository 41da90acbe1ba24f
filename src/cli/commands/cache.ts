/**
 * `livepatch cache [info|clear]`: where the transform cache of an app is, how big it is, and
 * emptying it (its entries and maps, its index of source files, leftover temporary files and
 * Node's compile cache beside them).
 */
import fs from 'node:fs';
import path from 'node:path';

import { resolveLoaderOptions } from '../../loader/options.ts';
import { UsageError, parseOptions, type Command } from '../command.ts';

const HELP = `Usage: livepatch cache [info|clear] [options]

Show (info, the default) or empty (clear) the transform cache of an app.

Options:
  --root <dir>        App root (default: the package of the working directory)
  --cache-dir <dir>   Cache directory (default: LIVEPATCH_CACHE_DIR, else
                      <root>/node_modules/.cache/livepatch)
  --json              Print the result as JSON
  -h, --help          Show this help`;

const OPTIONS = {
  root: { type: 'string' },
  'cache-dir': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface CacheInfo {
  dir: string;
  exists: boolean;
  entries: number;
  bytes: number;
}

export function cacheInfo(dir: string): CacheInfo {
  let entries = 0;
  let bytes = 0;
  let exists = false;
  try {
    for (const name of fs.readdirSync(dir)) {
      exists = true;
      if (name.endsWith('.entry')) entries++;
      else if (!name.endsWith('.map') && !name.endsWith('.idx')) continue;
      bytes += fs.statSync(path.join(dir, name)).size;
    }
    exists = true;
  } catch {
    // no directory: an empty cache
  }
  return { dir, exists, entries, bytes };
}

export const cacheCommand: Command = {
  name: 'cache',
  summary: 'show or clear the transform cache',
  help: HELP,
  async run(argv, io) {
    const { values, positionals } = parseOptions('cache', argv, OPTIONS, true);
    if (values.help) {
      io.stdout(`${HELP}\n`);
      return 0;
    }
    const action = positionals[0] ?? 'info';
    if (positionals.length > 1 || (action !== 'info' && action !== 'clear')) {
      throw new UsageError(
        `livepatch cache: unknown action '${positionals.join(' ')}'`,
        "Actions: 'info' (default) and 'clear'.",
      );
    }
    const resolved = resolveLoaderOptions(
      {
        ...(typeof values.root === 'string' ? { root: path.resolve(io.cwd, values.root) } : {}),
        ...(typeof values['cache-dir'] === 'string'
          ? { cacheDir: path.resolve(io.cwd, values['cache-dir']), cache: true }
          : { cache: true }),
      },
      { env: io.env, mainScript: null, cwd: io.cwd },
    );
    const dir = resolved.cacheDir!;
    if (action === 'info') {
      const info = cacheInfo(dir);
      if (values.json) io.stdout(`${JSON.stringify(info)}\n`);
      else {
        io.stdout(
          `${info.dir}\n${info.exists ? `${info.entries} entries, ${formatBytes(info.bytes)}` : 'empty (no directory)'}\n`,
        );
      }
      return 0;
    }
    let removed = 0;
    try {
      for (const name of fs.readdirSync(dir)) {
        if (/\.(?:entry|map|idx|tmp)$/.test(name)) {
          fs.rmSync(path.join(dir, name), { force: true });
          if (name.endsWith('.entry')) removed++;
        }
      }
      fs.rmSync(path.join(dir, 'v8'), { recursive: true, force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (values.json) io.stdout(`${JSON.stringify({ dir, removed })}\n`);
    else io.stdout(`removed ${removed} entries from ${dir}\n`);
    return 0;
  },
};

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
