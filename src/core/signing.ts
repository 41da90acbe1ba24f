/**
 * Signing of patch bundles: the canonical form a signature covers, ed25519 keys and their ids,
 * and the process's trusted keys (trustKey() plus LIVEPATCH_TRUSTED_KEYS). The format of what is
 * signed and the verification order are in docs/bundle.md; bundle.ts owns the format itself.
 *
 * One algorithm only, on purpose: ed25519 has no parameters to get wrong, and a verifier that
 * accepts several algorithms invites downgrade and key-confusion attacks. Nothing here accepts a
 * key or a signature of another kind.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  KeyObject,
  sign,
  verify,
} from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PatchError } from './core.ts';

/** Refusal of a bundle or of a key; `code` says which rule (docs/bundle.md, "Errors"). */
export class BundleError extends PatchError {
  /** Where in the bundle the problem is (`patch.objects[0].hash`), when it is one field. */
  readonly field: string | undefined;
  constructor(message: string, code: string, field?: string) {
    super(message, code);
    this.name = 'BundleError';
    this.field = field;
  }
}

export const SIGNATURE_ALGORITHM = 'ed25519';
/** The environment variable naming a file or directory of trusted public keys. */
export const TRUSTED_KEYS_ENV = 'LIVEPATCH_TRUSTED_KEYS';

// ---- canonical form ---------------------------------------------------------------------------

/**
 * The canonical JSON of a value: object keys sorted by UTF-16 code units (the order of
 * Array.prototype.sort), no whitespace, strings as JSON.stringify writes them, integers only.
 * For the values a bundle holds this is exactly RFC 8785 (JCS), so other languages can
 * reproduce it. Floats are refused rather than canonicalised: the format has none, and number
 * formatting is where canonical JSON implementations disagree.
 */
export function canonicalize(value: unknown): string {
  if (value === null || typeof value === 'boolean') return JSON.stringify(value);
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) {
      throw new TypeError(`canonical form has integers only, got ${value}`);
    }
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalize(v)).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.keys(value)
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalize((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  throw new TypeError(`canonical form cannot hold a ${typeof value}`);
}

/** The bytes a bundle's signature covers: UTF-8 of the canonical JSON of {livepatch, patch, code}. */
export function signedBytes(part: { livepatch: unknown; patch: unknown; code: unknown }): Buffer {
  return Buffer.from(
    canonicalize({ livepatch: part.livepatch, patch: part.patch, code: part.code }),
    'utf8',
  );
}

// ---- keys -------------------------------------------------------------------------------------

export interface KeyPair {
  /** SPKI PEM; give it to trustKey() or put it in the LIVEPATCH_TRUSTED_KEYS directory. */
  readonly publicKey: string;
  /** PKCS#8 PEM; keep it off the machines that run patches. */
  readonly privateKey: string;
  readonly keyId: string;
}

/** A fresh ed25519 key pair as PEM text, with its key id. */
export function generateKeyPair(): KeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519', {
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { publicKey, privateKey, keyId: keyIdOf(publicKey) };
}

/** A public key as an ed25519 KeyObject; anything else (another algorithm, a private key) throws. */
export function toPublicKey(key: string | KeyObject, source = 'key'): KeyObject {
  if (typeof key === 'string' && /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key)) {
    // createPublicKey would quietly derive the public half; a private key where public keys
    // belong is a key-management mistake to point out, not to paper over.
    throw new BundleError(`${source} is a private key; trust the public key only`, 'EBADKEY');
  }
  let obj: KeyObject;
  try {
    obj = key instanceof KeyObject ? key : createPublicKey(key);
  } catch (err) {
    throw new BundleError(
      `${source} is not a PEM public key: ${(err as Error).message}`,
      'EBADKEY',
    );
  }
  if (obj.type !== 'public') {
    throw new BundleError(`${source} must be a public key, got a ${obj.type} key`, 'EBADKEY');
  }
  if (obj.asymmetricKeyType !== SIGNATURE_ALGORITHM) {
    throw new BundleError(
      `${source} is a ${obj.asymmetricKeyType ?? 'unknown'} key; livepatch accepts ed25519 keys only`,
      'EBADKEY',
    );
  }
  return obj;
}

/** First 16 hex digits of the sha256 of the public key's SPKI DER encoding. */
export function keyIdOf(key: string | KeyObject): string {
  const der = toPublicKey(key).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex').slice(0, 16);
}

