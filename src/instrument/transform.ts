/**
 * Source rewriting: puts the entry check into every function of a JavaScript module, adds the
 * module header that binds each function to its runtime slot, and returns the source map.
 *
 * Every piece of generated text sits between the markers `/*P[*\/` and `/*]P*\/` (P is the
 * module's identifier prefix) so that Function.prototype.toString can give back the original
 * text of any function (see ../runtime/tostring.ts). The exact shapes are in docs/architecture.md.
 */
import MagicString from 'magic-string';
import { parseSync } from 'oxc-parser';
import { analyze, type FoundFunction } from './analyze.ts';
import { type Node, LineIndex, field, list, str } from './walk.ts';
import type {
  FunctionInfo,
  InstrumentOptions,
  InstrumentResult,
  RefusedFunction,
  SourceMapV3,
} from './types.ts';
import { RUNTIME_KEY, SLOTS_SPECIFIER } from '../runtime/key.ts';

/** Bumped whenever generated code changes shape: it is part of the transform cache key. */
export const TRANSFORM_VERSION = 1;

/** The source does not parse; Node must report it itself from the original source. */
export class InstrumentSyntaxError extends SyntaxError {
  readonly filename: string;
  readonly offset: number | undefined;
  constructor(message: string, filename: string, offset: number | undefined) {
    super(message);
    this.name = 'InstrumentSyntaxError';
    this.filename = filename;
    this.offset = offset;
  }
}

export function instrument(source: string, opts: InstrumentOptions): InstrumentResult {
  const parsed = parseSync(opts.filename, source, {
    lang: 'js',
    sourceType: opts.format === 'module' ? 'module' : 'commonjs',
    preserveParens: true,
  });
  if (parsed.errors.length > 0) {
    const first = parsed.errors[0]!;
    throw new InstrumentSyntaxError(first.message, opts.filename, first.labels[0]?.start);
  }
  const program = parsed.program as unknown as Node;
  const commonjs = opts.format === 'commonjs';
  const analysis = analyze(program, source, commonjs);
  const prefix = choosePrefix(source);
  const lines = new LineIndex(source);

  // Source order decides slot indices and duplicate positions.
  const found = [...analysis.functions].sort((a, b) => a.start - b.start || 0);
  const counts = new Map<string, number>();
  for (const f of found) counts.set(f.name, (counts.get(f.name) ?? 0) + 1);
  const seen = new Map<string, number>();
  const infos: FunctionInfo[] = [];
  const refused: RefusedFunction[] = [];
  const slotOf = new Map<FoundFunction, number>();
  for (const f of found) {
    const n = (seen.get(f.name) ?? 0) + 1;
    seen.set(f.name, n);
    const { line, column } = lines.position(f.start);
    const tracked = (f.async || f.generator) && f.scope.blockConflict === null;
    const untrackedReason =
      (f.async || f.generator) && f.scope.blockConflict !== null
        ? `its body declares '${f.scope.blockConflict}' both as a function and as a var (or twice), which is invalid inside the block that frame tracking needs`
        : undefined;
    const index = infos.length;
    slotOf.set(f, index);
    infos.push({
      index,
      name: f.name,
      pos: counts.get(f.name)! > 1 ? n : 0,
      kind: f.kind,
      async: f.async,
      generator: f.generator,
      line,
      column,
      scope: [...f.free].sort(),
      privates: f.privates,
      superAccess: f.superAccess,
      tracked,
      ...(untrackedReason !== undefined ? { untrackedReason } : {}),
      ...(f.callee !== null ? { callee: f.callee } : {}),
    });
  }

  const out = new MagicString(source);
  const gen = new Generator(prefix, source, out);
  // Innermost and later functions first, so insertions at a shared offset nest correctly
  // (see the ordering notes in docs/architecture.md).
  const order = found
    .map((f, i) => ({ f, i }))
    .sort((a, b) => b.f.node.start - a.f.node.start || analysis.functions.indexOf(b.f) - analysis.functions.indexOf(a.f));
  for (const { f } of order) gen.instrumentFunction(f, slotOf.get(f)!, infos[slotOf.get(f)!]!);

  gen.header(program, infos.length, analysis.moduleBindings, opts, commonjs);

  const code = out.toString();
  let map: SourceMapV3 | null = null;
  if (opts.sourceMap !== false) {
    const m = out.generateMap({ hires: 'boundary', source: opts.filename, includeContent: true });
    map = {
      version: 3,
      sources: m.sources,
      sourcesContent: m.sourcesContent ?? [source],
      names: m.names,
      mappings: m.mappings,
    };
  }
  return { code, map, functions: infos, refused, moduleBindings: analysis.moduleBindings, prefix };
}

