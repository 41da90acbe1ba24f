/**
 * TypeScript (and JSX) to JavaScript before instrumentation, with oxc-transform: types removed and
 * what TypeScript itself compiles — enums, namespaces, parameter properties, legacy decorators
 * with their metadata — compiled the way `tsc` does, per the project's nearest tsconfig.json.
 * Module syntax is left as written (like Node's type stripping): the format follows Node's rules.
 */
import { createRequire } from 'node:module';
import path from 'node:path';

import type * as Oxc from 'oxc-transform';
import type { TransformOptions } from 'oxc-transform';

import type { SourceMapV3 } from '../instrument/types.ts';
import { fs } from './builtins.ts';
import type { RequestedFormat, SourceLang } from './format.ts';
import { TS_HELPERS_KEY, tsHelperNames } from './ts-helpers.ts';

/** The tsconfig settings that change the JavaScript we emit; part of the cache key. */
export interface TsSettings {
  readonly experimentalDecorators: boolean;
  readonly emitDecoratorMetadata: boolean;
  readonly useDefineForClassFields: boolean;
  readonly verbatimModuleSyntax: boolean;
  readonly strictNullChecks: boolean;
  readonly jsx?: string | undefined;
  readonly jsxFactory?: string | undefined;
  readonly jsxFragmentFactory?: string | undefined;
  readonly jsxImportSource?: string | undefined;
}

export const defaultTsSettings: TsSettings = {
  experimentalDecorators: false,
  emitDecoratorMetadata: false,
  useDefineForClassFields: true,
  verbatimModuleSyntax: false,
  strictNullChecks: true,
};

/** The TS transform failed (the source does not parse as TypeScript). */
export class TsTransformError extends Error {
  override readonly name = 'TsTransformError';
}

export interface TsOutput {
  readonly code: string;
  /** Map from `code` back to the TypeScript source. */
  readonly map: SourceMapV3;
}

/** Compile one TypeScript / JSX source to JavaScript. Throws TsTransformError on a parse error. */
export function transformTypeScript(
  source: string,
  filename: string,
  lang: Exclude<SourceLang, 'js'>,
  format: RequestedFormat,
  settings: TsSettings,
): TsOutput {
  const options: TransformOptions = {
    lang,
    sourceType: format === 'auto' ? 'unambiguous' : format,
    sourcemap: true,
    target: 'esnext',
    typescript: {
      onlyRemoveTypeImports: settings.verbatimModuleSyntax,
      removeClassFieldsWithoutInitializer: !settings.useDefineForClassFields,
    },
    assumptions: { setPublicClassFields: !settings.useDefineForClassFields },
  };
  if (settings.experimentalDecorators) {
    options.decorator = {
      legacy: true,
      emitDecoratorMetadata: settings.emitDecoratorMetadata,
      strictNullChecks: settings.strictNullChecks,
    };
  }
  if (lang === 'tsx' || lang === 'jsx') options.jsx = jsxOptions(settings);

  const result = oxc().transformSync(filename, source, options);
  const errors = result.errors.filter((e) => e.severity === 'Error');
  if (errors.length > 0 || !result.map) {
    const first = errors[0];
    throw new TsTransformError(first ? (first.codeframe ?? first.message) : 'no source map');
  }
  const map = result.map;
  return {
    code: inlineHelpers(result.code, Object.keys(result.helpersUsed)),
    map: {
      version: 3,
      sources: map.sources,
      names: map.names,
      mappings: map.mappings,
    },
  };
}

// Loaded on first use (require of an ES module): a warm start never needs it.
let oxcModule: typeof Oxc | undefined;
function oxc(): typeof Oxc {
  return (oxcModule ??= createRequire(import.meta.url)('oxc-transform') as typeof Oxc);
}

function jsxOptions(settings: TsSettings): NonNullable<TransformOptions['jsx']> {
  switch (settings.jsx) {
    case 'react':
      return {
        runtime: 'classic',
        ...(settings.jsxFactory ? { pragma: settings.jsxFactory } : {}),
        ...(settings.jsxFragmentFactory ? { pragmaFrag: settings.jsxFragmentFactory } : {}),
      };
    case 'react-jsxdev':
      return {
        runtime: 'automatic',
        development: true,
        ...(settings.jsxImportSource ? { importSource: settings.jsxImportSource } : {}),
      };
    default:
      return {
        runtime: 'automatic',
        ...(settings.jsxImportSource ? { importSource: settings.jsxImportSource } : {}),
      };
  }
}

/**
 * oxc imports its helpers (decorators) from `@oxc-project/runtime`, which user projects do not
 * have. Each such import is one line at the top of the output with no mappings; replace it, on the
 * same line so the source map stays valid, by a read of livepatch's own copy of the helper.
 */
