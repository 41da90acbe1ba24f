/**
 * Shared benchmark helpers: medians and a table printed for people, plus one JSON line per row
 * (prefixed `BENCH `) that bench/run.ts collects into docs/benchmarks.md.
 */
import os from 'node:os';

export interface Row {
  readonly name: string;
  readonly value: string;
  readonly baseline: string;
  /** value / baseline, measured in the same run. */
  readonly ratio: number;
  readonly note?: string;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
}

export function report(title: string, rows: readonly Row[]): void {
  const lines = [`\n${title} — ${machine()}`];
  const w = Math.max(...rows.map((r) => r.name.length));
  for (const r of rows) {
    lines.push(`  ${r.name.padEnd(w)}  ${r.value.padStart(18)}  vs ${r.baseline.padEnd(24)} ratio ${r.ratio.toFixed(3)}${r.note !== undefined ? `  (${r.note})` : ''}`);
  }
  console.log(lines.join('\n'));
  for (const r of rows) console.log(`BENCH ${JSON.stringify({ title, machine: machine(), ...r })}`);
}
