/**
 * What in the generated code costs, on a library workload: typescript's transpileModule (default)
 * or acorn parsing its 240 KB bundle (`--target acorn`). The library is instrumented by the real
 * instrumenter (bench/.build/dist), then the generated text is edited into variants, each
 * measured in lock step against the plain library (bench/child/check-variant.mjs):
 *   A/A control    the plain library against itself (the harness's own bias)
 *   as generated   the check exactly as the loader emits it
 *   no arguments   the gate call does not forward `...arguments`
 *   no scope accessor  the gate call passes `void 0` instead of the scope accessor arrow
 *   no module accessor  the header does not register the module accessor
 *   no scope writes  the accessors keep their read cases only
 *   minimal slow path  only the fast test stays; the gate call becomes `throw 0` (what the
 *                  bytes of the slow path cost through V8's inlining budgets)
 *   one gate call  the slow path until TRANSFORM_VERSION 21: one call passing `this`,
 *                  `new.target`, the accessor and the arguments, its result compared with the gate
 *   no check       the module header only, no entry checks
 *   no wrappers    functions that still get a parameter wrapper lose it (and its check)
 *   slot object    the check reads `g` of the function's slot object (TRANSFORM_VERSION 15)
 *   header only    no checks, wrappers, module accessor or markers: `enter()` and its cells
 * and some combinations.
 * The child also counts GCs per operation, which shows where the time goes (allocation).
 *
 * `--in-process` measures each variant and the plain library in one process instead, operations
 * alternating (the A/A control loads a second plain copy): no GC-regime or tiering
 * difference between two processes, which on this machine spreads process pairs by ±15%. It
 * runs the children with `--single-threaded` (no background compilation or GC threads charging
 * CPU time to whichever side is running) and `--expose-gc`.
 *
 * `node bench/check-shape.ts [--quick] [--target acorn|typescript] [--variants 'no check|no arguments'] [--sessions n] [--node-args "--flag …"] [--in-process]`
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import vm from 'node:vm';

import { lockstepSessions } from './lib/lockstep.ts';
import { shapeVariants } from './lib/shapes.ts';
import { freshDir, loaderPaths, QUICK, REPO, runChild } from './lib/proc.ts';
import { median, report, type Row } from './report.ts';

interface VariantResult {
  ops: number;
  minorPerOp: number;
  majorPerOp: number;
}

const TARGETS: Record<string, string> = {
  acorn: 'node_modules/acorn/dist/acorn.js',
  typescript: 'node_modules/typescript/lib/typescript.js',
};
const target = argValue('--target') ?? 'typescript';
if (TARGETS[target] === undefined)
  throw new Error(`--target must be one of ${Object.keys(TARGETS).join(', ')}`);
const libFile = path.join(REPO, TARGETS[target]);
const source = fs.readFileSync(libFile, 'utf8');
const url = pathToFileURL(libFile).href;
const dist = path.dirname(loaderPaths().api);
const { instrument } = (await import(
  path.join(dist, 'instrument', 'transform.js')
)) as typeof import('../src/instrument/transform.ts');
const result = instrument(source, {
  url,
  format: 'commonjs',
  filename: libFile,
  sourceMap: false,
});

const dir = freshDir('check-shape');
const metaFile = path.join(dir, 'meta.json');
fs.writeFileSync(
  metaFile,
  JSON.stringify({
    url,
    hash: 'bench',
    functions: result.functions,
    refused: result.refused,
    moduleBindings: result.moduleBindings,
  }),
);

const VARIANTS = shapeVariants(result.prefix, result.functions.length);

const SESSIONS = Number(argValue('--sessions') ?? 1);
// Diagnostic runs pin the young generation (for instance `--node-args "--min-semi-space-size=16
// --max-semi-space-size=16"`): V8 otherwise sizes it by heuristics that put whole processes into
// a fast or a slow GC regime at random, which swamps the effect of the check's shape.
const nodeArgs = argValue('--node-args')?.split(' ').filter(Boolean) ?? [];
const only = argValue('--variants')?.split('|');
const unknown = only?.filter((name) => !VARIANTS.some((v) => v.name === name)) ?? [];
if (unknown.length > 0) {
  throw new Error(
    `--variants: no variant named ${unknown.map((n) => `'${n}'`).join(', ')}; the variants are ${VARIANTS.map((v) => `'${v.name}'`).join(', ')}`,
  );
}
const inProcess = process.argv.includes('--in-process');
const opts = { warmupMs: QUICK ? 1000 : 2500, rounds: QUICK ? 4 : 10, roundMs: 400 };
const rows: Row[] = [];
for (const v of VARIANTS.filter((x) => only === undefined || only.includes(x.name))) {
  const code = v.edit === null ? source : v.edit(result.code);
  if (v.edit !== null && v.name !== 'as generated' && code === result.code) {
    console.error(
      `bench: check-shape: variant '${v.name}' changed nothing (the generated shape changed); skipped`,
    );
    continue;
  }
  if (v.edit !== null && !compiles(v.name, code)) continue;
  const file = v.edit === null ? 'plain' : path.join(dir, `${v.name.replace(/\W+/g, '-')}.cjs`);
  if (v.edit !== null) fs.writeFileSync(file, code);
  if (inProcess) {
    // A variant that fails at run time is reported and skipped: the other rows still print.
    try {
      rows.push(await inProcessRow(v.name, file, code.length));
    } catch (err) {
      console.error(`bench: check-shape: variant '${v.name}' failed: ${(err as Error).message}`);
    }
    continue;
  }
  const r = await lockstepSessions<VariantResult>(
    SESSIONS,
    {
      script: 'check-variant.mjs',
      args: [target, 'plain', metaFile, 'lockstep'],
      opts: { instrumented: false, nodeArgs },
    },
    {
      script: 'check-variant.mjs',
      args: [target, file, metaFile, 'lockstep'],
      opts: { instrumented: false, nodeArgs },
    },
    opts,
  );
  const ratio = median(r.ratios);
  rows.push({
    name: `${target}, ${v.name}`,
    value: `${(median(r.a) * ratio).toFixed(2)} ms/op`,
    baseline: `${median(r.a).toFixed(2)} ms/op plain`,
    ratio,
    note: `${r.ratios.length} round pairs, sessions ${r.sessionRatios.map((x) => x.toFixed(3)).join(' ')}; GCs per operation: minor ${r.bResult.minorPerOp.toFixed(2)} vs ${r.aResult.minorPerOp.toFixed(2)}, major ${r.bResult.majorPerOp.toFixed(2)} vs ${r.aResult.majorPerOp.toFixed(2)}; code ${(code.length / 1024).toFixed(0)} KB vs ${(source.length / 1024).toFixed(0)} KB`,
  });
}
report(
  `Entry check shape: variants of instrumented ${target} vs plain (CPU time per operation${inProcess ? ', in one process' : ''}${nodeArgs.length > 0 ? `; node ${nodeArgs.join(' ')}` : ''})`,
  rows,
);

/** One variant measured in process against the plain library: medians over sessions' rounds. */
async function inProcessRow(name: string, file: string, size: number): Promise<Row> {
  const rounds = QUICK ? 10 : 30;
  const all: number[] = [];
  const sessions: number[] = [];
  for (let i = 0; i < SESSIONS; i++) {
    const r = await runChild<{ ratios: number[] }>(
      'check-variant.mjs',
      [target, file, metaFile, 'inprocess', String(rounds)],
      { instrumented: false, nodeArgs: ['--expose-gc', '--single-threaded', ...nodeArgs] },
    );
    all.push(...r.result.ratios);
    sessions.push(median(r.result.ratios));
  }
  const sorted = [...all].sort((a, b) => a - b);
  const q = (f: number): string => sorted[Math.floor(f * (sorted.length - 1))]!.toFixed(3);
  return {
    name: `${target}, ${name}`,
    value: `${median(all).toFixed(3)}`,
    baseline: 'plain, same process',
    ratio: median(all),
    note: `${all.length} rounds, quartiles ${q(0.25)}–${q(0.75)}, sessions ${sessions.map((x) => x.toFixed(3)).join(' ')}; code ${(size / 1024).toFixed(0)} KB vs ${(source.length / 1024).toFixed(0)} KB`,
  };
}

/** An edit that breaks the syntax is a bug of the edit (the generated shape changed): say so. */
function compiles(name: string, code: string): boolean {
  try {
    new vm.Script(`(function (exports, require, module, __filename, __dirname) {${code}\n})`);
    return true;
  } catch (err) {
    console.error(
      `bench: check-shape: variant '${name}' does not compile (${(err as Error).message}); skipped`,
    );
    return false;
  }
}

function argValue(flag: string): string | undefined {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
