/**
 * The instrumenter's analysis pass: one walk over a module's AST that finds every function, gives
 * it its stable qualified name (grammar in docs/naming.md), and resolves identifier references
 * well enough to know which enclosing-function bindings each function closes over.
 *
 * Why not eslint-scope: measured here on typescript.js (9 MB) it took 3.7 s against 0.5 s to
 * parse; this pass does only what the entry check needs (declarations, references, function
 * boundaries) in one walk.
 */
import { type Node, bool, field, forEachChild, list, str } from './walk.ts';
import type { CalleeRef, FunctionKind } from './types.ts';

type BindingKind = 'var' | 'let' | 'const' | 'function' | 'class' | 'param' | 'import' | 'catch';

export interface Binding {
  readonly kind: BindingKind;
  /** Some code of the program assigns the binding after its declaration (see isWritable). */
  assigned?: boolean;
  /** A closure reads the binding: V8 keeps it in a heap context (see resolveCallees). */
  captured?: boolean;
  /** Its own function uses its value other than by calling it or passing it to a call. */
  stored?: boolean;
}

/**
 * Whether a replacement may assign the binding through the scope accessor. Variables (`let`,
 * `var`, parameters, catch bindings) are writable: changing one is what a patch to a limit or a
 * cache is for. `const` and imports are read-only as in the language. Function and class
 * declarations are writable only where the program itself assigns them: an assignment in the
 * generated accessor, even one never run, makes V8 treat the binding as mutable, so calls through
 * it are no longer constant-folded (bench/codegen.ts, row "binding"), and a patch changes a
 * function by replacing it, which reaches every reference, not by rebinding its name.
 */
export function isWritable(b: Binding): boolean {
  return (
    b.assigned === true ||
    b.kind === 'let' ||
    b.kind === 'var' ||
    b.kind === 'param' ||
    b.kind === 'catch'
  );
}

/** A lexical scope. `boundary` scopes are functions (and class field / static-block bodies). */
class Scope {
  readonly names = new Map<string, Binding>();
  /** For function scopes: the function found there (null for field initializers, static blocks, module). */
  fn: FoundFunction | null = null;
  /** A var/function name clash that makes wrapping the body in a block unsafe. */
  blockConflict: string | null = null;
  /** For function scopes, once the body is walked: the names the body declares at its top level. */
  bodyNames: Set<string> | null = null;
  readonly kind: 'module' | 'function' | 'block' | 'class' | 'catch' | 'fname';
  readonly parent: Scope | null;
  constructor(kind: Scope['kind'], parent: Scope | null) {
    this.kind = kind;
    this.parent = parent;
  }
  /** The scope that receives `var` declarations. */
  get varScope(): Scope {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- walking up the scope chain
    let s: Scope = this;
    while (s.kind !== 'function' && s.kind !== 'module' && s.parent !== null) s = s.parent;
    return s;
  }
}

export interface FoundFunction {
  readonly node: Node;
  readonly kind: FunctionKind;
  readonly arrow: boolean;
  readonly async: boolean;
  readonly generator: boolean;
  readonly name: string;
  /** Offset where the function's text starts (methods: the member's start, incl. `static`/`get`). */
  readonly start: number;
  readonly scope: Scope;
  /** Free variables of the function (and its nested functions) bound in enclosing function scopes. */
  readonly free: Map<string, Binding>;
  readonly privates: readonly string[];
  readonly superAccess: boolean;
  /** Arrow functions inside a derived constructor must not read `this` eagerly. */
  readonly thisUnsafe: boolean;
  /** Arrow functions inside a non-arrow function may read `new.target` (the enclosing one's). */
  readonly newTargetOk: boolean;
  /** Why the function cannot be instrumented at all (it is then listed as refused), or null. */
  refusal: string | null;
  callee: CalleeRef | null;
  /** No callee: the enclosing function's variable that holds it (FunctionInfo.heldBy). */
  heldBy: string | null;
  /** The function (or an arrow inside it) reads its `arguments` object. */
  usesArguments: boolean;
  /** It is called where it is written: `(function () {…})()`, `(() => {…}).call(this)`. */
  iife: boolean;
  /**
   * The function's own code (or an arrow inside it) reads `this`, `new.target` or `super`. The
   * entry check of an arrow passes the enclosing `this` / `new.target` only when the arrow reads
   * it: naming them in an arrow makes V8 keep them in a heap context allocated on every call of
   * the enclosing function. Likewise the scope accessor offers `super` only to a method that uses
   * it (an arrow reading `super` captures `this`, with the same per-call cost for the method).
   */
  usesThis: boolean;
  usesNewTarget: boolean;
  usesSuper: boolean;
  /**
   * ES modules: the function may run before the module's body has started (another module of an
   * import cycle calls an exported function declaration, or what it reaches, first). Only such
   * functions read their slot through an import binding; the others read a module-level `const`,
   * which V8 folds to a constant (an import binding: 1.4–2.0x on tiny hot functions, bench/codegen.ts).
   */
  early: boolean;
  /**
   * Its parameter list can run in its body instead (docs/architecture.md, "Parameters"): what
   * the parameters' defaults and patterns refer to is neither declared by the body nor bound by
   * the same or a later parameter (a temporal dead zone the body would not have), nor is it
   * `arguments` or `eval`.
   */
  paramsMovable: boolean;
  /** The function's own `return` statements (not those of nested functions). */
  readonly returns: Node[];
  /**
   * The function's own code runs something when it is left (a `finally` block, or a `using`
   * declaration): frame accounting then keeps a `finally` of its own, which runs after those.
   */
  runsOnExit: boolean;
}

interface ClassFrame {
  readonly name: string;
  readonly privates: string[];
}

interface Ctx {
  readonly scope: Scope;
  /** Qualified name of the enclosing function ('' at module level). */
  readonly path: string;
  readonly classes: readonly ClassFrame[];
  readonly superOk: boolean;
  readonly inDerivedCtor: boolean;
  /** Inside a non-arrow function (so `new.target` is valid syntax). */
  readonly inFunction: boolean;
  /** Sloppy scripts (CommonJS) hoist block-level function declarations to the function (Annex B). */
  readonly annexB: boolean;
}

