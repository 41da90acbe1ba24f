/**
 * Minimal ESTree model and child iteration for the instrumenter's single AST walk.
 *
 * The AST comes from oxc-parser (ESTree-compatible, `start`/`end` UTF-16 offsets). We type only
 * the fields we read; everything else is reached generically through oxc's visitor keys.
 */
import { visitorKeys } from 'oxc-parser';

export interface Node {
  type: string;
  start: number;
  end: number;
  [key: string]: unknown;
}

export function isNode(value: unknown): value is Node {
  return typeof value === 'object' && value !== null && typeof (value as Node).type === 'string';
}

const keysCache = new Map<string, readonly string[]>();

/** The child-bearing keys of a node type, in source order (oxc's visitor keys). */
export function childKeys(type: string): readonly string[] {
  let keys = keysCache.get(type);
  if (keys === undefined) {
    keys = visitorKeys[type] ?? [];
    keysCache.set(type, keys);
  }
  return keys;
}

/** Calls `visit` for every direct child node, in source order. */
export function forEachChild(node: Node, visit: (child: Node, key: string) => void): void {
  for (const key of childKeys(node.type)) {
    const value = node[key];
    if (Array.isArray(value)) {
      for (const item of value) if (isNode(item)) visit(item, key);
    } else if (isNode(value)) {
      visit(value, key);
    }
  }
}

export function field(node: Node, key: string): Node | null {
  const value = node[key];
  return isNode(value) ? value : null;
}

export function list(node: Node, key: string): Node[] {
  const value = node[key];
  return Array.isArray(value) ? (value.filter(isNode) as Node[]) : [];
}

export function str(node: Node, key: string): string | undefined {
  const value = node[key];
  return typeof value === 'string' ? value : undefined;
}

export function bool(node: Node, key: string): boolean {
  return node[key] === true;
}

/** Maps UTF-16 offsets to 1-based lines and 0-based columns. */
export class LineIndex {
  private readonly starts: number[] = [0];
  constructor(source: string) {
    for (let i = 0; i < source.length; i++) {
      const c = source.charCodeAt(i);
      if (c === 10) this.starts.push(i + 1);
      else if (c === 13) {
        if (source.charCodeAt(i + 1) === 10) i++;
        this.starts.push(i + 1);
      }
    }
  }
  position(offset: number): { line: number; column: number } {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - this.starts[lo]! };
  }
}
