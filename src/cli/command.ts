/**
 * What every CLI command is: a name, its help text and a `run` that returns the exit code; plus
 * the shared exit codes, the usage error and option parsing with helpful messages.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export interface Io {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

export interface Command {
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** Full help, printed by `livepatch <name> --help` and `livepatch help <name>`. */
  readonly help: string;
  run(args: string[], io: Io): Promise<number>;
}

/** Bad command line: printed with a hint, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly hint: string | undefined;
  constructor(message: string, hint?: string) {
    super(message);
    this.hint = hint;
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * node:util parseArgs in strict mode, its errors turned into usage errors naming the command.
 * Option values are typed loosely (parseArgs' own typing); callers read them by name.
 */
export function parseOptions(
  command: string,
  args: string[],
  options: Options,
  allowPositionals: boolean,
): {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
} {
  try {
    const { values, positionals } = parseArgs({
      args,
      options,
      strict: true,
      allowPositionals,
      allowNegative: false,
    });
    return {
      values: values as Record<string, string | boolean | string[] | boolean[] | undefined>,
      positionals,
    };
  } catch (error) {
    const message = (error as Error).message;
    const unknown = /Unknown option '([^']+)'/.exec(message);
    if (unknown) {
      const known = Object.keys(options).map((o) => `--${o}`);
      throw new UsageError(
        `livepatch ${command}: unknown option '${unknown[1]}'`,
        suggestion(unknown[1]!, known) ?? `Run 'livepatch ${command} --help' for the options.`,
      );
    }
    throw new UsageError(
      `livepatch ${command}: ${message.replace(/\.$/, '')}`,
      `Run 'livepatch ${command} --help'.`,
    );
  }
}

/** "Did you mean …?" for the closest candidate within a small edit distance. */
export function suggestion(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 3))
    ? `Did you mean '${best}'?`
    : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

/** Options every command accepts. */
export const helpOption = { help: { type: 'boolean', short: 'h' } } as const;
