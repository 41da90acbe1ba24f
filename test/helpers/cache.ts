/**
 * Shared by the transform cache tests (cache.test.ts, cache-pack.test.ts): temporary
 * directories removed when the test file ends, a cache that cannot be written, and a function
 * record for the entries they store.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';

import type { FunctionInfo } from '../../src/instrument/types.ts';
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
