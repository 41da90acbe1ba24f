/**
 * The transform cache: a warm start does not instrument at all, damaged entries are misses,
 * several processes filling one cache at once all succeed, writes are atomic and failures to
 * write never fail a load.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';

import type { FunctionInfo, SourceMapV3 } from '../src/instrument/types.ts';
import {
  SourceIndex,
  TransformCache,
  contentHash,
  type CachedMeta,
  type CacheEntry,
  type CacheStats,
  type FileStamp,
  type SourceRecord,
} from '../src/loader/cache.ts';
import type { LoaderStats } from '../src/loader/pipeline.ts';
import { slotsSpecifier, slotsUrlFor } from '../src/runtime/key.ts';
import { registerModule, slotsModuleSource, table } from '../src/runtime/table.ts';
import {
  assertListRebuiltThenHealed,
  cacheEnv,
  fn,
  register,
  runApp,
  tempDir,
  unwritableCache,
} from './helpers/cache.ts';
import { fixture, runNode, type RunNodeResult } from './helpers/node.ts';

const entry: CacheEntry = {
  format: 'commonjs',
  code: 'function f() { return "é\\n"; }\nmodule.exports = f;',
  meta: { functions: [fn], refused: [], moduleBindings: ['f'], prefix: '$lp_' },
};
const map: SourceMapV3 = { version: 3, sources: ['file:///app/f.js'], names: [], mappings: 'AAAA' };

/** What `get` returns, with the metadata decoded, for comparisons. */
function readBack(
  cache: TransformCache,
  key: string,
  identity: string,
): Record<string, unknown> | null {
  const got = cache.get(key, identity);
  if (!got) return null;
  return {
    format: got.format,
    code: got.code,
    hash: got.hash,
    functionCount: got.functionCount,
    meta: got.readMeta(),
  };
}

const hash = contentHash('src');

/** Identity and key of an entry for `parts`. */
function named(...parts: unknown[]): { identity: string; key: string } {
  const identity = TransformCache.identity(hash, parts);
  return { identity, key: TransformCache.key(identity) };
}

