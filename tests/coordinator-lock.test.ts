import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { acquireCoordinatorLock, StateLockedError } from '../src/store/coordinator-lock.js';
import { STATE_FILE, Store } from '../src/store/state-file.js';
import { runCli, startCli } from './support/cli.js';
import { repoRoot, sharedData } from './support/paths.js';

const lockModule = join(repoRoot, 'dist', 'src', 'store', 'coordinator-lock.js');

/** A process that tries to take the lock, prints got/locked/error, and holds it until killed. */
function starter(db: string): { child: ChildProcess; result: Promise<string> } {
  const script = `import { acquireCoordinatorLock, StateLockedError } from ${JSON.stringify(pathToFileURL(lockModule).href)};
    try { acquireCoordinatorLock(${JSON.stringify(db)}); console.log('got'); }
    catch (err) { console.log(err instanceof StateLockedError ? 'locked' : 'error ' + err.message); }
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const result = new Promise<string>((resolve) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.trim());
    });
    child.on('exit', () => resolve(out.trim() || 'exited'));
  });
  return { child, result };
}

test('one coordinator per state file: a second is refused with the holder named; release frees it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cah-lock-'));
  try {
    const db = join(dir, STATE_FILE);
    const release = acquireCoordinatorLock(db);
    assert.equal(JSON.parse(readFileSync(`${db}.coordinator.lock.json`, 'utf8')).pid, process.pid);
    assert.throws(() => acquireCoordinatorLock(db), (err) => err instanceof StateLockedError && err.holder?.pid === process.pid && /pid \d+ on /.test(err.message));
    release();
    assert.equal(existsSync(`${db}.coordinator.lock.json`), false);
    acquireCoordinatorLock(db)();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('coordinators started together: exactly one gets the lock, the others a clear refusal; a killed holder frees it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cah-lock-race-'));
  const children: ChildProcess[] = [];
  try {
    for (let trial = 0; trial < 3; trial++) {
      const db = join(dir, `trial-${trial}.sqlite`);
      const starters = Array.from({ length: 6 }, () => starter(db));
      children.push(...starters.map((s) => s.child));
      const results = await Promise.all(starters.map((s) => s.result));
      assert.deepEqual(results.filter((r) => r !== 'locked'), ['got'], `trial ${trial}: ${results.join(', ')}`);
      // The holder dies hard (kill -9): the OS drops its lock, the next coordinator starts without a takeover.
      const holder = starters[results.indexOf('got')]!.child;
      const exited = new Promise((resolve) => holder.once('exit', resolve));
      holder.kill('SIGKILL');
      await exited;
      const next = acquireCoordinatorLock(db);
      next();
    }
  } finally {
    for (const child of children) child.kill('SIGKILL');
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
    const lockPath = join(state, `${STATE_FILE}.coordinator.lock.json`);
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
    const malformed = await runCli(['--state', state, 'gpu', '--no-dashboard', '--listen', 'bad', '--until-done', '--out', join(dir, 'out')]);
    assert.equal(malformed.code, 2);
    assert.match(malformed.stderr, /^cah: --listen must be HOST:PORT/m);
    const inUse = await runCli(['--state', state, 'gpu', '--no-dashboard', '--listen', `127.0.0.1:${port}`, '--until-done', '--out', join(dir, 'out')]);
    assert.equal(inUse.code, 2);
    assert.match(inUse.stderr, new RegExp(`^cah: cannot listen on 127\\.0\\.0\\.1:${port}: .*choose another port with --listen`, 'm'));
    for (const res of [malformed, inUse]) assert.ok(!/^\s+at /m.test(res.stderr), `no stack trace:\n${res.stderr}`);
  } finally {
    busy.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
