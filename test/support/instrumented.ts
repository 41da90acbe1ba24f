/**
 * Loads source text as an instrumented module without the full loader: instruments it, writes the
 * result to a temporary file, registers its metadata and requires / imports it. ES modules get
 * their `livepatch:slots` import served by a minimal resolve/load hook registered here.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire, registerHooks } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { instrument } from '../../src/instrument/transform.ts';
import type { InstrumentResult } from '../../src/instrument/types.ts';
import { installRuntime } from '../../src/runtime/global.ts';
import { SLOTS_URL_PREFIX, slotsUrlFor } from '../../src/runtime/key.ts';
import {
  registerModule,
  slotsModuleSource,
  table,
  type LoadedModule,
} from '../../src/runtime/table.ts';

installRuntime();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lp-test-'));
let counter = 0;
let hooked = false;

function hookSlots(): void {
  if (hooked) return;
  hooked = true;
  registerHooks({
    resolve(specifier, context, next) {
      const slotsUrl =
        context.parentURL !== undefined ? slotsUrlFor(specifier, context.parentURL) : null;
      if (slotsUrl !== null) return { url: slotsUrl, shortCircuit: true };
      return next(specifier, context);
    },
    load(url, context, next) {
      if (url.startsWith(SLOTS_URL_PREFIX)) {
        return { format: 'module', source: slotsModuleSource(url), shortCircuit: true };
      }
      return next(url, context);
    },
  });
}

export interface Loaded<T> {
  exports: T;
  module: LoadedModule;
  result: InstrumentResult;
  file: string;
}

/** Where a module of that name will be written (to name it in a patch before it loads). */
export function pathFor(name: string, format: 'commonjs' | 'module'): string {
  return path.join(dir, `${name}${format === 'module' ? '.mjs' : '.cjs'}`);
}

/** sha256 of source text, as patches name a target's expected source. */
export function sha256(source: string): string {
  return createHash('sha256').update(source).digest('hex');
}

function prepare(
  source: string,
  format: 'commonjs' | 'module',
  name?: string,
  edit: (code: string) => string = (code) => code,
): { file: string; url: string; result: InstrumentResult } {
  const file = pathFor(name ?? `m${++counter}`, format);
  const url = pathToFileURL(file).href;
  const result = instrument(source, { url, format, filename: file, sourceMap: false });
  fs.writeFileSync(file, edit(result.code));
  registerModule(url, {
    filename: file,
    format,
    hash: sha256(source),
    functions: result.functions,
    refused: result.refused,
    moduleBindings: result.moduleBindings,
  });
  return { file, url, result };
}

/** `edit` rewrites the generated code before it is loaded (benchmarks compare variants). */
export function loadCjs<T = Record<string, unknown>>(
  source: string,
  name?: string,
  edit?: (code: string) => string,
): Loaded<T> {
  const { file, url, result } = prepare(source, 'commonjs', name, edit);
  const exports = createRequire(import.meta.url)(file) as T;
  return { exports, module: table.byUrl(url)!, result, file };
}

/**
 * Writes and registers an instrumented ES module without importing it (for module graphs that
 * must exist as a whole before the first import, such as import cycles). Returns its URL.
 */
export function prepareEsm(source: string, name: string): string {
  hookSlots();
  return prepare(source, 'module', name).url;
}

export async function loadEsm<T = Record<string, unknown>>(
  source: string,
  name?: string,
): Promise<Loaded<T>> {
  hookSlots();
  const { file, url, result } = prepare(source, 'module', name);
  const exports = (await import(url)) as T;
  return { exports, module: table.byUrl(url)!, result, file };
}

/** The module's path as redirect() targets accept it. */
export function target(loaded: Loaded<unknown>, fn: string): { module: string; function: string } {
  return { module: loaded.file, function: fn };
}
