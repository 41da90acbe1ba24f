import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import { missingEntries, platformOf } from '../scripts/lock-foreign-platforms.ts';
import { repoRoot, runNode } from './helpers/node.ts';

describe('scripts/lock-foreign-platforms', () => {
  test('derives os, cpu and libc from napi-rs binding names', () => {
    assert.deepEqual(platformOf('@oxc-parser/binding-darwin-arm64'), {
      os: ['darwin'],
      cpu: ['arm64'],
    });
    assert.deepEqual(platformOf('@oxc-parser/binding-linux-x64-musl'), {
      os: ['linux'],
      cpu: ['x64'],
      libc: ['musl'],
    });
    assert.deepEqual(platformOf('@oxc-parser/binding-linux-arm-gnueabihf'), {
      os: ['linux'],
      cpu: ['arm'],
      libc: ['glibc'],
    });
    assert.deepEqual(platformOf('@oxc-parser/binding-android-arm-eabi'), {
      os: ['android'],
      cpu: ['arm'],
    });
    assert.deepEqual(platformOf('@oxc-parser/binding-win32-ia32-msvc'), {
      os: ['win32'],
      cpu: ['ia32'],
    });
    assert.deepEqual(platformOf('@oxc-parser/binding-wasm32-wasi'), { os: [], cpu: ['wasm32'] });
    assert.equal(platformOf('left-pad'), null);
    assert.equal(platformOf('@scope/binding-linux-x64-weird'), null);
  });

  test('adds pinned entries only for optional dependencies the lockfile lacks', () => {
    const lock = {
      lockfileVersion: 3,
      packages: {
        '': { name: 'app' },
        'node_modules/tool': {
          version: '1.0.0',
          dev: true,
          optionalDependencies: {
            '@tool/binding-linux-x64-gnu': '1.0.0',
            '@tool/binding-darwin-arm64': '1.0.0',
          },
        },
        'node_modules/@tool/binding-linux-x64-gnu': { version: '1.0.0', optional: true },
      },
    };
    assert.deepEqual(
      [...missingEntries(lock)],
      [
        [
          'node_modules/@tool/binding-darwin-arm64',
          { version: '1.0.0', cpu: ['arm64'], dev: true, optional: true, os: ['darwin'] },
        ],
      ],
    );
  });

  test('refuses a missing optional dependency it cannot pin', () => {
    const lock = {
      lockfileVersion: 3,
      packages: {
        '': { name: 'app' },
        'node_modules/tool': { version: '1.0.0', optionalDependencies: { fsevents: '^2.0.0' } },
      },
    };
    assert.throws(() => missingEntries(lock), /fsevents@\^2\.0\.0.*range/);
  });

  test('the repository lockfile is complete (npm ci accepts it)', async () => {
    const before = readFileSync(`${repoRoot}/package-lock.json`, 'utf8');
    const result = await runNode(['scripts/lock-foreign-platforms.ts', '--check'], {
      cwd: repoRoot,
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(readFileSync(`${repoRoot}/package-lock.json`, 'utf8'), before);
  });
});
