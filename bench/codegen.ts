/**
 * Why the generated code has the shape it has (diagnostic): small probes, each a pair of tiny
 * programs that differ only in one choice the instrumenter makes, run as fresh processes in
 * alternating order (medians of several). docs/architecture.md cites these figures.
 *   bytecode       bytes of V8 bytecode of a one-parameter method, instrumented vs plain
 *                  (V8's inlining budgets count them)
 *   binding        a module function called (or a module variable read) from a hot loop, when
 *                  some (never run) code could assign its binding, vs when none can
 *   esm slot       the entry check reading its gate from a global cell (as generated), or from a
 *                  slot object bound by an import binding, a `let`, a `var`, a module-level
 *                  `const`, vs the same functions without a check
 *   async frame    a near-empty async function counting its frame with try/finally, or with
 *                  try/catch and its return, vs no counting
 *   callee binding a closure its enclosing function only passes to `map`, instrumented as
 *                  generated (its variable left in the frame), or with its scope accessor
 *                  reading that variable (to reach the original: TRANSFORM_VERSION 18), vs plain
 *
 * `node bench/codegen.ts [--quick]`
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { instrument } from '../src/instrument/transform.ts';
import { RUNTIME_KEY } from '../src/runtime/key.ts';
import { freshDir, NODE, QUICK } from './lib/proc.ts';
import { CALLEE_GATE_CALL, CALLEE_PROBE_SOURCE } from './lib/shapes.ts';
import { median, report, type Row } from './report.ts';

const REPS = QUICK ? 3 : 7;
const dir = freshDir('codegen');

function write(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

function runNs(file: string, args: string[] = []): number {
  const r = spawnSync(NODE, [file, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${file} failed: ${r.stderr}`);
  return Number(r.stdout.trim());
}

/** Medians of ns/op for each program, run in an order that flips every repetition. */
function compare(files: readonly string[]): number[] {
  const samples = files.map((): number[] => []);
  for (let rep = 0; rep < REPS; rep++) {
    const order = files.map((_, i) => i);
    if (rep % 2 === 1) order.reverse();
    for (const i of order) samples[i]!.push(runNs(files[i]!));
  }
  return samples.map(median);
}

const rows: Row[] = [];

/** A row of per-`unit` timings: `ns` against `base`, whose label follows `base ns`. */
function timed(
  name: string,
  [ns, base]: readonly [number, number],
  unit: string,
  against: string,
  note: string,
  digits = 2,
): Row {
  return {
    name,
    value: `${ns.toFixed(digits)} ns/${unit}`,
    baseline: `${base.toFixed(digits)} ns ${against}`,
    ratio: ns / base,
    note,
  };
}

/**
 * `source` as the instrumenter generates it, preceded by a stand-in runtime: enough for the
 * header to run and every gate cell to read null.
 */
function standalone(source: string, url: string): string {
  const generated = instrument(source, {
    url,
    format: 'commonjs',
    filename: url,
    sourceMap: false,
  });
  const shim = `globalThis[Symbol.for(${JSON.stringify(RUNTIME_KEY)})]={enter:(u,c)=>{for(let i=0;i<${generated.functions.length};i++)Object.defineProperty(globalThis,c+i,{value:null,configurable:true});return{s:[],b(){}}}};`;
  return shim + generated.code;
}

// ---- bytecode ------------------------------------------------------------------------------
{
  const source = `class K { m1(a) { return a.k === 1; } }\nconst k = new K();\nfor (let i = 0; i < 10; i++) k.m1({});\n`;
  const lengthOf = (file: string): number => {
    const r = spawnSync(NODE, ['--print-bytecode', '--print-bytecode-filter=m1', file], {
      encoding: 'utf8',
    });
    const m = /Bytecode length: (\d+)/.exec(r.stdout);
    if (m === null) throw new Error(`no bytecode printed for ${file}: ${r.stderr}`);
    return Number(m[1]);
  };
  const plain = lengthOf(write('bytecode-plain.cjs', source));
  const instrumented = lengthOf(
    write('bytecode-instrumented.cjs', standalone(source, 'file:///codegen-probe.cjs')),
  );
  rows.push({
    name: 'bytecode: one-parameter method',
    value: `${instrumented} bytes`,
    baseline: `${plain} bytes plain`,
    ratio: instrumented / plain,
    note: 'as the instrumenter generates it, entry check included',
  });
}