interface Ref {
  readonly name: string;
  readonly scope: Scope;
  /** The reference is a call's callee or one of its arguments (see resolveCallees). */
  readonly called?: boolean;
}

/**
 * A write to a name: an assignment, or a `var` initializer (which reassigns a function
 * declaration of the same name; for a `var` itself it changes nothing, variables are writable).
 */
type Write = Ref;

export interface Analysis {
  readonly functions: FoundFunction[];
  readonly moduleBindings: string[];
  /** Module-level bindings some code assigns (see Binding.assigned). */
  readonly assignedModuleBindings: ReadonlySet<string>;
}

const CJS_WRAPPER_BINDINGS = ['exports', 'require', 'module', '__filename', '__dirname'];

/** Analyse a parsed Program. `commonjs` adds the CommonJS wrapper's parameters as bindings. */
export function analyze(program: Node, source: string, commonjs: boolean): Analysis {
  const analyzer = new Analyzer(source);
  const moduleScope = new Scope('module', null);
  if (commonjs) for (const n of CJS_WRAPPER_BINDINGS) moduleScope.names.set(n, { kind: 'param' });
  const ctx: Ctx = {
    scope: moduleScope,
    path: '',
    classes: [],
    superOk: false,
    inDerivedCtor: false,
    inFunction: false,
    annexB: commonjs,
  };
  analyzer.hoistFunctionsAndBody(list(program, 'body'), ctx);
  analyzer.resolve();
  analyzer.resolveCallees(moduleScope);
  if (!commonjs) analyzer.markEarly(list(program, 'body'));
  return {
    functions: analyzer.functions,
    moduleBindings: [...moduleScope.names.keys()],
    assignedModuleBindings: new Set(
      [...moduleScope.names].filter(([, b]) => isWritable(b)).map(([n]) => n),
    ),
  };
}

class Analyzer {
  readonly functions: FoundFunction[] = [];
  private readonly refs: Ref[] = [];
  private readonly writes: Write[] = [];
  /** Module-level names referenced from within each top-level function (for markEarly). */
  private readonly moduleRefs = new Map<FoundFunction, Set<string>>();
  /** Callee bindings to resolve after the walk: [function, scope where the binding is looked up]. */
  private readonly pendingCallees: { fn: FoundFunction; from: Scope }[] = [];

  private readonly source: string;
  constructor(source: string) {
    this.source = source;
  }

  // ---- declarations -------------------------------------------------------------------------

  private declareName(scope: Scope, name: string, kind: BindingKind): void {
    const existing = scope.names.get(name);
    if (
      existing !== undefined &&
      scope.kind === 'function' &&
      (kind === 'function' || existing.kind === 'function') &&
      (kind === 'var' || kind === 'function') &&
      (existing.kind === 'var' || existing.kind === 'function')
    ) {
      // Legal at a function body's top level, a SyntaxError inside a block: the body of a
      // tracked function is wrapped in try/finally, so such a function stays untracked.
      scope.blockConflict ??= name;
    }
    if (existing === undefined || kind === 'function') scope.names.set(name, { kind });
    scope.bodyNames?.add(name);
  }

  private declarePattern(pattern: Node | null, scope: Scope, kind: BindingKind, ctx: Ctx): void {
    if (pattern === null) return;
    switch (pattern.type) {
      case 'Identifier':
        this.declareName(scope, str(pattern, 'name')!, kind);
        return;
      case 'AssignmentPattern':
        this.declarePattern(field(pattern, 'left'), scope, kind, ctx);
        this.expr(field(pattern, 'right'), ctx, nameOfPattern(field(pattern, 'left')));
        return;
      case 'ArrayPattern':
        for (const el of list(pattern, 'elements')) this.declarePattern(el, scope, kind, ctx);
        return;
      case 'ObjectPattern':
        for (const prop of list(pattern, 'properties')) {
          if (prop.type === 'RestElement') {
            this.declarePattern(field(prop, 'argument'), scope, kind, ctx);
          } else {
            if (bool(prop, 'computed')) this.expr(field(prop, 'key'), ctx);
            this.declarePattern(field(prop, 'value'), scope, kind, ctx);
          }
        }
        return;
      case 'RestElement':
        this.declarePattern(field(pattern, 'argument'), scope, kind, ctx);
        return;
      default:
        // Member expressions in assignment patterns are references, not declarations.
        this.expr(pattern, ctx);
    }
  }

  /** Declares what a statement list hoists into its scope, then walks the statements. */
  hoistFunctionsAndBody(statements: Node[], ctx: Ctx): void {
    for (const stmt of statements) this.hoistDeclaration(stmt, ctx.scope, ctx.annexB);
    for (const stmt of statements) this.stmt(stmt, ctx);
  }

  /** Pre-declares names of function/class/let/const declarations so references resolve. */
  private hoistDeclaration(stmt: Node, scope: Scope, annexB = false): void {
    let decl: Node | null = stmt;
    if (stmt.type === 'ExportNamedDeclaration' || stmt.type === 'ExportDefaultDeclaration') {
      decl = field(stmt, 'declaration');
    }
    if (decl === null) return;
    if (decl.type === 'FunctionDeclaration') {
      const id = field(decl, 'id');
      if (id !== null) {
        const name = str(id, 'name')!;
        this.declareName(scope, name, 'function');
        // Annex B: in sloppy code a function declared in a block is also a var of the function.
        if (annexB && scope.kind !== 'function' && scope.kind !== 'module') {
          const vs = scope.varScope;
          if (!vs.names.has(name)) vs.names.set(name, { kind: 'var' });
        }
      }
    } else if (decl.type === 'ClassDeclaration') {
      const id = field(decl, 'id');
      if (id !== null) this.declareName(scope, str(id, 'name')!, 'class');
    } else if (decl.type === 'ImportDeclaration') {
      for (const spec of list(decl, 'specifiers')) {
        const local = field(spec, 'local');
        if (local !== null) this.declareName(scope, str(local, 'name')!, 'import');
      }
    }
  }

  // ---- statements ---------------------------------------------------------------------------

