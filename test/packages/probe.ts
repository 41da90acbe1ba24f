/**
 * Evidence that instrumentation was on, for scripts/test-packages.ts. Loaded in every Node
 * process of an instrumented run, after livepatch/register:
 *
 *   NODE_OPTIONS="--import=<src/loader/register.ts> --import=<this file>"
 *
 * When the process exits, appends one JSON line to $LIVEPATCH_PROBE_OUT: the modules the runtime
 * table holds (each entered by its own instrumented header, so each really ran instrumented), the
 * number of functions in each, and the loader's counters. It changes nothing else: one 'exit'
 * listener and one synchronous append.
 */
import fs from 'node:fs';

import { currentLoader } from '../../src/loader/install.ts';
import { table } from '../../src/runtime/table.ts';

export interface ProbeRecord {
  readonly pid: number;
  readonly argv: readonly string[];
  /** Whether livepatch/register ran before this probe (the loader is installed). */
  readonly loader: boolean;
  readonly modules: readonly { file: string; format: string; functions: number; refused: number }[];
  readonly refused: readonly { file: string; name: string; line: number; reason: string }[];
  readonly stats: Record<string, unknown> | null;
}

const out = process.env.LIVEPATCH_PROBE_OUT;
if (out) {
  process.on('exit', () => {
    const modules = table.all();
    const record: ProbeRecord = {
      pid: process.pid,
      argv: process.argv.slice(1),
      loader: currentLoader() !== null,
      modules: modules.map((m) => ({
        file: m.meta.filename,
        format: m.meta.format,
        functions: m.meta.functions.length,
        refused: m.meta.refused.length,
      })),
      refused: modules.flatMap((m) =>
        m.meta.refused.map((r) => ({
          file: m.meta.filename,
          name: r.name,
          line: r.line,
          reason: r.reason,
        })),
      ),
      stats: JSON.parse(JSON.stringify(currentLoader()?.stats ?? null)) as Record<
        string,
        unknown
      > | null,
    };
    try {
      fs.appendFileSync(out, `${JSON.stringify(record)}\n`);
    } catch {
      // Never let the probe change a test's outcome.
    }
  });
}
