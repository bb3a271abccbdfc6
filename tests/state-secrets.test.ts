import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exposedListenWarning } from '../src/cli/state.js';
import { ensureWorkerToken, WeakTokenError } from '../src/coordinator/credentials.js';
import { runCli } from './support/cli.js';

const mode = (path: string): number => statSync(path).mode & 0o777;

test('config: the state directory is 0700, cah.sqlite and logs 0600, also when an older cah made them 0755/0644', async () => {
  const root = mkdtempSync(join(tmpdir(), 'cah-perm-'));
  try {
    const fresh = join(root, 'fresh');
    const r = await runCli(['--state', fresh, 'shards', 'ls']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(mode(fresh), 0o700);
    assert.equal(mode(join(fresh, 'cah.sqlite')), 0o600);
    const old = join(root, 'old');
    mkdirSync(join(old, 'logs'), { recursive: true });
    writeFileSync(join(old, 'logs', 'coordinator.log'), '{}\n');
    chmodSync(join(old, 'logs', 'coordinator.log'), 0o644);
    chmodSync(join(old, 'logs'), 0o755);
    chmodSync(old, 0o755);
    assert.equal((await runCli(['--state', old, 'shards', 'ls'])).code, 0);
    chmodSync(join(old, 'cah.sqlite'), 0o644);
    assert.equal((await runCli(['--state', old, 'shards', 'ls'])).code, 0);
    assert.equal(mode(old), 0o700);
    assert.equal(mode(join(old, 'cah.sqlite')), 0o600);
    assert.equal(mode(join(old, 'logs')), 0o700);
    assert.equal(mode(join(old, 'logs', 'coordinator.log')), 0o600);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('config: a 0644 token file is made 0600; a weak token is refused with a pointer to `cah token rotate`', async () => {
  const state = mkdtempSync(join(tmpdir(), 'cah-token-'));
  try {
    const token = await ensureWorkerToken(state);
    const path = join(state, 'worker-token');
    assert.equal(mode(path), 0o600);
    chmodSync(path, 0o644);
    assert.equal(await ensureWorkerToken(state), token);
    assert.equal(mode(path), 0o600, 'repaired');
    for (const weak of ['secret', 'a'.repeat(64), 'abababababababababababababababab']) {
      writeFileSync(path, weak + '\n', { mode: 0o600 });
      await assert.rejects(ensureWorkerToken(state), (err: unknown) => err instanceof WeakTokenError && /cah token rotate/.test(err.message), weak);
    }
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
});

test('config: `cah token rotate` writes a new random 0600 token', async () => {
  const state = mkdtempSync(join(tmpdir(), 'cah-rotate-'));
  try {
    const path = join(state, 'worker-token');
    writeFileSync(path, 'weak\n', { mode: 0o644 });
    const r = await runCli(['--state', state, 'token', 'rotate']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /new worker token written to/);
    const first = readFileSync(path, 'utf8').trim();
    assert.match(first, /^[0-9a-f]{64}$/);
    assert.equal(mode(path), 0o600);
    assert.equal((await runCli(['--state', state, 'token', 'rotate'])).code, 0);
    assert.notEqual(readFileSync(path, 'utf8').trim(), first);
    assert.equal(await ensureWorkerToken(state), readFileSync(path, 'utf8').trim());
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
});

test('config: plain text on a non-loopback --listen is warned about; loopback is not', () => {
  for (const address of ['0.0.0.0:7443', '[::]:7443', '192.168.1.5:7443', 'myhost:7443']) assert.match(exposedListenWarning(address) ?? '', /plain-text/, address);
  for (const address of ['127.0.0.1:7443', '[::1]:7443', 'localhost:7443']) assert.equal(exposedListenWarning(address), null, address);
});