/** `$lp_`, or `$lp1_`, `$lp2_`… when the source already uses the shorter one anywhere. */
function choosePrefix(source: string): string {
  if (!source.includes('$lp_')) return '$lp_';
  for (let i = 1; ; i++) {
    const p = `$lp${i}_`;
    if (!source.includes(p)) return p;
  }
}

class Generator {
  private readonly open: string;
  private readonly close: string;
  private readonly p: string;
  private readonly source: string;
  private readonly out: MagicString;
  constructor(p: string, source: string, out: MagicString) {
    this.p = p;
    this.source = source;
    this.out = out;
    this.open = `/*${p}[*/`;
    this.close = `/*]${p}*/`;
  }

  instrumentFunction(f: FoundFunction, index: number, info: FunctionInfo): void {
    const node = f.node;
    const body = field(node, 'body')!;
    const params = list(node, 'params');
    const simple = params.every((p) => p.type === 'Identifier');
    const slot = `${this.p}${index}`;
    const scope = this.scopeAccessor(f, info);
    const tracked = info.tracked;
    const { p, open, close } = this;
    const R = `${p}r`;
    const T = `${p}t`;

    if (f.arrow && !simple) {
      // Arrow parameters are bound before any body code runs and arrows have no `arguments`:
      // a wrapper with plain parameters sees the raw arguments, then calls the original arrow.
      const k = expectedLength(params);
      const lead = Array.from({ length: k }, (_, i) => `${p}a${i}`);
      const rest = `${p}ar`;
      const formals = [...lead, `...${rest}`].join(',');
      const thisExpr = f.thisUnsafe ? 'undefined' : 'this';
      const gate = `const ${R}=${slot}.g(${thisExpr},[${formals}],undefined,${scope});if(${R}!==${slot})return ${R}`;
      const call = `${f.async ? 'await ' : ''}(`;
      const pre = `${open}${f.async ? 'async ' : ''}(${formals})=>{${tracked ? `let ${T}=0;` : ''}if(${slot}.g!==null){${gate}${tracked ? `;${T}=${slot}.t` : ''}}${tracked ? 'try{' : ''}return ${call}${close}`;
      const post = `${open})(${formals})${tracked ? `}finally{if(${T}!==0)${slot}.x(${T})}` : ''}}${close}`;
      this.out.prependRight(node.start, pre);
      this.out.appendLeft(node.end, post);
      return;
    }

    const thisExpr = f.kind === 'derived-constructor' || f.thisUnsafe ? 'undefined' : 'this';
    const argsExpr = f.arrow ? `[${params.map((q) => str(q, 'name')!).join(',')}]` : 'arguments';
    const ntExpr = f.arrow ? 'undefined' : 'new.target';
    const ret = f.generator ? `return yield* ${R}` : `return ${R}`;
    const gate = `const ${R}=${slot}.g(${thisExpr},${argsExpr},${ntExpr},${scope});if(${R}!==${slot})${ret}`;
    const check = `${tracked ? `let ${T}=0;` : ''}if(${slot}.g!==null){${gate}${tracked ? `;${T}=${slot}.t` : ''}}`;
    const finallyText = tracked ? `}finally{if(${T}!==0)${slot}.x(${T})}` : '';

