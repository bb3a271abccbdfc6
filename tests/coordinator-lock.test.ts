import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { acquireCoordinatorLock, StateLockedError } from '../src/store/coordinator-lock.js';
import { STATE_FILE, Store } from '../src/store/store.js';
import { runCli, startCli } from './support/cli.js';
import { sharedData } from './support/paths.js';

/** A pid that certainly belongs to no live process: one that has just exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid!;
}

test('one coordinator per state file: a second is refused, a dead holder\'s lock is taken over, release removes it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cah-lock-'));
  try {
    const db = join(dir, STATE_FILE);
    const lockPath = `${db}.coordinator.lock`;
    const release = acquireCoordinatorLock(db);
    assert.equal(JSON.parse(readFileSync(lockPath, 'utf8')).pid, process.pid);
    assert.throws(() => acquireCoordinatorLock(db), (err) => err instanceof StateLockedError && err.holder.pid === process.pid);
    release();
    assert.equal(existsSync(lockPath), false);

    writeFileSync(lockPath, JSON.stringify({ pid: deadPid(), host: hostname(), startedAt: 'then' }));
    const again = acquireCoordinatorLock(db);
    assert.equal(JSON.parse(readFileSync(lockPath, 'utf8')).pid, process.pid, 'a dead coordinator\'s lock is taken over');
    again();

    writeFileSync(lockPath, JSON.stringify({ pid: deadPid(), host: 'another-machine', startedAt: 'then' }));
    assert.throws(() => acquireCoordinatorLock(db), StateLockedError, 'a lock from another host cannot be checked, so it holds');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a second cah gpu on the same state is a one-line error and leaves the running one alone', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cah-lock-cli-'));
  const state = join(dir, 'state');
  let first: ReturnType<typeof startCli> | null = null;
  try {
    assert.equal((await runCli(['--state', state, 'shards', 'add', sharedData('warc', 'cc-main-2024-22_whirlwind.warc.wat.gz')])).code, 0);
    first = startCli(['--state', state, 'gpu', '--no-dashboard', '--listen', '127.0.0.1:0', '--out', join(dir, 'out')]);
    const lockPath = join(state, `${STATE_FILE}.coordinator.lock`);
    const deadline = Date.now() + 30_000;
    while (!existsSync(lockPath) && Date.now() < deadline) await sleep(100);
    assert.ok(existsSync(lockPath), 'the first coordinator holds the state');
    await sleep(500);
    const second = await runCli(['--state', state, 'gpu', '--no-dashboard', '--listen', '127.0.0.1:0', '--out', join(dir, 'out')]);
    assert.equal(second.code, 2);
    assert.equal(second.stderr.trim().split('\n').length, 1, `one line:\n${second.stderr}`);
    assert.match(second.stderr.trim(), new RegExp(`^cah: another coordinator \\(pid ${first!.child.pid} on .*\\) is running on this state file .*stop it first`));
    assert.ok(!/^\s+at /m.test(second.stderr), 'no stack trace');
    const runCount = (Store.openInStateDir(state, { readonly: true }).db.prepare('SELECT count(*) AS n FROM runs').get() as { n: number }).n;
    assert.equal(runCount, 1, 'the second coordinator did not start a run');
    first.child.kill('SIGTERM');
    const res = await first.done;
    assert.equal(res.code, 0, res.stderr.slice(-2000));
    assert.equal(existsSync(lockPath), false, 'released on exit');
  } finally {
    first?.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--listen mistakes are one-line errors: a malformed address, an address already in use', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cah-listen-'));
  const state = join(dir, 'state');
  const { createServer } = await import('node:net');
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  const port = (busy.address() as { port: number }).port;
  try {
    assert.equal((await runCli(['--state', state, 'shards', 'add', sharedData('warc', 'cc-main-2024-22_whirlwind.warc.wat.gz')])).code, 0);
    const malformed = await runCli(['--state', state, 'gpu', '--no-dashboard', '--listen', 'bad', '--until-done']);
    assert.equal(malformed.code, 2);
    assert.match(malformed.stderr, /^cah: --listen must be HOST:PORT/m);
    const inUse = await runCli(['--state', state, 'gpu', '--no-dashboard', '--listen', `127.0.0.1:${port}`, '--until-done']);
    assert.equal(inUse.code, 2);
    assert.match(inUse.stderr, new RegExp(`^cah: cannot listen on 127\\.0\\.0\\.1:${port}: .*choose another port with --listen`, 'm'));
    for (const res of [malformed, inUse]) assert.ok(!/^\s+at /m.test(res.stderr), `no stack trace:\n${res.stderr}`);
  } finally {
    busy.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
