/**
 * Node's builtins as the loader uses them, through `process.getBuiltinModule` rather than
 * `import`: an ES module import of a builtin makes Node build its ES module facade, which for
 * node:fs reads every export and so loads fs/promises and the streams (≈2 ms of every start,
 * which a CommonJS app never pays). crypto and zlib are loaded on first use: a warm start, where
 * every module comes from the cache's index, needs neither (≈3 ms together).
 */
import type * as Crypto from 'node:crypto';
import type * as Zlib from 'node:zlib';

export const fs = process.getBuiltinModule('node:fs');

let cryptoModule: typeof Crypto | undefined;
export function crypto(): typeof Crypto {
  return (cryptoModule ??= process.getBuiltinModule('node:crypto'));
}

let zlibModule: typeof Zlib | undefined;
export function zlib(): typeof Zlib {
  return (zlibModule ??= process.getBuiltinModule('node:zlib'));
}

/**
 * A 64-bit hash (hex) of a short string, for names that need no resistance to collisions made
 * on purpose; computed in JavaScript, so it needs no crypto.
 */
export function quickHash(text: string): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x2545f491;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 0x85ebca6b);
  h2 = Math.imul(h2 ^ (h2 >>> 13), 0xc2b2ae35);
  return (h1 >>> 0).toString(16).padStart(8, '0') + (h2 >>> 0).toString(16).padStart(8, '0');
}