describe('transform cache: entries', () => {
  test('an entry round-trips; its map is a file beside it that the code refers to', () => {
    const dir = tempDir('cache-unit');
    const cache = new TransformCache(dir);
    const { identity, key } = named('v1', 'file:///app/f.js');
    assert.equal(cache.get(key, identity), null);
    const code = cache.set(key, identity, hash, entry, map, path.join(dir, 'app', 'f.js'));
    assert.equal(code, `${entry.code}\n//# sourceMappingURL=../${key}.map\n`);
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, `${key}.map`), 'utf8')), map);
    assert.equal(
      cache.get(key, named('v2', 'file:///app/f.js').identity),
      null,
      'another identity',
    );
    assert.deepEqual(readBack(cache, key, identity), {
      format: entry.format,
      code,
      hash,
      functionCount: 1,
      meta: entry.meta,
    });
    assert.deepEqual(cache.stats, {
      hits: 1,
      misses: 2,
      writes: 1,
      invalid: 1,
      writeErrors: 0,
      indexHits: 0,
      indexWrites: 0,
      packHits: 0,
      packWrites: 0,
    });
    assert.deepEqual(
      fs.readdirSync(dir).sort(),
      [`${key}.entry`, `${key}.map`],
      'no temporary files left',
    );
  });

  test('code of any characters round-trips, ASCII or not', () => {
    const dir = tempDir('cache-text');
    const cache = new TransformCache(dir);
    const big = 'x'.repeat(100_000); // read part by part, not in one call
    for (const code of [
      '',
      'plain ascii\n',
      'caf\u00e9 \u2603 \ud83d\ude00 \u0000 end',
      big,
      `${big}\u00e9`,
    ]) {
      const { identity, key } = named(code.slice(0, 40), code.length);
      cache.set(key, identity, hash, { ...entry, code }, null, path.join(dir, 'f.js'));
      assert.equal(cache.get(key, identity)?.code, code);
    }
  });

  test('identities and keys differ with any part and with the content', () => {
    const a = TransformCache.identity('h1', ['v', 'file:///a.js', 'module']);
    assert.equal(a, TransformCache.identity('h1', ['v', 'file:///a.js', 'module']));
    for (const other of [
      TransformCache.identity('h2', ['v', 'file:///a.js', 'module']),
      TransformCache.identity('h1', ['v2', 'file:///a.js', 'module']),
      TransformCache.identity('h1', ['v', 'file:///b.js', 'module']),
      TransformCache.identity('h1', ['v', 'file:///a.js', 'commonjs']),
    ]) {
      assert.notEqual(a, other);
      assert.notEqual(TransformCache.key(a), TransformCache.key(other));
    }
    assert.match(TransformCache.key(a), /^[0-9a-f]{64}$/);
  });

  test('damaged entries are misses: garbage, truncated, another key, another schema', () => {
    const dir = tempDir('cache-damage');
    const cache = new TransformCache(dir);
    const { identity, key } = named('x');
    const file = path.join(dir, `${key}.entry`);
    cache.set(key, identity, hash, entry, null, path.join(dir, 'f.js'));
    const good = fs.readFileSync(file);
    const text = good.toString('latin1');
    const other = named('y').key;
    const damaged = [
      Buffer.from('not an entry at all'),
      good.subarray(0, -1),
      Buffer.concat([good, Buffer.from('x')]),
      Buffer.from(text.replace(/^livepatch-cache \d+/, 'livepatch-cache 999'), 'latin1'),
      Buffer.from(text.replace(key, other), 'latin1'),
      Buffer.from(text.replace('"x"', '"z"'), 'latin1'), // another identity, same length
      Buffer.alloc(0),
    ];
    for (const bytes of damaged) {
      fs.writeFileSync(file, bytes);
      assert.equal(cache.get(key, identity), null, JSON.stringify(bytes.toString('latin1', 0, 60)));
    }
    assert.equal(cache.stats.invalid, damaged.length);
    fs.writeFileSync(file, good);
    assert.deepEqual(readBack(cache, key, identity)?.meta, entry.meta);
  });

  test('damaged metadata is found when it is read, not at load', () => {
    const dir = tempDir('cache-meta');
    const cache = new TransformCache(dir);
    const { identity, key } = named('m');
    const file = path.join(dir, `${key}.entry`);
    cache.set(key, identity, hash, entry, null, path.join(dir, 'f.js'));
    const bytes = fs.readFileSync(file);
    const metaStart = bytes.indexOf(10) + 1 + Buffer.byteLength(identity);
    // The metadata is deflated: a flipped byte in the middle fails its checksum or its inflate.
    bytes[metaStart + 4] = bytes[metaStart + 4]! ^ 0xff;
    fs.writeFileSync(file, bytes);
    const got = cache.get(key, identity);
    assert.ok(got, 'the code is still served');
    assert.equal(got.code, entry.code);
    assert.throws(() => got.readMeta());
  });

  test('a directory that cannot be written: no entry, one report, no exception', () => {
    const dir = tempDir('cache-ro');
    const { cache, errors } = unwritableCache(dir);
    const k1 = named('1');
    assert.equal(cache.set(k1.key, k1.identity, hash, entry, map, path.join(dir, 'f.js')), null);
    assert.equal(cache.set('k2', 'i2', hash, entry, map, path.join(dir, 'f.js')), null);
    const index = cache.index('x');
    index.record(SourceIndex.identity('file:///f.js', null, null), stamp, record);
    index.flush();
    assert.equal(errors.length, 1, 'reported once');
    assert.equal(cache.stats.writeErrors, 1);
    assert.equal(cache.get(k1.key, k1.identity), null);
  });
});

const record: SourceRecord = { hash, key: named('r').key, format: null };

const stamp: FileStamp = {
  dev: 2049n,
  ino: 123456789012n,
  size: 3n,
  mtimeNs: 1700000000123456789n,
  ctimeNs: 1700000000223456789n,
};

