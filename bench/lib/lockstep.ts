/**
 * Two child processes in lock step (bench/child/common.mjs `serveLockstep`): a baseline and a
 * subject, each warmed up, then taking turns round by round (A B, B A, A B, …) while the other
 * waits. Each round's cost per operation is compared with its neighbour's in the other process,
 * so the ratio is measured under the same machine conditions even when other processes come and
 * go — which, on a shared 2-core machine, moves whole-process timings by tens of percent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

import { childArgs, NODE, REPO, childEnv, type ChildOptions } from './proc.ts';
import { median } from '../report.ts';

export interface Side {
  readonly script: string;
  readonly args: readonly string[];
  readonly opts: ChildOptions;
}

export interface LockstepOptions {
  readonly warmupMs: number;
  readonly rounds: number;
  readonly roundMs: number;
}

export interface Round {
  readonly n: number;
  readonly ms: number;
  readonly cpu: number;
}

export interface LockstepResult<T> {
  /** CPU ms per operation of each round. */
  readonly a: number[];
  readonly b: number[];
  /** Wall ms per operation of each round. */
  readonly aWall: number[];
  readonly bWall: number[];
  /** b / a per pair of neighbouring rounds, CPU time. */
  readonly ratios: number[];
  readonly wallRatios: number[];
  readonly aResult: T;
  readonly bResult: T;
}

class Driven {
  readonly child: ChildProcess;
  private readonly waiting: ((line: string) => void)[] = [];
  private readonly lines: string[] = [];
  private stderr = '';
  private readonly exited: Promise<number | null>;
  constructor(side: Side) {
    this.child = spawn(NODE, childArgs(side.script, side.args, side.opts), {
      cwd: REPO,
      env: childEnv(side.opts.env, side.opts.instrumented),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const w = this.waiting.shift();
      if (w !== undefined) w(line);
      else this.lines.push(line);
    });
    this.exited = new Promise((resolve) => this.child.on('close', resolve));
    void this.exited.then((code) => {
      // Answer every current and future wait: the child will not say anything more.
      this.lines.push(`EXIT ${code}`);
      for (const w of this.waiting.splice(0)) w(`EXIT ${code}`);
    });
  }
  /** The next line starting with `prefix` (other lines are progress output and skipped). */
  async next(prefix: string): Promise<string> {
    for (;;) {
      const line =
        this.lines.shift() ?? (await new Promise<string>((resolve) => this.waiting.push(resolve)));
      if (line.startsWith('EXIT ')) {
        if (this.lines[0] !== line) this.lines.unshift(line);
        throw new Error(
          `bench: lock-step child exited (${line.slice(5)}):\n${this.stderr.slice(-3000)}`,
        );
      }
      if (line.startsWith(prefix)) return line.slice(prefix.length).trim();
    }
  }
  async send(command: string, reply: string): Promise<string> {
    this.child.stdin!.write(`${command}\n`);
    return this.next(reply);
  }
  kill(): void {
    this.child.kill('SIGKILL');
  }
}

export async function lockstep<T>(
  a: Side,
  b: Side,
  o: LockstepOptions,
): Promise<LockstepResult<T>> {
  const da = new Driven(a);
  const db = new Driven(b);
  const timer = setTimeout(() => {
    da.kill();
    db.kill();
  }, 300_000);
  try {
    await da.next('READY');
    await db.next('READY');
    // Warm both up in alternating slices.
    const slices = 4;
    for (let i = 0; i < slices; i++) {
      await da.send(`warm ${Math.ceil(o.warmupMs / slices)}`, 'OK');
      await db.send(`warm ${Math.ceil(o.warmupMs / slices)}`, 'OK');
    }
    const res = {
      a: [] as number[],
      b: [] as number[],
      aWall: [] as number[],
      bWall: [] as number[],
      ratios: [] as number[],
      wallRatios: [] as number[],
    };
    for (let i = 0; i < o.rounds; i++) {
      const order = i % 2 === 0 ? [da, db] : [db, da];
      const got = new Map<Driven, Round>();
      for (const d of order)
        got.set(d, JSON.parse(await d.send(`round ${o.roundMs}`, 'ROUND')) as Round);
      const ra = got.get(da)!;
      const rb = got.get(db)!;
      res.a.push(ra.cpu / ra.n);
      res.b.push(rb.cpu / rb.n);
      res.aWall.push(ra.ms / ra.n);
      res.bWall.push(rb.ms / rb.n);
      res.ratios.push(rb.cpu / rb.n / (ra.cpu / ra.n));
      res.wallRatios.push(rb.ms / rb.n / (ra.ms / ra.n));
    }
    const aResult = JSON.parse(await da.send('end', 'RESULT')) as T;
    const bResult = JSON.parse(await db.send('end', 'RESULT')) as T;
    return { ...res, aResult, bResult };
  } finally {
    clearTimeout(timer);
    da.kill();
    db.kill();
  }
}

/** Several lock-step sessions (fresh process pairs); their rounds pooled. */
export async function lockstepSessions<T>(
  sessions: number,
  a: Side,
  b: Side,
  o: LockstepOptions,
  progress?: (i: number, r: LockstepResult<T>) => void,
): Promise<LockstepResult<T> & { sessionRatios: number[] }> {
  const all: LockstepResult<T>[] = [];
  for (let i = 0; i < sessions; i++) {
    const r = await lockstep<T>(a, b, o);
    progress?.(i, r);
    all.push(r);
  }
  const cat = (k: 'a' | 'b' | 'aWall' | 'bWall' | 'ratios' | 'wallRatios'): number[] =>
    all.flatMap((r) => r[k]);
  return {
    a: cat('a'),
    b: cat('b'),
    aWall: cat('aWall'),
    bWall: cat('bWall'),
    ratios: cat('ratios'),
    wallRatios: cat('wallRatios'),
    aResult: all[all.length - 1]!.aResult,
    bResult: all[all.length - 1]!.bResult,
    sessionRatios: all.map((r) => median(r.ratios)),
  };
}
