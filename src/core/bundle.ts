/**
 * Patch bundles: the versioned, signed unit that is built, shipped and loaded — a manifest (the
 * patch's data) plus the ES module source of its replacements. Loading verifies the whole bundle
 * (size, JSON, format version, every field, every target hash, the signature and its key) before
 * one byte of its code is evaluated; only then is the code run, its exports checked against the
 * manifest, and the patch handed to the core. The format, byte for byte, is in docs/bundle.md.
 */
import fs from 'node:fs';
import path from 'node:path';
import { KeyObject } from 'node:crypto';
import * as livepatchApi from '../index.ts';
import { getCore, PatchHandle } from './api.ts';
import {
  validate,
  type PatchDefinition,
  type StateDefinition,
  type StateCallback as StateCallbackFn,
} from './definition.ts';
import type { Replacement } from '../runtime/redirect.ts';
import {
  BundleError,
  keySet,
  signBytes,
  signedBytes,
  SIGNATURE_ALGORITHM,
  trustedKeys,
  verifyBytes,
  type TrustedKey,
} from './signing.ts';

export { BundleError } from './signing.ts';

/** The bundle format version this livepatch reads and writes. */
export const BUNDLE_FORMAT_VERSION = 1;
/** Largest bundle accepted, in bytes of its JSON text (32 MiB). */
export const MAX_BUNDLE_BYTES = 32 * 1024 * 1024;

export interface BundleFunction {
  /** Qualified name in the module, as in a hand-written patch. */
  readonly name: string;
  /** 1-based position among functions of the same name; absent: the name is unique. */
  readonly pos?: number;
  /** Key of the replacement in the object the code's factory returns. */
  readonly export: string;
}

export interface BundleObject {
  readonly module: string;
  /** sha256 (64 lowercase hex) of the source the patch was built against; required in bundles. */
  readonly hash: string;
  readonly functions: readonly BundleFunction[];
}

export type StateCallback = 'prePatch' | 'postPatch' | 'preUnpatch' | 'postUnpatch';

export interface BundleState {
  readonly id: string;
  readonly blockDisable: boolean;
  readonly ownsShadow: boolean;
  /** Export names of the state's callbacks. */
  readonly callbacks: Readonly<Partial<Record<StateCallback, string>>>;
}

export interface BundleManifest {
  readonly name: string;
  readonly replace: boolean;
  readonly objects: readonly BundleObject[];
  readonly states: readonly BundleState[];
}

export interface BundleSignature {
  readonly algorithm: 'ed25519';
  readonly keyId: string;
  /** base64 of the 64-byte ed25519 signature of the canonical {livepatch, patch, code}. */
  readonly value: string;
}

export interface Bundle {
  readonly livepatch: 1;
  readonly patch: BundleManifest;
  /** ES module source; its default export is the factory `(api) => ({ [export]: function })`. */
  readonly code: string;
  readonly signature: BundleSignature | null;
}

/** What createBundle() takes: the manifest with its defaults left out, and the code. */
export interface BundleInput {
  readonly patch: {
    readonly name: string;
    readonly replace?: boolean;
    readonly objects: readonly BundleObject[];
    readonly states?: readonly {
      readonly id: string;
      readonly blockDisable?: boolean;
      readonly ownsShadow?: boolean;
      readonly callbacks?: Readonly<Partial<Record<StateCallback, string>>>;
    }[];
  };
  readonly code: string;
}

export interface VerifyOptions {
  /**
   * DEVELOPMENT ONLY. Accept a bundle whose `signature` is null. Anyone who can hand such a
   * bundle to the process runs code in it. A bundle that has a signature is always verified.
   */
  readonly allowUnsigned?: boolean;
  /** Verify against these public keys only, instead of the process's trusted keys. */
  readonly trustedKeys?: Iterable<string | KeyObject>;
}

export type LoadBundleOptions = VerifyOptions;

export interface VerifiedBundle {
  readonly bundle: Bundle;
  /** The key that signed it; null for an unsigned bundle accepted with allowUnsigned. */
  readonly keyId: string | null;
}

// ---- building and signing ---------------------------------------------------------------------

