/**
 * Generated programs: random nests of every parameter and function form (seeded, so failures
 * reproduce) must compute the same result instrumented as plain, print the same function text,
 * and still compute it when every named function is redirected to a replacement that calls
 * `callContext().original` (which exercises `this`, `new.target`, raw arguments and the bypass).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { callContext } from '../src/runtime/context.ts';
import { redirect, type Replacement } from '../src/runtime/redirect.ts';
import { stripGenerated } from '../src/runtime/tostring.ts';
import { loadEsm, target } from './support/instrumented.ts';

class Gen {
  private seed: number;
  private n = 0;
  constructor(seed: number) {
    this.seed = seed;
  }
  next(): number {
    this.seed = (Math.imul(this.seed, 1103515245) + 12345) & 0x7fffffff;
    return this.seed / 0x7fffffff;
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
  id(prefix: string): string {
    return `${prefix}${++this.n}`;
  }

  /** A parameter list, the names it binds, and arguments that satisfy it. */
  params(arrow: boolean): { text: string; names: string[]; args: string; single: boolean } {
    const count = Math.floor(this.next() * 4);
    const names: string[] = [];
    const parts: string[] = [];
    const args: string[] = [];
    for (let i = 0; i < count; i++) {
      const p = this.id('p');
      names.push(p);
      const form = this.pick(['plain', 'plain', 'pure', 'impure', 'object', 'array', 'nested']);
      const v = Math.floor(this.next() * 9) + 1;
      switch (form) {
        case 'plain':
          parts.push(p);
          args.push(String(v));
          break;
        case 'pure':
          parts.push(`${p} = ${v}`);
          args.push(this.next() < 0.5 ? 'undefined' : String(v * 10));
          break;
        case 'impure':
          parts.push(`${p} = (log.push('${p}'), ${v})`);
          args.push(this.next() < 0.5 ? 'undefined' : String(v * 10));
          break;
        case 'object':
          parts.push(`{ k: ${p} = ${v} } = {}`);
          args.push(this.pick(['undefined', '{}', `{ k: ${v * 3} }`]));
          break;
        case 'array':
          parts.push(`[${p}]`);
          args.push(`[${v}]`);
          break;
        case 'nested':
          parts.push(`{ a: [${p} = ${v}] = [] }`);
          args.push(this.pick(['{}', `{ a: [${v * 7}] }`]));
          break;
      }
    }
    const tail = this.next();
    if (tail < 0.3) {
      const r = this.id('r');
      names.push(`${r}.length`);
      parts.push(`...${r}`);
      args.push('100', '200');
    } else if (tail < 0.5) {
      args.push('999'); // an extra argument
    }
    const single = arrow && parts.length === 1 && parts[0] === names[0] && this.next() < 0.5;
    return {
      text: single ? parts[0]! : `(${parts.join(', ')})`,
      names,
      args: args.join(', '),
      single,
    };
  }

  /** An expression over the names in scope, possibly calling freshly made functions. */
  expr(scope: string[], depth: number, decls: string[] | null): string {
    const terms = scope.filter(() => this.next() < 0.7);
    terms.push(String(Math.floor(this.next() * 5)));
    if (depth < 3 && this.next() < 0.8) terms.push(this.call(scope, depth + 1, decls));
    if (depth < 3 && this.next() < 0.3) terms.push(this.call(scope, depth + 1, decls));
    return terms.map((t) => `(${t})`).join(' + ');
  }

  /** A call of a new function: bound to a const when the enclosing body is a block, else inline. */
  call(scope: string[], depth: number, decls: string[] | null): string {
    const form = this.pick([
      'arrow',
      'arrow',
      'function',
      'asyncless-method',
      'class',
      'derived',
      'getter',
      'declaration',
    ]);
    const arrow = form === 'arrow';
    const p = this.params(arrow);
    const inner = [...scope, ...p.names];
    const bodyDecls: string[] = [];
    const body = (): string => {
      const e = this.expr(inner, depth, bodyDecls);
      return `{ ${bodyDecls.join(' ')} return ${e}; }`;
    };
    let fn: string;
    let callText: (f: string) => string = (f) => `${f}(${p.args})`;
    switch (form) {
      case 'arrow': {
        if (this.next() < 0.5) {
          const e = this.expr(inner, depth, null);
          fn = `${p.text} => (${e})`;
        } else fn = `${p.text} => ${body()}`;
        break;
      }
      case 'function':
        fn = `function ${this.next() < 0.5 ? this.id('named') : ''}${p.text} ${body()}`;
        break;
      case 'declaration': {
        const name = this.id('decl');
        if (decls === null) {
          fn = `function ${name}${p.text} ${body()}`;
        } else {
          decls.push(`function ${name}${p.text} ${body()}`);
          return `${name}(${p.args})`;
        }
        break;
      }
      case 'asyncless-method': {
        const o = this.id('obj');
        fn = `({ ${o}${p.text} ${body()} }).${o}`;
        callText = (f) => `${f}.call({ tag: 1 }, ${p.args})`;
        break;
      }
      case 'class': {
        const c = this.id('C');
        fn = `class ${c} { f = ${depth}; constructor${p.text} { this.v = ${this.expr(inner, depth, null)}; } m() { return this.v + this.f; } }`;
        callText = (f) => `new (${f})(${p.args}).m()`;
        break;
      }
      case 'derived': {
        const c = this.id('D');
        fn = `class ${c} extends Base { g = 2; constructor${p.text} { const early = () => 1; super(early()); this.v = ${this.expr(inner, depth, null)} + this.g + this.b; } }`;
        callText = (f) => `new (${f})(${p.args}).v`;
        break;
      }
      case 'getter': {
        const g = this.id('get');
        fn = `Object.getOwnPropertyDescriptor({ get ${g}() { return ${this.expr(scope, depth, null)}; } }, '${g}').get`;
        callText = (f) => `${f}.call(null)`;
        break;
      }
      default:
        throw new Error(form);
    }
    if (decls !== null && this.next() < 0.6) {
      const name = this.id('f');
      decls.push(`const ${name} = ${fn};`);
      return callText(name);
    }
    return callText(`(${fn})`);
  }

  program(): string {
    const decls: string[] = [];
    const e = this.expr([], 0, decls);
    return `const log = [];\nclass Base { constructor(b) { this.b = b; } }\n${decls.join('\n')}\nexport function run() { return [${e}, log.splice(0)]; }\n`;
  }
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lp-fuzz-'));
let counter = 0;

