/**
 * Gate cells: the global properties that entry checks read (docs/architecture.md, "The entry
 * check"). Invisible to the program's enumeration, unchangeable by its code, changed by the
 * runtime when a version is installed or removed, one set per module version.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';

import { redirect, type Replacement } from '../src/runtime/redirect.ts';
import { registerModule, table } from '../src/runtime/table.ts';
import { loadCjs, pathFor, target } from './support/instrumented.ts';

const cellValue = (name: string): unknown =>
  Object.getOwnPropertyDescriptor(globalThis, name)?.value;

describe('gate cells', () => {
  it('are hidden from enumeration, read-only to code, and follow what is installed', () => {
    const m = loadCjs<{ add(a: number, b: number): number }>(
      'function add(a, b) { return a + b; } exports.add = add;',
    );
    const slot = m.module.findFunction('add');
    const desc = Object.getOwnPropertyDescriptor(globalThis, slot.cell);
    assert.deepEqual(desc, { value: null, writable: false, enumerable: false, configurable: true });
    assert.ok(!Object.keys(globalThis).includes(slot.cell), 'not in Object.keys(globalThis)');
    assert.ok(!(slot.cell in { ...globalThis }), 'not copied by spread');

    // Strict code that writes the cell gets a TypeError; the function is unaffected.
    assert.throws(() => {
      (globalThis as Record<string, unknown>)[slot.cell] = () => 0;
    }, TypeError);
    assert.equal(m.exports.add(2, 3), 5);

    const r = redirect(target(m, 'add'), ((a: number, b: number) => a * b) as Replacement);
    assert.equal(typeof cellValue(slot.cell), 'function', 'the gate is in the cell');
    assert.equal(m.exports.add(2, 3), 6);
    r.remove();
    assert.equal(cellValue(slot.cell), null, 'removing the last version empties the cell');
    assert.equal(m.exports.add(2, 3), 5);
  });

  it('are shared by re-evaluations of the same source and new for a new version at the URL', () => {
    const source = 'function f() { return 1; } exports.f = f;';
    const first = loadCjs<{ f(): number }>(source, 'cells-reeval');
    const require = createRequire(import.meta.url);
    delete require.cache[first.file];
    const again = loadCjs<{ f(): number }>(source, 'cells-reeval');
    assert.equal(again.module, first.module, 'one module for both evaluations');
    const r = redirect(target(again, 'f'), (() => 2) as Replacement);
    assert.equal(first.exports.f(), 2, 'the old closure reads the same cell');
    assert.equal(again.exports.f(), 2);
    r.remove();

    delete require.cache[first.file];
    const edited = loadCjs<{ f(): number }>(source.replace('1', '3'), 'cells-reeval');
    assert.notEqual(edited.module, first.module);
    assert.notEqual(edited.module.s(0).cell, first.module.s(0).cell);
    const r2 = redirect(target(edited, 'f'), (() => 4) as Replacement);
    assert.equal(edited.exports.f(), 4);
    assert.equal(first.exports.f(), 1, 'the superseded version keeps its own, empty cell');
    r2.remove();
  });

  it('that are malformed or held by another module fail the start and change nothing', () => {
    const held = loadCjs('function g() {} exports.g = g;').module;
    const file = pathFor('cells-bad', 'commonjs');
    const url = pathToFileURL(file).href;
    registerModule(url, {
      filename: file,
      format: 'commonjs',
      hash: 'x',
      functions: [],
      refused: [],
      moduleBindings: [],
    });
    assert.throws(
      () => table.enter(url, 'g'),
      /names no valid gate cells \(g\).*Clear the transform cache/,
    );
    assert.throws(
      () => table.enter(url, held.cells),
      new RegExp(`already those of ${held.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
    );
    assert.equal(table.byUrl(url), undefined, 'no module was created');
    const cells = '$lp_0123456789ab_';
    assert.equal(table.enter(url, cells).cells, cells, 'its metadata is still there to start with');
  });
});
