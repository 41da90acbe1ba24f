/**
 * Public surface of the shadow variable subsystem: the registry class, the process-wide
 * instance patches use, and the typed-id helper. See docs/shadow.md.
 */
import { ShadowRegistry } from './registry.ts';

export { ShadowRegistry } from './registry.ts';
export type { ShadowConstructorArg, ShadowDefinition, ShadowStats } from './registry.ts';
export { shadowId } from './id.ts';
export type { ShadowConstructor, ShadowDestructor, ShadowId } from './id.ts';

/**
 * The process-wide registry. Patches share it, so a variable allocated by one patch is seen by
 * the patch that atomically replaces it (the kernel's "lock that survives atomic replace").
 */
export const shadow: ShadowRegistry = new ShadowRegistry();