/** The ed25519 signature of some bytes, base64; the private key is PEM (PKCS#8) or a KeyObject. */
export function signBytes(
  bytes: Buffer,
  privateKey: string | KeyObject,
): { keyId: string; value: string } {
  let key: KeyObject;
  try {
    key = privateKey instanceof KeyObject ? privateKey : createPrivateKey(privateKey);
  } catch (err) {
    throw new BundleError(`not a PEM private key: ${(err as Error).message}`, 'EBADKEY');
  }
  if (key.type !== 'private' || key.asymmetricKeyType !== SIGNATURE_ALGORITHM) {
    throw new BundleError(
      `bundles are signed with an ed25519 private key, got a ${key.asymmetricKeyType ?? 'unknown'} ${key.type} key`,
      'EBADKEY',
    );
  }
  const value = sign(null, bytes, key).toString('base64');
  return { keyId: keyIdOf(createPublicKey(key)), value };
}

/** 64 bytes in standard base64 with padding: one spelling only, so a signature is not malleable. */
const SIGNATURE_VALUE = /^[A-Za-z0-9+/]{86}==$/;

/**
 * Verifies an ed25519 signature made by the trusted key with that id. Throws EUNTRUSTED when no
 * trusted key has the id and EBADSIGNATURE when the signature does not verify.
 */
export function verifyBytes(
  bytes: Buffer,
  signature: { keyId: string; value: string },
  trusted: ReadonlyMap<string, TrustedKey>,
): TrustedKey {
  const key = trusted.get(signature.keyId);
  if (key === undefined) {
    const known =
      trusted.size === 0 ? 'no key is trusted' : `trusted: ${[...trusted.keys()].join(', ')}`;
    throw new BundleError(
      `the bundle is signed by key ${signature.keyId}, which is not trusted (${known}); add its public key with trustKey() or to ${TRUSTED_KEYS_ENV}`,
      'EUNTRUSTED',
      'signature.keyId',
    );
  }
  const sig = SIGNATURE_VALUE.test(signature.value) ? Buffer.from(signature.value, 'base64') : null;
  if (sig === null || !verify(null, bytes, key.key, sig)) {
    throw new BundleError(
      `the bundle's signature does not verify with key ${signature.keyId}: the bundle was modified after signing, or the signature is corrupt`,
      'EBADSIGNATURE',
      'signature.value',
    );
  }
  return key;
}

// ---- trusted keys -----------------------------------------------------------------------------

export interface TrustedKey {
  readonly keyId: string;
  readonly key: KeyObject;
  /** Where it came from: 'trustKey()' or the file it was read from. */
  readonly source: string;
}

/** Keys added with trustKey(). */
const added = new Map<string, TrustedKey>();
/** Keys read from LIVEPATCH_TRUSTED_KEYS; null until first use (or after reloadTrustedKeys()). */
let fromEnv: Map<string, TrustedKey> | null = null;

/** Trusts a public key (PEM or KeyObject, ed25519) for this process; returns its key id. */
export function trustKey(publicKey: string | KeyObject): string {
  const key = toPublicKey(publicKey, 'the key given to trustKey()');
  const keyId = keyIdOf(key);
  added.set(keyId, { keyId, key, source: 'trustKey()' });
  return keyId;
}

/** Stops trusting a key added with trustKey(); keys from LIVEPATCH_TRUSTED_KEYS stay. */
export function untrustKey(keyId: string): boolean {
  return added.delete(keyId);
}

/**
 * Reads LIVEPATCH_TRUSTED_KEYS again (after a key rotation) and returns the ids it holds. Throws
 * EKEYSTORE if the file or directory is unsafe or unreadable; the previous keys are then dropped,
 * so a store that became unsafe is not trusted from memory either.
 */
export function reloadTrustedKeys(): string[] {
  fromEnv = null;
  return [...readEnvKeys().keys()];
}

/** Every key the process trusts: those added with trustKey() and those of LIVEPATCH_TRUSTED_KEYS. */
export function trustedKeys(): ReadonlyMap<string, TrustedKey> {
  return new Map([...readEnvKeys(), ...added]);
}

/** A map of trusted keys from explicit keys (PEM or KeyObject), for a verification of its own. */
export function keySet(keys: Iterable<string | KeyObject>): Map<string, TrustedKey> {
  const out = new Map<string, TrustedKey>();
  let i = 0;
  for (const k of keys) {
    const key = toPublicKey(k, `trusted key #${i++}`);
    const keyId = keyIdOf(key);
    out.set(keyId, { keyId, key, source: 'option' });
  }
  return out;
}

