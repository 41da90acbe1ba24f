/**
 * The contract between the instrumenter (source rewriting), the loader (module hooks) and the
 * runtime (function table): what one instrumented module looks like from the outside.
 */

/** How a function was written; decides how its entry check forwards `this` and arguments. */
export type FunctionKind =
  | 'function' // declaration or expression
  | 'arrow'
  | 'method' // class or object method
  | 'getter'
  | 'setter'
  | 'constructor'
  | 'derived-constructor';

/** One function of a module: its stable identity and where it is in the original source. */
export interface FunctionInfo {
  /** Index of the function's slot in the module's function table (source order). */
  readonly index: number;
  /** Qualified name without position, e.g. `createServer>onRequest`, `get Pool#size`. */
  readonly name: string;
  /** 1-based position among functions of the same name in this module; 0 when the name is unique. */
  readonly pos: number;
  readonly kind: FunctionKind;
  readonly async: boolean;
  readonly generator: boolean;
  /** 1-based line and 0-based column of the function's start in the original file. */
  readonly line: number;
  readonly column: number;
  /**
   * Enclosing-function bindings the replacement can read and write through the scope accessor,
   * sorted; the accessor takes a binding's position in this list.
   */
  readonly scope: readonly string[];
  /** Private names (`#x`) of enclosing classes reachable through the scope accessor, by position. */
  readonly privates: readonly string[];
  /** Whether the scope accessor offers `super` property access / the `super(...)` call. */
  readonly superAccess: boolean;
  /**
   * Whether live frames of this function are counted (async functions and generators only; sync
   * frames cannot outlive a turn of the event loop). False with `untrackedReason` when the body
   * shape made the counting wrapper unsafe.
   */
  readonly tracked: boolean;
  readonly untrackedReason?: string;
  /** How to reach the function object, so a replacement can call the original code. */
  readonly callee?: CalleeRef;
  /**
   * Without `callee`: the variable of the enclosing function that holds the function, which the
   * scope accessor does not read (it would cost every call of the enclosing function; see
   * docs/architecture.md, "What generated code must never name").
   */
  readonly heldBy?: string;
}

/**
 * Where the function object lives: a binding (read through the module accessor or the function's
 * own scope accessor), then optionally a path of properties below its value, then optionally a
 * member of that object or of its `prototype`. The binding `this` means the call's `this` (arrow
 * functions stored in a field or in `this.x`).
 */
export interface CalleeRef {
  readonly binding: string;
  readonly viaModule: boolean;
  /** Properties read one after the other from the binding's value (`module.exports.x`: `['exports']`). */
  readonly path?: readonly string[];
  readonly member?: {
    readonly key: string;
    readonly onPrototype: boolean;
    readonly accessor: 'value' | 'get' | 'set';
  };
}

/** A function that was found but could not be instrumented safely, with the reason. */
export interface RefusedFunction {
  readonly name: string;
  /** 1-based position among functions of the same name (absent when the name is unique). */
  readonly pos?: number;
  readonly line: number;
  readonly column: number;
  readonly reason: string;
}

export type ModuleFormat = 'commonjs' | 'module';

export interface InstrumentOptions {
  /** Absolute URL (`file:///…`) of the module: it keys the module's function table at run time. */
  readonly url: string;
  readonly format: ModuleFormat;
  /** Name shown in diagnostics and written into the source map's `sources`. */
  readonly filename: string;
  /** Emit a source map (default true). */
  readonly sourceMap?: boolean;
}

export interface InstrumentResult {
  readonly code: string;
  /** Source map (v3, JSON object) from `code` back to the given source, when asked for. */
  readonly map: SourceMapV3 | null;
  readonly functions: readonly FunctionInfo[];
  readonly refused: readonly RefusedFunction[];
  /** Top-level bindings the module accessor offers. */
  readonly moduleBindings: readonly string[];
  /** Identifier prefix used for generated names in this module (collision-free). */
  readonly prefix: string;
}

export interface SourceMapV3 {
  version: 3;
  file?: string;
  sources: string[];
  sourcesContent?: (string | null)[];
  names: string[];
  mappings: string;
}