// ---- binding mutability ---------------------------------------------------------------------
// A hot loop reads module-level bindings; in the "assignable" program a function that never runs
// assigns them (what a setter in a scope accessor is, to V8).
for (const probe of [
  {
    name: 'binding: function, assignable by never-run code',
    decls: 'function isA(n) { return n.k === 1; } function isB(n) { return n.k === 2; }',
    test: 'isA(arr[i]) || isB(arr[i])',
    names: 'isA, isB',
    note: 'why function and class declarations the program never reassigns stay read-only',
  },
  {
    name: 'binding: variable, assignable by never-run code',
    decls: 'let limit = 1;',
    test: 'arr[i].k === limit',
    names: 'limit',
    note: 'what writable variables (issue 2 item 5) cost where the program only initializes them',
  },
]) {
  const program = (assignable: boolean): string => `
const m = new Function(\`
${probe.decls}
function count(arr) { let c = 0; for (let i = 0; i < arr.length; i++) if (${probe.test}) c++; return c; }
function never(v) { if (v === 12345) { ${assignable ? `[${probe.names}] = v;` : `return [${probe.names}];`} } }
return { count, never };\`)();
const arr = Array.from({ length: 1000 }, (_, i) => ({ k: i % 3 }));
let s = 0;
for (let i = 0; i < 20000; i++) s += m.count(arr);
const t0 = process.hrtime.bigint();
for (let i = 0; i < 20000; i++) s += m.count(arr);
console.log(Number(process.hrtime.bigint() - t0) / 20000 / 1000);`;
  const slug = probe.name.split(',')[0]!.replace(/\W+/g, '-');
  const [ro, rw] = compare([
    write(`${slug}-ro.cjs`, program(false)),
    write(`${slug}-rw.cjs`, program(true)),
  ]);
  rows.push(timed(probe.name, [rw!, ro!], 'element', '(not assignable)', probe.note));
}

// ---- ES module slot binding -----------------------------------------------------------------
{
  write(
    'slots.mjs',
    'export const m = { s: [{ g: null }, { g: null }, { g: null }] };\nexport const s0 = m.s[0], s1 = m.s[1], s2 = m.s[2];\n',
  );
  // `gate(i)` reads function i's gate: a slot object's `g`, or (as generated) a global cell.
  const check = (gate: string, p: string): string =>
    `const g=${gate};if(g!==null){const r=g(this);if(r!==void 0)return r(${p})}`;
  const body = (withCheck: boolean, gate: (i: number) => string): string => `
function isA(n){${withCheck ? check(gate(0), 'n') : ''} return n.k === 1 }
function isB(n){${withCheck ? check(gate(1), 'n') : ''} return n.k === 2 }
export function count(arr){${withCheck ? check(gate(2), 'arr') : ''} let c = 0; for (let i = 0; i < arr.length; i++) { if (isA(arr[i]) || isB(arr[i])) c++; } return c; }`;
  const variants: [string, string, boolean][] = [
    ['plain', '', false],
    [
      'global cell (as generated)',
      'for (let i = 0; i < 3; i++) Object.defineProperty(globalThis, "$c" + i, { value: null, configurable: true });',
      true,
    ],
    ['import binding', 'import { s0 as $0, s1 as $1, s2 as $2 } from "./slots.mjs";', true],
    ['let', 'import { m as $m } from "./slots.mjs"; let $0=$m.s[0],$1=$m.s[1],$2=$m.s[2];', true],
    ['var', 'import { m as $m } from "./slots.mjs"; var $0=$m.s[0],$1=$m.s[1],$2=$m.s[2];', true],
    [
      'const',
      'import { m as $m } from "./slots.mjs"; const $0=$m.s[0],$1=$m.s[1],$2=$m.s[2];',
      true,
    ],
  ];
  const files = variants.map(([name, header, withCheck]) => {
    const gate = name.startsWith('global cell')
      ? (i: number) => `$c${i}`
      : (i: number) => `$${i}.g`;
    const mod = write(
      `esm-${name.replace(/\W+/g, '-')}.mjs`,
      `${header}\n${body(withCheck, gate)}`,
    );
    return write(
      `esm-${name.replace(/\W+/g, '-')}-run.mjs`,
      `
const { count } = await import(${JSON.stringify(`./${path.basename(mod)}`)});
const arr = Array.from({ length: 1000 }, (_, i) => ({ k: i % 3 }));
let s = 0;
for (let i = 0; i < 20000; i++) s += count(arr);
const t0 = process.hrtime.bigint();
for (let i = 0; i < 30000; i++) s += count(arr);
console.log(Number(process.hrtime.bigint() - t0) / 30000 / 1000);`,
    );
  });
  const ns = compare(files);
  for (let i = 1; i < variants.length; i++) {
    rows.push(
      timed(
        `esm slot: ${variants[i]![0]}`,
        [ns[i]!, ns[0]!],
        'element',
        '(no check)',
        'entry checks of tiny hot functions, by where their gate lives',
      ),
    );
  }
}