describe('transform cache: index of source files', () => {
  const id = SourceIndex.identity('file:///app/f.js', null, ['require']);

  test('a record is found for the same stamp only, by this and by later processes', () => {
    const dir = tempDir('cache-index');
    const cache = new TransformCache(dir);
    const index = cache.index('node app.js');
    assert.equal(index.lookup(id, stamp), null);
    index.record(id, stamp, record);
    assert.deepEqual(index.lookup(id, stamp), record, 'at once');
    for (const field of ['dev', 'ino', 'size', 'mtimeNs', 'ctimeNs'] as const) {
      assert.equal(index.lookup(id, { ...stamp, [field]: stamp[field] + 1n }), null, field);
    }
    index.flush();
    assert.equal(cache.stats.indexWrites, 1);
    assert.deepEqual(fs.readdirSync(dir), [path.basename(index.file)], 'one file, no leftovers');

    const later = new TransformCache(dir).index('node app.js');
    assert.deepEqual(later.lookup(id, stamp), record);
    later.record(id, stamp, { ...record, format: 'commonjs-typescript' });
    later.flush();
    assert.deepEqual(
      new TransformCache(dir).index('node app.js').lookup(id, stamp),
      { ...record, format: 'commonjs-typescript' },
      'the last line of a file wins',
    );
    assert.equal(new TransformCache(dir).index('node --inspect app.js').lookup(id, stamp), null);
  });

  test('damaged lines are skipped, the others still count', () => {
    const dir = tempDir('cache-index-damage');
    const index = new TransformCache(dir).index('x');
    const other = SourceIndex.identity('file:///app/g.js', null, ['require']);
    index.record(id, stamp, record);
    index.record(other, stamp, { ...record, format: 'commonjs' });
    index.flush();
    const text = fs.readFileSync(index.file, 'utf8');
    const [first, second] = text.split('\n') as [string, string];
    const damaged = [
      `${first.replace(hash, 'x'.repeat(64))}\n${second}\n`,
      `${first.slice(0, -1)}\n${second}\n`,
      `${first.slice(0, 40)}${first}\n${second}\n`, // the end of an overwritten line first
    ];
    for (const bad of damaged) {
      fs.writeFileSync(index.file, bad);
      const fresh = new TransformCache(dir).index('x');
      assert.deepEqual(fresh.lookup(other, stamp), { ...record, format: 'commonjs' });
      assert.equal(fresh.lookup(id, stamp), null, bad);
    }
    // A line being written (no newline yet) is skipped; the lines before it count.
    fs.writeFileSync(index.file, `${first}\n${second}`);
    const partial = new TransformCache(dir).index('x');
    assert.deepEqual(partial.lookup(id, stamp), record);
    assert.equal(partial.lookup(other, stamp), null);
  });

  test('a log of mostly stale lines is compacted to the last line of each file', () => {
    const dir = tempDir('cache-index-compact');
    const index = new TransformCache(dir).index('x');
    for (let i = 0n; i < 400n; i++) index.record(id, { ...stamp, ctimeNs: i }, record);
    index.flush();
    assert.equal(fs.readFileSync(index.file, 'utf8').split('\n').length - 1, 400);
    const fresh = new TransformCache(dir).index('x');
    assert.deepEqual(fresh.lookup(id, { ...stamp, ctimeNs: 399n }), record);
    assert.equal(fs.readFileSync(index.file, 'utf8').split('\n').length - 1, 1);
    assert.deepEqual(
      new TransformCache(dir).index('x').lookup(id, { ...stamp, ctimeNs: 399n }),
      record,
    );
  });

  test('an index that cannot be written is skipped without a warning (a read-only cache)', () => {
    const dir = tempDir('index-ro');
    const { cache, errors } = unwritableCache(dir);
    const index = cache.index('x');
    index.record(id, stamp, record);
    index.flush();
    index.record(id, stamp, record);
    index.flush();
    assert.deepEqual(errors, []);
    assert.equal(cache.stats.writeErrors, 0);
    assert.equal(cache.stats.indexWrites, 0);
  });

  test('identities differ with the URL and with how the file is loaded', () => {
    const a = SourceIndex.identity('file:///a.js', 'commonjs', ['require']);
    assert.equal(a, SourceIndex.identity('file:///a.js', 'commonjs', ['require']));
    assert.notEqual(a, SourceIndex.identity('file:///b.js', 'commonjs', ['require']));
    assert.notEqual(a, SourceIndex.identity('file:///a.js', null, ['require']));
    assert.notEqual(a, SourceIndex.identity('file:///a.js', 'commonjs', ['import']));
    assert.doesNotMatch(a, /[\t\n]/);
  });
});

