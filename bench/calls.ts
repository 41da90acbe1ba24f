/**
 * Patched calls vs direct calls. A plain process calling an uninstrumented function directly is
 * the baseline; the subject calls the same body through an instrumented function that is
 * redirected to it — by `redirect()` and by a patch enabled through the patch core — so the
 * difference is exactly the entry check, the gate and the call context. The unpatched
 * instrumented function is measured too. Two functions: a non-trivial one (~50 operations,
 * bench/child/calls-impl.mjs `normalize`) and a trivial one (`add`). Processes in lock step
 * (bench/lib/lockstep.ts), CPU time per call.
 *
 * `node bench/calls.ts [--quick]`
 */
import { lockstepSessions } from './lib/lockstep.ts';
import { QUICK, freshDir } from './lib/proc.ts';
import { median, ratioTarget, report, type Row } from './report.ts';

const SESSIONS = QUICK ? 1 : 2;
const opts = { warmupMs: QUICK ? 600 : 1200, rounds: QUICK ? 4 : 8, roundMs: QUICK ? 120 : 200 };
const env = {
  LIVEPATCH_INCLUDE: 'bench/child/calls-target.mjs',
  LIVEPATCH_CACHE_DIR: freshDir('calls'),
  // The patch variant's events would print a line each.
  LIVEPATCH_LOG: 'off',
};

const FNS = [
  { fn: 'normalize', label: 'non-trivial (normalize, ~50 ops)', calls: 2_000, target: 1.5 },
  { fn: 'add', label: 'trivial (add)', calls: 1_000_000, target: undefined },
];
const VARIANTS = [
  { variant: 'unpatched', label: 'instrumented, unpatched' },
  { variant: 'redirect', label: 'patched by redirect()' },
  { variant: 'patch', label: 'patched by applyPatch()' },
];

const rows: Row[] = [];
for (const f of FNS) {
  for (const v of VARIANTS) {
    const r = await lockstepSessions(
      SESSIONS,
      {
        script: 'calls.mjs',
        args: ['direct', f.fn, 'lockstep'],
        opts: { instrumented: false, env },
      },
      {
        script: 'calls.mjs',
        args: [v.variant, f.fn, 'lockstep'],
        opts: { instrumented: true, env },
      },
      opts,
    );
    const ns = (ms: number): number => (ms * 1e6) / f.calls;
    const ratio = median(r.ratios);
    const base = ns(median(r.a));
    const target =
      f.target !== undefined && v.variant !== 'unpatched' ? ratioTarget(ratio, f.target) : {};
    rows.push({
      name: `${f.label}: ${v.label}`,
      value: `${(base * ratio).toFixed(1)} ns/call`,
      baseline: `${base.toFixed(1)} ns direct`,
      ratio,
      ...target,
      note: `+${(base * (ratio - 1)).toFixed(1)} ns/call; ${r.ratios.length} round pairs, sessions ${r.sessionRatios.map((x) => x.toFixed(3)).join(' ')}`,
    });
  }
}
report('Patched calls vs direct calls (CPU time per call)', rows);