/** A complete, unsigned bundle from a manifest (defaults filled in) and code; validated. */
export function createBundle(input: BundleInput): Bundle {
  const p = input.patch;
  const bundle = {
    livepatch: BUNDLE_FORMAT_VERSION,
    patch: {
      name: p.name,
      replace: p.replace ?? false,
      objects: p.objects.map((o) => ({
        module: o.module,
        hash: o.hash,
        functions: o.functions.map((f) => ({
          name: f.name,
          ...(f.pos !== undefined ? { pos: f.pos } : {}),
          export: f.export,
        })),
      })),
      states: (p.states ?? []).map((s) => ({
        id: s.id,
        blockDisable: s.blockDisable ?? false,
        ownsShadow: s.ownsShadow ?? false,
        callbacks: { ...s.callbacks },
      })),
    },
    code: input.code,
    signature: null,
  };
  return parseBundle(JSON.stringify(bundle));
}

/** The bundle signed with an ed25519 private key (PKCS#8 PEM); any previous signature is replaced. */
export function signBundle(
  bundle: Bundle | string | Buffer,
  privateKey: string | KeyObject,
): Bundle {
  const parsed = parseBundle(bundle);
  const { keyId, value } = signBytes(signedBytes(parsed), privateKey);
  return { ...parsed, signature: { algorithm: SIGNATURE_ALGORITHM, keyId, value } };
}

// ---- verification -----------------------------------------------------------------------------

/**
 * Verifies a bundle completely without evaluating its code: size, JSON, format version, every
 * field, and the signature by a trusted key (the process's, or `trustedKeys`). An unsigned bundle
 * is refused (EUNSIGNED) unless `allowUnsigned`. Returns the bundle as verified: use that copy,
 * not the input, so that what runs is what was checked.
 */
export function verifyBundle(
  source: Bundle | string | Buffer,
  trusted?: Iterable<string | KeyObject> | VerifyOptions,
): VerifiedBundle {
  const options: VerifyOptions =
    typeof trusted === 'string' || trusted instanceof KeyObject
      ? { trustedKeys: [trusted] }
      : trusted === undefined || isIterable(trusted)
        ? { trustedKeys: trusted }
        : trusted;
  return verifyParsed(parseBundle(source), options);
}

/** The signature check of a parsed bundle (verifyBundle without the parsing). */
function verifyParsed(bundle: Bundle, options: VerifyOptions): VerifiedBundle {
  if (bundle.signature === null) {
    if (options.allowUnsigned === true) return { bundle, keyId: null };
    throw new BundleError(
      `bundle '${bundle.patch.name}' is not signed; sign it (signBundle, livepatch sign) with a key this process trusts. Unsigned bundles load only with the development option allowUnsigned: true`,
      'EUNSIGNED',
      'signature',
    );
  }
  const keys: ReadonlyMap<string, TrustedKey> =
    options.trustedKeys !== undefined ? keySet(options.trustedKeys) : trustedKeys();
  const key = verifyBytes(signedBytes(bundle), bundle.signature, keys);
  return { bundle, keyId: key.keyId };
}

function isIterable(value: unknown): value is Iterable<string | KeyObject> {
  return typeof value === 'object' && value !== null && Symbol.iterator in value;
}

/**
 * Parses and validates a bundle: size, UTF-8, JSON, format version, and every field (unknown
 * fields are refused). Does not check the signature. The result is a fresh copy.
 */
export function parseBundle(source: Bundle | string | Buffer | object): Bundle {
  let text: string;
  if (Buffer.isBuffer(source)) {
    checkSize(source.length);
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(source);
    } catch {
      throw bad('the bundle is not valid UTF-8 text');
    }
  } else if (typeof source === 'string') {
    text = source;
  } else {
    // A snapshot: getters run once and later changes to the caller's object cannot reach what
    // was verified. Cycles and BigInts fail here with the reason.
    try {
      text = JSON.stringify(source);
    } catch (err) {
      throw bad(`the bundle object cannot be serialised: ${(err as Error).message}`);
    }
    if (typeof text !== 'string') throw bad('a bundle must be a JSON object');
  }
  checkSize(Buffer.byteLength(text, 'utf8'));
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw bad(`the bundle is not valid JSON: ${(err as Error).message}`);
  }
  return checkShape(value);
}

