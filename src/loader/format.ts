/**
 * Module formats: what the loader does with the format Node's own load step reports, and the
 * CommonJS-or-ESM decision for files whose format Node leaves open (a `.js` or `.ts` file with no
 * `type` in its package.json, loaded through `require()`), made the way Node makes it.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as Vm from 'node:vm';
import { createRequire } from 'node:module';

import type { ModuleFormat } from '../instrument/types.ts';
import { fs } from './builtins.ts';

/** The source language of a module we transform. */
export type SourceLang = 'js' | 'ts' | 'jsx' | 'tsx';

/** A format we transform: a known one, or `auto` when Node decides by looking at the syntax. */
export type RequestedFormat = ModuleFormat | 'auto';

export interface Classified {
  readonly lang: SourceLang;
  readonly format: RequestedFormat;
}

const JS_EXTENSIONS = /\.(?:js|mjs|cjs)$/;
const TS_EXTENSIONS = /\.(?:ts|mts|cts)$/;
const JSX_EXTENSIONS = /\.(?:jsx|tsx)$/;

/** The extensions the loader reads itself because Node's default load refuses them. */
export function isJsxUrl(url: string): boolean {
  return JSX_EXTENSIONS.test(pathOf(url));
}

/**
 * Decide from Node's reported format (after `nextLoad`) and the URL whether and how we transform.
 * Returns null for what we leave alone: JSON, WebAssembly, addons, builtins, other extensions
 * (and `.d.ts`, which holds no code).
 *
 * What Node reports, measured on 22.23, 24.21 and 26.10 (docs/loader.md):
 * - through `import`: `commonjs` / `module` (detection already done), `commonjs-typescript` /
 *   `module-typescript` for TypeScript;
 * - through `require()`: `commonjs` / `module` when the extension or package type decides,
 *   `undefined` for an ambiguous `.js`, `typescript` for an ambiguous `.ts`.
 */
export function classify(url: string, nodeFormat: string | null | undefined): Classified | null {
  const file = pathOf(url);
  if (JS_EXTENSIONS.test(file)) {
    if (nodeFormat === 'commonjs' || nodeFormat === 'module') {
      return { lang: 'js', format: nodeFormat };
    }
    if (nodeFormat == null) return { lang: 'js', format: 'auto' };
    return null;
  }
  if (TS_EXTENSIONS.test(file)) {
    if (file.endsWith('.d.ts') || file.endsWith('.d.mts') || file.endsWith('.d.cts')) return null;
    if (file.endsWith('.mts')) return { lang: 'ts', format: 'module' };
    if (file.endsWith('.cts')) return { lang: 'ts', format: 'commonjs' };
    switch (nodeFormat) {
      case 'module-typescript':
      case 'module':
        return { lang: 'ts', format: 'module' };
      case 'commonjs-typescript':
      case 'commonjs':
        return { lang: 'ts', format: 'commonjs' };
      case 'typescript':
      case null:
      case undefined:
        // Node leaves it open (or, before 22.18, does not know TypeScript): package type, else syntax.
        return { lang: 'ts', format: packageTypeOf(url) ?? 'auto' };
      default:
        return null;
    }
  }
  if (JSX_EXTENSIONS.test(file)) {
    return { lang: file.endsWith('.tsx') ? 'tsx' : 'jsx', format: packageTypeOf(url) ?? 'auto' };
  }
  return null;
}

const typeByDir = new Map<string, ModuleFormat | null>();

/**
 * The `type` of the nearest package.json, as Node reads it: the first package.json found walking
 * up decides, and one without `type` (or unreadable) leaves the format to syntax detection.
 */
export function packageTypeOf(url: string): ModuleFormat | null {
  let file: string;
  try {
    file = fileURLToPath(url);
  } catch {
    return null; // not a file: URL
  }
  const seen: string[] = [];
  let dir = path.dirname(file);
  let type: ModuleFormat | null = null;
  for (;;) {
    const known = typeByDir.get(dir);
    if (known !== undefined) {
      type = known;
      break;
    }
    seen.push(dir);
    const pkg = readPackageType(path.join(dir, 'package.json'));
    if (pkg !== undefined) {
      type = pkg;
      break;
    }
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  for (const d of seen) typeByDir.set(d, type);
  return type;
}

/** undefined: no package.json here; null: one without a usable `type`. */
function readPackageType(file: string): ModuleFormat | null | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const type = (JSON.parse(text) as { type?: unknown }).type;
    return type === 'module' || type === 'commonjs' ? type : null;
  } catch {
    return null;
  }
}

// The messages V8 gives for ESM-only syntax compiled as CommonJS, and for code that fails only
// because of the CommonJS wrapper. Node's own detection (src/node_contextify.cc) keys on the same
// messages, so matching them reproduces its decision.
const ESM_SYNTAX_MESSAGES = new Set([
  'Cannot use import statement outside a module',
  "Unexpected token 'export'",
  "Cannot use 'import.meta' outside a module",
]);
const CJS_ONLY_MESSAGES = new Set([
  "Identifier 'module' has already been declared",
  "Identifier 'exports' has already been declared",
  "Identifier 'require' has already been declared",
  "Identifier '__filename' has already been declared",
  "Identifier '__dirname' has already been declared",
  'await is only valid in async functions and the top level bodies of modules',
]);

const CJS_PARAMS = ['exports', 'require', 'module', '__filename', '__dirname'];
// Words without which neither ESM syntax nor a clash with the CommonJS wrapper can occur.
const MAYBE_ESM =
  /\b(?:import|export|await)\b|\b(?:var|let|const|class|function)\s+(?:module|exports|require|__filename|__dirname)\b/;

/**
 * Node's rule for an ambiguous JavaScript file: CommonJS, unless compiling it as CommonJS fails
 * because of ESM syntax (or because of top-level `await` / a clash with the CommonJS wrapper's
 * names, and it compiles as a module). A file that is simply invalid stays CommonJS, so that Node
 * reports its syntax error the way it does for CommonJS.
 */
export function detectFormat(source: string, filename: string): ModuleFormat {
  if (!MAYBE_ESM.test(source)) return 'commonjs';
  try {
    vm().compileFunction(source, CJS_PARAMS, { filename });
    return 'commonjs';
  } catch (error) {
    const message = errorMessage(error);
    if (ESM_SYNTAX_MESSAGES.has(message)) return 'module';
    if (!CJS_ONLY_MESSAGES.has(message)) return 'commonjs';
  }
  // Compile as a module would: strict, top-level await allowed. An async function body is the
  // closest thing available without --experimental-vm-modules; it is compiled, never run.
  try {
    new AsyncFunction(`"use strict";${source}\n`);
    return 'module';
  } catch (error) {
    return ESM_SYNTAX_MESSAGES.has(errorMessage(error)) ? 'module' : 'commonjs';
  }
}

// Loaded on first use: a warm start makes no format decisions.
let vmModule: typeof Vm | undefined;
function vm(): typeof Vm {
  return (vmModule ??= createRequire(import.meta.url)('node:vm') as typeof Vm);
}

const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor as new (
  body: string,
) => unknown;

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : '';
}

function pathOf(url: string): string {
  const q = url.search(/[?#]/);
  return q === -1 ? url : url.slice(0, q);
}
