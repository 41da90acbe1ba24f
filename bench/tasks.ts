/**
 * Cost of the consistency model (issue 4), per Node major:
 *  1. an await-heavy async workload, instrumented vs the same code plain, with no patch loaded
 *     (frames counted per function only) — and with a transition of a patch on that code in
 *     progress (frames counted per task). A third baseline is the same generated code with its
 *     frame accounting cut out: what the consistency model itself costs with no patch loaded,
 *     apart from the entry check (issue 2's cost);
 *  2. time for a transition to complete with 10,000 idle unbounded tasks, against the same
 *     transition with none;
 *  3. what the task sources add to each HTTP request, in process and without a network: the
 *     server's `emit('request', req, res)`, the request's 'end' and the response's 'finish'
 *     and 'close', with the sources installed vs without (bench/http.ts measures whole
 *     requests, ±3% between batches).
 * Each measurement runs in its own process; subject and baseline alternate (ABAB) and the
 * medians are compared. Node binaries: this one, plus LIVEPATCH_BENCH_NODES (paths, comma-
 * separated), e.g. /tmp/nv24/node_modules/.bin/node. On Node 22 the async context frame flag is
 * passed, as `livepatch run` does.
 *
 * `node bench/tasks.ts [--quick]`
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { median, report, type Row } from './report.ts';

const self = fileURLToPath(import.meta.url);
const quick = process.argv.includes('--quick');

// ---- child side ---------------------------------------------------------------------------

const WORKLOAD = `
async function parse(line) { await null; const [k, v] = line.split('='); return { k, v: Number(v) }; }
async function total(lines) { let sum = 0; for (const l of lines) sum += (await parse(l)).v; return sum; }
exports.total = total; exports.parse = parse;`;

/**
 * Generated code without its frame accounting (`const t=S.e();try{…}catch(e){S.x(t);throw e}`,
 * `return S.y(t, x)`): the instrumented baseline of the 'frame accounting' row.
 */
function withoutFrameAccounting(code: string): string {
  return code
    .replace(/const \$lp_t=\$lp_\d+\.e\(\);try\{/g, '')
    .replace(/\}catch\(\$lp_e\)\{\$lp_\d+\.x\(\$lp_t\);throw \$lp_e\}/g, '')
    .replace(/\$lp_\d+\.y\(\$lp_t,/g, '(')
    .replace(/\$lp_\d+\.y\(\$lp_t\)/g, 'void 0');
}

/** ns per request of `server.emit('request')`, the request's `end` and the response's end events. */
async function requestPath(mode: 'plain' | 'held' | 'own'): Promise<number> {
  const http = await import('node:http');
  if (mode !== 'plain') (await import('../src/transition/sources.ts')).installTaskSources();
  if (mode === 'own') {
    // As while a transition runs (a transition is the task observer): a task per request.
    const { setTaskObserver } = await import('../src/transition/tasks.ts');
    const nothing = (): void => undefined;
    setTaskObserver({
      taskStarted: nothing,
      taskMaySwitch: nothing,
      frameLeft: nothing,
    });
  }
  const server = http.createServer(() => undefined);
  const once = (): void => {
    const req = new http.IncomingMessage(null as unknown as import('node:net').Socket);
    req.method = 'GET';
    req.url = '/products?q=red';
    const res = new http.ServerResponse(req);
    res.on('finish', () => undefined); // as the server's own resOnFinish
    server.emit('request', req, res);
    req.emit('end'); // as the connection's parser does when the request has no body
    res.emit('finish');
    res.emit('close');
  };
  const n = quick ? 50_000 : 200_000;
  for (let i = 0; i < 50_000; i++) once();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) once();
  return Number(process.hrtime.bigint() - t0) / n;
}

async function child(mode: string): Promise<void> {
  if (mode === 'request-plain' || mode === 'request-held' || mode === 'request-own') {
    const path = mode === 'request-plain' ? 'plain' : mode === 'request-held' ? 'held' : 'own';
    process.stdout.write(JSON.stringify({ nsPerRequest: await requestPath(path) }));
    process.exit(0);
  }
  const { getCore } = await import('../src/core/api.ts');
  const { loadPatch, runTask, runUnbounded } = await import('../src/index.ts');
  const { loadCjs } = await import('../test/support/instrumented.ts');
  getCore().events.setLog('off');
  getCore().configureTransitions({ retryMs: 0, warnAfterMs: 0 });
  const lines = Array.from({ length: 200 }, (_, i) => `k${i}=${i}`);

  if (
    mode === 'plain' ||
    mode === 'untracked' ||
    mode === 'instrumented' ||
    mode === 'transition'
  ) {
    let mod: { total(lines: string[]): Promise<number> };
    if (mode === 'plain') {
      const m = { exports: {} as Record<string, unknown> };
      new Function('exports', WORKLOAD)(m.exports);
      mod = m.exports as typeof mod;
    } else if (mode === 'untracked') {
      // The same generated code with its frame accounting cut out: what the consistency model
      // itself costs when no patch exists, apart from the entry check.
      const loaded = loadCjs<typeof mod>(WORKLOAD, undefined, withoutFrameAccounting);
      if (/\.e\(\)/.test(fs.readFileSync(loaded.file, 'utf8')))
        throw new Error('frame accounting left in the untracked variant');
      mod = loaded.exports;
    } else {
      mod = loadCjs<typeof mod>(WORKLOAD).exports;
    }
    if (mode === 'transition') {
      // A patch on `parse` stays in transition: a bounded task in flight holds it open.
      const loaded = loadCjs<typeof mod>(WORKLOAD);
      mod = loaded.exports;
      let release!: () => void;
      void runTask(() => new Promise<void>((r) => (release = r)));
      void loadPatch({
        name: 'slow',
        objects: [
          {
            module: loaded.file,
            functions: [
              {
                name: 'parse',
                replacement: async (line: string) => {
                  const [k, v] = line.split('=');
                  return { k, v: Number(v) };
                },
              },
            ],
          },
        ],
      }).enable();
      await new Promise((r) => setImmediate(r));
      if (getCore().currentTransition === null) throw new Error('transition did not stay open');
      process.on('beforeExit', () => release());
    }
    const rounds = quick ? 200 : 1500;
    for (let i = 0; i < 200; i++) await mod.total(lines); // warm-up
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < rounds; i++) await mod.total(lines);
    const ns = Number(process.hrtime.bigint() - t0) / (rounds * lines.length);
    process.stdout.write(JSON.stringify({ nsPerCall: ns }));
    process.exit(0);
  }

  if (mode.startsWith('idle-')) {
    const count = Number(mode.slice(5));
    const m = loadCjs<{ parse(l: string): Promise<unknown> }>(WORKLOAD);
    const enders: (() => void)[] = [];
    for (let i = 0; i < count; i++) runUnbounded(`idle ${i}`, (end) => enders.push(end));
    const t0 = process.hrtime.bigint();
    await loadPatch({
      name: 'p',
      objects: [{ module: m.file, functions: [{ name: 'parse', replacement: async () => ({}) }] }],
    }).enable();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    for (const end of enders) end();
    process.stdout.write(JSON.stringify({ ms }));
    process.exit(0);
  }
  throw new Error(`unknown mode ${mode}`);
}

