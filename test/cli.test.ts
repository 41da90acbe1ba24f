/**
 * The `livepatch` command: dispatcher (help, version, exit codes, usage errors with hints) and
 * `livepatch run` (program started with the loader, arguments and options passed through, exit
 * status and signals handled as the program's own), plus `livepatch cache`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';

import {
  childEnv,
  fixture,
  nodeBin,
  repoRoot,
  runNode,
  type RunNodeResult,
} from './helpers/node.ts';

const cli = path.join(repoRoot, 'src', 'cli', 'main.ts');
const app = fixture('loader', 'cli', 'app.cjs');
const version = (
  JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }
).version;

function livepatch(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<RunNodeResult> {
  return runNode([cli, ...args], {
    env: {
      LIVEPATCH_CACHE: '0',
      LIVEPATCH_INCLUDE: undefined,
      LIVEPATCH_EXCLUDE: undefined,
      ...env,
    },
  });
}

describe('cli: dispatcher', () => {
  test('--version and --version --json', async () => {
    const plain = await livepatch(['--version']);
    assert.equal(plain.code, 0);
    assert.equal(plain.stdout, `${version}\n`);
    const json = await livepatch(['-V', '--json']);
    assert.deepEqual(JSON.parse(json.stdout), { version, node: process.version });
  });

  test('--help lists the commands; every command has --help; help <command>', async () => {
    const top = await livepatch(['--help']);
    assert.equal(top.code, 0);
    assert.match(top.stdout, /^Usage: livepatch <command>/);
    assert.match(top.stdout, /^\s+run\s+run a program with every function patchable$/m);
    assert.match(top.stdout, /^\s+cache\s+/m);
    for (const command of ['run', 'cache']) {
      const own = await livepatch([command, '--help']);
      assert.equal(own.code, 0, own.stderr);
      assert.match(own.stdout, new RegExp(`^Usage: livepatch ${command}`));
      const viaHelp = await livepatch(['help', command]);
      assert.equal(viaHelp.stdout, own.stdout);
    }
  });

  test('usage errors exit 2 with a hint: no command, unknown command, unknown option', async () => {
    const none = await livepatch([]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /^Usage: livepatch/);

    const typo = await livepatch(['rnu', 'app.js']);
    assert.equal(typo.code, 2);
    assert.equal(typo.stderr, "livepatch: unknown command 'rnu'\nDid you mean 'run'?\n");

    const unknown = await livepatch(['run', '--includ', 'x', app]);
    assert.equal(unknown.code, 2);
    assert.equal(
      unknown.stderr,
      "livepatch run: unknown option '--includ'\nDid you mean '--include'?\n",
    );

    const global = await livepatch(['--frobnicate']);
    assert.equal(global.code, 2);
    assert.match(global.stderr, /unknown option '--frobnicate'/);

    const missing = await livepatch(['run']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /missing <entry>/);

    const badAction = await livepatch(['cache', 'explode']);
    assert.equal(badAction.code, 2);
    assert.match(badAction.stderr, /unknown action 'explode'/);
  });
});

describe('cli: run', () => {
  test('runs the program with the loader; arguments after <entry> are the program’s', async () => {
    const result = await livepatch(['run', app, 'one', '--two', '-3', '--', 'four']);
    assert.equal(result.code, 0, result.stderr);
    const out = JSON.parse(result.stdout) as Record<string, unknown>;
    assert.deepEqual(out.argv, ['one', '--two', '-3', '--', 'four']);
    assert.equal(out.answer, 42);
    assert.equal(out.isMain, true, 'require.main is the entry, as without livepatch');
    assert.equal(out.hasRequireCache, true);
    assert.deepEqual(out.instrumented, ['app.cjs'], 'the program’s functions are patchable');
  });

  test('the exit status is the program’s', async () => {
    const result = await livepatch(['run', app], { APP_EXIT_CODE: '7' });
    assert.equal(result.code, 7);
  });

  test('options become the loader’s settings; --node-option reaches node', async () => {
    const result = await livepatch([
      'run',
      '--include',
      'nothing-matches-this',
      '--exclude',
      'a',
      '--exclude=b',
      '--no-cache',
      '--no-source-maps',
      '--node-option=--no-warnings',
      app,
    ]);
    assert.equal(result.code, 0, result.stderr);
    const out = JSON.parse(result.stdout) as {
      env: Record<string, string | null>;
      instrumented: string[];
      execArgv: string[];
    };
    assert.deepEqual(out.env, {
      include: 'nothing-matches-this',
      exclude: 'a,b',
      cache: '0',
      maps: '0',
    });
    assert.deepEqual(out.instrumented, []);
    // On Node 22 `livepatch run` also turns AsyncContextFrame on (docs/consistency.md).
    const frameFlag = process.versions.node.startsWith('22.')
      ? ['--experimental-async-context-frame']
      : [];
    assert.deepEqual(out.execArgv, [...frameFlag, '--no-warnings', '--import']);
    // `--` ends the options: an entry may then start with a dash, and options after it are the app's.
    const dashed = await livepatch(['run', '--', app, '--include', 'x']);
    assert.deepEqual((JSON.parse(dashed.stdout) as { argv: string[] }).argv, ['--include', 'x']);
  });

  test('TypeScript entry (with an enum)', async () => {
    const result = await livepatch(['run', fixture('loader', 'cli', 'app.ts')]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'hello from ts\n');
  });

  for (const mode of ['exec', 'spawn'] as const) {
    test(`signals reach the program (${mode === 'exec' ? 'the CLI becomes the program' : 'spawned, relayed'})`, async () => {
      const env = childEnv({
        LIVEPATCH_CACHE: '0',
        LIVEPATCH_RUN_SPAWN: mode === 'spawn' ? '1' : undefined,
      });
      const child = spawn(nodeBin, [cli, 'run', fixture('loader', 'cli', 'signals.cjs')], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const ready = new Promise<string>((resolve) => {
        child.stdout.on('data', (d: Buffer) => {
          stdout += d.toString();
          const m = /ready (\d+)/.exec(stdout);
          if (m) resolve(m[1]!);
        });
      });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
        (resolve) => child.once('close', (code, signal) => resolve({ code, signal })),
      );
      const programPid = Number(await ready);
      if (mode === 'exec' && typeof (process as { execve?: unknown }).execve === 'function') {
        assert.equal(
          programPid,
          child.pid,
          'same process: the pid the operator sees is the program',
        );
      }
      child.kill('SIGTERM');
      const { code, signal } = await exited;
      assert.equal(stderr, '');
      assert.match(stdout, /got SIGTERM/);
      assert.deepEqual({ code, signal }, { code: 0, signal: null });
    });

    test(`a program killed by a signal: the CLI ends the same way (${mode})`, async () => {
      const result = await livepatch(['run', fixture('loader', 'cli', 'signals.cjs'), 'suicide'], {
        LIVEPATCH_RUN_SPAWN: mode === 'spawn' ? '1' : undefined,
      });
      assert.deepEqual(
        { code: result.code, signal: result.signal },
        { code: null, signal: 'SIGTERM' },
      );
    });
  }
});

describe('cli: cache', () => {
  test('info and clear, as text and --json', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'livepatch-cli-cache-'));
    try {
      const run = await livepatch(['run', '--cache-dir', dir, app], { LIVEPATCH_CACHE: undefined });
      assert.equal(run.code, 0, run.stderr);
      const info = await livepatch(['cache', 'info', '--cache-dir', dir, '--json']);
      assert.equal(info.code, 0, info.stderr);
      const data = JSON.parse(info.stdout) as {
        dir: string;
        exists: boolean;
        entries: number;
        bytes: number;
      };
      assert.equal(data.dir, dir);
      assert.equal(data.exists, true);
      assert.equal(data.entries, 1);
      assert.ok(data.bytes > 0);
      const text = await livepatch(['cache', '--cache-dir', dir]);
      assert.match(text.stdout, /^.*\n1 entries, /);
      const clear = await livepatch(['cache', 'clear', '--cache-dir', dir, '--json']);
      assert.deepEqual(JSON.parse(clear.stdout), { dir, removed: 1 });
      assert.deepEqual(fs.readdirSync(dir), []);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