async function runPlain(source: string): Promise<unknown> {
  const file = path.join(dir, `plain${++counter}.mjs`);
  fs.writeFileSync(file, source);
  const m = (await import(pathToFileURL(file).href)) as { run(): unknown };
  return m.run();
}

function passthrough(this: unknown, ...args: unknown[]): unknown {
  return callContext().original(...args);
}

describe('generated programs', () => {
  const SEEDS = 400;
  it(`${SEEDS} random nests of function and parameter forms give the same results, text and patched results`, async () => {
    let functions = 0;
    let patched = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const source = new Gen(seed).program();
      const context = `seed ${seed}:\n${source}`;
      const expected = await runPlain(source);
      const lp = await loadEsm<{ run(): unknown }>(source);
      assert.deepEqual(lp.exports.run(), expected, context);
      // Without the generated regions and the module header, the text is the original's, so
      // every function prints its original text.
      const header =
        /^import\{[^}]*\}from"#livepatch\/slots\?c=\$lp_[0-9a-f]{12}_(?:&s=[\d,]+)?";(?:const [^;]*;)?\$lp_m\.b\(\([^)]*\)=>[^)]*\);/;
      assert.equal(stripGenerated(lp.result.code).replace(header, ''), source, context);
      functions += lp.result.functions.length;
      const removers = lp.result.functions
        .filter((f) => f.callee !== undefined)
        .map((f) =>
          redirect(
            target(lp, f.pos > 0 ? `${f.name},${f.pos}` : f.name),
            passthrough as Replacement,
          ),
        );
      patched += removers.length;
      try {
        assert.deepEqual(
          lp.exports.run(),
          expected,
          `patched with pass-through replacements, ${context}`,
        );
      } finally {
        for (const r of removers) r.remove();
      }
      assert.deepEqual(lp.exports.run(), expected, context);
    }
    assert.ok(functions > SEEDS * 3, `only ${functions} functions generated`);
    assert.ok(patched > SEEDS, `only ${patched} functions patched`);
  });
});
