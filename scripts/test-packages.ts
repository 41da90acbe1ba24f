/**
 * Transparency check on code nobody here wrote: the unmodified test suites of popular npm
 * packages, run once without livepatch (baseline) and once with every module instrumented.
 *
 *   npm run test:packages                                  # all packages, pinned Node
 *   npm run test:packages -- --node /path/to/node          # another Node (e.g. 26)
 *   npm run test:packages -- --only qs,minimist            # some packages
 *   npm run test:packages -- --markdown                    # also print the table as Markdown
 *
 * Packages, exact versions, the dependencies their tests load and their test commands are in
 * test/packages/packages.json. Each package's registry tarball (which holds its tests) is
 * fetched with `npm pack` into a cache outside the repository ($LIVEPATCH_PKG_CACHE, default
 * <tmpdir>/livepatch-packages), extracted, and given its test dependencies with `npm install`;
 * all of that is reused by later runs. The instrumented run sets
 *
 *   NODE_OPTIONS="--import=<src/loader/register.ts> --import=<test/packages/probe.ts>"
 *
 * so every Node process the suite starts (test runners, their child processes, CLIs) loads the
 * loader with its default settings: the package's files, its tests and everything in
 * node_modules are instrumented. The probe records, per process, which modules the runtime
 * holds; a run counts as instrumented only if the package's own files are among them.
 *
 * Ends with `N passed, N failed` (packages whose instrumented run passed) and exits 1 if any
 * instrumented run failed. See docs/transparency.md.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import type { ProbeRecord } from '../test/packages/probe.ts';

interface PackageSpec {
  readonly name: string;
  readonly version: string;
  readonly style: string;
  readonly about?: string;
  /** Exact versions of what the tests load, instead of the package's own devDependencies. */
  readonly devDependencies: Readonly<Record<string, string>>;
  /** Shell command run once in the package directory after installing (its part of the cache). */
  readonly setup?: string;
  /** Shell command run in the package directory. */
  readonly test: string;
  readonly env?: Readonly<Record<string, string>>;
  /** Programs the tests need on PATH. */
  readonly needs?: readonly string[];
  readonly timeoutSeconds?: number;
}

interface RunResult {
  readonly ok: boolean;
  readonly code: number | null;
  readonly signal: string | null;
  readonly timedOut: boolean;
  readonly seconds: number;
  readonly counts: Counts | null;
  readonly log: string;
}

interface Counts {
  tests: number;
  pass: number;
  fail: number;
}

interface Evidence {
  processes: number;
  /** Processes in which the loader was installed. */
  withLoader: number;
  /** Distinct instrumented files, by kind. */
  own: number;
  tests: number;
  deps: number;
  functions: number;
  refused: { file: string; name: string; line: number; reason: string }[];
  fallbacks: number;
  syntaxErrors: number;
  instrumentedByParser: number;
  fromCache: number;
}

interface PackageResult {
  readonly spec: PackageSpec;
  readonly setupError: string | null;
  readonly baseline: RunResult | null;
  readonly instrumented: RunResult | null;
  readonly evidence: Evidence | null;
  /** Why the instrumented run counts as failed, when it does. */
  readonly problems: string[];
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const registerUrl = pathToFileURL(path.join(repoRoot, 'src/loader/register.ts')).href;
const probeUrl = pathToFileURL(path.join(repoRoot, 'test/packages/probe.ts')).href;
const configFile = path.join(repoRoot, 'test/packages/packages.json');

function usage(): never {
  console.error('usage: node scripts/test-packages.ts [--node <path>] [--only a,b] [--markdown]');
  process.exit(2);
}

function parseArgs(argv: string[]): { node: string; only: string[] | null; markdown: boolean } {
  let node = process.execPath;
  let only: string[] | null = null;
  let markdown = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) usage();
      return v;
    };
    if (arg === '--node') node = path.resolve(value());
    else if (arg.startsWith('--node=')) node = path.resolve(arg.slice('--node='.length));
    else if (arg === '--only') only = value().split(',').filter(Boolean);
    else if (arg.startsWith('--only='))
      only = arg.slice('--only='.length).split(',').filter(Boolean);
    else if (arg === '--markdown') markdown = true;
    else usage();
  }
  return { node, only, markdown };
}