  private stmt(node: Node, ctx: Ctx): void {
    switch (node.type) {
      case 'VariableDeclaration':
        this.variableDeclaration(node, ctx);
        return;
      case 'ReturnStatement': {
        ownFunction(ctx.scope)?.returns.push(node);
        this.generic(node, ctx);
        return;
      }
      case 'FunctionDeclaration': {
        const id = field(node, 'id');
        this.fn(node, ctx, id !== null ? str(id, 'name')! : 'default', node.start);
        return;
      }
      case 'ClassDeclaration': {
        const id = field(node, 'id');
        this.klass(node, ctx, id !== null ? str(id, 'name')! : 'default', true);
        return;
      }
      case 'ImportDeclaration':
        return; // declared when hoisting
      case 'ExportNamedDeclaration': {
        const decl = field(node, 'declaration');
        if (decl !== null) this.stmt(decl, ctx);
        else if (field(node, 'source') === null) {
          for (const spec of list(node, 'specifiers')) this.expr(field(spec, 'local'), ctx);
        }
        return;
      }
      case 'ExportDefaultDeclaration': {
        const decl = field(node, 'declaration')!;
        if (decl.type === 'FunctionDeclaration' || decl.type === 'ClassDeclaration') {
          this.stmt(decl, ctx);
        } else this.expr(decl, ctx, 'default');
        return;
      }
      case 'ExportAllDeclaration':
        return;
      case 'BlockStatement':
        this.block(list(node, 'body'), ctx);
        return;
      case 'StaticBlock': {
        // Class static blocks: handled by klass(), which names what they contain.
        const scope = new Scope('function', ctx.scope);
        this.hoistFunctionsAndBody(list(node, 'body'), {
          ...ctx,
          scope,
          superOk: true,
          inDerivedCtor: false,
          inFunction: false,
        });
        return;
      }
      case 'ForStatement':
      case 'ForInStatement':
      case 'ForOfStatement': {
        const scope = new Scope('block', ctx.scope);
        const inner = { ...ctx, scope };
        const left = field(node, 'left');
        if (left !== null && left.type !== 'VariableDeclaration') this.markWrites(left, inner);
        for (const key of ['init', 'left', 'test', 'update', 'right']) {
          const part = field(node, key);
          if (part === null) continue;
          if (part.type === 'VariableDeclaration') this.variableDeclaration(part, inner);
          else this.expr(part, inner);
        }
        const body = field(node, 'body');
        if (body !== null) this.stmt(body, inner);
        return;
      }
      case 'SwitchStatement': {
        this.expr(field(node, 'discriminant'), ctx);
        const scope = new Scope('block', ctx.scope);
        const inner = { ...ctx, scope };
        const cases = list(node, 'cases');
        for (const c of cases)
          for (const s of list(c, 'consequent')) this.hoistDeclaration(s, scope, ctx.annexB);
        for (const c of cases) {
          this.expr(field(c, 'test'), inner);
          for (const s of list(c, 'consequent')) this.stmt(s, inner);
        }
        return;
      }
      case 'TryStatement': {
        this.stmt(field(node, 'block')!, ctx);
        const handler = field(node, 'handler');
        if (handler !== null) {
          const scope = new Scope('catch', ctx.scope);
          const inner = { ...ctx, scope };
          this.declarePattern(field(handler, 'param'), scope, 'catch', inner);
          this.stmt(field(handler, 'body')!, inner);
        }
        const finalizer = field(node, 'finalizer');
        if (finalizer !== null) {
          const fn = ownFunction(ctx.scope);
          if (fn !== null) fn.runsOnExit = true;
          this.stmt(finalizer, ctx);
        }
        return;
      }
      case 'LabeledStatement':
        this.stmt(field(node, 'body')!, ctx);
        return;
      case 'BreakStatement':
      case 'ContinueStatement':
      case 'EmptyStatement':
      case 'DebuggerStatement':
        return;
      default:
        // Expression statements, if/while/return/throw/with…: walk children generically.
        this.generic(node, ctx);
    }
  }

  private block(statements: Node[], ctx: Ctx): void {
    const scope = new Scope('block', ctx.scope);
    this.hoistFunctionsAndBody(statements, { ...ctx, scope });
  }

  private variableDeclaration(node: Node, ctx: Ctx): void {
    const kind = str(node, 'kind');
    if (kind === 'using' || kind === 'await using') {
      const fn = ownFunction(ctx.scope);
      if (fn !== null) fn.runsOnExit = true;
    }
    const scope = kind === 'var' ? ctx.scope.varScope : ctx.scope;
    const bindingKind: BindingKind = kind === 'var' ? 'var' : kind === 'let' ? 'let' : 'const';
    for (const d of list(node, 'declarations')) {
      const id = field(d, 'id');
      this.declarePattern(id, scope, bindingKind, ctx);
      const init = field(d, 'init');
      if (init !== null && kind === 'var') this.markWrites(id, ctx);
      if (init !== null) {
        const hint = id !== null && id.type === 'Identifier' ? str(id, 'name')! : undefined;
        const owner = hint !== undefined ? { binding: hint, path: [] } : undefined;
        const found = this.expr(init, ctx, hint, owner);
        if (found !== null && hint !== undefined && found.callee === null) {
          found.callee = { binding: hint, viaModule: false };
          this.pendingCallees.push({ fn: found, from: ctx.scope });
        }
      }
    }
  }

  // ---- expressions --------------------------------------------------------------------------

  /**
   * A call's callee or argument: a plain name there is recorded as called (see Ref.called).
   * Returns the function when the expression is one, or `function () {…}.call` / `.apply`.
   */
  private calledOrExpr(node: Node, ctx: Ctx, hint?: string): FoundFunction | null {
    const n = unparenthesized(node);
    if (n.type === 'Identifier' && str(n, 'name') !== 'arguments') {
      this.refs.push({ name: str(n, 'name')!, scope: ctx.scope, called: true });
      return null;
    }
    const property = n.type === 'MemberExpression' ? field(n, 'property')! : null;
    if (
      property !== null &&
      !bool(n, 'computed') &&
      /^(?:call|apply)$/.test(str(property, 'name')!)
    )
      return this.expr(field(n, 'object'), ctx);
    return this.expr(node, ctx, hint);
  }

