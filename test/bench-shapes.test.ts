/**
 * The diagnostic benchmarks take the generated code apart with text edits (bench/lib/shapes.ts,
 * bench/check-shape.ts) and probes (bench/codegen.ts). When the instrumenter's output changes
 * shape, an edit that no longer matches leaves the code as generated and the benchmark measures
 * it again under another name. These tests run the edits on what the instrumenter generates
 * today for a real library (plus a shape it lacks), so such drift fails here rather than in a figure.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import vm from 'node:vm';
import { describe, it } from 'node:test';
import { CALLEE_GATE_CALL, CALLEE_PROBE_SOURCE, shapeVariants } from '../bench/lib/shapes.ts';
import { instrument } from '../src/instrument/transform.ts';

const acornFile = path.join(import.meta.dirname, '..', 'node_modules', 'acorn', 'dist', 'acorn.js');
// acorn (ES5) has no default parameters: an arrow with one keeps a parameter wrapper.
const source = `${fs.readFileSync(acornFile, 'utf8')}\nconst withDefault = (a = 1) => a + 1;\n`;
const result = instrument(source, {
  url: pathToFileURL(acornFile).href,
  format: 'commonjs',
  filename: acornFile,
  sourceMap: false,
});

function compiles(code: string): void {
  new vm.Script(`(function (exports, require, module, __filename, __dirname) {${code}\n})`);
}

describe('bench: the check-shape edits find what they edit', () => {
  for (const variant of shapeVariants(result.prefix, result.functions.length)) {
    if (variant.edit === null || variant.name === 'as generated') continue;
    const edit = variant.edit;
    it(`'${variant.name}' changes acorn's generated code, which still compiles`, () => {
      const edited = edit(result.code);
      assert.notEqual(edited, result.code, `'${variant.name}' matched nothing`);
      compiles(edited);
    });
  }

  it("'no check' leaves no entry check behind", () => {
    const variant = shapeVariants(result.prefix, result.functions.length).find(
      (v) => v.name === 'no check',
    );
    const edited = variant!.edit!(result.code);
    assert.equal(edited.includes(`${result.prefix}g!==null`), false);
  });
});

describe('bench: the codegen callee probe', () => {
  it('finds the gate call of the closure it rewrites', () => {
    const generated = instrument(CALLEE_PROBE_SOURCE, {
      url: 'file:///codegen-callee.cjs',
      format: 'commonjs',
      filename: '/codegen-callee.cjs',
      sourceMap: false,
    }).code;
    assert.match(generated, CALLEE_GATE_CALL);
  });
});