/** Remove the packs of a cache directory (SourceIndex), so that entries are read from their files. */
function removePacks(dir: string): void {
  for (const name of fs.readdirSync(dir)) {
    if (name.endsWith('.pack.idx')) fs.rmSync(path.join(dir, name));
  }
}

/** Whether an entry file is as long as its header says (written whole, not torn). */
function isWholeEntry(file: string): boolean {
  const bytes = fs.readFileSync(file);
  const eol = bytes.indexOf(10);
  const fields = bytes.toString('latin1', 0, eol).split(' ');
  const [idLength, metaLength, codeLength] = fields.slice(6, 9).map(Number) as [
    number,
    number,
    number,
  ];
  return eol + 1 + idLength + metaLength + codeLength === bytes.length;
}

interface Report {
  values: unknown;
  modules: string[];
  stats: Pick<LoaderStats, 'modules' | 'instrumented' | 'cached'> & { cache: CacheStats };
}

function report(result: RunNodeResult): Report {
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout.trim().split('\n').pop()!) as Report;
}

describe('transform cache: processes', () => {
  const entryFile = fixture('loader', 'cache', 'main.mjs');
  const run = (cacheDir: string): Promise<RunNodeResult> =>
    runNode(['--import', register, entryFile], { env: cacheEnv(cacheDir) });

  test('a warm start instruments nothing: every module comes from the cache', async () => {
    const dir = tempDir('cache-warm');
    const cold = report(await run(dir));
    assert.deepEqual(cold.values, [4, 1, 1]);
    assert.deepEqual(cold.modules, ['a.cjs', 'b.ts', 'c.mjs', 'main.mjs']);
    assert.equal(cold.stats.instrumented, 4);
    assert.equal(cold.stats.cached, 0);
    assert.equal(cold.stats.cache.writes, 4);

    const warm = report(await run(dir));
    assert.deepEqual(warm.values, cold.values);
    assert.deepEqual(warm.modules, cold.modules);
    assert.equal(warm.stats.instrumented, 0, 'the instrumenter was not called');
    assert.equal(warm.stats.cached, 4);
    assert.equal(warm.stats.cache.writes, 0);
    // Served without Node reading them: all but b.ts, an ES module in a package without
    // `type`, whose format Node detects (and may warn about) in its load step every time.
    assert.equal(warm.stats.cache.indexHits, 3);
    assert.equal(warm.stats.cache.packHits, 3, 'their code read from the pack');
    assert.equal(warm.stats.cache.packWrites, 0);
  });

  test('a corrupted entry is a miss: that module is instrumented again and the entry rewritten', async () => {
    const dir = tempDir('cache-corrupt');
    report(await run(dir));
    const entries = fs.readdirSync(dir).filter((n) => n.endsWith('.entry'));
    assert.equal(entries.length, 4);
    const victim = path.join(dir, entries[0]!);
    const text = fs.readFileSync(victim, 'utf8');
    fs.writeFileSync(victim, text.slice(0, Math.floor(text.length / 2)));
    // Without the pack, which holds copies of the entries (test/cache-pack.test.ts).
    removePacks(dir);

    const again = report(await run(dir));
    assert.deepEqual(again.values, [4, 1, 1]);
    assert.equal(again.stats.cache.invalid, 1);
    assert.equal(again.stats.instrumented, 1);
    assert.equal(again.stats.cached, 3);
    assert.equal(fs.readFileSync(victim, 'utf8'), text, 'rewritten whole');

    const healed = report(await run(dir));
    assert.equal(healed.stats.cached, 4);
  });

  test('several processes filling one cache at once all succeed, and every entry is whole', async () => {
    const app = tempDir('cache-app');
    const dir = tempDir('cache-shared');
    try {
      // A mid-size module: many functions, so that writes take a while and overlap.
      const lines: string[] = [];
      for (let i = 0; i < 1500; i++) {
        lines.push(`function f${i}(x) { return x + ${i}; }`, `exports.f${i} = f${i};`);
      }
      fs.writeFileSync(path.join(app, 'package.json'), '{ "name": "cache-app" }\n');
      fs.writeFileSync(path.join(app, 'big.cjs'), `${lines.join('\n')}\n`);
      const reportUrl = pathToFileURL(fixture('loader', 'report.mjs')).href;
      fs.writeFileSync(
        path.join(app, 'main.mjs'),
        `import big from './big.cjs';\nimport { stats } from ${JSON.stringify(reportUrl)};\n` +
          `let sum = 0; for (let i = 0; i < 1500; i++) sum += big['f' + i](1);\n` +
          `console.log(JSON.stringify({ sum, stats: stats() }));\n`,
      );
      const runs = await Promise.all(
        Array.from({ length: 6 }, () =>
          runNode(['--import', register, path.join(app, 'main.mjs')], {
            env: { LIVEPATCH_CACHE_DIR: dir, LIVEPATCH_CACHE: undefined },
          }),
        ),
      );
      for (const r of runs) {
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stderr, '');
        const out = JSON.parse(r.stdout) as { sum: number; stats: Report['stats'] };
        assert.equal(out.sum, 1500 + (1499 * 1500) / 2);
        assert.equal(out.stats.cache.writeErrors, 0);
        assert.equal(out.stats.cached + out.stats.instrumented, 2);
      }
      const names = fs.readdirSync(dir);
      assert.deepEqual(
        names.filter((n) => n.endsWith('.tmp')),
        [],
        'no temporary files left',
      );
      const keys = names
        .filter((n) => n.endsWith('.entry'))
        .map((n) => n.slice(0, -'.entry'.length));
      assert.equal(keys.length, 2);
      for (const key of keys)
        assert.ok(isWholeEntry(path.join(dir, `${key}.entry`)), `entry ${key} is whole`);

      // And the next start finds everything.
      const warm = JSON.parse(
        (
          await runNode(['--import', register, path.join(app, 'main.mjs')], {
            env: { LIVEPATCH_CACHE_DIR: dir },
          })
        ).stdout,
      ) as { stats: Report['stats'] };
      assert.equal(warm.stats.instrumented, 0);
    } finally {
      fs.rmSync(app, { recursive: true, force: true });
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('LIVEPATCH_CACHE=0 uses no cache at all', async () => {
    const dir = tempDir('cache-off');
    try {
      const result = await runNode(['--import', register, entryFile], {
        env: { LIVEPATCH_CACHE: '0', LIVEPATCH_CACHE_DIR: dir },
      });
      const out = report(result);
      assert.equal(out.stats.instrumented, 4);
      assert.equal(out.stats.cache, null);
      assert.deepEqual(fs.readdirSync(dir), []);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** A small app in a fresh directory: an ES module entry, a CommonJS file, a typeless .js. */
function makeApp(): string {
  const app = tempDir('index-app');
  const reportUrl = pathToFileURL(fixture('loader', 'report.mjs')).href;
  fs.writeFileSync(path.join(app, 'package.json'), '{ "name": "index-app" }\n');
  fs.writeFileSync(
    path.join(app, 'main.mjs'),
    `import { createRequire } from 'node:module';\n` +
      `import { modules, stats } from ${JSON.stringify(reportUrl)};\n` +
      `const require = createRequire(import.meta.url);\n` +
      `const values = [require('./lib.cjs').value(), require('./dep.js').value()];\n` +
      // The function lists first: reading them may rebuild one (see the damage test).
      `const functions = modules(new URL('.', import.meta.url).pathname);\n` +
      `console.log(JSON.stringify({ values, functions, stats: stats() }));\n`,
  );
  fs.writeFileSync(
    path.join(app, 'lib.cjs'),
    "exports.value = function value() { return 'A1'; };\n",
  );
  fs.writeFileSync(path.join(app, 'dep.js'), 'exports.value = () => 42;\n');
  return app;
}

/** Runs `fn` with a fresh app (makeApp) and cache directory, removing both afterwards. */
async function withApp(
  label: string,
  fn: (app: string, dir: string) => Promise<void>,
): Promise<void> {
  const app = makeApp();
  const dir = tempDir(label);
  try {
    await fn(app, dir);
  } finally {
    fs.rmSync(app, { recursive: true, force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('transform cache: serving unchanged files without reading them', () => {
  test('an unchanged file is served from the index; an edited one is read again', async () => {
    await withApp('index-cache', async (app, dir) => {
      const cold = await runApp(app, dir);
      assert.deepEqual(cold.values, ['A1', 42]);
      assert.equal(cold.stats.instrumented, 3);

      const warm = await runApp(app, dir);
      assert.deepEqual(warm.values, ['A1', 42]);
      assert.deepEqual(warm.functions, cold.functions, 'the same function lists, read lazily');
      assert.equal(warm.stats.instrumented, 0);
      assert.equal(warm.stats.cache.indexHits, 3);

      // Same size, same file: only the times tell the change.
      const lib = path.join(app, 'lib.cjs');
      fs.writeFileSync(lib, fs.readFileSync(lib, 'utf8').replace('A1', 'B2'));
      const edited = await runApp(app, dir);
      assert.deepEqual(edited.values, ['B2', 42]);
      assert.equal(edited.stats.instrumented, 1);
      assert.equal(edited.stats.cache.indexHits, 2);
      assert.equal(edited.stats.cache.packHits, 2);

      const again = await runApp(app, dir);
      assert.deepEqual(again.values, ['B2', 42]);
      assert.equal(again.stats.instrumented, 0);
      assert.equal(again.stats.cache.indexHits, 3, 'the edited file is indexed again');
      assert.equal(again.stats.cache.packHits, 3, 'the pack was written anew with its entry');
    });
  });

  test('files changed within the settle time are read and hashed as before', async () => {
    await withApp('index-settle', async (app, dir) => {
      const env = { LIVEPATCH_CACHE_INDEX_SETTLE_MS: String(3_600_000) };
      await runApp(app, dir, env);
      const warm = await runApp(app, dir, env);
      assert.deepEqual(warm.values, ['A1', 42]);
      assert.equal(warm.stats.cached, 3);
      assert.equal(warm.stats.cache.indexHits, 0);
      assert.deepEqual(
        fs.readdirSync(dir).filter((n) => n.endsWith('.idx')),
        [],
      );
    });
  });

  test('LIVEPATCH_CACHE_INDEX=0: no index, the cache still serves', async () => {
    await withApp('index-off', async (app, dir) => {
      const env = { LIVEPATCH_CACHE_INDEX: '0' };
      await runApp(app, dir, env);
      const warm = await runApp(app, dir, env);
      assert.equal(warm.stats.cached, 3);
      assert.equal(warm.stats.cache.indexHits, 0);
      assert.deepEqual(
        fs.readdirSync(dir).filter((n) => n.endsWith('.idx')),
        [],
      );
    });
  });

  test("a file that a hook below ours transforms goes through Node's load step every time", async () => {
    await withApp('index-hook', async (app, dir) => {
      // Registered before livepatch's hooks, so it runs inside Node's load step as we see it.
      const hook = path.join(app, 'hook.mjs');
      fs.writeFileSync(
        hook,
        `import module from 'node:module';\n` +
          `module.registerHooks({ load(url, context, nextLoad) {\n` +
          `  const result = nextLoad(url, context);\n` +
          `  if (!url.endsWith('/lib.cjs')) return result;\n` +
          `  return { ...result, source: String(result.source).replace('A1', process.env.HOOK_VALUE) };\n` +
          `} });\n`,
      );
      const first = await runApp(app, dir, { HOOK_VALUE: 'H1' }, [hook]);
      assert.deepEqual(first.values, ['H1', 42]);
      const second = await runApp(app, dir, { HOOK_VALUE: 'H2' }, [hook]);
      assert.deepEqual(second.values, ['H2', 42], 'the hook ran again');
      assert.equal(second.stats.cache.indexHits, 2, 'the files it left alone are indexed');
    });
  });

  test('a damaged function list is rebuilt from the file when first asked for', async () => {
    await withApp('index-damage', async (app, dir) => {
      const cold = await runApp(app, dir);
      const entryFile = fs
        .readdirSync(dir)
        .filter((n) => n.endsWith('.entry'))
        .map((n) => path.join(dir, n))
        .find((f) => fs.readFileSync(f, 'latin1').includes('/lib.cjs"'))!;
      const bytes = fs.readFileSync(entryFile);
      const eol = bytes.indexOf(10);
      const idLength = Number(bytes.toString('latin1', 0, eol).split(' ')[6]);
      const metaStart = eol + 1 + idLength;
      bytes[metaStart + 4] = bytes[metaStart + 4]! ^ 0xff;
      fs.writeFileSync(entryFile, bytes);
      // Without the pack, which holds a copy of the entry (its own damage: cache-pack.test.ts).
      removePacks(dir);

      assert.deepEqual(cold.values, ['A1', 42]);
      await assertListRebuiltThenHealed(app, dir, cold);
    });
  });
});

describe('function table: function lists read on first use', () => {
  const fnB: FunctionInfo = { ...fn, index: 1, name: 'b', line: 2 };
  let n = 0;
  const lazyModule = (functionCount: number, details: () => CachedMeta) => {
    const filename = path.join(os.tmpdir(), `livepatch-lazy-${process.pid}-${++n}.cjs`);
    const url = pathToFileURL(filename).href;
    registerModule(url, { filename, format: 'commonjs', hash, functionCount, details });
    return {
      url,
      mod: table.enter(url, `$lp_${(0xcace000000 + n).toString(16).padStart(12, '0')}_`),
    };
  };

  test('slots come from the count; the list is read on the first lookup, once', () => {
    let reads = 0;
    const { url, mod } = lazyModule(2, () => {
      reads++;
      return { functions: [fn, fnB], refused: [], moduleBindings: ['f'], prefix: '$lp_' };
    });
    assert.equal(mod.meta.functionCount, 2);
    assert.match(
      slotsModuleSource(slotsUrlFor(slotsSpecifier(mod.cells, [1]), url)!),
      /export const s1=m\.s\(1\);export\{m\}/,
    );
    assert.doesNotMatch(
      slotsModuleSource(slotsUrlFor(slotsSpecifier(mod.cells, []), url)!),
      /s0=/,
      'only the slots imported',
    );
    assert.equal(reads, 0, 'entering the module and its slots module need only the count');
    const slot = mod.findFunction('b');
    assert.equal(slot, mod.s(1));
    assert.equal(slot.info.name, 'b');
    assert.equal(mod.s(0).info.name, 'f');
    assert.deepEqual(mod.meta.moduleBindings, ['f']);
    assert.equal(mod.meta.functions[1], fnB);
    assert.equal(reads, 1);
  });

  test('reading the list by any means gives the slots their records', () => {
    const { mod } = lazyModule(2, () => ({
      functions: [fn, fnB],
      refused: [],
      moduleBindings: [],
      prefix: '$lp_',
    }));
    const early = mod.s(1); // made before the list is read, as an async function's header does
    assert.throws(
      () => early.info.name,
      /internal error: a function's info \(name\) was read before/,
    );
    assert.equal(mod.meta.functions.length, 2);
    assert.equal(early.info, fnB, 'a slot made earlier gets its record');
    assert.equal(mod.s(0).info, fn, 'a slot made later has it from the start');
    assert.equal(mod.s(1), early, 'one slot per function');
    assert.throws(() => mod.s(2), /has no function slot 2 \(it has 2\)/);
  });

  test('a list that cannot be read fails the lookup and is read again next time', () => {
    let reads = 0;
    const { mod } = lazyModule(1, () => {
      if (++reads === 1) throw new Error('cannot read it now');
      return { functions: [fn], refused: [], moduleBindings: [], prefix: '$lp_' };
    });
    assert.throws(() => mod.findFunction('f'), /cannot read it now/);
    assert.equal(mod.findFunction('f').info, fn);
    assert.equal(reads, 2);
  });

  test('a list of another length than the code has slots is refused', () => {
    const { mod } = lazyModule(2, () => ({
      functions: [fn],
      refused: [],
      moduleBindings: [],
      prefix: '$lp_',
    }));
    assert.throws(() => mod.findFunction('f'), /1 entries, its code 2 slots/);
  });
});
