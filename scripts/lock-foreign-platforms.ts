/**
 * Records other platforms' native bindings in package-lock.json.
 *
 * Why: oxc-parser and oxc-transform ship their native code as one optional package per
 * platform (`@oxc-parser/binding-darwin-arm64`, ...). When the registry npm talks to does not
 * serve some of those packages, `npm install` leaves them out of the lockfile, and `npm ci`
 * then refuses the lockfile as "not in sync" ("Missing: @oxc-parser/binding-...@ from lock
 * file"): npm counts the optional packages it could not fetch as missing lock entries.
 *
 * This script adds a lock entry for every such package, with its exact version and the
 * os/cpu/libc it is built for (derived from its napi-rs style name). npm ci then accepts the
 * lockfile and skips the entries for other platforms without fetching them, while a machine of
 * that platform installs its binding as usual.
 *
 * Run it after any `npm install` that changes package-lock.json:
 *   node scripts/lock-foreign-platforms.ts           # update package-lock.json
 *   node scripts/lock-foreign-platforms.ts --check   # exit 1 if an entry is missing
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

interface LockEntry {
  version?: string;
  dev?: boolean;
  optional?: boolean;
  devOptional?: boolean;
  license?: string;
  os?: string[];
  cpu?: string[];
  libc?: string[];
  engines?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  [key: string]: unknown;
}

interface Lockfile {
  lockfileVersion: number;
  packages: Record<string, LockEntry>;
  [key: string]: unknown;
}

export interface Platform {
  os: string[];
  cpu: string[];
  libc?: string[];
}

const OS: Record<string, string> = {
  android: 'android',
  darwin: 'darwin',
  freebsd: 'freebsd',
  linux: 'linux',
  openharmony: 'openharmony',
  win32: 'win32',
};
const CPU = new Set(['arm', 'arm64', 'ia32', 'x64', 'ppc64', 'riscv64', 's390x', 'loong64']);
const ABI: Record<string, string | undefined> = {
  gnu: 'glibc',
  gnueabihf: 'glibc',
  musl: 'musl',
  musleabihf: 'musl',
  eabi: undefined,
  msvc: undefined,
};

/**
 * The platform a napi-rs style binding package is built for, from its name
 * (`<scope>/binding-<os>-<cpu>[-<abi>]`, or `...-wasm32-wasi`), or null when the name does not
 * follow that convention.
 */
export function platformOf(name: string): Platform | null {
  const base = name.slice(name.lastIndexOf('/') + 1);
  if (/-wasm32-wasi(p1|p2)?$/.test(base)) return { os: [], cpu: ['wasm32'] };
  const match = /-(android|darwin|freebsd|linux|openharmony|win32)-([a-z0-9]+)(?:-([a-z]+))?$/.exec(
    base,
  );
  if (!match) return null;
  const [, os, cpu, abi] = match as unknown as [string, string, string, string | undefined];
  if (!CPU.has(cpu)) return null;
  if (abi !== undefined && !(abi in ABI)) return null;
  const libc = abi === undefined ? undefined : ABI[abi];
  const platform: Platform = { os: [OS[os] as string], cpu: [cpu] };
  if (os === 'linux' && libc !== undefined) platform.libc = [libc];
  return platform;
}

/** Where npm would place `name` for the package at `parentKey`: hoisted unless that is taken. */
function placement(lock: Lockfile, parentKey: string, name: string, version: string): string {
  const hoisted = `node_modules/${name}`;
  const existing = lock.packages[hoisted];
  if (existing === undefined || existing.version === version) return hoisted;
  return `${parentKey}/node_modules/${name}`;
}

/** Lock entries to add; throws when a missing optional dependency cannot be described. */
export function missingEntries(lock: Lockfile): Map<string, LockEntry> {
  const added = new Map<string, LockEntry>();
  for (const [key, entry] of Object.entries(lock.packages)) {
    if (key === '' || !entry.optionalDependencies) continue;
    for (const [name, spec] of Object.entries(entry.optionalDependencies)) {
      // Resolution as npm does it: the nearest node_modules folder up from the dependent.
      let dir = key;
      let found = false;
      for (;;) {
        if (lock.packages[`${dir}/node_modules/${name}`] !== undefined) {
          found = true;
          break;
        }
        const up = dir.lastIndexOf('/node_modules/');
        if (up < 0) break;
        dir = dir.slice(0, up);
      }
      if (found || lock.packages[`node_modules/${name}`] !== undefined) continue;

      if (!/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(spec)) {
        throw new Error(
          `${key} has optional dependency ${name}@${spec}, missing from the lockfile; its ` +
            'version is a range, so this script cannot pin it',
        );
      }
      const platform = platformOf(name);
      if (platform === null) {
        throw new Error(
          `${key} has optional dependency ${name}@${spec}, missing from the lockfile, whose ` +
            'name names no platform; install it on a machine whose registry serves it',
        );
      }
      const target = placement(lock, key, name, spec);
      const record: LockEntry = { version: spec };
      if (platform.cpu.length > 0) record.cpu = platform.cpu;
      if (platform.libc) record.libc = platform.libc;
      if (entry.dev) record.dev = true;
      record.optional = true;
      if (platform.os.length > 0) record.os = platform.os;
      const previous = added.get(target);
      if (previous !== undefined && previous.version !== spec) {
        throw new Error(`conflicting versions of ${name} wanted at ${target}`);
      }
      if (previous !== undefined && previous.dev && !entry.dev) delete previous.dev;
      if (previous === undefined) added.set(target, record);
    }
  }
  return added;
}

function main(argv: string[]): number {
  const check = argv.includes('--check');
  const unknown = argv.filter((arg) => arg !== '--check');
  if (unknown.length > 0) {
    console.error(`usage: node scripts/lock-foreign-platforms.ts [--check]`);
    return 2;
  }
  const file = path.resolve(import.meta.dirname, '..', 'package-lock.json');
  const lock = JSON.parse(readFileSync(file, 'utf8')) as Lockfile;
  if (lock.lockfileVersion < 2) {
    console.error(
      `${file}: lockfileVersion ${lock.lockfileVersion} is not supported (need 2 or 3)`,
    );
    return 1;
  }
  const added = missingEntries(lock);
  if (added.size === 0) {
    console.log('package-lock.json: every optional platform binding is recorded');
    return 0;
  }
  if (check) {
    console.error(
      `package-lock.json lacks ${added.size} optional platform binding(s), so \`npm ci\` would ` +
        'refuse it:',
    );
    for (const [key, entry] of added) console.error(`  ${key}@${entry.version}`);
    console.error('run: node scripts/lock-foreign-platforms.ts');
    return 1;
  }
  // npm writes lock entries in key order; keep that so later `npm install`s make small diffs.
  const packages = { ...lock.packages, ...Object.fromEntries(added) };
  const [root, ...rest] = Object.keys(packages);
  const ordered: Record<string, LockEntry> = {};
  if (root !== undefined) ordered[root] = packages[root] as LockEntry;
  for (const key of rest.sort((a, b) => a.localeCompare(b, 'en'))) {
    ordered[key] = packages[key] as LockEntry;
  }
  lock.packages = ordered;
  writeFileSync(file, JSON.stringify(lock, null, 2) + '\n');
  console.log(`package-lock.json: recorded ${added.size} optional platform binding(s)`);
  for (const key of added.keys()) console.log(`  ${key}`);
  return 0;
}

if (import.meta.main ?? process.argv[1] === import.meta.filename) {
  process.exitCode = main(process.argv.slice(2));
}
