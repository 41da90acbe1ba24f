/**
 * Shared by the transform cache tests (cache.test.ts, cache-pack.test.ts): temporary
 * directories removed when the test file ends, and a cache that cannot be written.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';

import { TransformCache } from '../../src/loader/cache.ts';

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
