/**
 * ES modules read most slots through module-level consts, which exist only once the module body
 * has started. Functions that another module of an import cycle can call before that (exported
 * function declarations and what they reach) read theirs through the slots module's import
 * bindings instead: they must work, and be patched, even then.
 */
import assert from 'node:assert/strict';
import { pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';
import { redirect, type Replacement } from '../src/runtime/redirect.ts';
import { table } from '../src/runtime/table.ts';
import { pathFor, prepareEsm } from './support/instrumented.ts';

describe('ES module import cycles', () => {
  it('functions called before the module body runs work, and are patched if a patch targets them', async () => {
    const a = pathFor('cycle-a', 'module');
    const b = pathFor('cycle-b', 'module');
    const urlA = prepareEsm(
      `
      import { fromB, fromBAsync } from ${JSON.stringify(pathToFileURL(b).href)};
      export function early(x) { return helper(x) + (() => 1)(); }
      function helper(x) { return x * 2; }
      export async function earlyAsync(x) { return helper(x) + 1; }
      class Late { m() { return 'late'; } }
      export const late = () => new Late().m();
      export const lateAsync = async () => 'lateAsync';
      export const seen = fromB;
      export const seenAsync = fromBAsync;
    `,
      'cycle-a',
    );
    prepareEsm(
      `
      import { early, earlyAsync } from ${JSON.stringify(pathToFileURL(a).href)};
      export const fromB = early(20);
      export const fromBAsync = earlyAsync(20);
    `,
      'cycle-b',
    );
    const header = (await import('node:fs')).readFileSync(a, 'utf8').split('\n')[0]!;
    // Entry checks read gate cells, which the slots module defines before the cycle runs. Only
    // async functions and generators read their slot (to count frames): earlyAsync, which runs
    // before this body, through an import; lateAsync through a const.
    assert.match(
      header,
      /^import\{s3 as \$lp_3,m as \$lp_m\}from"#livepatch\/slots\?c=\$lp_[0-9a-f]{12}_&s=3";const \$lp_6=\$lp_m\.s\(6\);/,
    );

    const installed: { remove(): void }[] = [];
    const stop = table.onModule((mod) => {
      if (mod.meta.url !== urlA) return;
      installed.push(
        redirect({ module: a, function: 'helper' }, ((x: number) => x * 3) as Replacement),
      );
    });
    try {
      const m = (await import(urlA)) as {
        seen: number;
        seenAsync: Promise<number>;
        late(): string;
        lateAsync(): Promise<string>;
        early(x: number): number;
      };
      assert.equal(
        m.seen,
        61,
        'the call from the other module ran before this body, on the patched helper',
      );
      assert.equal(await m.seenAsync, 61, 'so did the async one, with its frame counted');
      assert.equal(m.late(), 'late');
      assert.equal(await m.lateAsync(), 'lateAsync');
      assert.equal(m.early(1), 4);
    } finally {
      stop();
      for (const r of installed) r.remove();
    }
  });
});