/** Environment for everything we start: none of npm's per-script variables, no livepatch. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (
      /^npm_/i.test(k) ||
      k.startsWith('LIVEPATCH_') ||
      k === 'NODE_TEST_CONTEXT' ||
      k === 'INIT_CWD'
    ) {
      continue;
    }
    env[k] = v;
  }
  return env;
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): string {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(
      `${cmd} ${args.join(' ')} exited with ${r.status}:\n${(r.stderr || r.stdout).trim()}`,
    );
  }
  return r.stdout;
}

function tarballName(spec: PackageSpec): string {
  return `${spec.name.replace(/^@/, '').replace('/', '-')}-${spec.version}.tgz`;
}

/** Fetch, extract and install once; later runs reuse the directory while the spec is the same. */
function prepare(spec: PackageSpec, cacheDir: string, npmEnv: NodeJS.ProcessEnv): string {
  const tarballs = path.join(cacheDir, 'tarballs');
  fs.mkdirSync(tarballs, { recursive: true });
  const tgz = path.join(tarballs, tarballName(spec));
  if (!fs.existsSync(tgz)) {
    const out = run(
      'npm',
      [
        'pack',
        `${spec.name}@${spec.version}`,
        '--pack-destination',
        tarballs,
        '--json',
        '--loglevel=error',
      ],
      tarballs,
      npmEnv,
    );
    const filename = (JSON.parse(out) as { filename: string }[])[0]?.filename;
    if (filename && path.join(tarballs, filename) !== tgz)
      fs.renameSync(path.join(tarballs, filename), tgz);
    if (!fs.existsSync(tgz)) throw new Error(`npm pack did not produce ${tgz}`);
  }

  const base = path.join(cacheDir, 'packages', `${spec.name.replace('/', '+')}@${spec.version}`);
  const stampFile = path.join(base, 'ready.json');
  const stamp = JSON.stringify({
    version: spec.version,
    devDependencies: spec.devDependencies,
    setup: spec.setup,
  });
  const dir = path.join(base, 'package');
  if (
    fs.existsSync(stampFile) &&
    fs.readFileSync(stampFile, 'utf8') === stamp &&
    fs.existsSync(dir)
  )
    return dir;

  fs.rmSync(base, { recursive: true, force: true });
  const unpack = path.join(base, 'unpack');
  fs.mkdirSync(unpack, { recursive: true });
  run('tar', ['-xzf', tgz, '-C', unpack], base, npmEnv);
  const top = fs.readdirSync(unpack);
  if (top.length !== 1)
    throw new Error(`${tgz}: expected one top-level directory, found ${top.join(', ')}`);
  fs.renameSync(path.join(unpack, top[0]!), dir);
  fs.rmdirSync(unpack);

  // Install the package's dependencies and only the dev dependencies its tests load: its whole
  // devDependencies (linters, bundlers, coverage) would take minutes. package.json is put back
  // byte for byte afterwards; tests that read it see the published file.
  const pkgFile = path.join(dir, 'package.json');
  const original = fs.readFileSync(pkgFile);
  const pkg = JSON.parse(original.toString('utf8')) as Record<string, unknown>;
  const deps = { ...(pkg.dependencies as Record<string, string> | undefined) };
  if (Object.keys(deps).length > 0 || Object.keys(spec.devDependencies).length > 0) {
    const forInstall: Record<string, unknown> = {
      ...pkg,
      devDependencies: spec.devDependencies,
      scripts: {},
    };
    delete forInstall.workspaces;
    fs.writeFileSync(pkgFile, JSON.stringify(forInstall, null, 2));
    try {
      run(
        'npm',
        [
          'install',
          '--ignore-scripts',
          '--no-audit',
          '--no-fund',
          '--no-package-lock',
          '--loglevel=error',
        ],
        dir,
        npmEnv,
      );
    } finally {
      fs.writeFileSync(pkgFile, original);
    }
  }
  if (spec.setup) run('sh', ['-c', spec.setup], dir, npmEnv);
  fs.writeFileSync(stampFile, stamp);
  return dir;
}