function checkSize(bytes: number): void {
  if (bytes > MAX_BUNDLE_BYTES) {
    throw new BundleError(
      `the bundle is ${bytes} bytes; the limit is ${MAX_BUNDLE_BYTES} (32 MiB)`,
      'ETOOBIG',
    );
  }
}

function bad(message: string, field?: string): BundleError {
  return new BundleError(
    field === undefined ? message : `${field}: ${message}`,
    'EBADBUNDLE',
    field,
  );
}

const HASH = /^[0-9a-f]{64}$/;
const KEY_ID = /^[0-9a-f]{16}$/;
/** With the u flag, a surrogate range matches only unpaired surrogates. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;
const CALLBACKS: readonly StateCallback[] = ['prePatch', 'postPatch', 'preUnpatch', 'postUnpatch'];

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An object with exactly the allowed keys (required ones present); names the field otherwise. */
function fields(
  v: unknown,
  field: string,
  required: readonly string[],
  optional: readonly string[] = [],
): Json {
  if (!isObject(v)) throw bad(`must be an object with ${required.join(', ')}`, field);
  for (const k of required) {
    if (!Object.hasOwn(v, k)) throw bad('is missing', `${field === '' ? '' : `${field}.`}${k}`);
  }
  for (const k of Object.keys(v)) {
    if (!required.includes(k) && !optional.includes(k)) {
      // Unknown fields are refused, not ignored: a field this version does not understand may
      // be one the signer meant to restrict something with.
      throw bad(
        `unknown field (format version ${BUNDLE_FORMAT_VERSION} has ${[...required, ...optional].join(', ')})`,
        `${field === '' ? '' : `${field}.`}${k}`,
      );
    }
  }
  return v;
}

function str(v: unknown, field: string, what = 'a non-empty string', max = 4096): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max) {
    throw bad(`must be ${what}, got ${describe(v)}`, field);
  }
  return v;
}

function bool(v: unknown, field: string): boolean {
  if (typeof v !== 'boolean') throw bad(`must be true or false, got ${describe(v)}`, field);
  return v;
}

