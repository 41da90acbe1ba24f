/**
 * Patch bundles: catalogue scenario 12 (an unsigned or tampered bundle is refused before any of
 * its code runs; a wrong target hash is refused), the round trip sign → load → enable, every
 * refusal with its code and the field it names, trusted-key stores, and the golden vector that
 * pins the canonical form (test/fixtures/bundle/).
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it, beforeEach, after } from 'node:test';
import { fileURLToPath } from 'node:url';
import { getCore } from '../src/core/api.ts';
import {
  BundleError,
  canonicalize,
  createBundle,
  generateKeyPair,
  keyIdOf,
  listModules,
  listPatches,
  loadBundle,
  loadBundleFile,
  parseBundle,
  PatchError,
  reloadTrustedKeys,
  signBundle,
  trustKey,
  TRUSTED_KEYS_ENV,
  verifyBundle,
  type Bundle,
  type BundleInput,
} from '../src/index.ts';
import { loadCjs, sha256 } from './support/instrumented.ts';
import { cleanupPatches, recordEvents } from './support/patches.ts';

getCore().events.setLog('off');

const fixtures = fileURLToPath(new URL('./fixtures/bundle/', import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lp-bundle-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const signer = generateKeyPair();
const stranger = generateKeyPair();
trustKey(signer.publicKey);

const calcSource = `
function add(a, b) { return a + b; }
function mul(a, b) { return a * b; }
exports.add = add; exports.mul = mul;
`;
type Calc = { add(a: number, b: number): number; mul(a: number, b: number): number };

/**
 * Evaluations of bundle code, by flag name. The code under test bumps its flag at evaluation
 * time, so "refused before any code runs" is provable: the flag stays unset.
 */
const ran = ((globalThis as unknown as { __lpBundleRan?: Record<string, number> }).__lpBundleRan ??=
  {});
let flags = 0;

/** Code whose evaluation bumps a fresh flag; returns both. */
function flaggedCode(body: string): { code: string; flag: string } {
  const flag = `f${++flags}`;
  const code = `globalThis.__lpBundleRan[${JSON.stringify(flag)}] = (globalThis.__lpBundleRan[${JSON.stringify(flag)}] ?? 0) + 1;\n${body}\n`;
  return { code, flag };
}

const ADD_1000 = `export default (api) => ({
  add(a, b) { return api.callContext().original(a, b) + 1000; },
});`;

function addBundle(
  file: string,
  opts: { name?: string; hash?: string; body?: string } = {},
): { bundle: Bundle; flag: string } {
  const { code, flag } = flaggedCode(opts.body ?? ADD_1000);
  const input: BundleInput = {
    patch: {
      name: opts.name ?? 'fix-add',
      objects: [
        {
          module: file,
          hash: opts.hash ?? sha256(calcSource),
          functions: [{ name: 'add', export: 'add' }],
        },
      ],
    },
    code,
  };
  return { bundle: createBundle(input), flag };
}

function signed(
  file: string,
  opts: { name?: string; hash?: string; body?: string } = {},
): { bundle: Bundle; flag: string } {
  const { bundle, flag } = addBundle(file, opts);
  return { bundle: signBundle(bundle, signer.privateKey), flag };
}

/** A copy of a bundle (as JSON) with one change, for tampering. */
function edit(
  bundle: Bundle,
  change: (
    b: {
      patch: { objects: { functions: { name: string }[]; hash: string }[]; replace: boolean };
      code: string;
      signature: { keyId: string; value: string } | null;
    } & Record<string, unknown>,
  ) => void,
): string {
  const copy = JSON.parse(JSON.stringify(bundle)) as Parameters<typeof change>[0];
  change(copy);
  return JSON.stringify(copy);
}

