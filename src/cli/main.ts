#!/usr/bin/env node
/**
 * The `livepatch` command: a small dispatcher over the commands in ./commands (one module each).
 * Exit codes: 0 success, 1 failure, 2 usage error (unknown command or option, missing argument).
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

import {
  EXIT_FAILURE,
  EXIT_USAGE,
  UsageError,
  suggestion,
  type Command,
  type Io,
} from './command.ts';
import { cacheCommand } from './commands/cache.ts';
import { runCommand } from './commands/run.ts';
import { packageJsonPath } from './paths.ts';

/** Every command, in the order `--help` lists them. Add new commands here. */
export const commands: readonly Command[] = [runCommand, cacheCommand];

function version(): string {
  return String(
    (JSON.parse(fs.readFileSync(packageJsonPath(), 'utf8')) as { version?: unknown }).version,
  );
}

function topHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return `Usage: livepatch <command> [options]

Live patching for Node.js: replace functions inside a running process.

Commands:
${commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}
  ${'help'.padEnd(width)}  show help for a command

Options:
  -h, --help     Show this help (or 'livepatch <command> --help')
  -V, --version  Print the version (with --json: as JSON)

Exit status: 0 success, 1 failure, 2 usage error.`;
}

export async function main(argv: string[], io: Io): Promise<number> {
  try {
    const [first, ...rest] = argv;
    if (first === undefined) {
      io.stderr(`${topHelp()}\n`);
      return EXIT_USAGE;
    }
    if (first === '-h' || first === '--help') {
      io.stdout(`${topHelp()}\n`);
      return 0;
    }
    if (first === '-V' || first === '--version') {
      if (rest.includes('--json'))
        io.stdout(`${JSON.stringify({ version: version(), node: process.version })}\n`);
      else io.stdout(`${version()}\n`);
      return 0;
    }
    if (first === 'help') {
      const name = rest[0];
      if (name === undefined) {
        io.stdout(`${topHelp()}\n`);
        return 0;
      }
      return await dispatch(name, ['--help'], io);
    }
    if (first.startsWith('-')) {
      throw new UsageError(
        `livepatch: unknown option '${first}'`,
        "Options go after the command; run 'livepatch --help'.",
      );
    }
    return await dispatch(first, rest, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`${error.message}\n${error.hint ? `${error.hint}\n` : ''}`);
      return EXIT_USAGE;
    }
    io.stderr(`livepatch: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT_FAILURE;
  }
}

async function dispatch(name: string, args: string[], io: Io): Promise<number> {
  const command = commands.find((c) => c.name === name);
  if (!command) {
    const names = [...commands.map((c) => c.name), 'help'];
    throw new UsageError(
      `livepatch: unknown command '${name}'`,
      suggestion(name, names) ?? `Commands: ${names.join(', ')}. Run 'livepatch --help'.`,
    );
  }
  return command.run(args, io);
}

/** Run when this file is the program (not when a test imports it). */
function isMain(): boolean {
  const argv1 = process.argv[1];
  if (!argv1) return false;
  try {
    return fs.realpathSync(argv1) === fs.realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  const io: Io = {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    env: process.env,
    cwd: process.cwd(),
  };
  main(process.argv.slice(2), io).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`livepatch: ${String(error)}\n`);
      process.exitCode = EXIT_FAILURE;
    },
  );
}
