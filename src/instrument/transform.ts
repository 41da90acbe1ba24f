/**
 * Source rewriting: puts the entry check into every function of a JavaScript module, adds the
 * module header that binds each function to its runtime slot, and returns the source map.
 *
 * Every piece of generated text sits between the markers `/*P[*\/` and `/*]P*\/` (P is the
 * module's identifier prefix) so that Function.prototype.toString can give back the original
 * text of any function (see ../runtime/tostring.ts). The exact shapes are in docs/architecture.md.
 */
import { createHash } from 'node:crypto';
import MagicString from 'magic-string';
import { parseSync } from 'oxc-parser';
import { analyze, isWritable, readsHoistedBinding, type FoundFunction } from './analyze.ts';
import { type Node, LineIndex, bool, field, list, str } from './walk.ts';
import type {
  FunctionInfo,
  InstrumentOptions,
  InstrumentResult,
  RefusedFunction,
  SourceMapV3,
} from './types.ts';
import { RUNTIME_KEY, slotsSpecifier } from '../runtime/key.ts';

/** Bumped whenever generated code changes shape: it is part of the transform cache key. */
export const TRANSFORM_VERSION = 22;

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
  const plans = new Map<FoundFunction, Plan>();
  for (const f of found) {
    // Positions count every function of the name, refused ones too, so that a name never
    // depends on whether another function could be instrumented.
    const n = (seen.get(f.name) ?? 0) + 1;
    seen.set(f.name, n);
    const { line, column } = lines.position(f.start);
    if (f.refusal !== null) {
      refused.push({
        name: f.name,
        ...(counts.get(f.name)! > 1 ? { pos: n } : {}),
        line,
        column,
        reason: f.refusal,
      });
      continue;
    }
    const plan = planFor(f, source);
    plans.set(f, plan);
    // Frame tracking wraps the body in try/finally; a wrapper's inner function has a body of its
    // own, so only the in-body form cares about declarations that a block would reject.
    const conflict = plan === 'body' || plan === 'params-in-body' ? f.scope.blockConflict : null;
    const tracked = (f.async || f.generator) && conflict === null;
    const untrackedReason =
      (f.async || f.generator) && conflict !== null
        ? `its body declares '${conflict}' both as a function and as a var (or twice), which is invalid inside the block that frame tracking needs; calls are redirected, but its suspended frames are not counted by the consistency model`
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
      scope: reachableNames(f),
      privates: f.privates,
      superAccess: f.superAccess && f.usesSuper,
      tracked,
      ...(untrackedReason !== undefined ? { untrackedReason } : {}),
      ...(f.callee !== null ? { callee: f.callee } : {}),
      ...(f.heldBy !== null ? { heldBy: f.heldBy } : {}),
    });
  }

  const out = new MagicString(source);
  const cells = cellPrefix(prefix, opts.url, source);
  const gen = new Generator(prefix, cells, source, out);
  // Innermost and later functions first, so insertions at a shared offset nest correctly
  // (see the ordering notes in docs/architecture.md).
  const order = found
    .map((f, i) => ({ f, i }))
    .sort(
      (a, b) =>
        b.f.node.start - a.f.node.start ||
        analysis.functions.indexOf(b.f) - analysis.functions.indexOf(a.f),
    );
  for (const { f } of order) {
    const index = slotOf.get(f);
    if (index !== undefined) gen.instrumentFunction(f, index, infos[index]!, plans.get(f)!);
  }

  // Only async functions and generators read their slot (to count live frames); the entry
  // check reads its gate cell.
  const tracked = infos.filter((i) => i.tracked).map((i) => i.index);
  const early = found
    .filter((f) => slotOf.has(f) && f.early && infos[slotOf.get(f)!]!.tracked)
    .map((f) => slotOf.get(f)!);
  gen.header(
    program,
    tracked,
    early,
    analysis.moduleBindings,
    analysis.assignedModuleBindings,
    opts,
    commonjs,
  );

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

/**
 * Global name prefix of a module's gate cells: the module's identifier prefix (which no name in
 * the source starts with, so nothing shadows a cell), then a digest of URL and source, so that
 * each module, and each version of a module at one URL, has cells of its own. Cell `i` is the
 * prefix followed by `i`.
 */