  /**
   * Walks an expression. `hint` names an anonymous function or class found here; `owner` says
   * where its value is stored when that is a binding or a property path the runtime can read back
   * (for `callContext().original`). Returns the function when the expression itself is one.
   */
  private expr(node: Node | null, ctx: Ctx, hint?: string, owner?: Owner): FoundFunction | null {
    if (node === null) return null;
    switch (node.type) {
      case 'Identifier': {
        const name = str(node, 'name')!;
        if (name === 'arguments') markArguments(ctx.scope);
        else if (name !== 'undefined') this.refs.push({ name, scope: ctx.scope });
        return null;
      }
      case 'FunctionExpression':
      case 'ArrowFunctionExpression': {
        const id = field(node, 'id');
        return this.fn(
          node,
          ctx,
          id !== null ? str(id, 'name')! : (hint ?? '(anonymous)'),
          node.start,
        );
      }
      case 'ClassExpression': {
        const id = field(node, 'id');
        this.klass(
          node,
          ctx,
          id !== null ? str(id, 'name')! : (hint ?? '(class)'),
          false,
          storable(owner),
        );
        return null;
      }
      case 'MemberExpression':
        this.expr(field(node, 'object'), ctx);
        if (bool(node, 'computed')) this.expr(field(node, 'property'), ctx);
        return null;
      case 'ObjectExpression':
        this.object(node, ctx, hint, storable(owner));
        return null;
      case 'AssignmentExpression': {
        const left = field(node, 'left')!;
        this.markWrites(left, ctx);
        this.expr(left, ctx);
        const target = assignmentTarget(left);
        const plain = str(node, 'operator') === '=';
        const valueOwner = plain ? target?.owner : undefined;
        const found = this.expr(field(node, 'right'), ctx, target?.name, valueOwner);
        if (found !== null && valueOwner !== undefined && found.callee === null) {
          if (valueOwner.binding !== 'this' || found.arrow)
            this.setCallee(found, calleeAt(valueOwner, 'value'), ctx.scope);
        }
        return null;
      }
      case 'AssignmentPattern':
        this.expr(field(node, 'left'), ctx);
        this.expr(field(node, 'right'), ctx, nameOfPattern(field(node, 'left')));
        return null;
      case 'ObjectPattern':
        for (const prop of list(node, 'properties')) {
          if (prop.type === 'RestElement') this.expr(field(prop, 'argument'), ctx);
          else {
            if (bool(prop, 'computed')) this.expr(field(prop, 'key'), ctx);
            this.expr(field(prop, 'value'), ctx);
          }
        }
        return null;
      case 'CallExpression':
      case 'NewExpression': {
        const callee = field(node, 'callee')!;
        const fn = this.calledOrExpr(callee, ctx);
        if (fn !== null) fn.iife = true;
        const calleeName = callName(callee, node.type === 'NewExpression');
        for (const arg of list(node, 'arguments')) this.calledOrExpr(arg, ctx, calleeName);
        return null;
      }
      case 'ConditionalExpression':
        // `const f = cond ? function () {} : () => {}`: both alternatives carry the name.
        this.expr(field(node, 'test'), ctx);
        this.expr(field(node, 'consequent'), ctx, hint);
        this.expr(field(node, 'alternate'), ctx, hint);
        return null;
      case 'LogicalExpression':
        this.expr(field(node, 'left'), ctx, hint);
        this.expr(field(node, 'right'), ctx, hint);
        return null;
      case 'ThisExpression':
        markLexical(ctx.scope, 'usesThis');
        return null;
      case 'Super':
        markLexical(ctx.scope, 'usesSuper');
        return null;
      case 'MetaProperty':
        if (str(field(node, 'meta')!, 'name') === 'new') markLexical(ctx.scope, 'usesNewTarget');
        return null;
      case 'Literal':
      case 'PrivateIdentifier':
        return null;
      case 'UpdateExpression':
        this.markWrites(field(node, 'argument'), ctx);
        this.expr(field(node, 'argument'), ctx);
        return null;
      case 'ParenthesizedExpression':
      case 'ChainExpression':
        return this.expr(field(node, 'expression'), ctx, hint, owner);
      case 'SequenceExpression':
        for (const e of list(node, 'expressions')) this.expr(e, ctx);
        return null;
      default:
        this.generic(node, ctx);
        return null;
    }
  }

  /** Children of nodes without identifier subtleties: statements and plain expressions. */
  private generic(node: Node, ctx: Ctx): void {
    forEachChild(node, (child) => {
      if (isStatementType(child.type)) this.stmt(child, ctx);
      else this.expr(child, ctx);
    });
  }

  private setCallee(found: FoundFunction, callee: CalleeRef, from: Scope): void {
    found.callee = callee;
    if (callee.binding !== 'this') this.pendingCallees.push({ fn: found, from });
  }

  private object(
    node: Node,
    ctx: Ctx,
    ownerName: string | undefined,
    owner: Owner | undefined,
  ): void {
    let prefix = '';
    if (ownerName !== undefined && ownerName !== '(anonymous)') {
      // `X.prototype = { m() {} }` names its methods like a class's: `X#m`.
      const proto = /^(.+)\.prototype$/.exec(ownerName);
      prefix = proto !== null ? `${proto[1]!}#` : `${ownerName}.`;
    }
    for (const prop of list(node, 'properties')) {
      if (prop.type === 'SpreadElement') {
        this.expr(field(prop, 'argument'), ctx);
        continue;
      }
      const computed = bool(prop, 'computed');
      const keyNode = field(prop, 'key')!;
      if (computed) this.expr(keyNode, ctx);
      const key = this.keyName(keyNode, computed);
      const value = field(prop, 'value')!;
      const kind = str(prop, 'kind');
      const isMethod = bool(prop, 'method') || kind === 'get' || kind === 'set';
      const at: Owner | undefined =
        owner !== undefined && key.key !== null
          ? { binding: owner.binding, path: [...owner.path, key.key] }
          : undefined;
      if (
        isMethod &&
        (value.type === 'FunctionExpression' || value.type === 'ArrowFunctionExpression')
      ) {
        const accessor = kind === 'get' ? 'get' : kind === 'set' ? 'set' : 'value';
        const found = this.fn(
          value,
          ctx,
          `${accessor === 'value' ? '' : `${accessor} `}${prefix}${key.label}`,
          prop.start,
          {
            kind: kind === 'get' ? 'getter' : kind === 'set' ? 'setter' : 'method',
            method: true,
          },
        );
        if (at !== undefined) this.setCallee(found, calleeAt(at, accessor), ctx.scope);
      } else if (bool(prop, 'shorthand')) {
        this.expr(value, ctx);
      } else {
        const found = this.expr(value, ctx, `${prefix}${key.label}`, at);
        if (found !== null && at !== undefined && found.callee === null)
          this.setCallee(found, calleeAt(at, 'value'), ctx.scope);
      }
    }
  }