// ---- parent side --------------------------------------------------------------------------

function run(node: string, mode: string): Record<string, number> {
  const major = Number(
    spawnSync(node, ['-p', 'process.versions.node.split(".")[0]'], {
      encoding: 'utf8',
    }).stdout.trim(),
  );
  const flags = major === 22 ? ['--experimental-async-context-frame'] : [];
  const r = spawnSync(node, [...flags, self, '--child', mode, ...(quick ? ['--quick'] : [])], {
    encoding: 'utf8',
    env: { ...process.env, LIVEPATCH_LOG: 'off' },
  });
  if (r.status !== 0) throw new Error(`${mode} on ${node} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, number>;
}

function version(node: string): string {
  return spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
}

async function parent(): Promise<void> {
  const nodes = [
    process.execPath,
    ...(process.env['LIVEPATCH_BENCH_NODES'] ?? '').split(',').filter(Boolean),
  ];
  const reps = quick ? 3 : 7;
  const rows: Row[] = [];
  for (const node of nodes) {
    const v = version(node);
    const plain: number[] = [];
    const untracked: number[] = [];
    const instr: number[] = [];
    const trans: number[] = [];
    for (let i = 0; i < reps; i++) {
      plain.push(run(node, 'plain')['nsPerCall']!);
      untracked.push(run(node, 'untracked')['nsPerCall']!);
      instr.push(run(node, 'instrumented')['nsPerCall']!);
      trans.push(run(node, 'transition')['nsPerCall']!);
    }
    const p = median(plain);
    const u = median(untracked);
    const a = median(instr);
    const t = median(trans);
    rows.push({
      name: `${v}: async calls, no patch`,
      value: `${a.toFixed(0)} ns/call`,
      baseline: `${p.toFixed(0)} ns/call (plain)`,
      ratio: a / p,
      note: 'entry check and per-function frame count on every instrumented async call',
    });
    rows.push({
      name: `${v}: async calls, no patch, frame accounting alone`,
      value: `${a.toFixed(0)} ns/call`,
      baseline: `${u.toFixed(0)} ns/call (same code, no frame accounting)`,
      ratio: a / u,
      note: `what the consistency model adds with no patch loaded, apart from the entry check (instrumented without it is ${(u / p).toFixed(3)}x plain)`,
    });
    rows.push({
      name: `${v}: async calls, in transition`,
      value: `${t.toFixed(0)} ns/call`,
      baseline: `${p.toFixed(0)} ns/call (plain)`,
      ratio: t / p,
      note: 'the patched function is in a transition held open by a request',
    });
    const none: number[] = [];
    const many: number[] = [];
    for (let i = 0; i < reps; i++) {
      none.push(run(node, 'idle-0')['ms']!);
      many.push(run(node, 'idle-10000')['ms']!);
    }
    const n0 = median(none);
    const n1 = median(many);
    rows.push({
      name: `${v}: transition, 10,000 idle tasks`,
      value: `${n1.toFixed(2)} ms`,
      baseline: `${n0.toFixed(2)} ms (no tasks)`,
      ratio: n1 / n0,
      note: 'enable() call to completion',
    });
    const bare: number[] = [];
    const held: number[] = [];
    const own: number[] = [];
    for (let i = 0; i < reps; i++) {
      bare.push(run(node, 'request-plain')['nsPerRequest']!);
      held.push(run(node, 'request-held')['nsPerRequest']!);
      own.push(run(node, 'request-own')['nsPerRequest']!);
    }
    const r0 = median(bare);
    for (const [what, ns, how] of [
      ['between transitions', median(held), 'held in flight on the task it runs in'],
      ['while a transition runs', median(own), 'a task of its own'],
    ] as const) {
      rows.push({
        name: `${v}: a request ${what} (in process)`,
        value: `${ns.toFixed(0)} ns/request`,
        baseline: `${r0.toFixed(0)} ns/request (no task sources)`,
        ratio: ns / r0,
        note: `emit('request'), the request's 'end', the response's 'finish' and 'close'; ${how}: ${(ns - r0).toFixed(0)} ns per request`,
      });
    }
  }
  report('Consistency model: task tracking and transitions', rows);
}

const at = process.argv.indexOf('--child');
if (at >= 0) await child(process.argv[at + 1]!);
else await parent();
