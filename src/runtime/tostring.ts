/**
 * Function.prototype.toString transparency: instrumented functions print their original text.
 * Code that serializes functions (workers, browser automation, DI containers that read parameter
 * names) keeps working. Generated text always sits between `/*P[*\/` and `/*]P*\/` markers.
 */
const MARKER = /\/\*(\$lp\d*_)\[\*\/|\/\*\](\$lp\d*_)\*\//g;
const HINT = /\/\*(\$lp\d*_)\[\*\/|\/\*\](\$lp\d*_)\*\//;

/** Removes generated regions; a function's text may start or end inside one. */
export function stripGenerated(text: string): string {
  MARKER.lastIndex = 0;
  let out = '';
  let pos = 0;
  let inGenerated: boolean | null = null;
  for (let m = MARKER.exec(text); m !== null; m = MARKER.exec(text)) {
    const isOpen = m[1] !== undefined;
    if (inGenerated === null) inGenerated = !isOpen;
    if (isOpen) {
      if (!inGenerated) out += text.slice(pos, m.index);
      inGenerated = true;
    } else {
      inGenerated = false;
    }
    pos = m.index + m[0].length;
  }
  if (inGenerated === null) return text;
  if (!inGenerated) out += text.slice(pos);
  return out;
}

let installed = false;

export function installToString(): void {
  if (installed) return;
  installed = true;
  const native = Function.prototype.toString;
  const toString = {
    toString(this: unknown): string {
      if (this === toString) return 'function toString() { [native code] }';
      const text = native.call(this);
      return text.includes('$lp') && HINT.test(text) ? stripGenerated(text) : text;
    },
  }.toString;
  Object.defineProperty(Function.prototype, 'toString', {
    value: toString,
    writable: true,
    configurable: true,
    enumerable: false,
  });
}
