/**
 * Runtime internals the benchmark children read (function table, module registration, loader
 * counters), built into the bench's dist as an entry of its own (scripts/build.ts,
 * `extraEntries`). Bundled, the package's modules live in one shared chunk, so these are the
 * very instances the loader uses. Import here only modules the shipped entries already share
 * (runtime, loader): anything else would move into that chunk and the benchmarks would load
 * more at start-up than users do.
 */
export { table, registerModule } from '../../src/runtime/table.ts';
export { installRuntime } from '../../src/runtime/global.ts';
export { loaderStats } from '../../src/loader/index.ts';
