/**
 * The variants of bench/check-shape.ts: edits of the generated text of one instrumented module
 * (docs/architecture.md has the shapes), each taking a part of the entry check away. Kept apart
 * from the script so that test/bench-shapes.test.ts can check every edit still finds what it
 * edits in the code the instrumenter generates today: an edit that no longer matches would
 * measure the generated code again under another name.
 */

/** `edit: null` is the plain library itself, against the plain library: the harness's own bias. */
export interface ShapeVariant {
  readonly name: string;
  readonly edit: ((code: string) => string) | null;
}

/** `prefix`: the module's generated-name prefix (`$lp_`); `functionCount`: its functions. */
export function shapeVariants(P: string, functionCount: number): ShapeVariant[] {
  const p = P.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  // A gate cell's name: the module's prefix, a digest, the function's index.
  const cell = `${p}[0-9a-f]{12}_(\\d+)`;
  const check = new RegExp(
    `/\\*${p}\\[\\*/const ${p}g=${cell};if\\(${p}g!==null\\)\\{.*?/\\*\\]${p}\\*/`,
    'g',
  );
  // A scope accessor `(o,n,v,w)=>…`: one expression without commas or parentheses, but for a
  // derived constructor's `(super(...v),this)`.
  const scope = new RegExp(
    `\\((?:${p})?o,(?:${p})?n(?:,(?:${p})?v)?(?:,(?:${p})?w)?\\)=>(?:\\(super\\(\\.\\.\\.(?:${p})?v\\),this\\)|[^,()])*`,
    'g',
  );
  // The edits, on the generated text (docs/architecture.md has the shapes).
  // Tempered `(?:(?!/\*\]).)*?`: never runs past the end of one generated region into another.
  const exprCheck = new RegExp(
    `\\{const ${p}g=${cell};if\\(${p}g!==null\\)\\{(?:(?!/\\*\\]).)*?\\}return ?\\(/\\*\\]${p}\\*/`,
    'g',
  );
  const moduleAccessor = new RegExp(`${p}m\\.b\\(\\([^)]*\\)=>[^)]*\\);`);
  const noArguments = (c: string): string => c.replaceAll(`${P}r(...arguments)}`, `${P}r()}`);
  const noScope = (c: string): string => c.replace(scope, 'void 0');
  const noCheck = (c: string): string =>
    c.replace(check, '').replace(exprCheck, `{return(/*]${P}*/`);
  const noModuleAccessor = (c: string): string => c.replace(moduleAccessor, '');
  // The accessors' writes (the leaves `x=v` of their write trees, answered by the module record
  // instead): what it costs that a variable a replacement may assign is one V8 cannot treat as
  // never assigned.
  const scopeWrite = new RegExp(`[\\w$]+=(?:${p})?v(?=[:,)]|$)`, 'g');
  const withoutWrites = (accessor: string): string => accessor.replace(scopeWrite, `${P}m`);
  const noScopeWrites = (c: string): string =>
    c.replace(scope, withoutWrites).replace(moduleAccessor, withoutWrites);
  // Only the fast test stays; the call that would run a replacement is cut to `throw 0`: what the
  // bytecode size of the slow path costs (V8's inlining budgets count every byte of a function).
  const slowPath = new RegExp(
    `const ${p}g=(${cell});if\\(${p}g!==null\\)\\{const ${p}r=${p}g\\([^)]*\\);if\\(${p}r!==void 0\\)return (?:await |yield\\* )?${p}r\\([^)]*\\)\\}`,
    'g',
  );
  const minimalSlowPath = (c: string): string => c.replace(slowPath, 'if($1!==null)throw 0;');
  // The slow path until TRANSFORM_VERSION 21: one gate call with `this`, `new.target`, the scope
  // accessor and the arguments, whose result was the call's, or the gate itself to decline.
  const twoCalls = new RegExp(
    `const ${p}r=${p}g\\((.*?)\\);if\\(${p}r!==void 0\\)return ((?:await |yield\\* |[\\w$]+\\.y\\([\\w$]+,await )?)${p}r\\(([^)]*)\\)`,
    'g',
  );
  const oneGateCall = (c: string): string =>
    c.replace(twoCalls, (_, gateArgs: string, before: string, args: string) => {
      const given = splitTopLevel(gateArgs);
      const all = [
        ...given,
        ...Array<string>(3 - given.length).fill('void 0'),
        ...(args === '' ? [] : [args]),
      ];
      return `const ${P}r=${P}g(${all.join(',')});if(${P}r!==${P}g)return ${before}${P}r`;
    });
  // Parameter wrappers (docs/architecture.md, "Parameters"): a function whose parameters run code
  // gets plain parameters and calls its original parameter list and body as an arrow. Removing the
  // three generated pieces of an untracked wrapper (the opening with its check, the `=>`, the
  // call) gives back the original function, without its check.
  const wrapperOpen = new RegExp(
    `/\\*${p}\\[\\*/\\([^)]*\\)(?:=>)?\\{const ${p}g=${cell};if\\(${p}g!==null\\)\\{(?:(?!/\\*\\]).)*?\\}return \\(/\\*\\]${p}\\*/`,
    'g',
  );
  const wrapperArrow = new RegExp(`/\\*${p}\\[\\*/=>/\\*\\]${p}\\*/`, 'g');
  const wrapperCall = new RegExp(`/\\*${p}\\[\\*/\\)\\([^)]*\\)\\}/\\*\\]${p}\\*/`, 'g');
  const noWrappers = (c: string): string =>
    c.replace(wrapperOpen, '').replace(wrapperArrow, '').replace(wrapperCall, '');
  // The `/*P[*/ … /*]P*/` markers around generated text (for Function.prototype.toString).
  const markers = new RegExp(`/\\*${p}\\[\\*/|/\\*\\]${p}\\*/`, 'g');
  const noMarkers = (c: string): string => c.replace(markers, '');
  // `edit: null` is the plain library itself, against the plain library: the harness's own bias.
  return [
    { name: 'A/A control', edit: null },
    { name: 'as generated', edit: (c) => c },
    { name: 'no arguments', edit: noArguments },
    { name: 'no scope accessor', edit: noScope },
    { name: 'no module accessor', edit: noModuleAccessor },
    { name: 'no scope writes', edit: noScopeWrites },
    { name: 'no arguments, no module accessor', edit: (c) => noModuleAccessor(noArguments(c)) },
    { name: 'minimal slow path', edit: minimalSlowPath },
    { name: 'one gate call (TRANSFORM_VERSION 21)', edit: oneGateCall },
    { name: 'no check', edit: noCheck },
    // The shape before gate cells (until TRANSFORM_VERSION 15): the check read `g` (a plain field,
    // given here to every slot) of the function's slot object, bound by a `var` of the wrapper.
    {
      name: 'slot object',
      edit: (c) =>
        c
          .replace(new RegExp(`const ${p}g=${cell};`, 'g'), `const ${P}g=${P}$1.g;`)
          .replace(
            new RegExp(`(var ${p}m=[^;]*?\\.enter\\([^;]*?\\))`),
            `$1${Array.from({ length: functionCount }, (_, i) => `,${P}${i}=${P}m.s(${i})`).join('')};for(let ${P}i=0;${P}i<${functionCount};${P}i++)${P}m.s(${P}i).g=null`,
          ),
    },
    { name: 'no check, no module accessor', edit: (c) => noModuleAccessor(noCheck(c)) },
    { name: 'no wrappers', edit: noWrappers },
    { name: 'no check, no wrappers', edit: (c) => noCheck(noWrappers(c)) },
    {
      name: 'no check, no wrappers, no module accessor',
      edit: (c) => noModuleAccessor(noCheck(noWrappers(c))),
    },
    // What is left is the module header's `enter()` (which defines the gate cells).
    {
      name: 'header only',
      edit: (c) => noMarkers(noModuleAccessor(noCheck(noWrappers(c)))),
    },
  ];
}

