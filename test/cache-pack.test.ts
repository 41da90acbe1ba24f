/**
 * The pack of an index (cache.ts, Pack): copies of the entries one program loads, in one file,
 * read once at start-up. Written when entries are missing from it, read back without the entry
 * files, kept whole through partial misses, concurrent writers and damage; the loader never
 * fails because of it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';

import {
  SourceIndex,
  TransformCache,
  type CacheEntry,
  type FileStamp,
} from '../src/loader/cache.ts';
import {
  assertListRebuiltThenHealed,
  fn,
  runApp,
  tempDir,
  unwritableCache,
} from './helpers/cache.ts';
import { fixture } from './helpers/node.ts';

const hash = 'a'.repeat(64);

/** One module as a test stores it: its index identity, stamp, entry identity, key and code. */
interface Module {
  readonly id: string;
  readonly stamp: FileStamp;
  readonly identity: string;
  readonly key: string;
  readonly code: string;
}

function moduleNamed(name: string, code = `exports.${name} = function ${name}() {};\n`): Module {
  const url = `file:///app/${name}.js`;
  const identity = TransformCache.identity(hash, ['v1', url, code.length]);
  return {
    id: SourceIndex.identity(url, null, ['require']),
    stamp: { dev: 1n, ino: BigInt(name.length), size: 3n, mtimeNs: 10n, ctimeNs: 20n },
    identity,
    key: TransformCache.key(identity),
    code,
  };
}

function entryOf(m: Module): CacheEntry {
  return {
    format: 'commonjs',
    code: m.code,
    meta: { functions: [fn], refused: [], moduleBindings: [], prefix: '$lp_' },
  };
}

/** A "process": a cache on `dir` and its index for one command line and program. */
function open(dir: string): { cache: TransformCache; index: SourceIndex } {
  const cache = new TransformCache(dir);
  return { cache, index: cache.index('node --import livepatch', '/app/main.js') };
}

/** A module loaded for the first time: built, stored and recorded, as the pipeline does. */
function store(cache: TransformCache, index: SourceIndex, m: Module): void {
  cache.set(m.key, m.identity, hash, entryOf(m), null, '/app/x.js');
  index.record(m.id, m.stamp, { hash, key: m.key, format: null });
}

/** A first start: every module stored; the index flushed (pack written). */
function coldStart(dir: string, modules: readonly Module[]): TransformCache {
  const { cache, index } = open(dir);
  for (const m of modules) {
    assert.equal(index.entry(m.key, m.identity), null);
    store(cache, index, m);
  }
  index.flush();
  return cache;
}

/** A later start that loads `modules`; returns what it served and its counters. */
function warmStart(
  dir: string,
  modules: readonly Module[],
): { codes: (string | null)[]; cache: TransformCache; index: SourceIndex } {
  const { cache, index } = open(dir);
  const codes = modules.map((m) => {
    const record = index.lookup(m.id, m.stamp);
    assert.ok(record, `${m.id} is indexed`);
    return index.entry(record.key, m.identity)?.code ?? null;
  });
  return { codes, cache, index };
}

function removeEntryFiles(dir: string): void {
  for (const name of fs.readdirSync(dir)) {
    if (name.endsWith('.entry')) fs.rmSync(path.join(dir, name));
  }
}

function packFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.endsWith('.pack.idx'));
}

