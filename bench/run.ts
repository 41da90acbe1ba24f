/**
 * `npm run bench`: runs every benchmark, each in its own process (and each starting the child
 * processes it measures), collects their `BENCH {json}` rows, stores them in
 * bench/results/node<major>.json and rewrites the measured section of docs/benchmarks.md from
 * all stored results.
 *
 *   node bench/run.ts [--only name[,name]] [--quick] [--no-write | --write] [--docs-only]
 *
 * --quick runs fewer repetitions (a smoke run) and does not write results unless --write is
 * given. The loader is built once into bench/.build/dist (see bench/lib/proc.ts) and every
 * benchmark runs on the Node that runs this script.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { BENCH_DIR, buildDist, REPO } from './lib/proc.ts';
import { load, machine, type Row } from './report.ts';

interface Benchmark {
  readonly name: string;
  readonly file: string;
  readonly args?: readonly string[];
  readonly title: string;
  /** What it shows, for the document. */
  readonly about: string;
}

const BENCHMARKS: readonly Benchmark[] = [
  {
    name: 'workloads',
    file: 'workloads.ts',
    title: 'Library workloads: instrumented, unpatched vs plain',
    about:
      'CPU time per operation at steady state, plain and instrumented copies of the library taking turns in one process (see Method). Every function of the instrumented copy and its dependencies has an entry check; nothing is patched. Target: ratio ≤ 1.02.',
  },
  {
    name: 'http',
    file: 'http.ts',
    title: 'HTTP server on loopback: instrumented, unpatched vs plain',
    about:
      'A node:http JSON service (routing, validation, a class-based store) instrumented whole, against the same service plain; one load generator alternates batches between the two. Target: ratio ≤ 1.02.',
  },
  {
    name: 'calls',
    file: 'calls.ts',
    title: 'Patched calls vs direct calls',
    about:
      'A call through an instrumented function redirected to a replacement, against a direct call of the same body in a plain process. Target for the non-trivial function: ratio ≤ 1.5.',
  },
  {
    name: 'load',
    file: 'load.ts',
    title: 'Load time: cold and warm transform cache',
    about:
      'Whole-process wall time, spawn to exit. Cold: empty transform cache. Warm: cache filled by an earlier run. Target: warm ≤ 1.1 × plain.',
  },
  {
    name: 'memory',
    file: 'memory.ts',
    title: 'Memory per instrumented function',
    about:
      'Heap and RSS held after full GCs, instrumented (warm cache) vs plain, and the difference per instrumented function.',
  },
  {
    name: 'enable',
    file: 'enable.ts',
    title: 'Enabling a patch: event-loop pause',
    about:
      'The synchronous part of enable() for patches of 1, 100 and 10,000 functions. Target: < 1 ms for a typical patch (up to 100 functions).',
  },
  {
    name: 'tasks',
    file: 'tasks.ts',
    title: 'Consistency model: task tracking and transitions',
    about:
      'Frame accounting on instrumented async calls, with no patch and with a transition held open, against the same code plain; and how long a transition takes with 10,000 idle tasks.',
  },
  {
    name: 'codegen',
    file: 'codegen.ts',
    title: 'Generated code: probes of its shape (diagnostic)',
    about:
      'Tiny program pairs that differ in one choice the instrumenter makes, each a fresh process, alternating, medians: bytecode size of an instrumented method, a call through a binding that never-run code could assign, where an ES module keeps its slots, and how an async function counts its frame. docs/architecture.md cites these rows.',
  },
  {
    name: 'check-shape',
    file: 'check-shape.ts',
    args: ['--variants', 'as generated|no arguments|no scope accessor|no check', '--sessions', '2'],
    title: 'Generated code shape (diagnostic)',
    about:
      'typescript (the library) instrumented by the real instrumenter, then its generated code edited into variants, each against plain typescript on `ts.transpileModule`: which part of the entry check costs. `node bench/check-shape.ts` runs more variants (no module accessor, minimal slow path, combinations) and `--target acorn`. GCs per operation are counted because the cost shows up as allocation: forwarding `arguments` makes every call allocate an arguments object in the tiers below TurboFan.',
  },
];

interface Stored {
  readonly title: string;
  readonly date: string;
  readonly node: string;
  readonly machine: string;
  readonly loadBefore: string;
  readonly loadAfter: string;
  readonly seconds: number;
  readonly quick: boolean;
  readonly rows: (Row & { title: string })[];
}

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const onlyArg = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : undefined;
const only = onlyArg?.split(',');
const write = argv.includes('--write') || (!quick && !argv.includes('--no-write'));
const unknown = only?.filter((n) => !BENCHMARKS.some((b) => b.name === n)) ?? [];
if (unknown.length > 0) {
  console.error(
    `unknown benchmark ${unknown.join(', ')}; known: ${BENCHMARKS.map((b) => b.name).join(', ')}`,
  );
  process.exit(2);
}

// `--docs-only`: regenerate docs/benchmarks.md from the stored results, measure nothing.
if (argv.includes('--docs-only')) {
  await writeDocs();
  process.exit(0);
}

const started = Date.now();
console.log(`livepatch benchmarks — ${machine()}${quick ? ' (quick)' : ''}`);
console.log('building the loader into bench/.build/dist …');
const dist = buildDist();