  // ---- classes ------------------------------------------------------------------------------

  /** `owner`: where an anonymous class expression is stored (`const Foo = class {}`). */
  private klass(node: Node, ctx: Ctx, name: string, declaration: boolean, owner?: Owner): void {
    const superClass = field(node, 'superClass');
    this.expr(superClass, ctx);
    const scope = new Scope('class', ctx.scope);
    const id = field(node, 'id');
    if (id !== null) scope.names.set(str(id, 'name')!, { kind: 'class' });
    const body = list(field(node, 'body')!, 'body');
    const frame: ClassFrame = { name, privates: [] };
    for (const member of body) {
      const key = field(member, 'key');
      if (key !== null && key.type === 'PrivateIdentifier') {
        const p = `#${str(key, 'name')!}`;
        if (!frame.privates.includes(p)) frame.privates.push(p);
      }
    }
    const classCtx: Ctx = { ...ctx, scope, classes: [...ctx.classes, frame] };
    // Where the class value can be read back: its own name (inside the class), or the binding or
    // property an anonymous class expression is stored in.
    const classRef: { owner: Owner; from: Scope } | null =
      id !== null
        ? { owner: { binding: str(id, 'name')!, path: [] }, from: scope }
        : owner !== undefined
          ? { owner, from: ctx.scope }
          : null;
    const atModuleLevel = declaration && ctx.scope.kind === 'module';
    const qualified = ctx.path === '' ? name : `${ctx.path}>${name}`;
    for (const member of body) {
      if (member.type === 'StaticBlock') {
        this.stmt(member, { ...classCtx, path: `${qualified}.static{}` });
        continue;
      }
      const computed = bool(member, 'computed');
      const keyNode = field(member, 'key');
      if (keyNode !== null && computed) this.expr(keyNode, classCtx);
      const key =
        keyNode !== null ? this.keyName(keyNode, computed) : { label: '(member)', key: null };
      const isStatic = bool(member, 'static');
      const sep = isStatic ? '.' : '#';
      const value = field(member, 'value');
      const privateKey = keyNode !== null && keyNode.type === 'PrivateIdentifier';
      if (member.type === 'MethodDefinition' && value !== null) {
        const mkind = str(member, 'kind');
        let kind: FunctionKind = 'method';
        let label = `${name}${sep}${key.label}`;
        if (mkind === 'constructor') {
          kind = superClass !== null ? 'derived-constructor' : 'constructor';
          label = `${name}#constructor`;
        } else if (mkind === 'get') {
          kind = 'getter';
          label = `get ${label}`;
        } else if (mkind === 'set') {
          kind = 'setter';
          label = `set ${label}`;
        }
        const found = this.fn(value, classCtx, label, member.start, { kind, method: true });
        if (classRef !== null && key.key !== null && !privateKey) {
          const { binding, path } = classRef.owner;
          const callee: CalleeRef = {
            binding,
            viaModule: atModuleLevel,
            ...(path.length > 0 ? { path } : {}),
            ...(mkind === 'constructor'
              ? {}
              : {
                  member: {
                    key: key.key,
                    onPrototype: !isStatic,
                    accessor: mkind === 'get' ? 'get' : mkind === 'set' ? 'set' : 'value',
                  },
                }),
          };
          found.callee = callee;
          if (!atModuleLevel || id === null)
            this.pendingCallees.push({ fn: found, from: classRef.from });
        }
      } else if (value !== null) {
        // Field initializers run like methods of the instance (or class): their own boundary.
        // A function, class or object literal there is named after the field; functions nested
        // in any other initializer are named inside it (`Pool#timer>setInterval()`).
        const initScope = new Scope('function', scope);
        const label = `${name}${sep}${key.label}`;
        const direct = unparenthesized(value);
        const named =
          direct.type === 'FunctionExpression' ||
          direct.type === 'ArrowFunctionExpression' ||
          direct.type === 'ClassExpression' ||
          direct.type === 'ObjectExpression';
        const initCtx: Ctx = {
          ...classCtx,
          scope: initScope,
          superOk: true,
          inDerivedCtor: false,
          inFunction: false,
          path: named ? ctx.path : ctx.path === '' ? label : `${ctx.path}>${label}`,
        };
        const found = this.expr(value, initCtx, named ? label : undefined);
        if (found !== null && found.arrow && key.key !== null && !privateKey) {
          // An arrow field is an own property of the instance (static: of the class), which is
          // the arrow's `this`.
          found.callee = {
            binding: 'this',
            viaModule: false,
            member: { key: key.key, onPrototype: false, accessor: 'value' },
          };
        }
      }
    }
  }

  /** The name of a property key in qualified names, and the key itself when it is static. */
  private keyName(key: Node, computed: boolean): { label: string; key: string | null } {
    let node = key;
    if (computed) node = unparenthesized(key);
    if (!computed || node.type === 'Literal' || node.type === 'TemplateLiteral') {
      if (node.type === 'Identifier' && !computed)
        return { label: str(node, 'name')!, key: str(node, 'name')! };
      if (node.type === 'PrivateIdentifier')
        return { label: `#${str(node, 'name')!}`, key: `#${str(node, 'name')!}` };
      let value: unknown;
      if (node.type === 'Literal') value = node['value'];
      else if (node.type === 'TemplateLiteral' && list(node, 'expressions').length === 0) {
        value = list(node, 'quasis')[0]?.['value'];
        value = (value as { cooked?: unknown } | undefined)?.cooked;
      }
      if (typeof value === 'string') {
        return {
          label:
            isIdentifierName(value) || CANONICAL_INDEX.test(value) ? value : JSON.stringify(value),
          key: value,
        };
      }
      if (typeof value === 'number' || typeof value === 'bigint')
        return { label: String(value), key: String(value) };
    }
    const text = this.source.slice(key.start, key.end).replace(/\s+/g, ' ');
    return {
      label: text.length <= 40 && !/[>,]/.test(text) ? `[${text}]` : '[computed]',
      key: null,
    };
  }