function readEnvKeys(): Map<string, TrustedKey> {
  if (fromEnv !== null) return fromEnv;
  const location = process.env[TRUSTED_KEYS_ENV];
  // Only a successful read is cached, so an operator who fixes the store needs no restart.
  fromEnv = location === undefined || location === '' ? new Map() : readKeyStore(location);
  return fromEnv;
}

/**
 * Reads a trusted-key store: one PEM file (one or more public keys) or a directory whose `*.pem`
 * files are public keys. Refuses a store another user could change: the file or directory, each
 * key file, and every directory above them must not be writable by group or others (a directory
 * with the sticky bit, like /tmp, is allowed above the store but not as the store) and must be
 * owned by root or by this process's user.
 */
export function readKeyStore(location: string): Map<string, TrustedKey> {
  const fail = (msg: string): never => {
    throw new BundleError(`${TRUSTED_KEYS_ENV}=${location}: ${msg}`, 'EKEYSTORE');
  };
  try {
    return readStore(location, fail);
  } catch (err) {
    if (err instanceof BundleError) throw err;
    return fail(`cannot read it: ${(err as Error).message}`);
  }
}

function readStore(location: string, fail: (msg: string) => never): Map<string, TrustedKey> {
  const real = fs.realpathSync(path.resolve(location));
  const checkedDirs = new Set<string>();
  const checkAncestors = (p: string): void => {
    for (let dir = path.dirname(p); !checkedDirs.has(dir); dir = path.dirname(dir)) {
      checkedDirs.add(dir);
      const problem = unsafe(fs.statSync(dir), true);
      if (problem !== null) fail(`the directory ${dir} above it ${problem}`);
      if (path.dirname(dir) === dir) break;
    }
  };
  checkAncestors(real);
  const keys = new Map<string, TrustedKey>();
  const stat = fs.statSync(real);
  if (stat.isDirectory()) {
    const problem = unsafe(stat, false);
    if (problem !== null) fail(`the directory ${problem}`);
    checkedDirs.add(real);
    for (const name of fs.readdirSync(real).sort()) {
      if (!name.endsWith('.pem')) continue;
      const file = fs.realpathSync(path.join(real, name));
      // A key file may be a symlink (as in Kubernetes secret volumes): check where it points.
      checkAncestors(file);
      readKeyFile(file, keys, fail);
    }
  } else {
    readKeyFile(real, keys, fail);
  }
  return keys;
}

function readKeyFile(
  file: string,
  into: Map<string, TrustedKey>,
  fail: (msg: string) => never,
): void {
  let text: string;
  const fd = fs.openSync(file, 'r');
  try {
    // Checked on the open descriptor: the mode is that of the very file read.
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) fail(`${file} is not a regular file`);
    const problem = unsafe(stat, false);
    if (problem !== null) fail(`the key file ${file} ${problem}`);
    text = fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
  const blocks = text.match(/-----BEGIN ([A-Z ]+)-----[\s\S]*?-----END \1-----/g) ?? [];
  if (blocks.length === 0) fail(`${file} holds no PEM public key`);
  for (const block of blocks) {
    let key: KeyObject;
    try {
      key = toPublicKey(block, file);
    } catch (err) {
      return fail((err as Error).message);
    }
    const keyId = keyIdOf(key);
    into.set(keyId, { keyId, key, source: file });
  }
}

/** Why another user could change this file or directory, or null when only we (or root) can. */
function unsafe(stat: fs.Stats, allowSticky: boolean): string | null {
  // Windows has no POSIX modes or uids; its ACLs are out of scope (docs/bundle.md).
  if (process.platform === 'win32' || typeof process.getuid !== 'function') return null;
  const uid = process.getuid();
  if (stat.uid !== 0 && stat.uid !== uid) {
    return `is owned by uid ${stat.uid}, neither root nor this process's user (${uid}); that user could change which keys are trusted`;
  }
  const sticky = (stat.mode & 0o1000) !== 0;
  if ((stat.mode & 0o022) !== 0 && !(allowSticky && sticky)) {
    const mode = (stat.mode & 0o7777).toString(8).padStart(4, '0');
    return `is writable by ${(stat.mode & 0o002) !== 0 ? 'other users' : 'its group'} (mode ${mode}); anyone who can write it can make livepatch run their code. Fix it with chmod go-w`;
  }
  return null;
}