function arr(v: unknown, field: string): unknown[] {
  if (!Array.isArray(v)) throw bad(`must be an array, got ${describe(v)}`, field);
  return v;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return v.length > 40 ? 'a long string' : JSON.stringify(v);
  return typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`;
}

function checkShape(value: unknown): Bundle {
  if (!isObject(value)) throw bad(`a bundle must be a JSON object, got ${describe(value)}`);
  // The version first: a bundle of another version is refused as such, not field by field.
  if (!Object.hasOwn(value, 'livepatch')) {
    throw bad(
      `is missing: a bundle starts with "livepatch": ${BUNDLE_FORMAT_VERSION} (the format version)`,
      'livepatch',
    );
  }
  if (value['livepatch'] !== BUNDLE_FORMAT_VERSION) {
    throw new BundleError(
      `livepatch: bundle format version ${String(JSON.stringify(value['livepatch']))} is not supported; this livepatch reads version ${BUNDLE_FORMAT_VERSION}`,
      'EVERSION',
      'livepatch',
    );
  }
  const top = fields(value, '', ['livepatch', 'patch', 'code', 'signature']);
  const p = fields(top['patch'], 'patch', ['name', 'replace', 'objects', 'states']);
  const name = str(p['name'], 'patch.name', 'the patch name', 128);
  const modules = new Set<string>();
  const objects = arr(p['objects'], 'patch.objects').map((o, i): BundleObject => {
    const f = `patch.objects[${i}]`;
    const obj = fields(o, f, ['module', 'hash', 'functions']);
    const module = str(obj['module'], `${f}.module`, 'a module path');
    if (modules.has(module))
      throw bad(`'${module}' appears twice; put all its functions in one object`, `${f}.module`);
    modules.add(module);
    const hash = obj['hash'];
    if (typeof hash !== 'string' || !HASH.test(hash)) {
      throw bad(
        `must be the sha256 of the target module's source, 64 lowercase hex digits (required in bundles), got ${describe(hash)}`,
        `${f}.hash`,
      );
    }
    const functions = arr(obj['functions'], `${f}.functions`).map((fn, j): BundleFunction => {
      const ff = `${f}.functions[${j}]`;
      const fo = fields(fn, ff, ['name', 'export'], ['pos']);
      const pos = fo['pos'];
      if (pos !== undefined && !(Number.isSafeInteger(pos) && (pos as number) >= 1)) {
        throw bad(
          `must be an integer from 1 (omit it for a unique name), got ${describe(pos)}`,
          `${ff}.pos`,
        );
      }
      return {
        name: str(fo['name'], `${ff}.name`, 'a qualified function name'),
        ...(pos !== undefined ? { pos: pos as number } : {}),
        export: str(fo['export'], `${ff}.export`, 'the name of an export of the code', 256),
      };
    });
    return { module, hash, functions };
  });
  const states = arr(p['states'], 'patch.states').map((s, i): BundleState => {
    const f = `patch.states[${i}]`;
    const so = fields(s, f, ['id', 'blockDisable', 'ownsShadow', 'callbacks']);
    const cbo = fields(so['callbacks'], `${f}.callbacks`, [], CALLBACKS);
    const callbacks: Partial<Record<StateCallback, string>> = {};
    for (const cb of CALLBACKS) {
      if (cbo[cb] !== undefined)
        callbacks[cb] = str(
          cbo[cb],
          `${f}.callbacks.${cb}`,
          'the name of an export of the code',
          256,
        );
    }
    return {
      id: str(so['id'], `${f}.id`, 'the state id'),
      blockDisable: bool(so['blockDisable'], `${f}.blockDisable`),
      ownsShadow: bool(so['ownsShadow'], `${f}.ownsShadow`),
      callbacks,
    };
  });
  const manifest: BundleManifest = {
    name,
    replace: bool(p['replace'], 'patch.replace'),
    objects,
    states,
  };
  // The core's own rules (name syntax, duplicate functions and states) on a stand-in definition,
  // so that a bundle the core would refuse is refused before its code runs.
  try {
    validate(toDefinition(manifest, () => placeholder));
  } catch (err) {
    // Its messages name fields relative to the patch (`objects[0].functions[1]: …`).
    const msg = (err as Error).message.replace(/^invalid patch( '[^']*')?: /, '');
    throw new BundleError(`patch.${msg}`, 'EBADBUNDLE', 'patch');
  }
  const code = top['code'];
  if (typeof code !== 'string' || code.length === 0)
    throw bad(`must be the ES module source, got ${describe(code)}`, 'code');
  if (LONE_SURROGATE.test(code)) {
    // The code is evaluated from its UTF-8 bytes, where a lone surrogate (possible through a
    // JSON \ud800 escape) becomes U+FFFD: what ran would differ from what was signed.
    throw bad(
      'must be well-formed Unicode; it holds a lone surrogate (a \\uD800–\\uDFFF escape)',
      'code',
    );
  }
  let signature: BundleSignature | null = null;
  if (top['signature'] !== null) {
    const sig = fields(top['signature'], 'signature', ['algorithm', 'keyId', 'value']);
    if (sig['algorithm'] !== SIGNATURE_ALGORITHM) {
      // Pinned: the signature does not get to choose how it is checked.
      throw new BundleError(
        `signature.algorithm: must be "${SIGNATURE_ALGORITHM}", the only algorithm livepatch accepts, got ${describe(sig['algorithm'])}`,
        'EBADSIGNATURE',
        'signature.algorithm',
      );
    }
    const keyId = sig['keyId'];
    if (typeof keyId !== 'string' || !KEY_ID.test(keyId)) {
      throw bad(
        `must be 16 lowercase hex digits (sha256 of the public key's SPKI DER), got ${describe(keyId)}`,
        'signature.keyId',
      );
    }
    signature = {
      algorithm: SIGNATURE_ALGORITHM,
      keyId,
      value: str(sig['value'], 'signature.value', 'the base64 signature', 128),
    };
  }
  return { livepatch: BUNDLE_FORMAT_VERSION, patch: manifest, code, signature };
}