    if (body.type !== 'BlockStatement') {
      // Concise arrow body: becomes a block that returns the expression.
      this.out.appendLeft(body.start, `${open}{${check}${tracked ? 'try{' : ''}return(${close}`);
      this.out.appendLeft(body.end, `${open})${finallyText}}${close}`);
      return;
    }
    let at = body.start + 1;
    let needsSemicolon = false;
    for (const stmt of list(body, 'body')) {
      if (!isDirective(stmt)) break;
      at = stmt.end;
      needsSemicolon = this.source.charCodeAt(stmt.end - 1) !== 59; /* ; */
    }
    this.out.appendLeft(at, `${open}${needsSemicolon ? ';' : ''}${check}${tracked ? 'try{' : ''}${close}`);
    if (tracked) this.out.appendLeft(body.end - 1, `${open}${finallyText}${close}`);
  }

  /** The per-call accessor for what the replacement may reach in the original's scope. */
  private scopeAccessor(f: FoundFunction, info: FunctionInfo): string {
    const { p } = this;
    const O = `${p}o`;
    const N = `${p}n`;
    const V = `${p}v`;
    const W = `${p}w`;
    const cases: string[] = [];
    for (const name of info.scope) cases.push(`case${JSON.stringify(name)}:return ${O}===0?${name}:(${name}=${V})`);
    for (const priv of info.privates) {
      cases.push(`case"${priv}":return ${O}===2?${V}.${priv}:${O}===3?(${V}.${priv}=${W}):${priv} in ${V}`);
    }
    if (f.superAccess) cases.push(`case"super":return super[${V}]`);
    if (f.kind === 'derived-constructor') cases.push(`case"super()":return(super(...${V}),this)`, `case"this":return this`);
    if (cases.length === 0) return 'undefined';
    return `(${O},${N},${V},${W})=>{switch(${N}){${cases.join(';')}}}`;
  }

  /** Module header: binds slots (and the module-level accessor) before any module code runs. */
  header(program: Node, count: number, bindings: readonly string[], opts: InstrumentOptions, commonjs: boolean): void {
    const { p } = this;
    const M = `${p}m`;
    const O = `${p}o`;
    const N = `${p}n`;
    const V = `${p}v`;
    const cases = bindings.map((b) => `case${JSON.stringify(b)}:return ${O}===0?${b}:(${b}=${V})`);
    const accessor = `${M}.b((${O},${N},${V})=>{switch(${N}){${cases.join(';')}}});`;
    let text: string;
    if (commonjs) {
      const slots = Array.from({ length: count }, (_, i) => `,${p}${i}=${M}.s[${i}]`).join('');
      text = `const ${M}=globalThis[Symbol.for(${JSON.stringify(RUNTIME_KEY)})].enter(${JSON.stringify(opts.url)})${slots};${accessor}`;
    } else {
      const names = Array.from({ length: count }, (_, i) => `s${i} as ${p}${i},`).join('');
      text = `import{${names}m as ${M}}from${JSON.stringify(SLOTS_SPECIFIER)};${accessor}`;
    }
    let at = 0;
    if (this.source.startsWith('#!')) {
      // After the hashbang line, so no line moves.
      const nl = this.source.indexOf('\n');
      at = nl === -1 ? this.source.length : nl + 1;
      if (nl === -1) text = `\n${text}`;
    }
    let needsSemicolon = false;
    for (const stmt of list(program, 'body')) {
      if (!isDirective(stmt)) break;
      at = stmt.end;
      needsSemicolon = this.source.charCodeAt(stmt.end - 1) !== 59;
    }
    this.out.appendLeft(at, `${needsSemicolon ? ';' : ''}${text}`);
  }
}

function isDirective(stmt: Node): boolean {
  return stmt.type === 'ExpressionStatement' && typeof stmt['directive'] === 'string';
}

/** `Function.length`: parameters before the first default or rest parameter. */
function expectedLength(params: Node[]): number {
  let n = 0;
  for (const q of params) {
    if (q.type === 'AssignmentPattern' || q.type === 'RestElement') break;
    n++;
  }
  return n;
}