function inlineHelpers(code: string, used: readonly string[]): string {
  if (used.length === 0) return code;
  const known = new Set(tsHelperNames);
  const line =
    /^(?:import (\w+) from|var (\w+) = require\() ?"@oxc-project\/runtime\/helpers\/(\w+)"\)?;$/gm;
  return code.replace(
    line,
    (whole, esmLocal: string | undefined, cjsLocal: string | undefined, name: string) => {
      if (!known.has(name)) return whole; // resolvable only if the project installs the package
      return `var ${esmLocal ?? cjsLocal} = globalThis[globalThis.Symbol.for(${JSON.stringify(TS_HELPERS_KEY)})].${name};`;
    },
  );
}

// ---- tsconfig.json ----------------------------------------------------------------------------

const settingsByDir = new Map<string, TsSettings>();

/**
 * The settings of the tsconfig.json nearest to `filename` (following `extends`), or the defaults.
 * The search stops at a `node_modules` boundary so a dependency never gets the app's settings.
 * Read once per directory; a broken tsconfig.json counts as absent.
 */
export function tsSettingsFor(filename: string): TsSettings {
  const dir = path.dirname(filename);
  const cached = settingsByDir.get(dir);
  if (cached) return cached;
  let settings = defaultTsSettings;
  const config = findTsconfig(dir);
  if (config) {
    try {
      settings = toSettings(readCompilerOptions(config, 0));
    } catch {
      settings = defaultTsSettings;
    }
  }
  settingsByDir.set(dir, settings);
  return settings;
}

function findTsconfig(start: string): string | null {
  let dir = start;
  for (;;) {
    const candidate = path.join(dir, 'tsconfig.json');
    if (fs.existsSync(candidate)) return candidate;
    if (path.basename(dir) === 'node_modules') return null;
    const parent = path.dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

type CompilerOptions = Record<string, unknown>;

function readCompilerOptions(file: string, depth: number): CompilerOptions {
  if (depth > 8) return {};
  const json = parseJsonc(fs.readFileSync(file, 'utf8'));
  if (json === null || typeof json !== 'object') return {};
  const config = json as { extends?: unknown; compilerOptions?: unknown };
  let options: CompilerOptions = {};
  const bases =
    typeof config.extends === 'string'
      ? [config.extends]
      : Array.isArray(config.extends)
        ? config.extends
        : [];
  for (const base of bases) {
    if (typeof base !== 'string') continue;
    const basePath = resolveExtends(base, file);
    if (basePath) options = { ...options, ...readCompilerOptions(basePath, depth + 1) };
  }
  if (config.compilerOptions && typeof config.compilerOptions === 'object') {
    options = { ...options, ...(config.compilerOptions as CompilerOptions) };
  }
  return options;
}

function resolveExtends(spec: string, from: string): string | null {
  try {
    if (spec.startsWith('.') || path.isAbsolute(spec)) {
      const full = path.resolve(path.dirname(from), spec);
      if (fs.existsSync(full) && fs.statSync(full).isFile()) return full;
      if (fs.existsSync(`${full}.json`)) return `${full}.json`;
      return null;
    }
    const req = createRequire(from);
    try {
      return req.resolve(spec);
    } catch {
      return req.resolve(`${spec}/tsconfig.json`);
    }
  } catch {
    return null;
  }
}

function toSettings(o: CompilerOptions): TsSettings {
  const target = typeof o.target === 'string' ? o.target.toLowerCase() : undefined;
  // tsc's default for useDefineForClassFields: true from target ES2022 on (and ESNext).
  const modernTarget =
    target === undefined || target === 'esnext' || /^es20(2[2-9]|[3-9]\d)$/.test(target);
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  return {
    experimentalDecorators: o.experimentalDecorators === true,
    emitDecoratorMetadata: o.emitDecoratorMetadata === true,
    useDefineForClassFields:
      typeof o.useDefineForClassFields === 'boolean' ? o.useDefineForClassFields : modernTarget,
    verbatimModuleSyntax: o.verbatimModuleSyntax === true,
    // Only decorator metadata depends on it; an unset value counts as the modern `strict` default.
    strictNullChecks:
      typeof o.strictNullChecks === 'boolean'
        ? o.strictNullChecks
        : typeof o.strict === 'boolean'
          ? o.strict
          : true,
    jsx: str(o.jsx)?.toLowerCase(),
    jsxFactory: str(o.jsxFactory),
    jsxFragmentFactory: str(o.jsxFragmentFactory),
    jsxImportSource: str(o.jsxImportSource),
  };
}

/** JSON with comments and trailing commas, as tsconfig.json allows. */
export function parseJsonc(text: string): unknown {
  let out = '';
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    if (c === '"') {
      let j = i + 1;
      while (j < n && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < n && text[i] !== '\n') i++;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end === -1 ? n : end + 2;
    } else {
      // A trailing comma before `}` or `]` is dropped (the output is only whitespace-trimmed there).
      if (c === '}' || c === ']') out = out.replace(/,\s*$/, '');
      out += c;
      i++;
    }
  }
  return JSON.parse(out);
}