function placeholder(): void {}

/** The core's definition of a bundle's patch, with each export looked up by `resolve`. */
function toDefinition(
  m: BundleManifest,
  resolve: (exportName: string) => (...args: never[]) => unknown,
): PatchDefinition {
  return {
    name: m.name,
    replace: m.replace,
    objects: m.objects.map((o) => ({
      module: o.module,
      hash: o.hash,
      functions: o.functions.map((f) => ({
        name: f.name,
        ...(f.pos !== undefined ? { pos: f.pos } : {}),
        replacement: resolve(f.export) as Replacement,
      })),
    })),
    states: m.states.map((s): StateDefinition => {
      const state: { -readonly [K in keyof StateDefinition]: StateDefinition[K] } = {
        id: s.id,
        blockDisable: s.blockDisable,
        ownsShadow: s.ownsShadow,
      };
      for (const cb of CALLBACKS) {
        const exportName = s.callbacks[cb];
        if (exportName !== undefined) state[cb] = resolve(exportName) as StateCallbackFn;
      }
      return state;
    }),
  };
}

/** Every export the manifest names, with the first field that names it (for messages). */
function namedExports(m: BundleManifest): Map<string, string> {
  const out = new Map<string, string>();
  m.objects.forEach((o, i) =>
    o.functions.forEach((f, j) => {
      if (!out.has(f.export)) out.set(f.export, `patch.objects[${i}].functions[${j}].export`);
    }),
  );
  m.states.forEach((s, i) => {
    for (const cb of CALLBACKS) {
      const e = s.callbacks[cb];
      if (e !== undefined && !out.has(e)) out.set(e, `patch.states[${i}].callbacks.${cb}`);
    }
  });
  return out;
}

// ---- loading ----------------------------------------------------------------------------------

/** Evaluations so far; each gets its own module (a fresh top-level scope) and a readable name. */
let evaluations = 0;

/**
 * Verifies a bundle completely, then evaluates its code, checks its exports against the manifest
 * and loads the patch (disabled) into the core. Every refusal emits `patch.refused` and throws a
 * BundleError (or the core's PatchError) with a `code`.
 */
export function loadBundle(
  source: Bundle | string | Buffer | object,
  options: LoadBundleOptions = {},
): Promise<PatchHandle> {
  return load(source, options, null);
}