describe('transform cache: packs', () => {
  const a = moduleNamed('a');
  const b = moduleNamed('b', `exports.b = () => 'caf\u00e9 \u2603';\n`); // stored as UTF-8
  const c = moduleNamed('c', `exports.c = ${JSON.stringify('x'.repeat(100_000))};\n`);

  test('written after a first start; a warm start reads every entry from it alone', () => {
    const dir = tempDir('pack');
    const cold = coldStart(dir, [a, b, c]);
    assert.equal(cold.stats.packWrites, 1);
    assert.equal(packFiles(dir).length, 1);
    removeEntryFiles(dir); // from here on, only the pack can serve them

    const warm = warmStart(dir, [a, b, c]);
    assert.deepEqual(warm.codes, [a.code, b.code, c.code]);
    assert.equal(warm.cache.stats.packHits, 3);
    assert.equal(warm.cache.stats.hits, 3);
    const served = warm.index.entry(a.key, a.identity)!;
    assert.equal(served.hash, hash);
    assert.equal(served.format, 'commonjs');
    assert.equal(served.functionCount, 1);
    assert.deepEqual(served.readMeta(), entryOf(a).meta);
    assert.equal(warm.index.entry(a.key, moduleNamed('a', 'other').identity), null);
    warm.index.flush();
    assert.equal(warm.cache.stats.packWrites, 0, 'nothing was missing: not written again');
    assert.deepEqual(
      fs.readdirSync(dir).filter((n) => n.endsWith('.tmp')),
      [],
      'no temporary files left',
    );
  });

  test('code stored as UTF-8 follows the Latin-1 code, whatever order the modules loaded in', () => {
    // A warm start reads the Latin-1 part of the code section into one string and decodes UTF-8
    // code per module: UTF-8 code inside that part would be held twice.
    const dir = tempDir('pack-order');
    const d = moduleNamed('d');
    coldStart(dir, [a, b, c, d]);
    const [pack] = packFiles(dir);
    const bytes = fs.readFileSync(path.join(dir, pack!));
    const utf8 = Buffer.from(b.code);
    assert.deepEqual(bytes.subarray(bytes.length - utf8.length), utf8);
    removeEntryFiles(dir);
    const warm = warmStart(dir, [d, c, b, a]);
    assert.deepEqual(warm.codes, [d.code, c.code, b.code, a.code]);
    assert.equal(warm.cache.stats.packHits, 4);
  });

  test('one program per pack: another main script, or command line, has its own', () => {
    const dir = tempDir('pack-programs');
    coldStart(dir, [a]);
    const cache = new TransformCache(dir);
    const other = cache.index('node --import livepatch', '/app/other.js');
    assert.notEqual(other.packFile, open(dir).index.packFile);
    assert.notEqual(cache.index('node', '/app/main.js').packFile, open(dir).index.packFile);
    removeEntryFiles(dir);
    assert.equal(other.entry(a.key, a.identity), null, 'not in its pack, and no file');
  });

  test('a partial miss costs one module: the rest still comes from the pack', () => {
    const dir = tempDir('pack-partial');
    coldStart(dir, [a, b]);
    // A start that also loads c, which the pack does not have yet.
    const { cache, index } = open(dir);
    assert.equal(index.entry(a.key, a.identity)?.code, a.code);
    assert.equal(index.entry(c.key, c.identity), null);
    cache.set(c.key, c.identity, hash, entryOf(c), null, '/app/x.js');
    index.record(c.id, c.stamp, { hash, key: c.key, format: null });
    index.flush();
    assert.equal(cache.stats.packHits, 1);
    assert.equal(cache.stats.packWrites, 1);

    // b was not loaded by that start, but the index still refers to it: it stays packed.
    removeEntryFiles(dir);
    const warm = warmStart(dir, [a, b, c]);
    assert.deepEqual(warm.codes, [a.code, b.code, c.code]);
    assert.equal(warm.cache.stats.packHits, 3);
  });

  test("a module's function list is read from the pack when asked for, also after the pack was rewritten", () => {
    const dir = tempDir('pack-meta-later');
    coldStart(dir, [a, b]);
    removeEntryFiles(dir); // only the pack can answer
    const { cache, index } = open(dir);
    const fromPackA = index.entry(a.key, a.identity)!;
    const fromPackB = index.entry(b.key, b.identity)!;
    assert.deepEqual(fromPackA.readMeta().functions, [fn], 'read from the open pack');
    // c is not packed: this process writes the pack anew, which closes the one it read.
    cache.set(c.key, c.identity, hash, entryOf(c), null, '/app/x.js');
    index.record(c.id, c.stamp, { hash, key: c.key, format: null });
    index.flush();
    assert.equal(cache.stats.packWrites, 1);
    assert.deepEqual(fromPackB.readMeta().functions, [fn], 'after the pack it came from closed');
  });

  test('an entry read from its file because the pack lacks it gets packed', () => {
    const dir = tempDir('pack-lacks');
    coldStart(dir, [a]);
    for (const name of packFiles(dir)) fs.rmSync(path.join(dir, name));
    const { cache, index } = open(dir);
    assert.equal(index.entry(a.key, a.identity)?.code, a.code, 'from its file');
    assert.equal(cache.stats.packHits, 0);
    index.flush();
    assert.equal(cache.stats.packWrites, 1);
    removeEntryFiles(dir);
    assert.deepEqual(warmStart(dir, [a]).codes, [a.code]);
  });

  test('a process writes the pack once: what it loads afterwards is packed by a later start', () => {
    const dir = tempDir('pack-once');
    const { cache, index } = open(dir);
    store(cache, index, a);
    index.flush();
    store(cache, index, b);
    index.flush();
    assert.equal(cache.stats.packWrites, 1, 'not rewritten for b');

    const next = warmStart(dir, [a, b]);
    assert.deepEqual(next.codes, [a.code, b.code]);
    assert.equal(next.cache.stats.packHits, 1, 'b from its file');
    next.index.flush();
    assert.equal(next.cache.stats.packWrites, 1);
    removeEntryFiles(dir);
    assert.deepEqual(warmStart(dir, [a, b]).codes, [a.code, b.code]);
  });

  test('a pack replaced by another process meanwhile: the one already open still serves whole entries', () => {
    const dir = tempDir('pack-replaced');
    coldStart(dir, [a, b, c]);
    const { cache, index } = open(dir);
    assert.equal(index.entry(a.key, a.identity)?.code, a.code, 'pack opened, its code read');
    // Another process packs d first: every entry of the new pack is elsewhere in the file.
    const d = moduleNamed('d');
    coldStart(dir, [d]);
    removeEntryFiles(dir);
    assert.equal(index.entry(b.key, b.identity)?.code, b.code, 'read from the file it opened');
    assert.equal(index.entry(c.key, c.identity)?.code, c.code);
    assert.equal(cache.stats.packHits, 3);
    assert.deepEqual(warmStart(dir, [d, a, b, c]).codes, [d.code, a.code, b.code, c.code]);
  });

  test('a pack that can be neither read nor replaced costs only time: entries come from their files', () => {
    const dir = tempDir('pack-blocked');
    coldStart(dir, [a, b]);
    const { cache, index } = open(dir);
    fs.rmSync(index.packFile);
    fs.mkdirSync(index.packFile); // opens, but reads fail, and a file cannot be renamed over it
    assert.deepEqual(
      [a, b].map((m) => index.entry(m.key, m.identity)?.code),
      [a.code, b.code],
    );
    index.flush();
    assert.equal(cache.stats.packHits, 0);
    assert.equal(cache.stats.packWrites, 0);
    assert.equal(cache.stats.writeErrors, 0, 'not reported: packs and the index only save time');
    assert.deepEqual(
      fs.readdirSync(dir).filter((n) => n.endsWith('.tmp')),
      [],
      'no temporary file left',
    );
  });

  test('an unwritable cache directory: nothing is packed, nothing throws, nothing is reported', () => {
    const { cache, errors } = unwritableCache(tempDir('pack-ro'));
    const index = cache.index('node --import livepatch', '/app/main.js');
    assert.equal(index.entry(a.key, a.identity), null);
    store(cache, index, a);
    index.flush();
    assert.equal(cache.stats.packWrites, 0);
    assert.equal(cache.stats.writeErrors, 1, 'the entry, reported once');
    assert.equal(errors.length, 1);
  });

  test('an entry the index no longer refers to (its file changed) leaves the pack', () => {
    const dir = tempDir('pack-stale');
    coldStart(dir, [a, b]);
    const a2 = { ...moduleNamed('a', 'exports.a = 2;\n'), stamp: { ...a.stamp, ctimeNs: 30n } };
    const { cache, index } = open(dir);
    assert.equal(index.lookup(a2.id, a2.stamp), null, 'changed');
    cache.set(a2.key, a2.identity, hash, entryOf(a2), null, '/app/x.js');
    index.record(a2.id, a2.stamp, { hash, key: a2.key, format: null });
    index.flush();

    const pack = fs.readFileSync(path.join(dir, packFiles(dir)[0]!), 'latin1');
    assert.ok(pack.includes(a2.key));
    assert.ok(pack.includes(b.key));
    assert.ok(!pack.includes(a.key), 'the old entry of a is gone from the pack');
  });

  test('a damaged pack is not used: entries come from their files and it is written anew', () => {
    const dir = tempDir('pack-damage');
    coldStart(dir, [a, b, c]);
    const file = path.join(dir, packFiles(dir)[0]!);
    const good = fs.readFileSync(file);
    const text = good.toString('latin1');
    const headerEnd = good.indexOf(10);
    const damaged: [string, Buffer][] = [
      ['garbage', Buffer.from('not a pack at all\n')],
      ['empty', Buffer.alloc(0)],
      ['truncated', good.subarray(0, -1)],
      ['longer', Buffer.concat([good, Buffer.from('x')])],
      [
        'another schema',
        Buffer.from(text.replace(/^livepatch-pack \d+/, 'livepatch-pack 999'), 'latin1'),
      ],
      [
        'head lengths off',
        Buffer.from(
          text.replace(
            / (\d+) (\d+)\n/,
            (_, h: string, c: string) => ` ${Number(h) + 1} ${Number(c) - 1}\n`,
          ),
          'latin1',
        ),
      ],
      [
        'a head torn',
        Buffer.concat([
          good.subarray(0, headerEnd + 40),
          Buffer.from('\n'),
          good.subarray(headerEnd + 41),
        ]),
      ],
    ];
    for (const [what, bytes] of damaged) {
      fs.writeFileSync(file, bytes);
      const warm = warmStart(dir, [a, b, c]);
      assert.deepEqual(warm.codes, [a.code, b.code, c.code], what);
      assert.equal(warm.cache.stats.packHits, 0, what);
      warm.index.flush();
      assert.equal(warm.cache.stats.packWrites, 1, what);
      const healed = warmStart(dir, [a, b, c]);
      assert.equal(healed.cache.stats.packHits, 3, `${what}: written anew, whole`);
    }
  });

  test("one entry damaged in the pack: that one comes from its file, the new pack takes the file's copy", () => {
    const dir = tempDir('pack-entry-damage');
    coldStart(dir, [a, b, c]);
    const file = path.join(dir, packFiles(dir)[0]!);
    const bytes = fs.readFileSync(file);
    // Another identity for b, same length: found when b is read, not when the pack is opened.
    const at = bytes.indexOf(Buffer.from(b.identity));
    bytes[at + b.identity.indexOf('v1')] = 'w'.charCodeAt(0);
    fs.writeFileSync(file, bytes);

    const warm = warmStart(dir, [a, b, c]);
    assert.deepEqual(warm.codes, [a.code, b.code, c.code]);
    assert.equal(warm.cache.stats.packHits, 2);
    warm.index.flush();
    assert.equal(warm.cache.stats.packWrites, 1);

    removeEntryFiles(dir);
    const healed = warmStart(dir, [a, b, c]);
    assert.deepEqual(healed.codes, [a.code, b.code, c.code]);
    assert.equal(healed.cache.stats.packHits, 3);
  });
});

