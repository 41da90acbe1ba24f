/**
 * Function.prototype.toString transparency: instrumented functions print their original text.
 * Code that serializes functions (workers, browser automation, DI containers that read parameter
 * names) keeps working. Generated text always sits between `/*P[*\/` and `/*]P*\/` markers.
 */
const MARKER = /\/\*(\$lp\d*_)\[\*\/|\/\*\](\$lp\d*_)\*\//g;
const HINT = /\/\*(\$lp\d*_)\[\*\/|\/\*\](\$lp\d*_)\*\//;
/** `/*P@j*\/`: original text `/*P{j*\/ … /*P}j*\/` was moved from here (parameters run in the body). */
const MOVED_FROM = /\/\*(\$lp\d*_)@(\d+)\*\//;

/** Puts moved parameter text back where it came from, innermost moves inside outer ones too. */
export function restoreMoved(text: string): string {
  for (let m = MOVED_FROM.exec(text); m !== null; m = MOVED_FROM.exec(text)) {
    const open = `/*${m[1]}{${m[2]}*/`;
    const close = `/*${m[1]}}${m[2]}*/`;
    const from = text.indexOf(open);
    const to = from === -1 ? -1 : text.indexOf(close, from);
    let moved = '';
    if (to !== -1) {
      moved = text.slice(from + open.length, to);
      text = text.slice(0, from) + text.slice(to + close.length);
    }
    // The mark sits before the region in the text (parameters precede the body).
    text = text.replace(m[0], () => moved);
  }
  return text;
}

/**
 * Removes generated regions (after putting moved parameter text back); a function's text may
 * start or end inside one.
 */
export function stripGenerated(text: string): string {
  if (MOVED_FROM.test(text)) text = restoreMoved(text);
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
      return text.includes('$lp') && (HINT.test(text) || MOVED_FROM.test(text))
        ? stripGenerated(text)
        : text;
    },
  }.toString;
  Object.defineProperty(Function.prototype, 'toString', {
    value: toString,
    writable: true,
    configurable: true,
    enumerable: false,
  });
}
