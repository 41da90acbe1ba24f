/**
 * livepatch's public API: patches and their lifecycle, the call context replacements use, shadow
 * variables, events, and introspection of instrumented modules.
 */
export { definePatch, PatchDefinitionError } from './core/definition.ts';
export type {
  PatchDefinition,
  ObjectDefinition,
  FunctionDefinition,
  StateDefinition,
} from './core/definition.ts';
export {
  loadPatch,
  applyPatch,
  listPatches,
  findPatch,
  onEvent,
  listFunctions,
  listModules,
  PatchHandle,
  transitionStatus,
  forceTransition,
  configureTransitions,
  getState,
  getPrevState,
} from './core/api.ts';
export type { StateView } from './core/api.ts';
export { runTask, runUnbounded, currentTask } from './transition/tasks.ts';
export type { Task, TaskKind, RunTaskOptions } from './transition/tasks.ts';
export type {
  TransitionOptions,
  TransitionReport,
  PendingTask,
  TaskSide,
} from './transition/transition.ts';
export type { StateContext } from './state/states.ts';
export type { StateCallback } from './core/definition.ts';
export type { ModuleFunctions } from './core/api.ts';
export { PatchError } from './core/core.ts';
export type { PatchInfo, ObjectState, FunctionState } from './core/core.ts';
export type { LivepatchEvent, EventType, Listener } from './core/events.ts';
export type { PatchStatus } from './core/patch.ts';
export { callContext } from './runtime/context.ts';
export type { CallContext } from './runtime/context.ts';
export { redirect } from './runtime/redirect.ts';
export type { Redirection, FunctionTarget, Replacement } from './runtime/redirect.ts';
export { LookupError, setAppRoot } from './runtime/table.ts';
export type { FunctionInfo, FunctionKind, RefusedFunction } from './instrument/types.ts';
export * from './shadow/index.ts';
export {
  createBundle,
  signBundle,
  verifyBundle,
  parseBundle,
  loadBundle,
  loadBundleFile,
  BUNDLE_FORMAT_VERSION,
  MAX_BUNDLE_BYTES,
} from './core/bundle.ts';
export type {
  Bundle,
  BundleInput,
  BundleManifest,
  BundleObject,
  BundleFunction,
  BundleState,
  BundleSignature,
  StateCallback as BundleStateCallback,
  LoadBundleOptions,
  VerifyOptions,
  VerifiedBundle,
} from './core/bundle.ts';
export {
  BundleError,
  generateKeyPair,
  keyIdOf,
  trustKey,
  untrustKey,
  trustedKeys,
  reloadTrustedKeys,
  canonicalize,
  TRUSTED_KEYS_ENV,
} from './core/signing.ts';
export type { KeyPair, TrustedKey } from './core/signing.ts';
export { installLoader, loaderStats } from './loader/index.ts';
export type { LoaderOptions } from './loader/index.ts';
