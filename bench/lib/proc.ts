/**
 * Child processes for the benchmarks: the built loader they run under, spawning a child with or
 * without it, and reading the one `RESULT {json}` line each child program prints.
 *
 * Children run the loader as users do, from JavaScript (`dist/loader/register.js`), not from the
 * TypeScript sources: importing `src/loader/register.ts` makes Node load its TypeScript stripper
 * first, which costs more start-up time than the loader itself. The dist is the package's build
 * (scripts/build.ts) into bench/.build/dist (a folder livepatch's filter excludes, next to the
 * repository's node_modules).
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const REPO = path.dirname(BENCH_DIR);
export const CHILD_DIR = path.join(BENCH_DIR, 'child');
const DIST = path.join(BENCH_DIR, '.build', 'dist');

/** Fewer repetitions: a smoke run (`--quick`, or BENCH_QUICK=1 from bench/run.ts). */
export const QUICK = process.env.BENCH_QUICK === '1' || process.argv.includes('--quick');

/** The Node binary the children run on: this one. */
export const NODE = process.execPath;

export interface LoaderPaths {
  /** `--import` this to run under livepatch. */
  readonly register: string;
  /** The public API (redirect, loadPatch, …). */
  readonly api: string;
  /** bench/lib/internals.ts as built: the function table, registerModule, loaderStats. */
  readonly internals: string;
}

let built: LoaderPaths | null = null;

/**
 * Builds the loader into bench/.build/dist once per process tree: bench/run.ts builds and hands
 * BENCH_DIST to the benchmarks it starts.
 */
export function loaderPaths(): LoaderPaths {
  if (built !== null) return built;
  const dist = process.env.BENCH_DIST ?? buildDist();
  built = {
    register: path.join(dist, 'loader', 'register.js'),
    api: path.join(dist, 'index.js'),
    internals: path.join(dist, 'bench-internals.js'),
  };
  return built;
}

export function buildDist(): string {
  // The package's own build (scripts/build.ts), without declarations: the loader as it ships,
  // plus bench/lib/internals.ts as an entry of its own.
  const r = spawnSync(
    NODE,
    [
      path.join(REPO, 'scripts', 'build.ts'),
      '--outdir',
      DIST,
      '--no-types',
      '--entry',
      'bench-internals=bench/lib/internals.ts',
    ],
    { cwd: REPO, encoding: 'utf8' },
  );
  if (r.status !== 0 || !fs.existsSync(path.join(DIST, 'loader', 'register.js'))) {
    throw new Error(`bench: building the loader failed:\n${r.stdout}\n${r.stderr}`);
  }
  return DIST;
}

const made: string[] = [];
process.on('exit', () => {
  if (process.env.BENCH_KEEP === '1') return;
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * A fresh, empty directory under the system's temporary directory, removed when this process
 * exits (transform caches of typescript run to tens of MB); BENCH_KEEP=1 keeps them.
 */
export function freshDir(label: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `lp-bench-${label}-`));
  made.push(dir);
  return dir;
}

export interface ChildOptions {
  /** Run under the livepatch loader (`--import register.js`). */
  readonly instrumented: boolean;
  /** Extra environment (LIVEPATCH_INCLUDE, LIVEPATCH_CACHE_DIR, …). */
  readonly env?: Record<string, string | undefined>;
  /** Node flags before the script. */
  readonly nodeArgs?: readonly string[];
  /** Kill the child after this long (default 120 s). */
  readonly timeoutMs?: number;
}

export interface ChildResult<T> {
  readonly result: T;
  /** Spawn to exit, measured by the parent. */
  readonly wallMs: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The environment every child gets: no inherited livepatch or compile-cache settings. */
export function childEnv(
  extra: Record<string, string | undefined> | undefined,
  instrumented: boolean,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('LIVEPATCH_') || k.startsWith('NODE_COMPILE_CACHE') || k === 'NODE_OPTIONS')
      continue;
    env[k] = v;
  }
  const paths = loaderPaths();
  env.BENCH_MODE = instrumented ? 'instrumented' : 'plain';
  env.BENCH_API = paths.api;
  env.BENCH_INTERNALS = paths.internals;
  for (const [k, v] of Object.entries(extra ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Node arguments for a child program in bench/child/. */
export function childArgs(script: string, args: readonly string[], opts: ChildOptions): string[] {
  return [
    ...(opts.nodeArgs ?? []),
    ...(opts.instrumented ? ['--import', loaderPaths().register] : []),
    path.resolve(CHILD_DIR, script),
    ...args,
  ];
}

/** Runs a child program to completion and parses its `RESULT {json}` line. */
export async function runChild<T>(
  script: string,
  args: readonly string[],
  opts: ChildOptions,
): Promise<ChildResult<T>> {
  const argv = childArgs(script, args, opts);
  const t0 = performance.now();
  const child = spawn(NODE, argv, {
    cwd: REPO,
    env: childEnv(opts.env, opts.instrumented),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  const wallMs = performance.now() - t0;
  clearTimeout(timer);
  const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (code !== 0 || line === undefined) {
    throw new Error(
      `bench: child ${script} ${args.join(' ')} (${opts.instrumented ? 'instrumented' : 'plain'}) failed with exit code ${code}\n--- stdout\n${stdout.slice(-3000)}\n--- stderr\n${stderr.slice(-3000)}`,
    );
  }
  return { result: JSON.parse(line.slice('RESULT '.length)) as T, wallMs, stdout, stderr };
}

/** Starts a long-running child (a server) and resolves once it printed `READY {json}`. */
export function startChild(
  script: string,
  args: readonly string[],
  opts: ChildOptions,
): Promise<{
  ready: Record<string, unknown>;
  child: ReturnType<typeof spawn>;
  done: Promise<ChildResult<Record<string, unknown>>>;
}> {
  const argv = childArgs(script, args, opts);
  const t0 = performance.now();
  const child = spawn(NODE, argv, {
    cwd: REPO,
    env: childEnv(opts.env, opts.instrumented),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
  const done = new Promise<ChildResult<Record<string, unknown>>>((resolve, reject) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
      if (code !== 0 || line === undefined) {
        reject(
          new Error(
            `bench: child ${script} exited with ${code}\n${stdout.slice(-2000)}\n${stderr.slice(-2000)}`,
          ),
        );
        return;
      }
      resolve({
        result: JSON.parse(line.slice(7)) as Record<string, unknown>,
        wallMs: performance.now() - t0,
        stdout,
        stderr,
      });
    });
  });
  return new Promise((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      const before = stdout;
      stdout += d;
      if (!before.includes('READY ')) {
        const line = stdout
          .split('\n')
          .find((l) => l.startsWith('READY ') && stdout.includes(`${l}\n`));
        if (line !== undefined)
          resolve({ ready: JSON.parse(line.slice(6)) as Record<string, unknown>, child, done });
      }
    });
    done.catch(reject);
  });
}

/** `n` as a compact human number. */
export function fmt(n: number, digits = 1): string {
  if (!Number.isFinite(n)) return String(n);
  if (Math.abs(n) >= 1e6) return `${(n / 1e6).toFixed(digits)}M`;
  if (Math.abs(n) >= 1e4) return `${(n / 1e3).toFixed(digits)}k`;
  return n.toFixed(digits);
}
