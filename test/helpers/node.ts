/**
 * Running Node child processes from tests.
 *
 * Children run on the same binary as the test runner (`process.execPath`), so a suite started
 * on Node 26 spawns Node 26 children.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';

/** The Node binary running the tests; use it for every child process. */
export const nodeBin: string = process.execPath;

/** Root of the repository (the directory holding package.json). */
export const repoRoot: string = path.resolve(import.meta.dirname, '..', '..');

/** Directory of the test fixtures. */
export const fixturesDir: string = path.join(repoRoot, 'test', 'fixtures');

/** Absolute path of a file or directory under test/fixtures. */
export function fixture(...parts: string[]): string {
  return path.join(fixturesDir, ...parts);
}

export interface RunNodeOptions {
  /** Working directory of the child; defaults to the test process's cwd. */
  cwd?: string;
  /**
   * Variables layered over the test process's environment; `undefined` removes a variable.
   * `NODE_TEST_CONTEXT` is always removed so a child that uses node:test reports normally
   * instead of speaking the runner's internal protocol.
   */
  env?: Record<string, string | undefined>;
  /** Written to the child's stdin, which is then closed. Without it stdin is closed at once. */
  input?: string | Uint8Array;
}

export interface RunNodeResult {
  /** Exit code, or null when the child was ended by a signal. */
  code: number | null;
  /** The signal that ended the child, or null when it exited. */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Environment for a child: the parent's, without the test runner's marker, with `overrides`. */
export function childEnv(overrides: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

/**
 * Run `node ...args` to completion (no shell) and collect its output.
 * Resolves when the child has exited and its output streams have closed; rejects only when the
 * child could not be started.
 */
export function runNode(args: string[], opts: RunNodeOptions = {}): Promise<RunNodeResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(nodeBin, args, {
      cwd: opts.cwd,
      env: childEnv(opts.env),
      stdio: ['pipe', 'pipe', 'pipe'],
      shell: false,
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    // A child that exits without reading its input makes the write fail with EPIPE; the exit
    // status and output still tell the test what happened.
    child.stdin.on('error', () => {});
    child.once('error', reject);
    child.once('close', (code, signal) => {
      resolve({
        code,
        signal,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      });
    });
    child.stdin.end(opts.input);
  });
}
