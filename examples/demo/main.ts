/**
 * The livepatch demo (`npm run demo`): a running shop service gets a security-style fix without
 * a restart. It shows, in one process started by `livepatch run`:
 *  - the bug, and in-memory state (carts, an order counter) that a restart would lose;
 *  - a signed patch bundle built and verified; a tampered copy refused before its code runs;
 *  - a checkout in flight when the patch is enabled finishing entirely on the old code, while
 *    a checkout that starts after gets the fix at once;
 *  - the transition completing when the old side drains, state intact; disable restores the
 *    original; remove.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import {
  createBundle,
  generateKeyPair,
  loadBundle,
  signBundle,
  transitionStatus,
  trustKey,
} from '../../src/index.ts';
import { confirmPayment, createShop, stats, whenWaiting } from './shop.ts';

const here = (name: string): string => fileURLToPath(new URL(name, import.meta.url));
const say = (text: string): void => {
  process.stdout.write(`${text}\n`);
};
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const server = createShop();
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address() as AddressInfo;
const get = (path: string): Promise<Record<string, unknown>> =>
  new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve(JSON.parse(body) as Record<string, unknown>));
      })
      .on('error', reject);
  });
const fill = async (user: string): Promise<void> => {
  for (const [sku, price] of [
    ['tea', 10],
    ['mug', 20],
    ['pot', 30],
  ] as const)
    await get(`/add?user=${user}&sku=${sku}&price=${price}`);
};

say(`shop listening on 127.0.0.1:${port} (every function patchable; pid ${process.pid})`);

say('\n1. The bug: SAVE10 should take 10% off a 60.00 cart (54.00)');
await fill('alice');
const alice = await get('/checkout?user=alice&code=SAVE10');
say(`   alice pays ${String(alice['total'])}  <- 30% off: the discount is taken once per item`);

say('\n2. bob starts a checkout that waits for his payment provider (in flight)');
await fill('bob');
const bob = get('/checkout?user=bob&code=SAVE10&hold=1');
await whenWaiting('bob');

say('\n3. The fix is built into a bundle and signed; only trusted keys may load code');
const shopSource = readFileSync(here('shop.ts'));
const keys = generateKeyPair();
trustKey(keys.publicKey);
const bundle = signBundle(
  createBundle({
    patch: {
      name: 'fix-discount',
      objects: [
        {
          module: 'examples/demo/shop.ts',
          hash: createHash('sha256').update(shopSource).digest('hex'),
          functions: [{ name: 'applyDiscount', export: 'applyDiscount' }],
        },
      ],
    },
    code: readFileSync(here('fix.mjs'), 'utf8'),
  }),
  keys.privateKey,
);
const tampered = { ...bundle, code: bundle.code.replace('0.9', '0.1') };
try {
  await loadBundle(tampered);
  throw new Error('a tampered bundle was accepted');
} catch (err) {
  say(
    `   a tampered copy is refused before any of its code runs: ${(err as { code?: string }).code ?? String(err)}`,
  );
}
const patch = await loadBundle(bundle);

say('\n4. Enable it while bob is in flight');
const enabling = patch.enable();
await turn();
const pending = transitionStatus()?.pending ?? [];
say(
  `   transition to patched: ${pending.length} task(s) still on the old side: ${pending.map((t) => `${t.label} (${t.reason})`).join(', ')}`,
);
await fill('carol');
const carol = await get('/checkout?user=carol&code=SAVE10');
say(`   carol, who started after, pays ${String(carol['total'])} at once: new requests never wait`);

say("\n5. bob's payment confirms; his request finishes on the code it started with");
confirmPayment('bob');
const bobResult = await bob;
say(
  `   bob quoted and charged ${JSON.stringify(bobResult['priced'])}: never one old and one new price`,
);
await enabling;
say(`   transition complete; patch '${patch.name}' is ${patch.status}`);

say('\n6. Nothing was restarted: the state is intact');
const s = stats();
say(`   ${s.carts} carts in memory, ${s.ordersPlaced} orders placed`);
await fill('dave');
say(`   dave pays ${String((await get('/checkout?user=dave&code=SAVE10'))['total'])}`);

say('\n7. Disable restores the original code; the disabled patch is removed');
await patch.disable();
await fill('erin');
say(
  `   erin pays ${String((await get('/checkout?user=erin&code=SAVE10'))['total'])} (the original again)`,
);
patch.remove();

server.close();
const ok =
  alice['total'] === 42 &&
  carol['total'] === 54 &&
  JSON.stringify(bobResult['priced']) === '[42,42]';
say(
  ok
    ? '\ndemo complete: one process, no restart, no request saw a mix of versions'
    : '\ndemo FAILED: unexpected results',
);
process.exitCode = ok ? 0 : 1;
