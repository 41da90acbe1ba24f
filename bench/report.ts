/**
 * Shared benchmark helpers: medians and a table printed for people, plus one JSON line per row
 * (prefixed `BENCH `) that bench/run.ts collects into docs/benchmarks.md. Also `--help` for every
 * benchmark script (they all import this module): it prints the script's header comment, which
 * says what it measures and how to run it, and exits before anything runs.
 */
import fs from 'node:fs';
import os from 'node:os';

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  const script = process.argv[1] ?? '';
  const header = /^\/\*\*([\s\S]*?)\*\//.exec(fs.readFileSync(script, 'utf8'));
  process.stdout.write(`${header ? header[1]!.replace(/^ ?\* ?/gm, '').trim() : script}\n`);
  process.exit(0);
}

export interface Row {
  readonly name: string;
  readonly value: string;
  readonly baseline: string;
  /** value / baseline, measured in the same run. */
  readonly ratio: number;
  readonly note?: string;
  /** The target this row is held to, in words (`ratio ≤ 1.02`, `< 1 ms pause`). */
  readonly target?: string;
  /** Whether the target was met (only with `target`). */
  readonly met?: boolean;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Smallest and largest value, for a `min–max` spread in notes. */
export function spread(xs: readonly number[], digits = 3): string {
  if (xs.length === 0) return '-';
  return `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;
}

export function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
}

/** The 1-minute load average, to show how busy the machine was while measuring. */
export function load(): string {
  return os.loadavg()[0]!.toFixed(2);
}

/** A ratio target: met when the ratio is at most `max`. */
export function ratioTarget(ratio: number, max: number): { target: string; met: boolean } {
  return { target: `ratio ≤ ${max}`, met: ratio <= max };
}

export function report(title: string, rows: readonly Row[]): void {
  const lines = [`\n${title} — ${machine()}, load ${load()}`];
  const w = Math.max(...rows.map((r) => r.name.length));
  for (const r of rows) {
    const target =
      r.target !== undefined ? `  [${r.target}: ${r.met === true ? 'met' : 'MISSED'}]` : '';
    lines.push(
      `  ${r.name.padEnd(w)}  ${r.value.padStart(18)}  vs ${r.baseline.padEnd(24)} ratio ${r.ratio.toFixed(3)}${target}${r.note !== undefined ? `  (${r.note})` : ''}`,
    );
  }
  console.log(lines.join('\n'));
  for (const r of rows)
    console.log(`BENCH ${JSON.stringify({ title, machine: machine(), load: load(), ...r })}`);
}