const results: Record<string, Stored> = {};
let failed = 0;
for (const b of BENCHMARKS.filter((x) => only === undefined || only.includes(x.name))) {
  console.log(`\n=== ${b.name}: ${b.title}`);
  const loadBefore = load();
  const t0 = Date.now();
  const { code, rows } = await runBenchmark(b, dist);
  const seconds = (Date.now() - t0) / 1000;
  if (code !== 0 || rows.length === 0) {
    failed++;
    console.error(
      `=== ${b.name} FAILED (exit code ${code}); its stored results are left as they were`,
    );
    continue;
  }
  results[b.name] = {
    title: b.title,
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    node: process.version,
    machine: machine(),
    loadBefore,
    loadAfter: load(),
    seconds,
    quick,
    rows,
  };
  console.log(`=== ${b.name} took ${seconds.toFixed(0)} s`);
}
console.log(`\nall benchmarks took ${((Date.now() - started) / 1000).toFixed(0)} s`);

if (write && Object.keys(results).length > 0) {
  const major = process.versions.node.split('.')[0];
  const file = path.join(BENCH_DIR, 'results', `node${major}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const stored = fs.existsSync(file)
    ? (JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, Stored>)
    : {};
  fs.writeFileSync(file, `${JSON.stringify({ ...stored, ...results }, null, 2)}\n`);
  await writeDocs();
  console.log(`results written to ${path.relative(REPO, file)} and docs/benchmarks.md`);
} else if (!write) {
  console.log('results not written (quick run; pass --write to store them)');
}
process.exitCode = failed > 0 ? 1 : 0;

function runBenchmark(
  b: Benchmark,
  distDir: string,
): Promise<{ code: number | null; rows: Stored['rows'] }> {
  const rows: Stored['rows'] = [];
  const child = spawn(
    process.execPath,
    [path.join(BENCH_DIR, b.file), ...(b.args ?? []), ...(quick ? ['--quick'] : [])],
    {
      cwd: REPO,
      env: { ...process.env, BENCH_DIST: distDir, BENCH_QUICK: quick ? '1' : '0' },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let buf = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.startsWith('BENCH ')) rows.push(JSON.parse(line.slice(6)) as Stored['rows'][number]);
      else console.log(line);
    }
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, rows })));
}

/** Regenerates the measured section of docs/benchmarks.md from bench/results/*.json. */
async function writeDocs(): Promise<void> {
  const docFile = path.join(REPO, 'docs', 'benchmarks.md');
  const START =
    '<!-- measured:start (generated by `npm run bench`; edit bench/run.ts, not this section) -->';
  const END = '<!-- measured:end -->';
  const dir = path.join(BENCH_DIR, 'results');
  const files = fs
    .readdirSync(dir)
    .filter((f) => /^node\d+\.json$/.test(f))
    .sort((a, b) => Number(a.slice(4, -5)) - Number(b.slice(4, -5)));
  const out: string[] = [];
  for (const f of files) {
    const all = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Record<string, Stored>;
    const runs = BENCHMARKS.filter((b) => all[b.name] !== undefined).map((b) => ({
      b,
      s: all[b.name]!,
    }));
    if (runs.length === 0) continue;
    out.push(
      `## Node ${f.slice(4, -5)} (${[...new Set(runs.map((r) => r.s.node))].join(', ')})`,
      '',
    );
    out.push(`Machine: ${runs[0]!.s.machine.replace(/, Node v[\d.]+$/, '')}.`, '');
    const targeted = runs.flatMap(({ b, s }) =>
      s.rows.filter((r) => r.target !== undefined).map((r) => ({ b, r })),
    );
    if (targeted.length > 0) {
      out.push(
        '### Targets',
        '',
        '| benchmark | measurement | value | baseline | ratio | target | met? |',
        '|---|---|---:|---:|---:|---|---|',
      );
      for (const { b, r } of targeted)
        out.push(
          `| ${b.name} | ${cell(r.name)} | ${cell(r.value)} | ${cell(r.baseline)} | ${r.ratio.toFixed(3)} | ${cell(r.target!)} | ${r.met === true ? 'yes' : '**no**'} |`,
        );
      out.push('');
    }
    for (const { b, s } of runs) {
      out.push(`### ${s.title}`, '');
      out.push(`${b.about}`, '');
      out.push(
        `_${s.date}, Node ${s.node}, took ${s.seconds.toFixed(0)} s, 1-minute load average ${s.loadBefore} → ${s.loadAfter}${s.quick ? ', **quick run** (fewer repetitions)' : ''}._`,
        '',
      );
      out.push(
        '| measurement | value | baseline | ratio | target | met? | notes |',
        '|---|---:|---:|---:|---|---|---|',
      );
      for (const r of s.rows) {
        out.push(
          `| ${cell(r.name)} | ${cell(r.value)} | ${cell(r.baseline)} | ${r.ratio.toFixed(3)} | ${cell(r.target ?? '')} | ${r.target === undefined ? '' : r.met === true ? 'yes' : '**no**'} | ${cell(r.note ?? '')} |`,
        );
      }
      out.push('');
    }
  }
  const section = `${START}\n\n${out.join('\n')}\n${END}`;
  let doc = fs.existsSync(docFile)
    ? fs.readFileSync(docFile, 'utf8')
    : `# Benchmarks\n\n${START}\n${END}\n`;
  const i = doc.indexOf(START.slice(0, 22));
  const j = doc.indexOf(END);
  doc =
    i >= 0 && j > i
      ? doc.slice(0, i) + section + doc.slice(j + END.length)
      : `${doc.trimEnd()}\n\n${section}\n`;
  // Formatted as the repository formats Markdown, so that `npm run format:check` stays clean.
  const prettier = await import('prettier');
  const config = (await prettier.resolveConfig(docFile)) ?? {};
  fs.writeFileSync(docFile, await prettier.format(doc, { ...config, filepath: docFile }));
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}