  // ---- functions ----------------------------------------------------------------------------

  private fn(
    node: Node,
    ctx: Ctx,
    local: string,
    start: number,
    opts: { kind?: FunctionKind; method?: boolean } = {},
  ): FoundFunction {
    const arrow = node.type === 'ArrowFunctionExpression';
    const name = ctx.path === '' ? local : `${ctx.path}>${local}`;
    let parent = ctx.scope;
    const id = field(node, 'id');
    if (node.type === 'FunctionExpression' && id !== null) {
      // A named function expression binds its own name in a scope of its own.
      parent = new Scope('fname', ctx.scope);
      parent.names.set(str(id, 'name')!, { kind: 'const' });
    }
    const scope = new Scope('function', parent);
    const kind: FunctionKind = opts.kind ?? (arrow ? 'arrow' : 'function');
    const superOk = arrow ? ctx.superOk : opts.method === true;
    const inDerivedCtor = arrow ? ctx.inDerivedCtor : kind === 'derived-constructor';
    const found: FoundFunction = {
      node,
      kind,
      arrow,
      async: bool(node, 'async'),
      generator: bool(node, 'generator'),
      name,
      start,
      scope,
      free: new Map(),
      privates: ctx.classes.flatMap((c) => c.privates),
      superAccess: superOk,
      thisUnsafe: arrow && ctx.inDerivedCtor,
      newTargetOk: arrow && ctx.inFunction,
      refusal: null,
      callee: null,
      heldBy: null,
      iife: false,
      usesArguments: false,
      usesThis: false,
      usesNewTarget: false,
      usesSuper: false,
      early: false,
      paramsMovable: false,
      returns: [],
      runsOnExit: false,
    };
    scope.fn = found;
    this.functions.push(found);
    if (node.type === 'FunctionDeclaration' && id !== null) {
      found.callee = { binding: str(id, 'name')!, viaModule: false };
      this.pendingCallees.push({ fn: found, from: ctx.scope });
    } else if (node.type === 'FunctionExpression' && id !== null) {
      found.callee = { binding: str(id, 'name')!, viaModule: false };
      this.pendingCallees.push({ fn: found, from: parent });
    }
    const inner: Ctx = {
      scope,
      path: name,
      classes: ctx.classes,
      superOk,
      inDerivedCtor,
      inFunction: arrow ? ctx.inFunction : true,
      annexB: ctx.annexB,
    };
    // What each parameter refers to (its defaults, computed keys and the functions in them).
    const paramRefs: string[][] = [];
    for (const p of list(node, 'params')) {
      const refs = this.refs.length;
      const writes = this.writes.length;
      this.declarePattern(p, scope, 'param', inner);
      paramRefs.push([
        ...this.refs.slice(refs).map((r) => r.name),
        ...this.writes.slice(writes).map((w) => w.name),
      ]);
    }
    const body = field(node, 'body')!;
    // Only parameters that run code may move into the body (FoundFunction.paramsMovable): the
    // body's names are collected for those functions alone.
    const simple = list(node, 'params').every((p) => p.type === 'Identifier');
    if (!simple) scope.bodyNames = new Set();
    if (body.type === 'BlockStatement') {
      // The body's top-level declarations share the function scope (names cannot clash with
      // parameters except through var/function, which is what the spec merges as well).
      this.hoistFunctionsAndBody(list(body, 'body'), inner);
    } else {
      this.expr(body, inner);
    }
    found.paramsMovable =
      !simple && paramsMovable(list(node, 'params'), paramRefs, scope.bodyNames!);
    const own = scope.names.get('arguments');
    if (!arrow && own !== undefined && own.kind !== 'var') {
      found.refusal =
        "it declares its own 'arguments' (as a parameter, function, let, const or class), so its entry check cannot see the arguments of the call";
    }
    return found;
  }

  // ---- resolution ---------------------------------------------------------------------------

  /** Resolves every reference; a reference crossing function boundaries makes the name free there. */
  resolve(): void {
    for (const w of this.writes) {
      let s: Scope | null = w.scope;
      while (s !== null && !s.names.has(w.name)) s = s.parent;
      const b = s?.names.get(w.name);
      if (b !== undefined) b.assigned = true; // undefined: a global
    }
    for (const ref of this.refs) {
      let s: Scope | null = ref.scope;
      const crossed: FoundFunction[] = [];
      while (s !== null) {
        if (s.names.has(ref.name)) break;
        if (s.kind === 'function' && s.fn !== null) crossed.push(s.fn);
        s = s.parent;
      }
      if (s === null || s.kind === 'module') {
        // Global or module-level (module accessor). Remember which top-level function uses it.
        const top = crossed[crossed.length - 1];
        if (top !== undefined && s !== null) {
          let set = this.moduleRefs.get(top);
          if (set === undefined) this.moduleRefs.set(top, (set = new Set()));
          set.add(ref.name);
        }
        continue;
      }
      const binding = s.names.get(ref.name)!;
      for (const f of crossed) f.free.set(ref.name, binding);
      if (crossed.length > 0) binding.captured = true;
      else if (ref.called !== true) binding.stored = true;
    }
  }

