/**
 * Shared by the transform cache tests (cache.test.ts, cache-pack.test.ts): temporary
 * directories removed when the test file ends, a cache that cannot be written, a function
 * record for the entries they store, and a program run under the loader that reports what it got.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';

import type { FunctionInfo } from '../../src/instrument/types.ts';
import { TransformCache, type CacheStats } from '../../src/loader/cache.ts';
import type { LoaderStats } from '../../src/loader/pipeline.ts';
import { repoRoot, runNode } from './node.ts';

const made: string[] = [];
after(() => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh directory, removed when the file's tests end. */
export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `livepatch-${prefix}-`));
  made.push(dir);
  return dir;
}

/** A cache whose directory cannot be created (a file is in the way), and its error reports. */
export function unwritableCache(dir: string): { cache: TransformCache; errors: unknown[] } {
  const blocker = path.join(dir, 'not-a-dir');
  fs.writeFileSync(blocker, '');
  const errors: unknown[] = [];
  return { cache: new TransformCache(path.join(blocker, 'cache'), (e) => errors.push(e)), errors };
}

/** A function record as the instrumenter writes it: `function f` at the top of line 1. */
export const fn: FunctionInfo = {
  index: 0,
  name: 'f',
  pos: 0,
  kind: 'function',
  async: false,
  generator: false,
  line: 1,
  column: 0,
  scope: [],
  privates: [],
  superAccess: false,
  tracked: false,
};

/** What an app made by a cache test prints: its values, its modules' functions, loader stats. */
export interface AppReport {
  values: unknown[];
  functions: Record<string, { functions: string[] }>;
  stats: Pick<LoaderStats, 'modules' | 'instrumented' | 'cached'> & { cache: CacheStats };
}

export const register = path.join(repoRoot, 'src', 'loader', 'register.ts');

/**
 * The environment of a program under test: `cacheDir` as its cache and none of the developer's
 * settings; the index trusts files at once (fixtures may have been checked out a moment ago).
 */
export function cacheEnv(cacheDir: string): Record<string, string | undefined> {
  return {
    LIVEPATCH_CACHE_DIR: cacheDir,
    LIVEPATCH_CACHE: undefined,
    LIVEPATCH_INCLUDE: undefined,
    LIVEPATCH_EXCLUDE: undefined,
    LIVEPATCH_CACHE_INDEX: undefined,
    LIVEPATCH_CACHE_INDEX_SETTLE_MS: '0',
  };
}

/** Runs `app/main.mjs` under the loader with `cacheDir` as its cache (no ambient settings). */
export async function runApp(
  app: string,
  cacheDir: string,
  env: Record<string, string | undefined> = {},
  preload: string[] = [],
): Promise<AppReport> {
  const result = await runNode(
    [...preload.flatMap((p) => ['--import', p]), '--import', register, path.join(app, 'main.mjs')],
    {
      env: { ...cacheEnv(cacheDir), ...env },
    },
  );
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, '');
  return JSON.parse(result.stdout.trim().split('\n').pop()!) as AppReport;
}

/**
 * After one module's function list was damaged in the cache: the next start serves the code as
 * it is and rebuilds the list once when asked for it; the start after that finds it whole.
 * Returns that last start's report.
 */
export async function assertListRebuiltThenHealed(
  app: string,
  cacheDir: string,
  cold: AppReport,
): Promise<AppReport> {
  const damaged = await runApp(app, cacheDir);
  assert.deepEqual(damaged.values, cold.values, 'the code is served as it is');
  assert.deepEqual(damaged.functions, cold.functions);
  assert.equal(damaged.stats.instrumented, 1, 'rebuilt when the list was asked for');
  assert.equal(damaged.stats.cache.invalid, 1);

  const healed = await runApp(app, cacheDir);
  assert.deepEqual(healed.functions, cold.functions);
  assert.equal(healed.stats.instrumented, 0);
  assert.equal(healed.stats.cache.invalid, 0);
  return healed;
}
