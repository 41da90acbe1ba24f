/**
 * Instrumented-but-unpatched vs plain on CPU-heavy real library workloads (acorn, magic-string,
 * typescript, prettier, eslint from the repository's node_modules).
 *
 * By default both run in one process (bench/child/workload.mjs `inprocess`): the process runs
 * under the loader with LIVEPATCH_INCLUDE set to a twin of the repository's node_modules (hard
 * links in bench/.build/twin), so the library loaded from the twin has an entry check in every
 * function while the same library loaded from the repository stays plain. The two take turns,
 * a block of operations each, a full GC before each block, on `--single-threaded` V8 (no
 * background thread charges CPU time to whichever side is running). Both sides share the
 * process's GC regime, tiering and the machine's moment, which a pair of processes does not:
 * on this machine process pairs spread by ±15% between sessions, more than the 2% target. An
 * A/A control (the twin loaded plain) measures the method's own bias, in the notes.
 *
 * `--separate` measures the old way instead: a plain `node` process and a `node --import
 * register.js` process (LIVEPATCH_INCLUDE=node_modules) run the same harness; after a warm-up
 * they take turns round by round (bench/lib/lockstep.ts) and each round's CPU time per operation
 * is compared with the neighbouring round of the other process. It also sees what the loader's
 * presence costs a whole process (the http benchmark's "loader only" rows measure that).
 *
 * `node bench/workloads.ts [--quick] [--workload acorn,eslint] [--sessions n] [--separate]
 *    [--env K=V,K2=V2] [--node-args "--flag"]` (the last two for experiments)
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { lockstepSessions } from './lib/lockstep.ts';
import { BENCH_DIR, QUICK, REPO, fmt, freshDir, runChild } from './lib/proc.ts';
import { median, ratioTarget, report, spread, type Row } from './report.ts';

interface WorkloadResult {
  name: string;
  msPerOp: number;
  rounds: number[];
  ops: number;
  instrumentation: { modules: number; functions: number; refused: number };
  loader: { modules: number; instrumented: number; cached: number } | null;
}

const ALL: { name: string; label: string }[] = [
  { name: 'acorn', label: 'acorn: parse 240 KB' },
  { name: 'magic-string', label: 'magic-string: edit + hires map' },
  { name: 'typescript', label: 'typescript: transpileModule 35 KB' },
  { name: 'prettier', label: 'prettier: format 35 KB TS' },
  { name: 'eslint', label: 'eslint: lint 50 KB (recommended)' },
];

const only = argValue('--workload')?.split(',');
const selected = ALL.filter((w) => only === undefined || only.includes(w.name));
const SEPARATE = process.argv.includes('--separate');
const SESSIONS = Number(argValue('--sessions') ?? (QUICK ? 1 : 3));
const IN_PROCESS_ROUNDS = QUICK ? 10 : 30;
const WARMUP_MS = QUICK ? 1000 : 2500;
const ROUNDS = QUICK ? 4 : 6;
const ROUND_MS = QUICK ? 300 : 400;
const TARGET = 1.02;

const cacheDir = freshDir('workloads');
const extraEnv = parseEnv(argValue('--env'));
const env = { LIVEPATCH_INCLUDE: 'node_modules', LIVEPATCH_CACHE_DIR: cacheDir, ...extraEnv };
const nodeArgs = argValue('--node-args')?.split(' ') ?? [];

const rows: Row[] = [];
const twin = SEPARATE ? null : makeTwin();
for (const w of selected) {
  if (twin !== null) {
    rows.push(await inProcessRow(w, twin));
    continue;
  }
  // Fill the transform cache first (a cold instrumenting start is the load benchmark's matter).
  const primed = await runChild<WorkloadResult>('workload.mjs', [w.name, '0', '1', '1'], {
    instrumented: true,
    env,
    nodeArgs,
  });
  const info = primed.result.instrumentation;
  if (info.functions === 0) throw new Error(`bench: ${w.name}: nothing was instrumented`);
  const r = await lockstepSessions<WorkloadResult>(
    SESSIONS,
    {
      script: 'workload.mjs',
      args: [w.name, 'lockstep'],
      opts: { instrumented: false, env, nodeArgs },
    },
    {
      script: 'workload.mjs',
      args: [w.name, 'lockstep'],
      opts: { instrumented: true, env, nodeArgs },
    },
    { warmupMs: WARMUP_MS, rounds: ROUNDS, roundMs: ROUND_MS },
    (i, s) =>
      console.error(
        `  ${w.name} session ${i + 1}: ratio ${median(s.ratios).toFixed(3)} (rounds ${spread(s.ratios)}), wall ${median(s.wallRatios).toFixed(3)}`,
      ),
  );
  const loader = r.bResult.loader;
  if (loader !== null && loader.instrumented > 0)
    console.error(`bench: ${w.name}: ${loader.instrumented} modules missed the transform cache`);
  const ratio = median(r.ratios);
  // The value shown is the baseline times the ratio (the median over neighbouring round pairs),
  // so that the two agree; the pooled medians of each side mix sessions of different speed.
  const base = median(r.a);
  rows.push({
    name: w.label,
    value: `${(base * ratio).toFixed(2)} ms/op`,
    baseline: `${base.toFixed(2)} ms/op plain`,
    ratio,
    ...ratioTarget(ratio, TARGET),
    note: `${fmt(info.functions, 0)} functions in ${info.modules} module${info.modules === 1 ? '' : 's'} instrumented; ${r.ratios.length} round pairs, sessions ${r.sessionRatios.map((x) => x.toFixed(3)).join(' ')}, wall-time ratio ${median(r.wallRatios).toFixed(3)}`,
  });
}
report(
  `Instrumented, unpatched vs plain: library workloads (CPU time per operation${twin !== null ? ', in one process' : ''})`,
  rows,
);

interface InProcessResult {
  ratios: number[];
  opsPerBlock: number;
  msPerOp: number;
  instrumentation: { modules: number; functions: number; refused: number };
}

/**
 * A twin of the repository's node_modules: the same files under another path (hard links, so
 * it costs neither time nor space), which Node loads as other modules. `importer.mjs` beside it
 * gives ES module resolution a parent inside the twin.
 */