describe('transform cache: packs in processes', () => {
  /** An app of `count` CommonJS modules with a few functions each, one of them not ASCII. */
  function makeApp(count: number): string {
    const app = tempDir('pack-app');
    const reportUrl = pathToFileURL(fixture('loader', 'report.mjs')).href;
    fs.writeFileSync(path.join(app, 'package.json'), '{ "name": "pack-app" }\n');
    const requires: string[] = [];
    for (let i = 0; i < count; i++) {
      const lines = [`// module ${i}${i === 0 ? ' \u2603' : ''}`];
      for (let j = 0; j < 50; j++)
        lines.push(`exports.f${j} = function f${j}(x) { return x + ${i}; };`);
      fs.writeFileSync(path.join(app, `m${i}.cjs`), `${lines.join('\n')}\n`);
      requires.push(`require('./m${i}.cjs').f1(1)`);
    }
    fs.writeFileSync(
      path.join(app, 'main.mjs'),
      `import { createRequire } from 'node:module';\n` +
        `import { modules, stats } from ${JSON.stringify(reportUrl)};\n` +
        `const require = createRequire(import.meta.url);\n` +
        `const values = [${requires.join(', ')}];\n` +
        `const functions = modules(new URL('.', import.meta.url).pathname);\n` +
        `console.log(JSON.stringify({ values, functions, stats: stats() }));\n`,
    );
    return app;
  }

  test('several processes writing one pack at once leave a whole one that serves everything', async () => {
    const app = makeApp(8);
    const dir = tempDir('pack-shared');
    const runs = await Promise.all(Array.from({ length: 5 }, () => runApp(app, dir)));
    for (const r of runs) {
      assert.deepEqual(r.values, [1, 2, 3, 4, 5, 6, 7, 8]);
      assert.equal(r.stats.cache.writeErrors, 0);
    }
    assert.equal(packFiles(dir).length, 1);
    assert.deepEqual(
      fs.readdirSync(dir).filter((n) => n.endsWith('.tmp')),
      [],
      'no temporary files left',
    );
    const warm = await runApp(app, dir);
    assert.deepEqual(warm.values, runs[0]!.values);
    assert.deepEqual(warm.functions, runs[0]!.functions);
    assert.equal(warm.stats.instrumented, 0);
    assert.equal(warm.stats.cache.packHits, 9, 'every module, main.mjs included, from the pack');
  });

  test('a damaged function list in the pack is rebuilt once, and the pack repaired', async () => {
    const app = makeApp(2);
    const dir = tempDir('pack-meta');
    const cold = await runApp(app, dir);
    const file = path.join(dir, packFiles(dir)[0]!);
    const bytes = fs.readFileSync(file);
    // The metadata of m1.cjs: right after its identity in its head.
    const url = pathToFileURL(path.join(fs.realpathSync(app), 'm1.cjs')).href;
    const idAt = bytes.indexOf(Buffer.from(JSON.stringify(url)));
    const idEnd = bytes.indexOf(Buffer.from(']'), idAt) + 1;
    bytes[idEnd + 4] = bytes[idEnd + 4]! ^ 0xff;
    fs.writeFileSync(file, bytes);

    const healed = await assertListRebuiltThenHealed(app, dir, cold);
    assert.equal(healed.stats.cache.packHits, 3);
  });
});