function parseCounts(output: string): Counts | null {
  // TAP (tape, node:test's tap reporter): "# tests 12"; node:test's spec reporter: "ℹ tests 12".
  const re = /^(?:#|ℹ)\s+(tests|pass|fail)\s+(\d+)\s*$/gm;
  const found: Partial<Counts> = {};
  for (const m of output.matchAll(re)) found[m[1] as keyof Counts] = Number(m[2]);
  if (found.tests === undefined && found.pass === undefined) return null;
  const pass = found.pass ?? 0;
  const fail = found.fail ?? 0;
  return { tests: found.tests ?? pass + fail, pass, fail };
}

function runSuite(
  spec: PackageSpec,
  dir: string,
  env: NodeJS.ProcessEnv,
  logFile: string,
): Promise<RunResult> {
  const timeoutMs = (spec.timeoutSeconds ?? 600) * 1000;
  const started = process.hrtime.bigint();
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', spec.test], {
      cwd: dir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // own process group, so a timeout stops the whole suite
    });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => chunks.push(c));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutMs);
    const finish = (code: number | null, signal: string | null, error?: Error): void => {
      clearTimeout(timer);
      const log = Buffer.concat(chunks).toString('utf8') + (error ? `\n${error.message}\n` : '');
      fs.writeFileSync(logFile, log);
      resolve({
        ok: code === 0 && !timedOut && !error,
        code,
        signal,
        timedOut,
        seconds: Number(process.hrtime.bigint() - started) / 1e9,
        counts: parseCounts(log),
        log: logFile,
      });
    };
    child.on('error', (error) => finish(null, null, error));
    child.on('close', (code, signal) => finish(code, signal));
  });
}