/** `a,(o,n)=>x,b` → `['a', '(o,n)=>x', 'b']`: commas outside parentheses and braces. */
function splitTopLevel(list: string): string[] {
  if (list === '') return [];
  const parts: string[] = [];
  let depth = 0;
  let from = 0;
  for (let i = 0; i < list.length; i++) {
    const c = list[i];
    if (c === '(' || c === '{' || c === '[') depth++;
    else if (c === ')' || c === '}' || c === ']') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(list.slice(from, i));
      from = i + 1;
    }
  }
  parts.push(list.slice(from));
  return parts;
}

/**
 * bench/codegen.ts's callee probe: a closure its function only passes to a call (`items.map(cb)`),
 * whose gate call the probe rewrites to read `cb` from the accessor, as the shape before
 * TRANSFORM_VERSION 19 did.
 */
export const CALLEE_PROBE_SOURCE = `function hot(items) { const cb = (x) => x * 2 + 1; let s = 0; const a = items.map(cb); for (let i = 0; i < a.length; i++) s += a[i]; return s; }\nexports.hot = hot;\n`;
/**
 * cb's gate call as generated: no arguments (an arrow that reads no `this`, and no accessor, since
 * nothing can reach cb's original).
 */
export const CALLEE_GATE_CALL = /\$lp_g\(\)/;
