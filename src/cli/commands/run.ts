/**
 * `livepatch run [options] <entry> [args...]`: run a Node program with every function patchable —
 * Node started on the entry with livepatch's loader preloaded (`--import livepatch/register`).
 *
 * Where the platform allows it (POSIX, Node 22.15+) the CLI replaces itself with that Node
 * (process.execve): same pid, so the process the operator patches is the one they started, and
 * signals, stdio and the exit status are the program's own with nothing in between. Elsewhere it
 * spawns Node and relays signals and the exit status.
 */
import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';

import { registerUrl } from '../paths.ts';
import { EXIT_FAILURE, UsageError, parseOptions, type Command, type Io } from '../command.ts';

const HELP = `Usage: livepatch run [options] <entry> [args...]

Run a Node.js program (JavaScript or TypeScript) with every function patchable.
Options go before <entry>; everything after it is passed to the program.

Options:
  --include <pattern>     Instrument only matching files (repeatable; replaces the default:
                          the app root and node_modules)
  --exclude <pattern>     Do not instrument matching files (repeatable)
  --root <dir>            App root: included by default, anchors relative patterns, holds
                          the default cache (default: the entry's package)
  --no-cache              Do not use the transform cache
  --cache-dir <dir>       Transform cache directory
                          (default: <root>/node_modules/.cache/livepatch)
  --no-source-maps        Do not map stack traces back to the original sources
  --node-option <opt>     Pass an option to node (repeatable), e.g. --node-option=--inspect
  -h, --help              Show this help

Patterns: ** any path, * any name part, ? one character, {a,b} alternatives; a bare name
(node_modules, *.spec.js) matches at any depth; a relative path is anchored at the root.

Environment: the loader reads LIVEPATCH_INCLUDE, LIVEPATCH_EXCLUDE (comma-separated),
LIVEPATCH_ROOT, LIVEPATCH_CACHE=0, LIVEPATCH_CACHE_DIR and LIVEPATCH_SOURCE_MAPS (0, app or
all); the options above set them for the program.

Exit status: the program's own (or, when it is killed by a signal, the same signal).`;

const OPTIONS = {
  include: { type: 'string', multiple: true },
  exclude: { type: 'string', multiple: true },
  root: { type: 'string' },
  'no-cache': { type: 'boolean' },
  'cache-dir': { type: 'string' },
  'no-source-maps': { type: 'boolean' },
  'node-option': { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Options that take a value, so the scan for <entry> skips their value. */
const TAKES_VALUE = new Set(['--include', '--exclude', '--root', '--cache-dir', '--node-option']);

export interface RunPlan {
  readonly args: string[];
  readonly env: NodeJS.ProcessEnv;
}

/** Turn the command line into the Node invocation. Throws UsageError. */
export function planRun(argv: string[], io: Pick<Io, 'env'>): RunPlan | 'help' {
  // Our options end at the first argument that is not one (or at `--`): the rest is the app's.
  let split = argv.length;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      split = i;
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      split = i;
      break;
    }
    if (TAKES_VALUE.has(a)) i++;
  }
  const ours = argv.slice(0, split);
  const rest = argv[split] === '--' ? argv.slice(split + 1) : argv.slice(split);
  const { values } = parseOptions('run', ours, OPTIONS, false);
  if (values.help) return 'help';
  const entry = rest[0];
  if (entry === undefined) {
    throw new UsageError(
      'livepatch run: missing <entry>',
      'Usage: livepatch run [options] <entry> [args...]',
    );
  }

  const env: NodeJS.ProcessEnv = { ...io.env };
  const list = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : []);
  for (const p of [...list(values.include), ...list(values.exclude)]) {
    if (p.includes(',')) {
      throw new UsageError(
        `livepatch run: a pattern cannot contain ',': ${JSON.stringify(p)}`,
        'Give each pattern its own --include/--exclude.',
      );
    }
  }
  if (values.include) env.LIVEPATCH_INCLUDE = list(values.include).join(',');
  if (values.exclude) {
    env.LIVEPATCH_EXCLUDE = [env.LIVEPATCH_EXCLUDE, ...list(values.exclude)]
      .filter(Boolean)
      .join(',');
  }
  if (typeof values.root === 'string') env.LIVEPATCH_ROOT = values.root;
  if (values['no-cache']) env.LIVEPATCH_CACHE = '0';
  if (typeof values['cache-dir'] === 'string') env.LIVEPATCH_CACHE_DIR = values['cache-dir'];
  if (values['no-source-maps']) env.LIVEPATCH_SOURCE_MAPS = '0';

  return {
    args: [
      ...asyncContextFrameFlag(),
      ...list(values['node-option']),
      '--import',
      registerUrl(),
      ...rest,
    ],
    env,
  };
}

/**
 * Task tracking uses AsyncLocalStorage, which slows every await chain on Node 22 unless
 * AsyncContextFrame is on (the default from Node 24). The flag exists from Node 22.7.
 */
export function asyncContextFrameFlag(version: string = process.versions.node): string[] {
  const major = Number(version.split('.')[0]);
  return major === 22 ? ['--experimental-async-context-frame'] : [];
}

export const runCommand: Command = {
  name: 'run',
  summary: 'run a program with every function patchable',
  help: HELP,
  async run(argv, io) {
    const plan = planRun(argv, io);
    if (plan === 'help') {
      io.stdout(`${HELP}\n`);
      return 0;
    }
    const execve = (
      process as unknown as {
        execve?: (file: string, args: string[], env: NodeJS.ProcessEnv) => never;
      }
    ).execve;
    if (typeof execve === 'function' && io.env.LIVEPATCH_RUN_SPAWN !== '1') {
      try {
        execve(process.execPath, [process.execPath, ...plan.args], plan.env);
      } catch {
        // Fall through to spawning (e.g. a platform or sandbox that refuses execve).
      }
    }
    return spawnAndRelay(plan, io);
  },
};

const RELAYED_SIGNALS: NodeJS.Signals[] = [
  'SIGINT',
  'SIGTERM',
  'SIGHUP',
  'SIGQUIT',
  'SIGUSR1',
  'SIGUSR2',
  'SIGWINCH',
  'SIGBREAK',
];

function spawnAndRelay(plan: RunPlan, io: Io): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, plan.args, {
      stdio: 'inherit',
      env: plan.env,
      cwd: io.cwd,
    });
    const relays = new Map<NodeJS.Signals, () => void>();
    for (const signal of RELAYED_SIGNALS) {
      const relay = (): void => {
        child.kill(signal);
      };
      try {
        process.on(signal, relay);
        relays.set(signal, relay);
      } catch {
        // A signal this platform does not have.
      }
    }
    const cleanup = (): void => {
      for (const [signal, relay] of relays) process.off(signal, relay);
    };
    child.once('error', (error) => {
      cleanup();
      io.stderr(`livepatch run: cannot start ${process.execPath}: ${error.message}\n`);
      resolve(EXIT_FAILURE);
    });
    child.once('exit', (code, signal) => {
      cleanup();
      if (signal) {
        // Die the same way, so whoever started us sees the program's real fate.
        process.kill(process.pid, signal);
        resolve(128 + (signalNumber(signal) ?? 0));
        return;
      }
      resolve(code ?? EXIT_FAILURE);
    });
  });
}

function signalNumber(signal: NodeJS.Signals): number | undefined {
  return (osConstants.signals as Record<string, number | undefined>)[signal];
}
