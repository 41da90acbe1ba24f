/**
 * Source maps for transformed modules: compose the instrumenter's map with the TypeScript map and
 * with a map the original file already carries, inline the result, map function positions back
 * to the original source. (Switching on Node's stack-trace support for them is in install.ts.)
 */
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

import type Remapping from '@jridgewell/remapping';
import type * as TraceMapping from '@jridgewell/trace-mapping';

import type { SourceMapV3 } from '../instrument/types.ts';
import { fs } from './builtins.ts';

// Loaded on first use: a warm start (everything from the cache) never needs them.
const require = createRequire(import.meta.url);
let remappingFn: typeof Remapping | undefined;
let traceMapping: typeof TraceMapping | undefined;
function remapping(...args: Parameters<typeof Remapping>): ReturnType<typeof Remapping> {
  if (!remappingFn) {
    const mod = require('@jridgewell/remapping') as
      typeof Remapping | { default: typeof Remapping };
    remappingFn = typeof mod === 'function' ? mod : mod.default;
  }
  return remappingFn(...args);
}
function tracing(): typeof TraceMapping {
  return (traceMapping ??= require('@jridgewell/trace-mapping') as typeof TraceMapping);
}

/**
 * Compose maps, outermost first: `maps[0]` maps the final code to `maps[1]`'s generated code, and
 * so on; the last may have several sources. Sources named `filename` become `url`, so Node and
 * debuggers open the original file; contents are left out (the file is on disk).
 */
export function composeMaps(
  maps: readonly SourceMapV3[],
  filename: string,
  url: string,
): SourceMapV3 {
  let result: SourceMapV3;
  if (maps.length === 1) {
    const only = maps[0]!;
    result = { version: 3, sources: only.sources, names: only.names, mappings: only.mappings };
  } else {
    const composed = remapping(maps as SourceMapV3[], () => null, { excludeContent: true });
    result = {
      version: 3,
      sources: composed.sources.map((s) => s ?? ''),
      names: composed.names,
      mappings: String(composed.mappings),
    };
  }
  result.sources = result.sources.map((s) => (s === filename || s === '' ? url : s));
  return result;
}

/** The comment that carries `map` inline; goes on its own line at the end of the code. */
export function inlineSourceMapComment(map: SourceMapV3): string {
  const base64 = Buffer.from(JSON.stringify(map), 'utf8').toString('base64');
  return `\n//# sourceMappingURL=data:application/json;charset=utf-8;base64,${base64}\n`;
}

/**
 * Positions (1-based line, 0-based column) in generated code mapped back through `map` to the
 * original source. A position with no mapping at or before it on its line takes the next mapping
 * on the line; one with none at all is kept as is.
 */
export function mapPositions<T extends { readonly line: number; readonly column: number }>(
  items: readonly T[],
  map: SourceMapV3,
): T[] {
  if (items.length === 0) return [];
  const { TraceMap, originalPositionFor, GREATEST_LOWER_BOUND, LEAST_UPPER_BOUND } = tracing();
  const trace = new TraceMap(map as never);
  return items.map((item) => {
    let pos = originalPositionFor(trace, {
      line: item.line,
      column: item.column,
      bias: GREATEST_LOWER_BOUND,
    });
    if (pos.line === null) {
      pos = originalPositionFor(trace, {
        line: item.line,
        column: item.column,
        bias: LEAST_UPPER_BOUND,
      });
    }
    if (pos.line === null) return item;
    return { ...item, line: pos.line, column: pos.column };
  });
}

const SOURCE_MAP_COMMENT = /\/\/[#@] sourceMappingURL=([^\s'"]+)\s*$/;

/**
 * The source map a JavaScript file already refers to (a compiled package's own `.map`), with its
 * sources made absolute, or null. Read only when the comment is in the file's last lines, as
 * tools write it; any problem reading it means no map.
 */
export function readExistingSourceMap(source: string, filename: string): SourceMapV3 | null {
  const tail = source.slice(Math.max(0, source.length - 4096)).trimEnd();
  const lastLine = tail.slice(tail.lastIndexOf('\n') + 1);
  const match = SOURCE_MAP_COMMENT.exec(lastLine);
  if (!match) return null;
  const ref = match[1]!;
  try {
    let json: string;
    let mapUrl: URL;
    if (ref.startsWith('data:')) {
      const comma = ref.indexOf(',');
      const meta = ref.slice(5, comma);
      const data = ref.slice(comma + 1);
      json = meta.endsWith(';base64')
        ? Buffer.from(data, 'base64').toString('utf8')
        : decodeURIComponent(data);
      mapUrl = pathToFileURL(filename);
    } else {
      mapUrl = new URL(ref, pathToFileURL(filename));
      if (mapUrl.protocol !== 'file:') return null;
      json = fs.readFileSync(fileURLToPath(mapUrl), 'utf8');
    }
    const raw = JSON.parse(json) as Partial<SourceMapV3> & {
      sourceRoot?: string;
      sections?: unknown;
    };
    if (raw.version !== 3 || !Array.isArray(raw.sources) || typeof raw.mappings !== 'string') {
      return null; // index maps (`sections`) and malformed maps are not composed
    }
    const root = raw.sourceRoot ? new URL(ensureSlash(raw.sourceRoot), mapUrl) : mapUrl;
    return {
      version: 3,
      sources: raw.sources.map((s) => new URL(s ?? '', root).href),
      names: Array.isArray(raw.names) ? raw.names : [],
      mappings: raw.mappings,
    };
  } catch {
    return null;
  }
}

function ensureSlash(s: string): string {
  return s.endsWith('/') ? s : `${s}/`;
}

/** Absolute path of a file: URL, or the input when it is not one. */
export function urlToPath(url: string): string {
  return url.startsWith('file:') ? fileURLToPath(url) : url;
}