  /**
   * ES modules: marks the functions that may run before the module body (FoundFunction.early):
   * exported top-level function declarations, the top-level function declarations they refer to
   * (transitively), and every function nested in those.
   */
  markEarly(body: Node[]): void {
    const byNode = new Map<Node, FoundFunction>();
    for (const f of this.functions) byNode.set(f.node, f);
    const decls = new Map<string, FoundFunction>();
    const seeds: FoundFunction[] = [];
    const exportedNames: string[] = [];
    for (const stmt of body) {
      const exported =
        stmt.type === 'ExportNamedDeclaration' || stmt.type === 'ExportDefaultDeclaration';
      const decl = exported ? field(stmt, 'declaration') : stmt;
      if (decl?.type === 'FunctionDeclaration') {
        const f = byNode.get(decl);
        if (f === undefined) continue;
        const id = field(decl, 'id');
        if (id !== null) decls.set(str(id, 'name')!, f);
        if (exported) seeds.push(f);
      } else if (stmt.type === 'ExportNamedDeclaration' && field(stmt, 'source') === null) {
        for (const spec of list(stmt, 'specifiers')) {
          const local = field(spec, 'local');
          if (local?.type === 'Identifier') exportedNames.push(str(local, 'name')!);
        }
      }
    }
    for (const name of exportedNames) {
      const f = decls.get(name);
      if (f !== undefined) seeds.push(f);
    }
    const early = new Set<FoundFunction>();
    const queue = [...seeds];
    while (queue.length > 0) {
      const f = queue.pop()!;
      if (early.has(f)) continue;
      early.add(f);
      for (const name of this.moduleRefs.get(f) ?? []) {
        const g = decls.get(name);
        if (g !== undefined && !early.has(g)) queue.push(g);
      }
    }
    if (early.size === 0) return;
    for (const f of this.functions) {
      let top: FoundFunction | null = null;
      for (let sc: Scope | null = f.scope; sc !== null; sc = sc.parent) {
        if (sc.kind === 'function' && sc.fn !== null) top = sc.fn;
      }
      f.early = top !== null && early.has(top);
    }
  }

  /** Records the names an assignment target (or a `var` declarator) writes. */
  private markWrites(target: Node | null, ctx: Ctx): void {
    if (target === null) return;
    switch (target.type) {
      case 'Identifier':
        this.writes.push({ name: str(target, 'name')!, scope: ctx.scope });
        return;
      case 'ParenthesizedExpression':
        this.markWrites(field(target, 'expression'), ctx);
        return;
      case 'AssignmentPattern':
        this.markWrites(field(target, 'left'), ctx);
        return;
      case 'RestElement':
        this.markWrites(field(target, 'argument'), ctx);
        return;
      case 'ArrayPattern':
        for (const el of list(target, 'elements')) this.markWrites(el, ctx);
        return;
      case 'ObjectPattern':
        for (const prop of list(target, 'properties'))
          this.markWrites(field(prop, prop.type === 'RestElement' ? 'argument' : 'value'), ctx);
        return;
      default:
        return; // member expressions write properties, not bindings
    }
  }

  /**
   * Decides for each callee binding whether it is module-level, reached through the function's
   * own scope accessor, or left in the enclosing function's frame (CalleeRef.inFrame). The
   * accessor reading a variable of the enclosing function moves it into a heap context. When the
   * variable holds the closure itself and that function only calls it or passes it to calls, V8
   * can inline those calls and drop the closure's allocation, which the context store prevents
   * (2.9-3.6x on `function hot(a) { const cb = (x) => x * 2; return a.map(cb); }`,
   * bench/codegen.ts "callee binding"). Elsewhere the read costs at most a context slot: the
   * closure leaves the frame anyway (returned, stored, read by another closure), it is a class
   * (whose creation V8 never drops), the variable holds an object the function is a property
   * of, or the scope runs once per load (module code and the functions it calls where it writes
   * them: bundles and TypeScript namespaces).
   */
  resolveCallees(moduleScope: Scope): void {
    const lookup = (from: Scope | null, name: string): Scope | null => {
      let s = from;
      while (s !== null && !s.names.has(name)) s = s.parent;
      return s;
    };
    for (const { fn, from } of this.pendingCallees) {
      const callee = fn.callee!;
      const s = lookup(from, callee.binding);
      if (s === null) {
        fn.callee = null; // not a binding we can see (e.g. an implicit global)
      } else if (s === moduleScope) {
        fn.callee = { ...callee, viaModule: true };
      } else if (lookup(fn.scope, callee.binding) !== s) {
        fn.callee = null; // shadowed between: the function's accessor would read something else
      } else {
        const b = s.names.get(callee.binding)!;
        const inFrame =
          s.kind !== 'fname' && // ownNameRead: a parameter of the accessor, no context
          (fn.kind === 'function' || fn.kind === 'arrow') && // V8 never drops a class
          callee.path === undefined &&
          callee.member === undefined &&
          b.captured !== true &&
          b.stored !== true &&
          !runsOnce(s);
        if (inFrame) {
          fn.callee = null;
          fn.heldBy = callee.binding;
        } else {
          fn.free.set(callee.binding, b);
          fn.callee = { ...callee, viaModule: false };
        }
      }
    }
  }
}

// ---- naming helpers -----------------------------------------------------------------------

function nameOfPattern(node: Node | null): string | undefined {
  return node !== null && node.type === 'Identifier' ? str(node, 'name') : undefined;
}

/** `a.b.c` for member chains of identifiers (and `this`); `X.prototype.m` becomes `X#m`. */
function memberPath(node: Node): string | undefined {
  if (node.type === 'Identifier') return str(node, 'name');
  if (node.type === 'ThisExpression') return 'this';
  if (node.type === 'MemberExpression' && !bool(node, 'computed')) {
    const obj = memberPath(field(node, 'object')!);
    const prop = field(node, 'property')!;
    const propName =
      prop.type === 'PrivateIdentifier' ? `#${str(prop, 'name')!}` : str(prop, 'name');
    if (obj === undefined || propName === undefined) return undefined;
    return `${obj}.${propName}`;
  }
  return undefined;
}

/** Where a value is stored: a binding (or `this`) and a property path below it. */
interface Owner {
  readonly binding: string;
  readonly path: readonly string[];
}

/** Objects and classes stored through `this` cannot be read back by their methods: drop it. */
function storable(owner: Owner | undefined): Owner | undefined {
  return owner !== undefined && owner.binding !== 'this' ? owner : undefined;
}

/** The callee reference of a function stored at `owner` (`X.prototype.m` reads `X`'s prototype). */
function calleeAt(owner: Owner, accessor: 'value' | 'get' | 'set'): CalleeRef {
  const { binding, path } = owner;
  if (path.length === 0) return { binding, viaModule: false };
  const key = path[path.length - 1]!;
  let rest = path.slice(0, -1);
  let onPrototype = false;
  if (rest.length > 0 && rest[rest.length - 1] === 'prototype') {
    onPrototype = true;
    rest = rest.slice(0, -1);
  }
  return {
    binding,
    viaModule: false,
    ...(rest.length > 0 ? { path: rest } : {}),
    member: { key, onPrototype, accessor },
  };
}