function cellPrefix(prefix: string, url: string, source: string): string {
  const digest = createHash('sha256').update(url).update('\0').update(source).digest('hex');
  return `${prefix}${digest.slice(0, 12)}_`;
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
  /** Global name prefix of this module's gate cells (see cellPrefix). */
  private readonly cells: string;
  /** Parameter ranges moved into bodies so far (they number the toString markers). */
  private moved = 0;
  constructor(p: string, cells: string, source: string, out: MagicString) {
    this.p = p;
    this.cells = cells;
    this.source = source;
    this.out = out;
    this.open = `/*${p}[*/`;
    this.close = `/*]${p}*/`;
  }

  instrumentFunction(f: FoundFunction, index: number, info: FunctionInfo, plan: Plan): void {
    const node = f.node;
    const body = field(node, 'body')!;
    const params = list(node, 'params');
    const slot = `${this.p}${index}`;
    const cell = `${this.cells}${index}`;
    const scope = this.scopeAccessor(f, info);
    const tracked = info.tracked;
    const { p, open, close } = this;
    const R = `${p}r`;
    const T = `${p}t`;
    // The gate is read once into a local and called as a plain function with the call's `this`,
    // `new.target` and scope accessor; it returns the function to call with the call's arguments,
    // or undefined to let the original body run. Calls of at most two register operands need no
    // register moves: a one-parameter method's check is 18 bytes of bytecode, 38 as one call that
    // passed everything, and V8's inlining budgets count every byte (docs/architecture.md).
    const G = `${p}g`;
    // In a derived constructor `this` does not exist before super() returns: read it lazily.
    const lazyThis = '(()=>{try{return this}catch{}})()';
    // An arrow passes the enclosing `this` / `new.target` only if it reads them itself: naming
    // them would make V8 allocate a context for them on every call of the enclosing function.
    const thisExpr =
      f.kind === 'derived-constructor' || (f.arrow && !f.usesThis && !f.usesSuper)
        ? 'void 0'
        : f.thisUnsafe
          ? lazyThis
          : 'this';
    // `new.target` is named only where it can be defined: constructors, plain functions, and
    // arrows inside those that read it. Methods, accessors, async functions and generators cannot
    // be called with `new`.
    const constructible =
      f.kind === 'constructor' ||
      f.kind === 'derived-constructor' ||
      (f.kind === 'function' && !f.async && !f.generator);
    const ntExpr = f.arrow
      ? f.newTargetOk && f.usesNewTarget
        ? 'new.target'
        : 'void 0'
      : constructible
        ? 'new.target'
        : 'void 0';
    // Tracked functions count their live frame in the calling task for the whole run of the
    // body or of the replacement (awaited / delegated inside the try), see src/transition/tasks.ts.
    const trackStart = tracked ? `const ${T}=${slot}.e();try{` : '';
    const finallyText = tracked ? `}finally{${slot}.x(${T})}` : '';
    const awaitR = tracked && f.async && !f.generator ? `await ${R}` : R;

    if (plan === 'arrow-wrapper') {
      // Arrow parameters are bound before any body code runs and arrows have no `arguments`:
      // a wrapper with plain parameters sees the raw arguments, then calls the original arrow.
      // It stands where the arrow stood, so it gets the same inferred `name`, and has the same
      // `length` (the parameters before the first default or rest).
      const lead = Array.from({ length: expectedLength(params) }, (_, i) => `${p}a${i}`);
      const formals = [...lead, `...${p}ar`].join(',');
      const gate = `const ${R}=${G}(${gateArgs(thisExpr, ntExpr, scope)});if(${R}!==void 0)return ${awaitR}(${formals})`;
      const pre = `${open}${f.async ? 'async ' : ''}(${formals})=>{${trackStart}const ${G}=${cell};if(${G}!==null){${gate}}return ${f.async ? 'await ' : ''}(${close}`;
      const post = `${open})(${formals})${finallyText}}${close}`;
      this.out.prependRight(node.start, pre);
      this.out.appendLeft(node.end, post);
      return;
    }

    if (plan === 'function-wrapper') {
      // Destructuring or a default with effects runs before the body: the function keeps its
      // identity but gets plain parameters, checks, then runs its original parameter list and
      // body as an arrow (same `this`, `arguments`, `new.target` and `super`).
      const lead = Array.from(
        { length: f.kind === 'setter' ? 1 : expectedLength(params) },
        (_, i) => `${p}a${i}`,
      );
      const openParen =
        node.type === 'FunctionExpression' && this.source.charCodeAt(node.start) === 40
          ? node.start
          : this.scan(node.start, '(');
      const closeParen = this.scan(params[params.length - 1]!.end, ')');
      const gate = `const ${R}=${G}(${gateArgs(thisExpr, ntExpr, scope)});if(${R}!==void 0)return ${awaitR}(...arguments)`;
      const pre = `${open}(${lead.join(',')}){${trackStart}const ${G}=${cell};if(${G}!==null){${gate}}return ${f.async ? 'await ' : ''}(${f.async ? 'async ' : ''}${close}`;
      this.out.prependRight(openParen, pre);
      this.out.appendLeft(closeParen + 1, `${open}=>${close}`);
      this.out.appendLeft(body.end, `${open})(...arguments)${finallyText}}${close}`);
      return;
    }

    if (plan === 'params-in-body') this.moveParams(params, this.checkOffset(body).at);

    // What the replacement receives. Naming `arguments` makes V8 materialize the arguments object
    // on every call in every tier below TurboFan: measured 1.70x on acorn, 1.00x without it
    // (docs/benchmarks.md, check shape). So the check forwards the declared parameters, and
    // forwards `arguments` only where the function reads it anyway or where the parameters are
    // bound from defaults (the replacement must see the raw arguments to apply its own).
    const simpleOrRest = params.every(
      (q, i) =>
        q.type === 'Identifier' ||
        (q.type === 'RestElement' &&
          i === params.length - 1 &&
          field(q, 'argument')!.type === 'Identifier'),
    );
    const names = params.map((q) =>
      str(q.type === 'RestElement' ? field(q, 'argument')! : q, 'name'),
    );
    const duplicateNames = new Set(names).size !== names.length; // sloppy `function f(a, a)`
    let argsExpr = '...arguments';
    if (f.arrow || (simpleOrRest && !f.usesArguments && !duplicateNames)) {
      argsExpr = params
        .map((q) =>
          q.type === 'RestElement' ? `...${str(field(q, 'argument')!, 'name')!}` : str(q, 'name')!,
        )
        .join(',');
    }
    const call = `${R}(${argsExpr})`;
    // An async function whose own code runs nothing on exit counts its frame with try/catch and
    // its returns instead of try/finally: a `finally` around an `await` costs V8 more on every
    // call (Node 24: 1.25x a near-empty async function; try/catch: 1.00x; bench/codegen.ts). Each
    // `return x` becomes `return S.y(t, x)`, which ends the frame once `x` is evaluated, exactly
    // when the `finally` would have run.
    const byReturns = tracked && f.async && !f.generator && !f.runsOnExit;
    const leave = (value: string): string => `${slot}.y(${T}${value === '' ? '' : `,${value}`})`;
    const ret = f.generator
      ? `return yield* ${call}`
      : byReturns
        ? `return ${leave(`await ${call}`)}`
        : `return ${awaitR}(${argsExpr})`;
    const gate = `const ${R}=${G}(${gateArgs(thisExpr, ntExpr, scope)});if(${R}!==void 0)${ret}`;
    const check = `${trackStart}const ${G}=${cell};if(${G}!==null){${gate}}`;
    const E = `${p}e`;
    const endText = byReturns ? `}catch(${E}){${slot}.x(${T});throw ${E}}` : finallyText;
    if (byReturns) {
      for (const r of f.returns) {
        const arg = field(r, 'argument');
        if (arg === null) {
          // `return` + `;`: a bare return followed by a line starting with `(` stays bare.
          this.out.appendLeft(r.start + 6, `${open} ${leave('')};${close}`);
        } else {
          this.out.prependRight(arg.start, `${open}${slot}.y(${T},${close}`);
          this.out.appendLeft(arg.end, `${open})${close}`);
        }
      }
    }

    if (body.type !== 'BlockStatement') {
      // Concise arrow body: becomes a block that returns the expression.
      this.out.appendLeft(
        body.start,
        `${open}{${check}return ${byReturns ? `${slot}.y(${T},` : ''}(${close}`,
      );
      this.out.appendLeft(body.end, `${open})${byReturns ? ')' : ''}${endText}}${close}`);
      return;
    }
    const { at, needsSemicolon } = this.checkOffset(body);
    this.out.appendLeft(at, `${open}${needsSemicolon ? ';' : ''}${check}${close}`);
    if (byReturns) this.out.appendLeft(body.end - 1, `${open}${endText}${leave('')}${close}`);
    else if (tracked) this.out.appendLeft(body.end - 1, `${open}${finallyText}${close}`);
  }

  /** Where a block body's check goes: after its directives (`"use strict"` and the like). */
  private checkOffset(body: Node): { at: number; needsSemicolon: boolean } {
    let at = body.start + 1;
    let needsSemicolon = false;
    for (const stmt of list(body, 'body')) {
      if (!isDirective(stmt)) break;
      at = stmt.end;
      needsSemicolon = this.source.charCodeAt(stmt.end - 1) !== 59; /* ; */
    }
    return { at, needsSemicolon };
  }

  /**
   * Moves the parameters that run code (every default and pattern) into the body at `at`, after the check, as statements that do what the
   * parameter list did, in its order: `if(x===void 0)x = d;` for a default and
   * `var {a, b}=$lp_q0;` for a pattern, which the list then binds to a plain placeholder. A moved
   * default leaves `=void 0` behind, so the function's `length` and its non-simple parameter
   * list stay as they were. Only original text moves (magic-string keeps its source mappings);
   * `/*P@j*\/` marks where region `/*P{j*\/ … /*P}j*\/` came from, for Function.prototype.toString
   * (../runtime/tostring.ts). Analysis (FoundFunction.paramsMovable) has ruled out what the move
   * would change: names the body declares, temporal dead zones, `arguments`.
   */
  private moveParams(params: Node[], at: number): void {
    const { p, open, close } = this;
    const mark = (c: '@' | '{' | '}', j: number): string => `/*${p}${c}${j}*/`;
    // Ranges moved to one offset land in the order they are moved.
    for (const q of params) {
      if (q.type === 'Identifier') continue;
      const left = q.type === 'AssignmentPattern' ? field(q, 'left')! : null;
      const target = left ?? q;
      const pattern = target.type === 'RestElement' ? field(target, 'argument')! : target;
      const named = pattern.type === 'Identifier';
      if (named && left === null) continue; // `...rest`
      const x = named ? str(pattern, 'name')! : `${p}q${this.moved}`;
      const jPattern = named ? -1 : this.moved++;
      const jDefault = left === null ? -1 : this.moved++;
      // What stays in the list: the placeholder, then `=void 0` where a default was.
      const stays = `${named ? '' : `${open}${x}${close}${mark('@', jPattern)}`}${left === null ? '' : `${open}=void 0${close}${mark('@', jDefault)}`}`;
      this.out.appendLeft(named ? left!.end : pattern.start, stays);
      if (left !== null) {
        this.out.prependRight(
          left.end,
          `${open}if(${x}===void 0)${x}${close}${mark('{', jDefault)}`,
        );
        this.out.appendLeft(q.end, `${mark('}', jDefault)}${open};${close}`);
        this.out.move(left.end, q.end, at);
      }
      if (!named) {
        this.out.prependRight(pattern.start, `${open}var ${close}${mark('{', jPattern)}`);
        this.out.appendLeft(pattern.end, `${mark('}', jPattern)}${open}=${x};${close}`);
        this.out.move(pattern.start, pattern.end, at);
      }
    }
  }

  /** Offset after whitespace and comments from `from`. */
  private skipTrivia(from: number): number {
    const src = this.source;
    let i = from;
    while (i < src.length) {
      const c = src.charCodeAt(i);
      if (c === 47 /* / */ && src.charCodeAt(i + 1) === 42 /* * */) {
        const end = src.indexOf('*/', i + 2);
        i = end === -1 ? src.length : end + 2;
      } else if (c === 47 && src.charCodeAt(i + 1) === 47) {
        while (i < src.length && !isLineTerminator(src.charCodeAt(i))) i++;
      } else if (isSpace(c)) {
        i++;
      } else break;
    }
    return i;
  }

  /**
   * Offset of the first `ch` from `from`, outside comments. Only used over spans that hold
   * keywords, names, commas and comments (between a function's start and its parameter list, or
   * between the last parameter and `)`).
   */
  private scan(from: number, ch: '(' | ')'): number {
    const code = ch.charCodeAt(0);
    let i = from;
    for (;;) {
      i = this.skipTrivia(i);
      if (i >= this.source.length)
        throw new Error(`livepatch: '${ch}' not found after offset ${from}`);
      if (this.source.charCodeAt(i) === code) return i;
      i++;
    }
  }

  /** The per-call accessor for what the replacement may reach in the original's scope. */
  private scopeAccessor(f: FoundFunction, info: FunctionInfo): string {
    const names = info.scope;
    const assigned = new Set(names.filter((name) => isWritable(f.free.get(name)!)));
    const superCall = f.kind === 'derived-constructor';
    if (names.length === 0 && info.privates.length === 0 && !info.superAccess && !superCall)
      return 'void 0';
    const extra: Extra = { privates: info.privates, superAccess: info.superAccess, superCall };
    // A named function expression's own name lives in a scope of the call itself: read from an
    // inner closure, V8 would keep it in a heap context allocated on every call (acorn's regexp
    // scanner ran 4-10% slower on Node 26). The accessor gets it as a parameter of its own,
    // passed by the function's code, which reads its name from the closure register.
    const own = ownNameRead(f, names);
    if (own === null) return this.accessor(names, assigned, extra);
    const F = `${this.p}f`;
    const inner = this.accessor(names, assigned, extra, new Map([[own, F]]));
    return `((${F})=>${inner})(${own})`;
  }

  /**
   * A scope accessor `(o,n,v,w)=>…` over `names`, one expression of conditionals: op 0 reads
   * `names[n]`; op 1 writes `v` to it when it is writable (see isWritable) and otherwise returns
   * the module record, which the runtime turns into a TypeError (src/runtime/context.ts), as for
   * `const`; ops 2–4 read, write (`w`) and test private member `privates[n]` of `v`; op 5 reads
   * `super[v]`, op 6 calls `super(...v)` (ScopeOp in src/runtime/key.ts). The runtime asks only
   * for what FunctionInfo lists, so an op the function lacks needs no branch. Names are picked
   * by index through a balanced tree of `n<k?…:…`, not a `switch` over their strings: accessors
   * were most of the generated text (typescript.js: 6.2 of 9.7 MB), which V8 scans on every
   * compile of the enclosing function and keeps for the life of the process. Parameters get
   * one-letter names unless one of the names would be shadowed.
   */
  private accessor(
    names: readonly string[],
    assigned: ReadonlySet<string>,
    extra: Extra | null,
    /** Names read through another expression (ownNameRead). */
    reads: ReadonlyMap<string, string> = new Map(),
  ): string {
    const { p } = this;
    const M = `${p}m`;
    const short = !names.some((n) => n === 'o' || n === 'n' || n === 'v' || n === 'w');
    const [O, N, V, W] = short ? ['o', 'n', 'v', 'w'] : [`${p}o`, `${p}n`, `${p}v`, `${p}w`];
    const pick = (leaves: readonly string[]): string => pickByIndex(N, leaves);
    const privates = extra?.privates ?? [];
    // Ops from the highest down, each `O>k?…:` taking the ops above k.
    let expr = '';
    if (extra?.superCall === true) expr += `${O}>5?(super(...${V}),this):`;
    if (extra?.superAccess === true) expr += `${O}>4?super[${V}]:`;
    if (privates.length > 0) {
      const leaves = privates.map(
        (priv) => `${O}<3?${V}.${priv}:${O}<4?${V}.${priv}=${W}:${priv} in ${V}`,
      );
      expr += `${O}>1?${pick(leaves)}:`;
    }
    if (assigned.size > 0)
      expr += `${O}?${pick(names.map((n) => (assigned.has(n) ? `${n}=${V}` : M)))}:`;
    else if (names.length > 0) expr += `${O}?${M}:`;
    expr += names.length > 0 ? pick(names.map((n) => reads.get(n) ?? n)) : M;
    // Only the parameters the expression uses: `w` for private writes, `v` for any value.
    const params =
      privates.length > 0
        ? 4
        : extra?.superCall === true || extra?.superAccess === true || assigned.size > 0
          ? 3
          : 2;
    return `(${[O, N, V, W].slice(0, params).join(',')})=>${expr}`;
  }

  /**
   * Module header: tells the runtime the module starts (which defines its gate cells), binds the
   * slots of tracked functions and registers the module-level accessor, before any module code.
   */
  header(
    program: Node,
    tracked: readonly number[],
    early: readonly number[],
    bindings: readonly string[],
    assigned: ReadonlySet<string>,
    opts: InstrumentOptions,
    commonjs: boolean,
  ): void {
    const { p } = this;
    const M = `${p}m`;
    const accessor = `${M}.b(${this.accessor(bindings, assigned, null)});`;
    let text: string;
    if (commonjs) {
      const slots = tracked.map((i) => `,${p}${i}=${M}.s(${i})`).join('');
      // A CommonJS module may declare its own `globalThis` or `Symbol` at top level (lodash's
      // per-method packages do `var Symbol = root.Symbol`): reach the global object by a name the
      // module does not shadow.
      const global = !bindings.includes('globalThis')
        ? 'globalThis'
        : !bindings.includes('Function')
          ? 'Function("return this")()'
          : '(0,eval)("this")';
      // `var`, not `const`: nothing of the module runs before this line, and a single `var`
      // initializer is immutable to V8 without the hole check a `const` costs in every function.
      text = `var ${M}=(${global})[(${global}).Symbol.for(${JSON.stringify(RUNTIME_KEY)})].enter(${JSON.stringify(opts.url)},${JSON.stringify(this.cells)})${slots};${accessor}`;
    } else {
      // Functions that may run before this body (FoundFunction.early) read their slot through an
      // import binding, which the slots module initializes first; the others through a const,
      // which V8 folds (an import binding is a cell load and a hole check on every call).
      const imported = new Set(early);
      const names = early.map((i) => `s${i} as ${p}${i},`).join('');
      const local = tracked.filter((i) => !imported.has(i)).map((i) => `${p}${i}=${M}.s(${i})`);
      const consts = local.length > 0 ? `const ${local.join(',')};` : '';
      // The specifier names the gate cells' prefix and the slots imported, so the slots module
      // defines the cells before any module of an import cycle runs, and exports only those slots.
      const specifier = slotsSpecifier(this.cells, early);
      text = `import{${names}m as ${M}}from${JSON.stringify(specifier)};${consts}${accessor}`;
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

/** How a function's entry check is put in (see instrumentFunction). */
/**
 * Where a function's check goes (docs/architecture.md, "Parameters"): in its body; in its body
 * with the parameters that run code moved there after it (`params-in-body`); or in a wrapper
 * that calls the original parameter list and body as an arrow.
 */
type Plan = 'body' | 'params-in-body' | 'arrow-wrapper' | 'function-wrapper';

const CONTEXTUAL = new Set([
  'eval',
  'arguments',
  'let',
  'static',
  'yield',
  'await',
  'implements',
  'interface',
  'package',
  'private',
  'protected',
  'public',
]);

function planFor(f: FoundFunction, source: string): Plan {
  const params = list(f.node, 'params');
  const plainOrRest = (q: Node): boolean =>
    q.type === 'Identifier' ||
    (q.type === 'RestElement' && field(q, 'argument')?.type === 'Identifier');
  if (f.arrow) return params.every(plainOrRest) ? 'body' : 'arrow-wrapper';
  // Generators bind their parameters at the call but run their body at the first next(): a
  // wrapper would move parameter errors to the first next(), so they keep the in-body check.
  // A setter has exactly one parameter and is never called with another count.
  if (f.generator || f.kind === 'setter') return 'body';
  const earlier = new Set<string>();
  for (const q of params) {
    if (plainOrRest(q)) {
      if (q.type === 'Identifier') earlier.add(str(q, 'name')!);
      continue;
    }
    const left = q.type === 'AssignmentPattern' ? field(q, 'left')! : null;
    if (left?.type !== 'Identifier' || !isPure(field(q, 'right')!, earlier, source, f))
      // A tracked function's body goes into a block (try/finally), where some declarations
      // clash (FoundFunction.scope.blockConflict); a wrapper's body is a function of its own.
      return f.paramsMovable && !f.usesArguments && f.scope.blockConflict === null
        ? 'params-in-body'
        : 'function-wrapper';
    earlier.add(str(left, 'name')!);
  }
  return 'body';
}

/**
 * Whether evaluating a default value can be observed (other than by allocation): a function whose
 * defaults are all pure keeps its in-body check, since its replacement receives the raw
 * `arguments` and applies its own defaults.
 */
function isPure(
  node: Node,
  earlierParams: ReadonlySet<string>,
  source: string,
  f: FoundFunction,
): boolean {
  switch (node.type) {
    case 'Literal':
    case 'FunctionExpression':
    case 'ArrowFunctionExpression':
      return true;
    case 'Identifier': {
      const name = str(node, 'name')!;
      return (
        name === 'undefined' ||
        name === 'NaN' ||
        name === 'Infinity' ||
        earlierParams.has(name) ||
        readsHoistedBinding(f, name)
      );
    }
    case 'TemplateLiteral':
      return list(node, 'expressions').length === 0;
    case 'ParenthesizedExpression':
      return isPure(field(node, 'expression')!, earlierParams, source, f);
    case 'UnaryExpression': {
      const op = str(node, 'operator');
      const arg = field(node, 'argument')!;
      if (op === 'void' || op === '!') return isPure(arg, earlierParams, source, f);
      return (
        (op === '-' || op === '+') && arg.type === 'Literal' && typeof arg['value'] !== 'object'
      );
    }
    case 'ArrayExpression':
      return list(node, 'elements').every(
        (e) => e.type !== 'SpreadElement' && isPure(e, earlierParams, source, f),
      );
    case 'ObjectExpression':
      return list(node, 'properties').every((prop) => {
        if (prop.type !== 'Property' || bool(prop, 'computed')) return false;
        const key = field(prop, 'key')!;
        const keyText = key.type === 'Identifier' ? str(key, 'name') : key['value'];
        return keyText !== '__proto__' && isPure(field(prop, 'value')!, earlierParams, source, f);
      });
    default:
      return false;
  }
}

function isSpace(c: number): boolean {
  return (
    c === 32 ||
    c === 9 ||
    c === 11 ||
    c === 12 ||
    c === 0xa0 ||
    c === 0xfeff ||
    isLineTerminator(c) ||
    (c > 0x7f && /\s/.test(String.fromCharCode(c)))
  );
}

function isLineTerminator(c: number): boolean {
  return c === 10 || c === 13 || c === 0x2028 || c === 0x2029;
}

function isDirective(stmt: Node): boolean {
  return stmt.type === 'ExpressionStatement' && typeof stmt['directive'] === 'string';
}

/** What a function's scope accessor offers besides names (see Generator.accessor). */
interface Extra {
  readonly privates: readonly string[];
  readonly superAccess: boolean;
  readonly superCall: boolean;
}

/**
 * The names a function's scope accessor reads, in accessor index order (FunctionInfo.scope):
 * its free names, less those that are keywords in some contexts. Those can only be bindings in
 * sloppy code, and the accessor may sit in a context where they are not identifiers (see
 * docs/naming.md).
 */
function reachableNames(f: FoundFunction): string[] {
  return [...f.free.keys()]
    .filter(
      (name) =>
        !CONTEXTUAL.has(name) &&
        !(name === 'await' && f.async) &&
        !(name === 'yield' && f.generator),
    )
    .sort();
}

/**
 * An expression that gives `leaves[n]` for an index `n` held in the variable named `N`: a
 * balanced tree of `N<k?…:…` (depth log2 of the count, so no parser recursion limit is near),
 * where runs of equal leaves share one branch.
 */
export function pickByIndex(N: string, leaves: readonly string[]): string {
  const starts: number[] = [];
  for (let i = 0; i < leaves.length; i++)
    if (i === 0 || leaves[i] !== leaves[i - 1]) starts.push(i);
  const tree = (lo: number, hi: number): string => {
    if (lo === hi) return leaves[starts[lo]!]!;
    const mid = (lo + hi + 1) >> 1;
    return `${N}<${starts[mid]}?${tree(lo, mid - 1)}:${tree(mid, hi)}`;
  };
  return tree(0, starts.length - 1);
}

/**
 * The gate's arguments: `this`, `new.target`, the scope accessor, less the trailing ones that
 * are undefined anyway (each costs bytes of bytecode, and a third moves all into a register list).
 */
function gateArgs(thisExpr: string, ntExpr: string, scope: string): string {
  const args = [thisExpr, ntExpr, scope];
  while (args.length > 0 && args[args.length - 1] === 'void 0') args.pop();
  return args.join(',');
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

/** The named function expression's own name, when its scope accessor reads it; else null. */
function ownNameRead(f: FoundFunction, names: readonly string[]): string | null {
  const fname = f.scope.parent;
  if (fname === null || fname.kind !== 'fname') return null;
  // The scope holds that one name (analyze.ts, `found`); it is free here unless the body shadows it.
  const [[name, binding]] = fname.names;
  return names.includes(name) && f.free.get(name) === binding ? name : null;
}