function makeTwin(): string {
  const dir = path.join(BENCH_DIR, '.build', 'twin');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const linked = spawnSync('cp', ['-al', path.join(REPO, 'node_modules'), dir], {
    encoding: 'utf8',
  });
  // Hard links need cp from GNU coreutils (or BSD's -l) and one file system: otherwise copy.
  if (linked.status !== 0)
    fs.cpSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'), {
      recursive: true,
      verbatimSymlinks: true,
    });
  fs.writeFileSync(
    path.join(dir, 'importer.mjs'),
    'export default (specifier) => import(specifier);\n',
  );
  return dir;
}

/** One workload, plain and instrumented in one process: sessions, then one A/A control. */
async function inProcessRow(w: { name: string; label: string }, twinDir: string): Promise<Row> {
  const run = async (include: string): Promise<InProcessResult> =>
    (
      await runChild<InProcessResult>(
        'workload.mjs',
        [w.name, 'inprocess', String(IN_PROCESS_ROUNDS), twinDir],
        {
          instrumented: true,
          env: { ...env, LIVEPATCH_INCLUDE: include },
          nodeArgs: ['--expose-gc', '--single-threaded', ...nodeArgs],
          timeoutMs: 600_000,
        },
      )
    ).result;
  const all: number[] = [];
  const sessions: number[] = [];
  const plainMs: number[] = [];
  let info: InProcessResult['instrumentation'] | null = null;
  for (let i = 0; i < SESSIONS; i++) {
    const r = await run(path.join(twinDir, 'node_modules'));
    if (r.instrumentation.functions === 0)
      throw new Error(`bench: ${w.name}: nothing was instrumented`);
    info = r.instrumentation;
    all.push(...r.ratios);
    sessions.push(median(r.ratios));
    plainMs.push(r.msPerOp);
    console.error(
      `  ${w.name} session ${i + 1}: ratio ${median(r.ratios).toFixed(3)} (rounds ${spread(r.ratios)}, ${r.opsPerBlock} ops per block)`,
    );
  }
  // The A/A control: the twin is loaded but matches no include rule, so both sides are plain.
  const control = median((await run(path.join(twinDir, 'none'))).ratios);
  console.error(`  ${w.name} A/A control: ${control.toFixed(3)}`);
  const ratio = median(all);
  const sorted = [...all].sort((a, b) => a - b);
  const q = (f: number): string => sorted[Math.floor(f * (sorted.length - 1))]!.toFixed(3);
  const base = median(plainMs);
  return {
    name: w.label,
    value: `${(base * ratio).toFixed(2)} ms/op`,
    baseline: `${base.toFixed(2)} ms/op plain`,
    ratio,
    ...ratioTarget(ratio, TARGET),
    note: `${fmt(info!.functions, 0)} functions in ${info!.modules} module${info!.modules === 1 ? '' : 's'} instrumented; ${all.length} rounds in one process, quartiles ${q(0.25)}–${q(0.75)}, sessions ${sessions.map((x) => x.toFixed(3)).join(' ')}; A/A control ${control.toFixed(3)}`,
  };
}

function parseEnv(spec: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of spec?.split(',') ?? []) {
    const i = kv.indexOf('=');
    if (i > 0) out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

function argValue(flag: string): string | undefined {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