/**
 * The name given to a function assigned to `left`, and where it is stored: `a` , `a.b.c`,
 * `X.prototype.m` named `X#m`, `this.x`.
 */
function assignmentTarget(left: Node): { name: string; owner?: Owner } | undefined {
  if (left.type === 'Identifier') {
    const name = str(left, 'name')!;
    return { name, owner: { binding: name, path: [] } };
  }
  const path = memberPath(left);
  if (path === undefined) return undefined;
  const parts = path.split('.');
  const name = path.replace(/\.prototype\.([^.]+)$/, '#$1');
  if (parts.some((p) => p.startsWith('#'))) return { name };
  return { name, owner: { binding: parts[0]!, path: parts.slice(1) } };
}

function callName(callee: Node, isNew: boolean): string {
  let path = memberPath(callee);
  if (path === undefined && callee.type === 'MemberExpression' && !bool(callee, 'computed')) {
    path = str(field(callee, 'property')!, 'name');
  }
  if (path === undefined) return '(anonymous)';
  return isNew ? `new ${path}()` : `${path}()`;
}

const IDENT = /^[\p{ID_Start}$_][\p{ID_Continue}$\u200c\u200d]*$/u;
/** Property keys that are array indices print bare: `{ '3': f }` and `{ 3: f }` are one key. */
const CANONICAL_INDEX = /^(?:0|[1-9]\d{0,8})$/;

function unparenthesized(node: Node): Node {
  let n = node;
  while (n.type === 'ParenthesizedExpression') n = field(n, 'expression')!;
  return n;
}
function isIdentifierName(s: string): boolean {
  return IDENT.test(s);
}

const STATEMENT_TYPES = new Set([
  'ExpressionStatement',
  'BlockStatement',
  'StaticBlock',
  'EmptyStatement',
  'DebuggerStatement',
  'WithStatement',
  'ReturnStatement',
  'LabeledStatement',
  'BreakStatement',
  'ContinueStatement',
  'IfStatement',
  'SwitchStatement',
  'ThrowStatement',
  'TryStatement',
  'WhileStatement',
  'DoWhileStatement',
  'ForStatement',
  'ForInStatement',
  'ForOfStatement',
  'FunctionDeclaration',
  'VariableDeclaration',
  'ClassDeclaration',
  'ImportDeclaration',
  'ExportNamedDeclaration',
  'ExportDefaultDeclaration',
  'ExportAllDeclaration',
]);

function isStatementType(type: string): boolean {
  return STATEMENT_TYPES.has(type);
}

/**
 * Whether reading `name` from `f`'s parameter list reads a binding of an enclosing scope that
 * exists, initialized, from that scope's start: a `var`, a function declaration, or a parameter of
 * the CommonJS wrapper. Such a read can neither throw nor run code, so a parameter default that
 * names it is free of effects (the function keeps its cheap in-body check; no wrapper).
 */
export function readsHoistedBinding(f: FoundFunction, name: string): boolean {
  if (f.scope.names.has(name)) return false;
  for (let s = f.scope.parent; s !== null; s = s.parent) {
    const b = s.names.get(name);
    if (b === undefined) continue;
    return b.kind === 'var' || b.kind === 'function' || (b.kind === 'param' && s.kind === 'module');
  }
  return false;
}

/** The function whose body a statement in `scope` belongs to (null: module, field, static block). */
/** The scope's code runs once per load: module code, or functions it calls where it writes them. */
function runsOnce(scope: Scope): boolean {
  for (let s: Scope | null = scope; s !== null; s = s.parent) {
    if (s.kind === 'module') return true;
    if (s.kind === 'function' && s.fn?.iife !== true) return false;
  }
  return false;
}

function ownFunction(scope: Scope): FoundFunction | null {
  for (let s: Scope | null = scope; s !== null; s = s.parent) {
    if (s.kind === 'function') return s.fn;
    if (s.kind === 'module') return null;
  }
  return null;
}

/**
 * `this`, `new.target` and `super` belong to the nearest non-arrow function; every arrow between
 * the use and that function reads them too (lexically), and so does the function itself.
 */
function markLexical(from: Scope, use: 'usesThis' | 'usesNewTarget' | 'usesSuper'): void {
  for (let s: Scope | null = from; s !== null; s = s.parent) {
    if (s.kind !== 'function') continue;
    if (s.fn === null) return; // field initializer or static block
    s.fn[use] = true;
    if (!s.fn.arrow) return;
  }
}

/**
 * `arguments` belongs to the nearest non-arrow function: that function materializes its arguments
 * object anyway, so its entry check may forward it at no extra cost.
 */
function markArguments(from: Scope): void {
  for (let s: Scope | null = from; s !== null; s = s.parent) {
    if (s.kind !== 'function') continue;
    if (s.fn === null) return; // field initializer or static block: no arguments object
    if (!s.fn.arrow) {
      s.fn.usesArguments = true;
      return;
    }
  }
}

/** See FoundFunction.paramsMovable. */
function paramsMovable(
  params: readonly Node[],
  refs: readonly (readonly string[])[],
  bodyNames: ReadonlySet<string>,
): boolean {
  const boundFrom = params.map((p) => new Set(patternNames(p)));
  return refs.every((names, i) =>
    names.every(
      (name) =>
        name !== 'eval' &&
        !bodyNames.has(name) &&
        !boundFrom.slice(i).some((bound) => bound.has(name)),
    ),
  );
}

/** The names a parameter (pattern) binds. */
function patternNames(p: Node | null): string[] {
  if (p === null) return [];
  switch (p.type) {
    case 'Identifier':
      return [str(p, 'name')!];
    case 'AssignmentPattern':
      return patternNames(field(p, 'left'));
    case 'RestElement':
      return patternNames(field(p, 'argument'));
    case 'ArrayPattern':
      return list(p, 'elements').flatMap(patternNames);
    case 'ObjectPattern':
      return list(p, 'properties').flatMap((prop) =>
        patternNames(prop.type === 'RestElement' ? field(prop, 'argument') : field(prop, 'value')),
      );
    default:
      return [];
  }
}