async function refusedWith(
  promise: Promise<unknown>,
  code: string,
  message?: RegExp,
): Promise<BundleError> {
  let caught: unknown;
  await assert.rejects(promise, (e: BundleError) => {
    caught = e;
    assert.equal(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    if (message !== undefined) assert.match(e.message, message);
    return true;
  });
  return caught as BundleError;
}

describe('round trip: sign, load, enable', () => {
  beforeEach(cleanupPatches);

  it('a signed bundle loads disabled, enabling changes behaviour, disabling reverts it', async () => {
    const m = loadCjs<Calc>(calcSource);
    const { bundle, flag } = signed(m.file);
    assert.equal(bundle.signature?.keyId, signer.keyId);
    const { events, stop } = recordEvents();
    const p = await loadBundle(JSON.stringify(bundle));
    stop();
    assert.equal(ran[flag], 1, 'the code ran once, after verification');
    assert.equal(p.status, 'disabled');
    assert.equal(p.info().origin, `bundle:memory (key ${signer.keyId})`);
    assert.deepEqual(
      events.map((e) => e.type),
      ['patch.loaded'],
    );
    assert.equal(m.exports.add(1, 2), 3);
    await p.enable();
    assert.equal(
      m.exports.add(1, 2),
      1003,
      'the replacement reaches the original through api.callContext()',
    );
    await p.disable();
    assert.equal(m.exports.add(1, 2), 3);
  });

  it('loads from a file (pretty-printed: whitespace is not signed), naming the file in the origin', async () => {
    const m = loadCjs<Calc>(calcSource);
    const { bundle } = signed(m.file);
    const file = path.join(tmp, 'fix-add.json');
    fs.writeFileSync(file, JSON.stringify(bundle, null, 2));
    const p = await loadBundleFile(file);
    assert.equal(p.info().origin, `bundle:${file} (key ${signer.keyId})`);
    await p.enable();
    assert.equal(m.exports.add(2, 2), 1004);
  });

  it('accepts a Buffer and an object, and verifies against explicit keys when given', async () => {
    const m = loadCjs<Calc>(calcSource);
    const { bundle } = signed(m.file, { name: 'as-buffer' });
    await loadBundle(Buffer.from(JSON.stringify(bundle)));
    const other = signBundle(
      addBundle(m.file, { name: 'by-stranger' }).bundle,
      stranger.privateKey,
    );
    const p = await loadBundle(other, { trustedKeys: [stranger.publicKey] });
    assert.equal(p.info().origin, `bundle:memory (key ${stranger.keyId})`);
  });

  it('maps state callbacks to exports, and each load of a bundle gets a fresh module scope', async () => {
    const m = loadCjs<Calc>(calcSource);
    const { code, flag } = flaggedCode(`let n = 0;
export default () => ({ add: () => ++n, setup: () => 'set up', teardown: () => 'torn down' });`);
    const bundle = signBundle(
      createBundle({
        patch: {
          name: 'with-state',
          objects: [
            {
              module: m.file,
              hash: sha256(calcSource),
              functions: [{ name: 'add', export: 'add' }],
            },
          ],
          states: [{ id: 'cache-v2', callbacks: { prePatch: 'setup', postUnpatch: 'teardown' } }],
        },
        code,
      }),
      signer.privateKey,
    );
    assert.deepEqual(bundle.patch.states, [
      {
        id: 'cache-v2',
        blockDisable: false,
        ownsShadow: false,
        callbacks: { prePatch: 'setup', postUnpatch: 'teardown' },
      },
    ]);
    const p = await loadBundle(bundle);
    assert.deepEqual(p.info().states, ['cache-v2']);
    const state = getCore().get('with-state')!.states[0]!.def;
    const call = (cb: unknown) => (cb as (ctx: unknown) => unknown)(null);
    assert.equal(call(state.prePatch), 'set up');
    assert.equal(call(state.postUnpatch), 'torn down');
    assert.equal(state.preUnpatch, undefined);
    await p.enable();
    assert.equal(m.exports.add(0, 0), 1);
    assert.equal(m.exports.add(0, 0), 2);
    await p.disable();
    p.remove();
    const again = await loadBundle(bundle);
    await again.enable();
    assert.equal(m.exports.add(0, 0), 1, 'the module-level counter starts again');
    assert.equal(ran[flag], 2);
  });

  it('evaluates the code outside livepatch instrumentation', async () => {
    const m = loadCjs<Calc>(calcSource);
    await loadBundle(signed(m.file).bundle);
    assert.deepEqual(
      listModules().filter((x) => !x.url.startsWith('file:')),
      [],
    );
  });
});

describe('scenario 12: tampered and unsigned bundles are refused before any code runs', () => {
  beforeEach(cleanupPatches);

  it('one byte of code changed: EBADSIGNATURE, the code never runs, patch.refused says why', async () => {
    const m = loadCjs<Calc>(calcSource);
    const { bundle, flag } = signed(m.file);
    const i = bundle.code.indexOf('1000');
    const tampered = edit(bundle, (b) => {
      b.code = `${b.code.slice(0, i)}9${b.code.slice(i + 1)}`;
    });
    const { events, stop } = recordEvents();
    await refusedWith(loadBundle(tampered), 'EBADSIGNATURE', /modified after signing/);
    stop();
    assert.equal(ran[flag], undefined, 'the tampered code was never evaluated');
    assert.deepEqual(listPatches(), []);
    assert.deepEqual(
      events.map((e) => [e.type, e.patch, e['code']]),
      [['patch.refused', 'fix-add', 'EBADSIGNATURE']],
    );
    assert.match(String(events[0]!.reason), /does not verify/);
  });

  it('one byte of a bundle file changed: refused, the code never runs', async () => {
    const m = loadCjs<Calc>(calcSource);
    const { bundle, flag } = signed(m.file);
    const data = Buffer.from(JSON.stringify(bundle));
    const at = data.indexOf('1000');
    data[at] = '2'.charCodeAt(0);
    const file = path.join(tmp, 'tampered.json');
    fs.writeFileSync(file, data);
    await refusedWith(loadBundleFile(file), 'EBADSIGNATURE');
    assert.equal(ran[flag], undefined);
  });

  it('a changed manifest is refused: function name, hash, replace flag, added function', async () => {
    const m = loadCjs<Calc>(calcSource);
    const { bundle, flag } = signed(m.file);
    const edits: ((b: Parameters<Parameters<typeof edit>[1]>[0]) => void)[] = [
      (b) => (b.patch.objects[0]!.functions[0]!.name = 'mul'),
      (b) => (b.patch.objects[0]!.hash = sha256('another source')),
      (b) => (b.patch.replace = true),
      (b) => b.patch.objects[0]!.functions.push({ name: 'mul', export: 'add' } as { name: string }),
    ];
    for (const change of edits)
      await refusedWith(loadBundle(edit(bundle, change)), 'EBADSIGNATURE');
    assert.equal(ran[flag], undefined);
    assert.deepEqual(listPatches(), []);
  });

  it('a corrupt signature value or another algorithm is refused', async () => {
    const m = loadCjs<Calc>(calcSource);
    const { bundle, flag } = signed(m.file);
    await refusedWith(
      loadBundle(edit(bundle, (b) => (b.signature!.value = 'AAAA'))),
      'EBADSIGNATURE',
    );
    await refusedWith(
      loadBundle(
        edit(bundle, (b) => ((b.signature as Record<string, unknown>)['algorithm'] = 'rsa-sha256')),
      ),
      'EBADSIGNATURE',
      /signature\.algorithm: must be "ed25519"/,
    );
    assert.equal(ran[flag], undefined);
  });

  it('an unsigned bundle is refused (EUNSIGNED), and loads with allowUnsigned and a warning', async () => {
    const m = loadCjs<Calc>(calcSource);
    const { bundle, flag } = addBundle(m.file);
    assert.equal(bundle.signature, null);
    await refusedWith(loadBundle(bundle), 'EUNSIGNED', /not signed.*allowUnsigned/);
    assert.equal(ran[flag], undefined);
    const warned = once(process, 'warning') as Promise<[Error & { code?: string }]>;
    const p = await loadBundle(bundle, { allowUnsigned: true });
    const [warning] = await warned;
    assert.equal(warning.code, 'LIVEPATCH_UNSIGNED');
    assert.match(warning.message, /UNSIGNED bundle 'fix-add'/);
    assert.equal(p.info().origin, 'bundle:memory (UNSIGNED)');
    assert.equal(ran[flag], 1);
  });

  it('allowUnsigned does not excuse a bad signature', async () => {
    const m = loadCjs<Calc>(calcSource);
    const { bundle, flag } = signed(m.file);
    await refusedWith(
      loadBundle(
        edit(bundle, (b) => (b.code += ' ')),
        { allowUnsigned: true },
      ),
      'EBADSIGNATURE',
    );
    assert.equal(ran[flag], undefined);
  });

  it('a bundle signed by a key the process does not trust is refused (EUNTRUSTED)', async () => {
    const m = loadCjs<Calc>(calcSource);
    const { bundle, flag } = addBundle(m.file);
    const bySigner = signBundle(bundle, signer.privateKey);
    const byStranger = signBundle(bundle, stranger.privateKey);
    const err = await refusedWith(
      loadBundle(byStranger),
      'EUNTRUSTED',
      new RegExp(`key ${stranger.keyId}, which is not trusted`),
    );
    assert.equal(err.field, 'signature.keyId');
    // A trusted key's id on another key's signature does not help either.
    await refusedWith(
      loadBundle(edit(byStranger, (b) => (b.signature!.keyId = signer.keyId))),
      'EBADSIGNATURE',
    );
    // Nor does the trusted id given explicitly with only the stranger's key.
    await refusedWith(
      loadBundle(bySigner, { trustedKeys: [stranger.publicKey] }),
      'EUNTRUSTED',
      /trusted: /,
    );
    assert.equal(ran[flag], undefined);
  });

  it("a wrong target hash passes loading and is refused at enable with the core's EHASH", async () => {
    const m = loadCjs<Calc>(calcSource);
    const { bundle } = signed(m.file, { hash: sha256('the source it was built against') });
    const p = await loadBundle(bundle);
    await assert.rejects(
      async () => p.enable(),
      (e: PatchError) => e.code === 'EHASH' && /expected source sha256/.test(e.message),
    );
    assert.equal(p.status, 'disabled');
    assert.equal(m.exports.add(1, 2), 3);
  });
});

describe('malformed bundles are refused with the field named, before any code runs', () => {
  beforeEach(cleanupPatches);

  it('not JSON, not an object, not UTF-8', async () => {
    await refusedWith(loadBundle('{"livepatch": 1, '), 'EBADBUNDLE', /not valid JSON/);
    await refusedWith(loadBundle('[1]'), 'EBADBUNDLE', /must be a JSON object, got an array/);
    await refusedWith(loadBundle(Buffer.from([0x7b, 0xff, 0x7d])), 'EBADBUNDLE', /not valid UTF-8/);
  });

  it('an unknown or missing format version names the supported one', async () => {
    const m = loadCjs<Calc>(calcSource);
    const { bundle, flag } = signed(m.file);
    const err = await refusedWith(
      loadBundle(edit(bundle, (b) => (b['livepatch'] = 2))),
      'EVERSION',
      /version 2 is not supported; this livepatch reads version 1/,
    );
    assert.equal(err.field, 'livepatch');
    await refusedWith(
      loadBundle(edit(bundle, (b) => delete b['livepatch'])),
      'EBADBUNDLE',
      /^livepatch: is missing/,
    );
    assert.equal(ran[flag], undefined);
  });

  it('missing, mistyped and unknown fields', async () => {
    const m = loadCjs<Calc>(calcSource);
    const { bundle, flag } = signed(m.file);
    const cases: [
      (b: Record<string, unknown> & Parameters<Parameters<typeof edit>[1]>[0]) => void,
      RegExp,
    ][] = [
      [
        (b) => delete (b.patch.objects[0] as Partial<{ hash: string }>).hash,
        /^patch\.objects\[0\]\.hash: is missing/,
      ],
      [
        (b) => (b.patch.objects[0]!.hash = 'abc'),
        /^patch\.objects\[0\]\.hash: must be the sha256.*got "abc"/,
      ],
      [
        (b) => delete (b.patch.objects[0]!.functions[0] as Partial<{ export: string }>).export,
        /^patch\.objects\[0\]\.functions\[0\]\.export: is missing/,
      ],
      [
        (b) => ((b.patch.objects[0]!.functions[0] as Record<string, unknown>)['pos'] = 0),
        /^patch\.objects\[0\]\.functions\[0\]\.pos: must be an integer from 1/,
      ],
      [
        (b) => delete (b.patch as Partial<{ replace: boolean }>).replace,
        /^patch\.replace: is missing/,
      ],
      [
        (b) => ((b.patch as Record<string, unknown>)['replace'] = 'yes'),
        /^patch\.replace: must be true or false/,
      ],
      [
        (b) => ((b.patch as Record<string, unknown>)['objects'] = {}),
        /^patch\.objects: must be an array/,
      ],
      [
        (b) => ((b.patch as Record<string, unknown>)['name'] = 'has space'),
        /^patch\.name must be 1–128 characters/,
      ],
      [
        (b) => ((b.patch as Record<string, unknown>)['priority'] = 1),
        /^patch\.priority: unknown field/,
      ],
      [(b) => (b['comment'] = 'hi'), /^comment: unknown field/],
      [(b) => delete (b as Record<string, unknown>)['signature'], /^signature: is missing/],
      [(b) => (b.code = ''), /^code: must be the ES module source/],
      [(b) => (b.signature!.keyId = 'XYZ'), /^signature\.keyId: must be 16 lowercase hex digits/],
      [
        (b) => b.patch.objects.push({ ...b.patch.objects[0]! }),
        /^patch\.objects\[1\]\.module: '.*' appears twice/,
      ],
      [
        (b) =>
          b.patch.objects[0]!.functions.push({ name: 'add', export: 'add' } as { name: string }),
        /^patch\.objects\[0\]\.functions\[1\]: 'add' is patched twice/,
      ],
      [
        (b) =>
          ((b.patch as Record<string, unknown>)['states'] = [
            { id: 's', blockDisable: false, ownsShadow: false, callbacks: { onLoad: 'x' } },
          ]),
        /^patch\.states\[0\]\.callbacks\.onLoad: unknown field/,
      ],
    ];
    const { events, stop } = recordEvents();
    for (const [change, message] of cases) {
      await refusedWith(
        loadBundle(edit(bundle, change as Parameters<typeof edit>[1])),
        'EBADBUNDLE',
        message,
      );
    }
    stop();
    assert.equal(events.length, cases.length);
    assert.ok(events.every((e) => e.type === 'patch.refused' && e['code'] === 'EBADBUNDLE'));
    assert.equal(ran[flag], undefined);
    assert.deepEqual(listPatches(), []);
  });

  it('code that is not well-formed Unicode is refused (it could not run as signed)', async () => {
    const text = JSON.stringify(
      createBundle({ patch: { name: 'u', objects: [] }, code: 'export default () => ({});' }),
    );
    const lone = text.replace('export default', '/*\\ud800*/export default');
    await refusedWith(
      loadBundle(lone, { allowUnsigned: true }),
      'EBADBUNDLE',
      /^code: must be well-formed Unicode/,
    );
    const paired = text.replace('export default', '/*\\ud83d\\ude00*/export default');
    await loadBundle(paired, { allowUnsigned: true });
  });

  it('a bundle over 32 MiB is refused without being parsed', async () => {
    const big = `{"livepatch":1,"code":"${'x'.repeat(32 * 1024 * 1024)}"}`;
    await refusedWith(loadBundle(big), 'ETOOBIG', /limit is 33554432/);
    const file = path.join(tmp, 'big.json');
    fs.writeFileSync(file, big);
    await refusedWith(loadBundleFile(file), 'ETOOBIG');
  });

  it('a missing bundle file is refused with ENOBUNDLE', async () => {
    await refusedWith(
      loadBundleFile(path.join(tmp, 'nope.json')),
      'ENOBUNDLE',
      /cannot read bundle/,
    );
  });
});

describe('the code must export exactly what the manifest names', () => {
  beforeEach(cleanupPatches);

  it('a missing export is refused before anything is loaded into the core', async () => {
    const m = loadCjs<Calc>(calcSource);
    const { bundle } = signed(m.file, { body: 'export default () => ({ plus: () => 0 });' });
    const before = listPatches();
    const { events, stop } = recordEvents();
    const err = await refusedWith(
      loadBundle(bundle),
      'EBADEXPORTS',
      /patch\.objects\[0\]\.functions\[0\]\.export: the code exports no function 'add'/,
    );
    stop();
    assert.equal(err.field, 'patch.objects[0].functions[0].export');
    assert.deepEqual(listPatches(), before);
    assert.deepEqual(
      events.map((e) => e.type),
      ['patch.refused'],
    );
  });

  it('an export that is not a function, an unnamed extra export, an inherited name', async () => {
    const m = loadCjs<Calc>(calcSource);
    await refusedWith(
      loadBundle(signed(m.file, { body: 'export default () => ({ add: 42 });' }).bundle),
      'EBADEXPORTS',
      /no function 'add' \(it is number 42\)/,
    );
    await refusedWith(
      loadBundle(signed(m.file, { body: 'export default () => ({ add() {}, mul() {} });' }).bundle),
      'EBADEXPORTS',
      /exports 'mul', which the manifest does not name/,
    );
    const inherited = signBundle(
      createBundle({
        patch: {
          name: 'proto',
          objects: [
            {
              module: m.file,
              hash: sha256(calcSource),
              functions: [{ name: 'add', export: 'toString' }],
            },
          ],
        },
        code: 'export default () => ({});',
      }),
      signer.privateKey,
    );
    await refusedWith(loadBundle(inherited), 'EBADEXPORTS', /no function 'toString'/);
    assert.deepEqual(listPatches(), []);
  });

  it('a default export that is not a factory, a factory that throws, code that does not compile', async () => {
    const m = loadCjs<Calc>(calcSource);
    await refusedWith(
      loadBundle(signed(m.file, { body: 'export const add = () => 0;' }).bundle),
      'EBADEXPORTS',
      /must default-export a factory/,
    );
    await refusedWith(
      loadBundle(
        signed(m.file, { body: 'export default () => { throw new Error("no config"); };' }).bundle,
      ),
      'EBUNDLECODE',
      /factory .* threw: no config/,
    );
    await refusedWith(
      loadBundle(signed(m.file, { body: 'export default () => ({ add() { return 1 }' }).bundle),
      'EBUNDLECODE',
      /failed to evaluate/,
    );
    await refusedWith(
      loadBundle(signed(m.file, { body: 'export default () => null;' }).bundle),
      'EBADEXPORTS',
      /must return an object/,
    );
    assert.deepEqual(listPatches(), []);
  });

  it('an async factory is awaited', async () => {
    const m = loadCjs<Calc>(calcSource);
    const p = await loadBundle(
      signed(m.file, { body: 'export default async () => ({ add: () => "async" });' }).bundle,
    );
    await p.enable();
    assert.equal(m.exports.add(1, 1), 'async');
  });

  it("a second bundle with a loaded patch's name is refused before its code runs", async () => {
    const m = loadCjs<Calc>(calcSource);
    await loadBundle(signed(m.file).bundle);
    const { bundle, flag } = signed(m.file);
    await refusedWith(loadBundle(bundle), 'EEXIST', /already loaded/);
    assert.equal(ran[flag], undefined);
  });
});

describe('trusted keys from LIVEPATCH_TRUSTED_KEYS', () => {
  beforeEach(cleanupPatches);
  after(() => {
    delete process.env[TRUSTED_KEYS_ENV];
    reloadTrustedKeys();
  });

  function store(name: string, keys: string[], dirMode = 0o755, fileMode = 0o644): string {
    const dir = path.join(tmp, name);
    fs.mkdirSync(dir);
    keys.forEach((k, i) => {
      const file = path.join(dir, `key${i}.pem`);
      fs.writeFileSync(file, k);
      fs.chmodSync(file, fileMode);
    });
    fs.writeFileSync(path.join(dir, 'README'), 'not a key: ignored');
    fs.chmodSync(dir, dirMode);
    return dir;
  }

  it('trusts the *.pem keys of a safe directory, read at first use', async () => {
    const m = loadCjs<Calc>(calcSource);
    const ops = generateKeyPair();
    process.env[TRUSTED_KEYS_ENV] = store('safe', [ops.publicKey]);
    assert.deepEqual(reloadTrustedKeys(), [ops.keyId]);
    const p = await loadBundle(signBundle(addBundle(m.file).bundle, ops.privateKey));
    assert.equal(p.info().origin, `bundle:memory (key ${ops.keyId})`);
  });

  it('trusts every key of a single PEM file', () => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    const file = path.join(tmp, 'keys.pem');
    fs.writeFileSync(file, `${a.publicKey}\n# rotated in 2025\n${b.publicKey}`);
    fs.chmodSync(file, 0o600);
    process.env[TRUSTED_KEYS_ENV] = file;
    assert.deepEqual(reloadTrustedKeys().sort(), [a.keyId, b.keyId].sort());
  });

  it('refuses a key directory writable by other users, and every bundle while it is so', async () => {
    const m = loadCjs<Calc>(calcSource);
    const ops = generateKeyPair();
    const dir = store('world-writable', [ops.publicKey], 0o777);
    process.env[TRUSTED_KEYS_ENV] = dir;
    assert.throws(
      () => reloadTrustedKeys(),
      (e: BundleError) =>
        e.code === 'EKEYSTORE' &&
        /the directory is writable by other users \(mode 0777\).*chmod go-w/.test(e.message),
    );
    const { bundle, flag } = signed(m.file);
    const { events, stop } = recordEvents();
    // Even a bundle by a key trusted with trustKey(): the process's trust is not what it was told.
    await refusedWith(
      loadBundle(bundle),
      'EKEYSTORE',
      /LIVEPATCH_TRUSTED_KEYS=.*writable by other users/,
    );
    stop();
    assert.equal(events[0]?.type, 'patch.refused');
    assert.equal(ran[flag], undefined);
    fs.chmodSync(dir, 0o755);
    assert.deepEqual(reloadTrustedKeys(), [ops.keyId], 'fixing the mode needs no restart');
  });

  it('refuses a group-writable directory and a key file writable by others', () => {
    const ops = generateKeyPair();
    process.env[TRUSTED_KEYS_ENV] = store('group-writable', [ops.publicKey], 0o775);
    assert.throws(
      () => reloadTrustedKeys(),
      (e: BundleError) => e.code === 'EKEYSTORE' && /writable by its group/.test(e.message),
    );
    process.env[TRUSTED_KEYS_ENV] = store('file-writable', [ops.publicKey], 0o755, 0o666);
    assert.throws(
      () => reloadTrustedKeys(),
      (e: BundleError) =>
        e.code === 'EKEYSTORE' &&
        /the key file .*key0\.pem is writable by other users/.test(e.message),
    );
  });

  it('refuses a store inside a directory others can write, unless that directory is sticky like /tmp', () => {
    const ops = generateKeyPair();
    const parent = path.join(tmp, 'open-parent');
    fs.mkdirSync(parent);
    fs.chmodSync(parent, 0o777);
    const dir = path.join(parent, 'keys');
    fs.mkdirSync(dir, { mode: 0o755 });
    fs.writeFileSync(path.join(dir, 'ops.pem'), ops.publicKey, { mode: 0o644 });
    process.env[TRUSTED_KEYS_ENV] = dir;
    assert.throws(
      () => reloadTrustedKeys(),
      (e: BundleError) =>
        e.code === 'EKEYSTORE' &&
        /the directory .*open-parent above it is writable by other users/.test(e.message),
    );
    fs.chmodSync(parent, 0o1777);
    assert.deepEqual(reloadTrustedKeys(), [ops.keyId]);
  });

  it(
    'refuses a store owned by another user (run as root: chown needs it)',
    { skip: process.getuid?.() !== 0 },
    () => {
      const ops = generateKeyPair();
      const dir = store('foreign', [ops.publicKey]);
      fs.chownSync(dir, 4242, 4242);
      process.env[TRUSTED_KEYS_ENV] = dir;
      assert.throws(
        () => reloadTrustedKeys(),
        (e: BundleError) =>
          e.code === 'EKEYSTORE' &&
          /owned by uid 4242, neither root nor this process's user/.test(e.message),
      );
    },
  );

  it('refuses a store with a private key, a key of another algorithm, or that does not exist', () => {
    const ops = generateKeyPair();
    process.env[TRUSTED_KEYS_ENV] = store('private', [ops.privateKey]);
    assert.throws(
      () => reloadTrustedKeys(),
      (e: BundleError) =>
        e.code === 'EKEYSTORE' && /private key; trust the public key only/.test(e.message),
    );
    const ec = generateKeyPairSync('ec', {
      namedCurve: 'P-256',
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    process.env[TRUSTED_KEYS_ENV] = store('ecdsa', [ec.publicKey]);
    assert.throws(
      () => reloadTrustedKeys(),
      (e: BundleError) =>
        e.code === 'EKEYSTORE' && /ec key; livepatch accepts ed25519 keys only/.test(e.message),
    );
    process.env[TRUSTED_KEYS_ENV] = path.join(tmp, 'absent');
    assert.throws(
      () => reloadTrustedKeys(),
      (e: BundleError) => e.code === 'EKEYSTORE' && /cannot read it/.test(e.message),
    );
  });
});

describe('keys and canonical form', () => {
  it('only ed25519 keys are trusted or sign', () => {
    const rsa = generateKeyPairSync('rsa', {
      modulusLength: 1024,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    assert.throws(
      () => trustKey(rsa.publicKey),
      (e: BundleError) => e.code === 'EBADKEY' && /rsa key/.test(e.message),
    );
    assert.throws(
      () => trustKey(signer.privateKey),
      (e: BundleError) => e.code === 'EBADKEY',
    );
    const unsigned = createBundle({
      patch: { name: 'k', objects: [] },
      code: 'export default () => ({});',
    });
    assert.throws(
      () => signBundle(unsigned, rsa.privateKey),
      (e: BundleError) => e.code === 'EBADKEY',
    );
  });

  it('verifyBundle checks without evaluating; it takes a list of keys or options', () => {
    const unsigned = createBundle({
      patch: { name: 'v', objects: [] },
      code: 'throw new Error("never evaluated");',
    });
    const bundle = signBundle(unsigned, stranger.privateKey);
    assert.equal(verifyBundle(bundle, [stranger.publicKey]).keyId, stranger.keyId);
    assert.equal(verifyBundle(JSON.stringify(bundle), stranger.publicKey).keyId, stranger.keyId);
    assert.throws(
      () => verifyBundle(bundle),
      (e: BundleError) => e.code === 'EUNTRUSTED',
    );
    assert.throws(
      () => verifyBundle(unsigned),
      (e: BundleError) => e.code === 'EUNSIGNED',
    );
    assert.equal(verifyBundle(unsigned, { allowUnsigned: true }).keyId, null);
  });

  it('the key id is the first 16 hex digits of sha256 over the SPKI DER', () => {
    assert.match(signer.keyId, /^[0-9a-f]{16}$/);
    assert.equal(keyIdOf(signer.publicKey), signer.keyId);
  });

  it('canonical JSON: sorted keys, no whitespace, integers only', () => {
    assert.equal(
      canonicalize({ b: 1, a: [true, null, 'é\n"'], c: { z: -2, y: {} } }),
      '{"a":[true,null,"é\\n\\""],"b":1,"c":{"y":{},"z":-2}}',
    );
    assert.throws(() => canonicalize({ a: 1.5 }), /integers only/);
  });

  it('golden vector: the signed example in test/fixtures/bundle verifies and its canonical bytes are as documented', () => {
    const publicKey = fs.readFileSync(path.join(fixtures, 'example.pub.pem'), 'utf8');
    const text = fs.readFileSync(path.join(fixtures, 'example.signed.json'), 'utf8');
    const bundle = parseBundle(text);
    assert.equal(verifyBundle(text, [publicKey]).keyId, keyIdOf(publicKey));
    const expected = fs.readFileSync(path.join(fixtures, 'example.canonical.txt'), 'utf8');
    assert.equal(
      canonicalize({ livepatch: bundle.livepatch, patch: bundle.patch, code: bundle.code }),
      expected,
    );
    assert.equal(
      parseBundle(fs.readFileSync(path.join(fixtures, 'example.unsigned.json'), 'utf8')).signature,
      null,
    );
  });
});
