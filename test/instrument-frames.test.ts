/**
 * Live-frame counting of async functions (the consistency model's input): every frame that
 * begins ends exactly once, however the function is left, and a suspended frame stays counted.
 * Async functions whose own code runs nothing on exit count through their returns (try/catch);
 * the others keep a finally, which runs after theirs.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Deferred } from './helpers/gate.ts';
import { loadCjs } from './support/instrumented.ts';

type Fn = (...args: unknown[]) => Promise<unknown>;

describe('live frames of async functions', () => {
  it('end exactly once on every way out, and stay counted while suspended', async () => {
    const gate = new Deferred<void>();
    const m = loadCjs<Record<string, Fn>>(`
      exports.value = async function value(x) { await null; return x * 2; };
      exports.bare = async function bare(x) { if (x) return
        (x); await null; };
      exports.falls = async function falls() { await null; };
      exports.throws = async function throws() { await null; throw new Error('boom'); };
      exports.rejects = async function rejects() { return await Promise.reject(new Error('no')); };
      exports.caught = async function caught() { try { return await Promise.reject(1); } catch { return 'caught'; } };
      exports.nested = async function nested() { const inner = async () => { await null; return 'in'; }; return inner(); };
      exports.ownFinally = async function ownFinally(log) { try { return 'f'; } finally { await null; log.push('finally'); } };
      exports.concise = async (x) => x + 1;
      exports.wait = async function wait(p) { await p; return 'waited'; };
    `);
    const slotOf = (name: string) => {
      const info = m.result.functions.find((f) => f.name === name || f.name.endsWith(`.${name}`));
      assert.ok(info, name);
      return m.module.s(info.index) as unknown as { n: number };
    };
    const log: string[] = [];
    assert.equal(await m.exports['value']!(2), 4);
    assert.equal(await m.exports['bare']!(1), undefined);
    assert.equal(await m.exports['bare']!(0), undefined);
    assert.equal(await m.exports['falls']!(), undefined);
    await assert.rejects(m.exports['throws']!(), /boom/);
    await assert.rejects(m.exports['rejects']!(), /no/);
    assert.equal(await m.exports['caught']!(), 'caught');
    assert.equal(await m.exports['nested']!(), 'in');
    assert.equal(await m.exports['ownFinally']!(log), 'f');
    assert.deepEqual(log, ['finally']);
    assert.equal(await m.exports['concise']!(1), 2);
    for (const name of [
      'value',
      'bare',
      'falls',
      'throws',
      'rejects',
      'caught',
      'nested',
      'ownFinally',
      'concise',
    ]) {
      assert.equal(slotOf(name).n, 0, `${name}: every frame ended once`);
    }
    const waiting = m.exports['wait']!(gate.promise);
    assert.equal(slotOf('wait').n, 1, 'a suspended frame is live');
    gate.resolve();
    assert.equal(await waiting, 'waited');
    assert.equal(slotOf('wait').n, 0);
    // Which form each took: returns rewritten where nothing runs on exit, finally otherwise.
    assert.match(m.result.code, /async function value\(x\) \{.*\}catch\(\$lp_e\)/);
    assert.match(
      m.result.code,
      /async function ownFinally\(log\) \{.*\}finally\{\$lp_\d+\.x\(\$lp_t\)\}/,
    );
  });
});
