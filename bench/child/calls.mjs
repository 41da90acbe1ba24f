// Calls through a patched function vs direct calls: `calls.mjs <variant> <fn> lockstep`.
//   direct     calls-impl.mjs's function, in a plain process
//   unpatched  calls-target.mjs's function, instrumented, nothing installed
//   redirect   calls-target.mjs's function redirected to calls-impl.mjs's by redirect()
//   patch      the same through a patch (loadPatch + enable), as the patch core does it
// `fn` is `normalize` (non-trivial) or `add` (trivial). The calling loop is here, uninstrumented.
import * as impl from './calls-impl.mjs';
import { instrumented, serveLockstep } from './common.mjs';

const [variant, fn] = process.argv.slice(2);
const TARGET_MODULE = 'bench/child/calls-target.mjs';

let fns = impl;
if (variant !== 'direct') {
  if (!instrumented) throw new Error(`variant ${variant} needs the loader`);
  fns = await import('./calls-target.mjs');
  const { table } = await import(process.env.BENCH_INTERNALS);
  if (!table.all().some((m) => m.meta.filename.endsWith('calls-target.mjs')))
    throw new Error('calls-target.mjs is not instrumented');
  if (variant === 'redirect') {
    const { redirect } = await import(process.env.BENCH_API);
    redirect({ module: TARGET_MODULE, function: fn }, impl[fn]);
  } else if (variant === 'patch') {
    const { applyPatch } = await import(process.env.BENCH_API);
    await applyPatch({
      name: 'bench-calls',
      objects: [{ module: TARGET_MODULE, functions: [{ name: fn, replacement: impl[fn] }] }],
    });
  } else if (variant !== 'unpatched') {
    throw new Error(`unknown variant ${variant}`);
  }
}

const orders = Array.from({ length: 64 }, (_, i) => ({
  id: ` ORD-${1000 + i} `,
  customer: `  customer ${i % 7}  `,
  lines: Array.from({ length: 3 + (i % 6) }, (_, j) => ({
    sku: `sku-${i}-${j}`,
    qty: (i + j) % 4,
    price: 3.5 + ((i * 7 + j * 13) % 50),
  })),
}));

/** Calls per operation, and the operation. */
const CALLS = { normalize: 2_000, add: 1_000_000 };
let sink = 0;
const ops = {
  normalize() {
    const f = fns.normalize;
    for (let i = 0; i < CALLS.normalize; i++) sink += f(orders[i & 63]).quantity;
  },
  add() {
    const f = fns.add;
    let s = 0;
    for (let i = 0; i < CALLS.add; i++) s = f(s, i) | 0;
    sink += s;
  },
};
// The redirection is in force (the slot has a gate) and gives the same answer as a direct call.
if (variant === 'redirect' || variant === 'patch') {
  const { table } = await import(process.env.BENCH_INTERNALS);
  if (table.find(TARGET_MODULE).findFunction(fn).g === null)
    throw new Error(`${variant}: ${fn} is not redirected`);
}
const sample = fn === 'add' ? [2, 3] : [orders[5]];
if (JSON.stringify(fns[fn](...sample)) !== JSON.stringify(impl[fn](...sample)))
  throw new Error('the call under test gives a different result');
await serveLockstep(ops[fn], async () => ({ variant, fn, calls: CALLS[fn], sink: sink > 0 }));