/** loadBundle() of a file; the patch's origin names the file. */
export async function loadBundleFile(
  file: string,
  options: LoadBundleOptions = {},
): Promise<PatchHandle> {
  const abs = path.resolve(file);
  let data: Buffer;
  try {
    const fd = fs.openSync(abs, 'r');
    try {
      const stat = fs.fstatSync(fd);
      if (!stat.isFile()) throw bad(`${abs} is not a regular file`);
      // Refused before reading, so a huge file costs nothing.
      checkSize(stat.size);
      data = fs.readFileSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    const e =
      err instanceof BundleError
        ? err
        : new BundleError(`cannot read bundle ${abs}: ${(err as Error).message}`, 'ENOBUNDLE');
    refused(e, undefined, abs);
    throw e;
  }
  return load(data, options, abs);
}

async function load(
  source: Bundle | string | Buffer | object,
  options: LoadBundleOptions,
  file: string | null,
): Promise<PatchHandle> {
  const where = file ?? 'memory';
  let name: string | undefined;
  try {
    const parsed = parseBundle(source);
    // Named in refusals from here on; only a label, even when the signature turns out bad.
    name = parsed.patch.name;
    const { bundle, keyId } = verifyParsed(parsed, options);
    const core = getCore();
    if (core.get(name) !== undefined) {
      // Checked before the code runs, too: a bundle the core would refuse is not evaluated.
      throw new BundleError(
        `a patch named '${name}' is already loaded; remove it first or give the new one another name`,
        'EEXIST',
        'patch.name',
      );
    }
    if (keyId === null) {
      process.emitWarning(
        `livepatch: loading UNSIGNED bundle '${name}' from ${where} because allowUnsigned is set; this is a development option, never use it in production`,
        { type: 'LivepatchWarning', code: 'LIVEPATCH_UNSIGNED' },
      );
    }
    const exports = await evaluate(bundle);
    const def = toDefinition(bundle.patch, (e) => exports.get(e)!);
    const origin = `bundle:${where} (${keyId === null ? 'UNSIGNED' : `key ${keyId}`})`;
    // The core validates again and emits its own patch.refused (e.g. a racing load of the name).
    return new PatchHandle(core.load(def, origin));
  } catch (err) {
    if (err instanceof BundleError) refused(err, name, file);
    throw err;
  }
}

function refused(err: BundleError, patch: string | undefined, file: string | null): void {
  getCore().events.emit('patch.refused', {
    ...(patch !== undefined ? { patch } : {}),
    reason: err.message,
    code: err.code,
    ...(file !== null ? { bundle: file } : {}),
  });
}

/**
 * Runs the verified code as an ES module from a data: URL — Node's own loader, no file, and no
 * livepatch instrumentation (the loader hooks transform file: URLs only) — calls its factory with
 * the livepatch API and checks the result against the manifest: every named export exists and is
 * a function, and no export is left unnamed.
 */
async function evaluate(bundle: Bundle): Promise<Map<string, (...args: never[]) => unknown>> {
  const n = ++evaluations;
  // A sourceURL comment after the code names the module in stack traces (the data: URL itself is
  // the whole source in base64). After a newline it cannot change what the code means. It also
  // makes each evaluation's URL unique, so a bundle loaded again gets a fresh module scope.
  const text = `${bundle.code}\n//# sourceURL=livepatch-bundle:${bundle.patch.name}/${n}\n`;
  const url = `data:text/javascript;base64,${Buffer.from(text, 'utf8').toString('base64')}`;
  let ns: { default?: unknown };
  try {
    ns = (await import(url)) as { default?: unknown };
  } catch (err) {
    throw new BundleError(
      `the code of bundle '${bundle.patch.name}' failed to evaluate: ${(err as Error).message}`,
      'EBUNDLECODE',
      'code',
    );
  }
  if (typeof ns.default !== 'function') {
    throw new BundleError(
      `the code of bundle '${bundle.patch.name}' must default-export a factory function (api) => ({ exportName: function, … }), got ${describe(ns.default)}`,
      'EBADEXPORTS',
      'code',
    );
  }
  let result: unknown;
  try {
    result = await (ns.default as (api: typeof livepatchApi) => unknown)(livepatchApi);
  } catch (err) {
    throw new BundleError(
      `the factory of bundle '${bundle.patch.name}' threw: ${(err as Error).message}`,
      'EBUNDLECODE',
      'code',
    );
  }
  if (!isObject(result)) {
    throw new BundleError(
      `the factory of bundle '${bundle.patch.name}' must return an object of functions, got ${describe(result)}`,
      'EBADEXPORTS',
      'code',
    );
  }
  const named = namedExports(bundle.patch);
  const out = new Map<string, (...args: never[]) => unknown>();
  for (const [exportName, field] of named) {
    // Own properties only: an export called 'toString' must not resolve to Object.prototype's.
    const fn = Object.hasOwn(result, exportName) ? result[exportName] : undefined;
    if (typeof fn !== 'function') {
      throw new BundleError(
        `${field}: the code exports no function '${exportName}'${fn === undefined ? '' : ` (it is ${describe(fn)})`}`,
        'EBADEXPORTS',
        field,
      );
    }
    out.set(exportName, fn as (...args: never[]) => unknown);
  }
  const extra = Object.keys(result).filter((k) => !named.has(k));
  if (extra.length > 0) {
    // Refused, not ignored: an export the manifest does not name is a function the author meant
    // to patch and the patch would silently not patch.
    throw new BundleError(
      `the code of bundle '${bundle.patch.name}' exports ${extra.map((e) => `'${e}'`).join(', ')}, which the manifest does not name; name it in patch.objects[].functions[].export or states[].callbacks, or remove it`,
      'EBADEXPORTS',
      'code',
    );
  }
  return out;
}
