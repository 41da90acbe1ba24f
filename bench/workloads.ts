/**
 * Instrumented-but-unpatched vs plain on CPU-heavy real library workloads (acorn, magic-string,
 * typescript, prettier, eslint from the repository's node_modules). A plain `node` process and a
 * `node --import register.js` process (LIVEPATCH_INCLUDE=node_modules: every function of the
 * library and its dependencies has an entry check, nothing is patched) run the same harness
 * (bench/child/workload.mjs); after a warm-up they take turns round by round (bench/lib/lockstep.ts)
 * and each round's CPU time per operation is compared with the neighbouring round of the other
 * process. The ratio is the median over all round pairs of all sessions (fresh process pairs).
 *
 * `node bench/workloads.ts [--quick] [--workload acorn,eslint] [--sessions n]
 *    [--env K=V,K2=V2] [--node-args "--flag"]` (the last two for experiments)
 */
import { lockstepSessions } from './lib/lockstep.ts';
import { QUICK, fmt, freshDir, runChild } from './lib/proc.ts';
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
const SESSIONS = Number(argValue('--sessions') ?? (QUICK ? 1 : 3));
const WARMUP_MS = QUICK ? 1000 : 2500;
const ROUNDS = QUICK ? 4 : 6;
const ROUND_MS = QUICK ? 300 : 400;
const TARGET = 1.02;

const cacheDir = freshDir('workloads');
const extraEnv = parseEnv(argValue('--env'));
const env = { LIVEPATCH_INCLUDE: 'node_modules', LIVEPATCH_CACHE_DIR: cacheDir, ...extraEnv };
const nodeArgs = argValue('--node-args')?.split(' ') ?? [];

const rows: Row[] = [];
for (const w of selected) {
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
report('Instrumented, unpatched vs plain: library workloads (CPU time per operation)', rows);

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