// ---- async frame ----------------------------------------------------------------------------
{
  const shapes: Record<string, string> = {
    none: `async function parse(line) { await null; const [k, v] = line.split('='); return { k, v: Number(v) }; }`,
    finally: `async function parse(line) { const t=S.e();try{ await null; const [k, v] = line.split('='); return { k, v: Number(v) }; }finally{S.x(t)} }`,
    returns: `async function parse(line) { const t=S.e();try{ await null; const [k, v] = line.split('='); return S.y(t,{ k, v: Number(v) }); }catch(e){S.x(t);throw e} }`,
  };
  const files = Object.entries(shapes).map(([name, fn]) =>
    write(
      `async-${name}.mjs`,
      `
const S = { n: 0, e() { this.n++; return undefined; }, x(t) { this.n--; }, y(t, v) { this.n--; return v; } };
const parse = new Function('S', ${JSON.stringify(`${fn}; return parse;`)})(S);
async function total(lines) { let sum = 0; for (const l of lines) sum += (await parse(l)).v; return sum; }
const lines = Array.from({ length: 200 }, (_, i) => 'k' + i + '=' + i);
for (let i = 0; i < 300; i++) await total(lines);
const t0 = process.hrtime.bigint();
for (let i = 0; i < 1500; i++) await total(lines);
console.log(Number(process.hrtime.bigint() - t0) / 1500 / 200);`,
    ),
  );
  const [none, fin, ret] = compare(files);
  rows.push(
    timed(
      'async frame: try/finally',
      [fin!, none!],
      'call',
      '(not counted)',
      'the frame count as first generated',
      0,
    ),
    timed(
      'async frame: try/catch and returns',
      [ret!, none!],
      'call',
      '(not counted)',
      'the frame count as generated now, where the function runs nothing on exit',
      0,
    ),
  );
}

// ---- callee binding -------------------------------------------------------------------------
{
  const source = CALLEE_PROBE_SOURCE;
  const generated = standalone(source, 'file:///codegen-callee.cjs');
  if (!CALLEE_GATE_CALL.test(generated))
    throw new Error('callee probe: unexpected generated shape');
  const reading = generated.replace(
    CALLEE_GATE_CALL,
    `$lp_g(void 0,void 0,(o,n)=>{if(o===0)switch(n){case"cb":return cb}return 0})`,
  );
  const driver = `
const small = [1, 2, 3];
let s = 0;
for (let i = 0; i < 2e6; i++) s += exports.hot(small);
const t0 = process.hrtime.bigint();
for (let i = 0; i < 5e6; i++) s += exports.hot(small);
console.log(Number(process.hrtime.bigint() - t0) / 5e6);`;
  const [plain, asGenerated, readsCb] = compare([
    write('callee-plain.cjs', source + driver),
    write('callee-generated.cjs', generated + driver),
    write('callee-reads.cjs', reading + driver),
  ]);
  rows.push(
    timed(
      'callee binding: left in the frame (as generated)',
      [asGenerated!, plain!],
      'call',
      'plain',
      'a closure its function only calls or passes to calls has no reachable original',
      1,
    ),
    timed(
      'callee binding: read by its scope accessor',
      [readsCb!, plain!],
      'call',
      'plain',
      'the variable moves into a heap context; V8 no longer drops the closure',
      1,
    ),
  );
}

report('Generated code: probes of its shape', rows);
