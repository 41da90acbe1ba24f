/**
 * Which files the loader instruments: include/exclude rules made of glob-ish patterns, regular
 * expressions or predicates, matched against a module's absolute file path.
 *
 * Pattern grammar (documented in docs/loader.md):
 * - `**` any number of path segments, `*` any characters but `/`, `?` one character but `/`,
 *   `{a,b}` alternatives; everything else is literal.
 * - A pattern without `/` matches a file or directory name anywhere (`node_modules`, `*.spec.js`).
 * - A relative pattern with `/` is anchored at the app root (`src/**`, `./lib`).
 * - A pattern that matches a directory matches everything under it.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** A predicate receives the module's absolute file path (with `/` separators) and its URL. */
export type FilterPredicate = (file: string, url: string) => boolean;
export type FilterRule = string | RegExp | FilterPredicate;

export interface ModuleFilterOptions {
  /** Absolute directory that relative patterns are anchored at; by default included whole. */
  readonly root: string;
  /** Rules a file must match (any of them) to be instrumented; replaces the defaults when given. */
  readonly include?: readonly FilterRule[] | undefined;
  /** Rules that keep a matching file out, on top of the files that are always excluded. */
  readonly exclude?: readonly FilterRule[] | undefined;
}

export interface ModuleFilter {
  /** Whether the module at `url` is instrumented. Never throws. */
  (url: string): boolean;
}

/** Root of this livepatch package (the directory holding its package.json). */
export const livepatchRoot: string = toSlashes(
  path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..'),
);

/** Livepatch's own code is never instrumented: the loader and runtime must not patch themselves. */
const alwaysExcluded: readonly string[] = [`${livepatchRoot}/src`, `${livepatchRoot}/dist`];

/** The default include rules: everything under the app root, and every package in node_modules. */
export function defaultInclude(root: string): FilterRule[] {
  return [toSlashes(path.resolve(root)), 'node_modules'];
}

/** Build the filter. Invalid rules throw here, at start-up, rather than on every load. */
export function createModuleFilter(opts: ModuleFilterOptions): ModuleFilter {
  const root = toSlashes(path.resolve(opts.root));
  const include = (opts.include ?? defaultInclude(root)).map((rule) => compileRule(rule, root));
  const exclude = [...alwaysExcluded, ...(opts.exclude ?? [])].map((rule) =>
    compileRule(rule, root),
  );
  const cache = new Map<string, boolean>();
  return (url: string): boolean => {
    let verdict = cache.get(url);
    if (verdict !== undefined) return verdict;
    verdict = decide(url, include, exclude);
    cache.set(url, verdict);
    return verdict;
  };
}

/** Whether `url` is one of livepatch's own files (never transformed at all). */
export function isLivepatchFile(url: string): boolean {
  if (!url.startsWith('file:')) return false;
  try {
    const file = toSlashes(fileURLToPath(url));
    return alwaysExcluded.some((dir) => file.startsWith(`${dir}/`));
  } catch {
    return false;
  }
}

function decide(url: string, include: FilterPredicate[], exclude: FilterPredicate[]): boolean {
  if (!url.startsWith('file:')) return false; // node:, data:, livepatch: and the like
  let file: string;
  try {
    file = toSlashes(fileURLToPath(url));
  } catch {
    return false;
  }
  try {
    return include.some((p) => p(file, url)) && !exclude.some((p) => p(file, url));
  } catch {
    // A user predicate that throws must not break module loading: leave the file alone.
    return false;
  }
}

function compileRule(rule: FilterRule, root: string): FilterPredicate {
  if (typeof rule === 'function') return rule;
  if (rule instanceof RegExp) {
    // A global or sticky RegExp keeps state between test() calls; use a stateless copy.
    const re = new RegExp(rule.source, rule.flags.replace(/[gy]/g, ''));
    return (file) => re.test(file);
  }
  const re = globToRegExp(rule, root);
  return (file) => re.test(file);
}

/** Translate one pattern to a RegExp over absolute `/`-separated paths. */
export function globToRegExp(pattern: string, root: string): RegExp {
  let p = toSlashes(pattern.trim());
  if (p === '') throw new Error('livepatch: empty include/exclude pattern');
  while (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  if (p === '/') return /^\//; // the file system root: everything
  let prefix: string;
  if (isAbsolute(p)) {
    prefix = '^';
  } else if (!p.includes('/')) {
    prefix = '^(?:.*/)?'; // a bare name matches at any depth
  } else {
    if (p.startsWith('./')) p = p.slice(2);
    prefix = `^${escapeRegExp(root === '/' ? '' : root)}/`;
  }
  return new RegExp(`${prefix}${translate(p)}(?:/.*)?$`, process.platform === 'win32' ? 'i' : '');
}

function translate(glob: string): string {
  let out = '';
  let braces = 0;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        // `**/` matches zero or more whole segments; a trailing `**` matches anything.
        if (glob[i + 2] === '/') {
          out += '(?:[^/]*/)*';
          i += 2;
        } else {
          out += '.*';
          i += 1;
        }
      } else {
        out += '[^/]*';
      }
    } else if (c === '?') {
      out += '[^/]';
    } else if (c === '{') {
      braces++;
      out += '(?:';
    } else if (c === '}' && braces > 0) {
      braces--;
      out += ')';
    } else if (c === ',' && braces > 0) {
      out += '|';
    } else {
      out += escapeRegExp(c);
    }
  }
  if (braces > 0) throw new Error(`livepatch: unbalanced '{' in pattern ${JSON.stringify(glob)}`);
  return out;
}

/** Split a list given in an environment variable: comma-separated, blanks ignored. */
export function parsePatternList(value: string | undefined): string[] | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function isAbsolute(p: string): boolean {
  return p.startsWith('/') || /^[A-Za-z]:\//.test(p);
}

function toSlashes(p: string): string {
  return process.platform === 'win32' ? p.replace(/\\/g, '/') : p;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
