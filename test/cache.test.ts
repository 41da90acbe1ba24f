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
import { TransformCache, contentHash, type CacheEntry } from '../src/loader/cache.ts';
import { fixture, repoRoot, runNode, type RunNodeResult } from './helpers/node.ts';

const register = path.join(repoRoot, 'src', 'loader', 'register.ts');

function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `livepatch-${prefix}-`));
}

const fn: FunctionInfo = {
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
const entry: CacheEntry = {
  format: 'commonjs',
  code: 'function f() { return "é\\n"; }\nmodule.exports = f;',
  meta: { functions: [fn], refused: [], moduleBindings: ['f'], prefix: '$lp_' },
};
const map: SourceMapV3 = { version: 3, sources: ['file:///app/f.js'], names: [], mappings: 'AAAA' };

describe('transform cache: entries', () => {
  test('an entry round-trips; its map is a file beside it that the code refers to', () => {
    const dir = tempDir('cache-unit');
    try {
      const cache = new TransformCache(dir);
      const key = TransformCache.key(contentHash('src'), ['v1', 'file:///app/f.js']);
      assert.equal(cache.get(key), null);
      const stored = cache.set(key, entry, map, path.join(dir, 'app', 'f.js'));
      assert.ok(stored);
      assert.equal(stored.code, `${entry.code}\n//# sourceMappingURL=../${key}.map\n`);
      assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, `${key}.map`), 'utf8')), map);
      assert.deepEqual(cache.get(key), stored);
      assert.deepEqual(cache.stats, { hits: 1, misses: 1, writes: 1, invalid: 0, writeErrors: 0 });
      assert.deepEqual(
        fs.readdirSync(dir).sort(),
        [`${key}.entry`, `${key}.map`],
        'no temporary files left',
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('keys differ with any part and with the content', () => {
    const a = TransformCache.key('h1', ['v', 'file:///a.js', 'module']);
    assert.equal(a, TransformCache.key('h1', ['v', 'file:///a.js', 'module']));
    assert.notEqual(a, TransformCache.key('h2', ['v', 'file:///a.js', 'module']));
    assert.notEqual(a, TransformCache.key('h1', ['v2', 'file:///a.js', 'module']));
    assert.notEqual(a, TransformCache.key('h1', ['v', 'file:///b.js', 'module']));
    assert.notEqual(a, TransformCache.key('h1', ['v', 'file:///a.js', 'commonjs']));
    assert.match(a, /^[0-9a-f]{64}$/);
  });

  test('damaged entries are misses: garbage, truncated, another key, another schema', () => {
    const dir = tempDir('cache-damage');
    try {
      const cache = new TransformCache(dir);
      const key = TransformCache.key('h', ['x']);
      const file = path.join(dir, `${key}.entry`);
      cache.set(key, entry, null, path.join(dir, 'f.js'));
      const good = fs.readFileSync(file, 'utf8');
      const other = TransformCache.key('h', ['y']);
      const damaged = [
        'not an entry at all',
        good.slice(0, -1),
        `${good}x`,
        good.replace(/^livepatch-cache \d+/, 'livepatch-cache 999'),
        good.replace(key, other),
        '',
      ];
      for (const text of damaged) {
        fs.writeFileSync(file, text);
        assert.equal(cache.get(key), null, JSON.stringify(text.slice(0, 60)));
      }
      assert.equal(cache.stats.invalid, damaged.length);
      fs.writeFileSync(file, good);
      assert.deepEqual(cache.get(key), { ...entry });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a directory that cannot be written: no entry, one report, no exception', () => {
    const dir = tempDir('cache-ro');
    try {
      const blocker = path.join(dir, 'not-a-dir');
      fs.writeFileSync(blocker, '');
      const errors: unknown[] = [];
      const cache = new TransformCache(path.join(blocker, 'cache'), (e) => errors.push(e));
      assert.equal(cache.set('k1', entry, map, path.join(dir, 'f.js')), null);
      assert.equal(cache.set('k2', entry, map, path.join(dir, 'f.js')), null);
      assert.equal(errors.length, 1, 'reported once');
      assert.equal(cache.stats.writeErrors, 1);
      assert.equal(cache.get('k1'), null);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

interface Report {
  values: unknown;
  modules: string[];
  stats: {
    modules: number;
    instrumented: number;
    cached: number;
    cache: { hits: number; misses: number; writes: number; invalid: number; writeErrors: number };
  };
}

function report(result: RunNodeResult): Report {
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout.trim().split('\n').pop()!) as Report;
}

describe('transform cache: processes', () => {
  const entryFile = fixture('loader', 'cache', 'main.mjs');
  const run = (cacheDir: string): Promise<RunNodeResult> =>
    runNode(['--import', register, entryFile], {
      env: {
        LIVEPATCH_CACHE_DIR: cacheDir,
        LIVEPATCH_CACHE: undefined,
        LIVEPATCH_INCLUDE: undefined,
        LIVEPATCH_EXCLUDE: undefined,
      },
    });

  test('a warm start instruments nothing: every module comes from the cache', async () => {
    const dir = tempDir('cache-warm');
    try {
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
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a corrupted entry is a miss: that module is instrumented again and the entry rewritten', async () => {
    const dir = tempDir('cache-corrupt');
    try {
      report(await run(dir));
      const entries = fs.readdirSync(dir).filter((n) => n.endsWith('.entry'));
      assert.equal(entries.length, 4);
      const victim = path.join(dir, entries[0]!);
      const text = fs.readFileSync(victim, 'utf8');
      fs.writeFileSync(victim, text.slice(0, Math.floor(text.length / 2)));

      const again = report(await run(dir));
      assert.deepEqual(again.values, [4, 1, 1]);
      assert.equal(again.stats.cache.invalid, 1);
      assert.equal(again.stats.instrumented, 1);
      assert.equal(again.stats.cached, 3);
      assert.equal(fs.readFileSync(victim, 'utf8'), text, 'rewritten whole');

      const healed = report(await run(dir));
      assert.equal(healed.stats.cached, 4);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
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
      const reader = new TransformCache(dir);
      for (const key of keys) assert.ok(reader.get(key), `entry ${key} is whole`);

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
