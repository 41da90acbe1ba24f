/**
 * Installs the runtime handle that generated code reaches through `globalThis`, once per process
 * (several copies of livepatch share the first one installed), and the toString transparency.
 */
import { RUNTIME_KEY } from './key.ts';
import { table, type ModuleInstance } from './table.ts';
import { installToString } from './tostring.ts';

export interface RuntimeHandle {
  enter(url: string, cells: string): ModuleInstance;
}

export function installRuntime(): RuntimeHandle {
  const key = Symbol.for(RUNTIME_KEY);
  const holder = globalThis as unknown as Record<symbol, RuntimeHandle | undefined>;
  const existing = holder[key];
  if (existing !== undefined) return existing;
  const handle: RuntimeHandle = { enter: (url, cells) => table.enter(url, cells) };
  Object.defineProperty(globalThis, key, {
    value: handle,
    writable: false,
    enumerable: false,
    configurable: false,
  });
  installToString();
  return handle;
}