function gatherEvidence(probeFile: string, dir: string): Evidence {
  const ev: Evidence = {
    processes: 0,
    withLoader: 0,
    own: 0,
    tests: 0,
    deps: 0,
    functions: 0,
    refused: [],
    fallbacks: 0,
    syntaxErrors: 0,
    instrumentedByParser: 0,
    fromCache: 0,
  };
  if (!fs.existsSync(probeFile)) return ev;
  const files = new Map<string, number>();
  const refused = new Map<string, Evidence['refused'][number]>();
  for (const line of fs.readFileSync(probeFile, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    const rec = JSON.parse(line) as ProbeRecord;
    ev.processes++;
    if (rec.loader) ev.withLoader++;
    for (const m of rec.modules) files.set(m.file, m.functions);
    for (const r of rec.refused) refused.set(`${r.file}:${r.line}:${r.name}`, r);
    const s = (rec.stats ?? {}) as Record<string, number>;
    ev.fallbacks += s.fallbacks ?? 0;
    ev.syntaxErrors += s.syntaxErrors ?? 0;
    ev.instrumentedByParser += s.instrumented ?? 0;
    ev.fromCache += s.cached ?? 0;
  }
  // Module file names are real paths; the cache directory may sit behind a symlink.
  const prefix = fs.realpathSync(dir) + path.sep;
  for (const [file, functions] of files) {
    ev.functions += functions;
    if (!file.startsWith(prefix)) {
      ev.deps++; // outside the package: a dependency reached through a symlink, say
      continue;
    }
    const rel = file.slice(prefix.length).split(path.sep);
    if (rel.includes('node_modules')) ev.deps++;
    else if (
      rel.some((p) => /^(?:tests?|__tests__|spec)$/.test(p)) ||
      /\.(?:test|spec)\.[cm]?[jt]s$/.test(file)
    )
      ev.tests++;
    else ev.own++;
  }
  ev.refused = [...refused.values()];
  return ev;
}

function tail(file: string, lines: number): string {
  try {
    const text = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    // Generated code can make a single line very long (an error's source excerpt): cut it.
    return text
      .slice(-lines)
      .map((l) => `    | ${l.length > 240 ? `${l.slice(0, 240)}…` : l}`)
      .join('\n');
  } catch {
    return '    | (no log)';
  }
}

function hasProgram(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

function fmtCounts(c: Counts | null): string {
  return c ? `${c.pass}/${c.tests}` : '-';
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function markdown(rows: string[][]): string {
  const [head, ...body] = rows;
  const line = (r: string[]): string => `| ${r.join(' | ')} |`;
  return [line(head!), line(head!.map(() => '---')), ...body.map(line)].join('\n');
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const config = JSON.parse(fs.readFileSync(configFile, 'utf8')) as { packages: PackageSpec[] };
  let specs = config.packages;
  if (args.only) {
    const unknown = args.only.filter((n) => !specs.some((s) => s.name === n));
    if (unknown.length > 0) throw new Error(`--only: not in ${configFile}: ${unknown.join(', ')}`);
    specs = specs.filter((s) => args.only!.includes(s.name));
  }

  const nodeVersion = spawnSync(args.node, ['--version'], { encoding: 'utf8' }).stdout?.trim();
  if (!nodeVersion) throw new Error(`--node ${args.node}: not a runnable Node binary`);
  const cacheDir = path.resolve(
    process.env.LIVEPATCH_PKG_CACHE || path.join(os.tmpdir(), 'livepatch-packages'),
  );
  const runsDir = path.join(cacheDir, 'runs', nodeVersion);
  fs.mkdirSync(runsDir, { recursive: true });

  const base = cleanEnv();
  const userNodeOptions = base.NODE_OPTIONS ?? '';
  const npmEnv: NodeJS.ProcessEnv = { ...base };
  delete npmEnv.NODE_OPTIONS;

  console.log(
    `livepatch package tests: ${specs.length} packages on Node ${nodeVersion} (${args.node})`,
  );
  console.log(`cache: ${cacheDir}\n`);

  const results: PackageResult[] = [];
  const t0 = process.hrtime.bigint();
  for (const spec of specs) {
    const label = `${spec.name}@${spec.version}`;
    const problems: string[] = [];
    let dir: string;
    try {
      const missing = (spec.needs ?? []).filter((p) => !hasProgram(p));
      if (missing.length > 0) throw new Error(`needs ${missing.join(', ')} on PATH`);
      process.stdout.write(`${label}: preparing... `);
      const t = process.hrtime.bigint();
      dir = prepare(spec, cacheDir, npmEnv);
      process.stdout.write(`${(Number(process.hrtime.bigint() - t) / 1e9).toFixed(1)}s\n`);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      console.log(`\n${label}: SETUP FAILED: ${message}`);
      results.push({
        spec,
        setupError: message,
        baseline: null,
        instrumented: null,
        evidence: null,
        problems: [message],
      });
      continue;
    }

    const outDir = path.join(runsDir, spec.name.replace('/', '+'));
    fs.rmSync(outDir, { recursive: true, force: true });
    fs.mkdirSync(outDir, { recursive: true });
    const env: NodeJS.ProcessEnv = {
      ...base,
      ...spec.env,
      PATH: [path.dirname(args.node), path.join(dir, 'node_modules', '.bin'), base.PATH ?? ''].join(
        path.delimiter,
      ),
    };

    process.stdout.write(`${label}: baseline... `);
    const baseline = await runSuite(spec, dir, env, path.join(outDir, 'baseline.log'));
    process.stdout.write(
      `${baseline.ok ? 'ok' : 'FAILED'} ${fmtCounts(baseline.counts)} ${baseline.seconds.toFixed(1)}s; `,
    );

    const probeFile = path.join(outDir, 'probe.jsonl');
    const instrumentedEnv: NodeJS.ProcessEnv = {
      ...env,
      NODE_OPTIONS: `${userNodeOptions} --import=${registerUrl} --import=${probeUrl}`.trim(),
      // The real path: the loader compares it with module URLs, which are real paths.
      LIVEPATCH_ROOT: fs.realpathSync(dir),
      // A fresh transform cache: the first process of the run instruments, later ones reuse.
      LIVEPATCH_CACHE_DIR: path.join(outDir, 'transform-cache'),
      LIVEPATCH_PROBE_OUT: probeFile,
    };
    process.stdout.write('instrumented... ');
    const instrumented = await runSuite(
      spec,
      dir,
      instrumentedEnv,
      path.join(outDir, 'instrumented.log'),
    );
    const evidence = gatherEvidence(probeFile, dir);
    process.stdout.write(
      `${instrumented.ok ? 'ok' : 'FAILED'} ${fmtCounts(instrumented.counts)} ${instrumented.seconds.toFixed(1)}s\n`,
    );

    if (!instrumented.ok) {
      problems.push(
        instrumented.timedOut
          ? `instrumented run timed out after ${spec.timeoutSeconds ?? 600}s`
          : `instrumented run exited with ${instrumented.code ?? instrumented.signal}`,
      );
    }
    if (evidence.withLoader === 0)
      problems.push('no process of the instrumented run had the loader installed');
    else if (evidence.own === 0) problems.push("none of the package's own files ran instrumented");
    if (evidence.fallbacks > 0)
      problems.push(
        `${evidence.fallbacks} module load(s) fell back to uninstrumented (see the log)`,
      );
    if (baseline.ok && instrumented.counts && baseline.counts) {
      if (
        instrumented.counts.tests !== baseline.counts.tests ||
        instrumented.counts.pass !== baseline.counts.pass
      ) {
        problems.push(
          `test counts differ: baseline ${fmtCounts(baseline.counts)}, instrumented ${fmtCounts(instrumented.counts)}`,
        );
      }
    }
    if (!baseline.ok) {
      // Without a passing baseline the instrumented run proves nothing: fix the package's setup.
      problems.push(`baseline run failed (without livepatch); log: ${baseline.log}`);
      console.log(`  baseline failed; log: ${baseline.log}\n${tail(baseline.log, 15)}`);
    }
    if (problems.length > 0) {
      console.log(
        `  ${problems.join('\n  ')}\n  log: ${instrumented.log}\n${tail(instrumented.log, 30)}`,
      );
    }
    results.push({ spec, setupError: null, baseline, instrumented, evidence, problems });
  }
  const totalSeconds = Number(process.hrtime.bigint() - t0) / 1e9;

  const rows: string[][] = [
    [
      'package',
      'version',
      'style',
      'baseline',
      'instrumented',
      'modules (own/tests/deps)',
      'functions',
      'refused',
      'time base/instr',
    ],
  ];
  const verdict = (r: RunResult | null, ok: boolean): string =>
    r ? `${ok ? 'ok' : 'FAIL'} ${fmtCounts(r.counts)}` : 'not run';
  for (const r of results) {
    const ev = r.evidence;
    rows.push([
      r.spec.name,
      r.spec.version,
      r.spec.style,
      r.setupError ? 'setup failed' : verdict(r.baseline, r.baseline?.ok ?? false),
      r.setupError ? 'setup failed' : verdict(r.instrumented, r.problems.length === 0),
      ev ? `${ev.own + ev.tests + ev.deps} (${ev.own}/${ev.tests}/${ev.deps})` : '-',
      ev ? String(ev.functions) : '-',
      ev ? String(ev.refused.length) : '-',
      r.baseline && r.instrumented
        ? `${r.baseline.seconds.toFixed(1)}s / ${r.instrumented.seconds.toFixed(1)}s`
        : '-',
    ]);
  }
  console.log(
    `\nNode ${nodeVersion}; baseline/instrumented: passed/total as the suite reports them (tape counts assertions, node:test counts tests);`,
  );
  console.log('modules = distinct files that ran instrumented, over all processes of the run.\n');
  console.log(table(rows));
  if (args.markdown) console.log(`\n${markdown(rows)}\n`);

  const refused = results.flatMap(
    (r) => r.evidence?.refused.map((f) => ({ pkg: r.spec.name, ...f })) ?? [],
  );
  if (refused.length > 0) {
    console.log(
      `\nfunctions left uninstrumented by design (refused, with reason): ${refused.length}`,
    );
    for (const f of refused.slice(0, 20))
      console.log(`  ${path.relative(cacheDir, f.file)}:${f.line} ${f.name}: ${f.reason}`);
    if (refused.length > 20) console.log(`  ... ${refused.length - 20} more`);
  }
  const syntax = results.filter((r) => (r.evidence?.syntaxErrors ?? 0) > 0);
  for (const r of syntax) {
    console.log(
      `note: ${r.spec.name}: ${r.evidence!.syntaxErrors} module load(s) handed to Node unparsed (syntax errors)`,
    );
  }
  fs.writeFileSync(
    path.join(runsDir, 'results.json'),
    JSON.stringify({ node: nodeVersion, seconds: totalSeconds, results }, null, 2),
  );

  const passed = results.filter((r) => r.setupError === null && r.problems.length === 0).length;
  const failed = results.length - passed;
  console.log(`\nlogs: ${runsDir}; total ${totalSeconds.toFixed(0)}s`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed > 0 ? 1 : 0;
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack : error);
  console.log('0 passed, 1 failed');
  process.exitCode = 1;
});
