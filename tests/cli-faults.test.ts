import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { lastErrorLine, workerEnvironment } from '../src/coordinator/local-workers.js';
import { Store } from '../src/store/state-file.js';
import { writeWatFile } from '../src/warc/wat-writer.js';
import { runCli, startCli } from './support/cli.js';
import { freePort } from './support/free-port.js';

function oneLine(res: { stderr: string }, pattern: RegExp): void {
  const lines = res.stderr.trim().split('\n').filter((l) => !l.startsWith('{'));
  assert.equal(lines.length, 1, `one line:\n${res.stderr}`);
  assert.match(lines[0]!, pattern);
  assert.ok(!/^\s+at /m.test(res.stderr), `no stack trace:\n${res.stderr}`);
}

function addShards(state: string, sources: string[]): void {
  const store = Store.openInStateDir(state);
  store.shards.add(sources);
  store.close();
}

/** The pids of the direct children of `pid` (Linux /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

test('a death cause is the exit status or a real error, never a warning or the last log line', () => {
  const warning = '(node:123) MaxListenersExceededWarning: Possible EventTarget memory leak detected. 11 abort listeners added to [AbortSignal].\n(Use `node --trace-warnings ...` to show where the warning was created)';
  const info = JSON.stringify({ level: 30, msg: 'shard started' });
  const warn = JSON.stringify({ level: 40, msg: 'lost the coordinator: registering again' });
  assert.equal(lastErrorLine([info, warning, warn].join('\n')), null);
  const error = JSON.stringify({ level: 50, msg: 'shard failed', err: 'sharp: corrupt header' });
  assert.equal(lastErrorLine([error, warning, info].join('\n')), 'shard failed: sharp: corrupt header');
  const crash = 'file:///x/actor.js:12\n    throw err;\n    ^\n\nTypeError: Cannot read properties of null (reading \'x\')\n    at run (file:///x/actor.js:12:5)\n\nNode.js v20.19.0';
  assert.equal(lastErrorLine([info, crash].join('\n')), "TypeError: Cannot read properties of null (reading 'x')");
});

test('a local worker\'s environment comes from an allowlist: no cloud or hub token, no other secret', () => {
  const env = workerEnvironment(
    { PATH: '/usr/bin', HOME: '/root', HCLOUD_TOKEN: 'h', HF_TOKEN: 'f', AWS_SECRET_ACCESS_KEY: 'a', CAH_STATE: '/s', GITHUB_TOKEN: 'g', LANG: 'C.UTF-8' },
    { CAH_WORKER_TOKEN: 'w' },
  );
  assert.deepEqual(env, { PATH: '/usr/bin', HOME: '/root', LANG: 'C.UTF-8', CAH_WORKER_TOKEN: 'w' });
});

test('every local worker out of restarts ends the run with exit 1 naming the death cause; the workers never saw a secret', { skip: process.platform !== 'linux' && 'reads /proc' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cah-dead-workers-'));
  const state = join(dir, 'state');
  const fifo = join(dir, 'never-ending.warc.wat.gz');
  try {
    // A shard source that never delivers a byte: the shard stays in work until the workers die.
    execFileSync('mkfifo', [fifo]);
    addShards(state, [fifo]);
    const gpu = startCli(
      ['--state', state, 'gpu', '--local-workers', '1', '--max-restarts', '1', '--until-done', '--no-dashboard', '--listen', '127.0.0.1:0', '--out', join(dir, 'out')],
      { env: { HCLOUD_TOKEN: 'secret-hcloud-token', HF_TOKEN: 'secret-hf-token' } },
    );
    const seen = new Set<number>();
    for (let kill = 0; kill < 2; kill++) {
      let worker: number | undefined;
      const deadline = Date.now() + 60_000;
      while (!worker && Date.now() < deadline) {
        worker = childrenOf(gpu.child.pid!).find((p) => !seen.has(p));
        if (!worker) await sleep(100);
      }
      assert.ok(worker, `worker ${kill + 1} started`);
      seen.add(worker);
      await sleep(300);
      const environ = readFileSync(`/proc/${worker}/environ`, 'utf8').split('\0');
      assert.ok(environ.some((v) => v.startsWith('CAH_WORKER_TOKEN=')), 'the worker token is given');
      assert.ok(!environ.some((v) => /^(HCLOUD_TOKEN|HF_TOKEN)=/.test(v)), `no secret in the worker's environment: ${environ.map((v) => v.split('=')[0]).join(' ')}`);
      process.kill(worker, 'SIGKILL');
    }
    const timer = setTimeout(() => gpu.child.kill('SIGKILL'), 60_000);
    const res = await gpu.done;
    clearTimeout(timer);
    assert.equal(res.code, 1, res.stderr.slice(-2000));
    const errorLine = res.stderr.split('\n').find((l) => l.startsWith('cah: '));
    assert.match(errorLine ?? '', /^cah: every local worker is DEAD \(out of restarts, --max-restarts 1\).*local-1: process killed by SIGKILL/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cah demo --dir refuses a non-empty directory that is not an earlier demo\'s, deleting nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cah-demo-dir-'));
  try {
    writeFileSync(join(dir, 'thesis.tex'), 'years of work');
    const res = await runCli(['demo', '--dir', dir, '--no-dashboard']);
    assert.equal(res.code, 2);
    oneLine(res, /^cah: --dir .* is not empty and not an earlier demo's directory: nothing was deleted/);
    assert.equal(readFileSync(join(dir, 'thesis.tex'), 'utf8'), 'years of work');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cah gpu --out refuses a non-empty directory of another run (one line, exit 2), leaving it untouched', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cah-out-owner-'));
  const out = join(dir, 'out');
  try {
    mkdirSync(out);
    writeFileSync(join(out, '00002.tar'), 'someone else\'s shard');
    addShards(join(dir, 'state'), [join(dir, 'x.warc.wat.gz')]);
    const res = await runCli(['--state', join(dir, 'state'), 'gpu', '--until-done', '--no-dashboard', '--listen', '127.0.0.1:0', '--out', out]);
    assert.equal(res.code, 2, res.stderr);
    oneLine(res, /^cah: --out .* is not empty and belongs to no cah run of this state directory: .*--incremental .*--overwrite/);
    assert.equal(readFileSync(join(out, '00002.tar'), 'utf8'), 'someone else\'s shard');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a damaged state file: cah status, cah gpu and cah state check say so in one line (exit 1); backup and check of a sound one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cah-state-check-'));
  const state = join(dir, 'state');
  try {
    const store = Store.openInStateDir(state);
    store.shards.add(Array.from({ length: 2000 }, (_, i) => `/data/shard-${i}-${'x'.repeat(100)}.wat.gz`));
    store.close();
    const backup = join(dir, 'backup.sqlite');
    const [sound, copied] = await Promise.all([runCli(['--state', state, 'state', 'check']), runCli(['--state', state, 'state', 'backup', backup])]);
    assert.equal(sound.code, 0, sound.stderr);
    assert.match(sound.stdout, /: ok \(0 done, 2000 queued/);
    assert.equal(copied.code, 0, copied.stderr);
    assert.equal(Store.open(backup, { readonly: true }).shards.counts().queued, 2000);
    const db = join(state, 'cah.sqlite');
    const bytes = readFileSync(db);
    bytes.fill(0x5a, 4096 * 20 + 100, 4096 * 20 + 3000);
    writeFileSync(db, bytes);
    const commands = [['status'], ['state', 'check'], ['gpu', '--until-done', '--no-dashboard', '--listen', '127.0.0.1:0', '--out', join(dir, 'out')]];
    const results = await Promise.all(commands.map((args) => runCli(['--state', state, ...args])));
    for (const [i, res] of results.entries()) {
      assert.equal(res.code, 1, `${commands[i]![0]}: ${res.stderr}`);
      oneLine(res, /^cah: state file .*cah\.sqlite is damaged \(.*\): restore it from a backup/);
    }
    assert.ok(!existsSync(join(dir, 'out')), 'the coordinator did not start');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an external --exit-when-drained worker: exits 0 when the run ends (the coordinator lingers to say "drained"), gives up with exit 1 on a gone coordinator', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cah-external-'));
  const state = join(dir, 'state');
  try {
    // A page without images: the shard is done without a download.
    const shard = join(dir, 'no-images.wat');
    await writeWatFile(shard, [{ url: 'https://example.com/', images: [] }], { gzip: false });
    addShards(state, [shard]);
    const port = await freePort();
    const gpu = startCli(['--state', state, 'gpu', '--until-done', '--no-dashboard', '--local-workers', '0', '--listen', `127.0.0.1:${port}`, '--out', join(dir, 'out')]);
    const tokenFile = join(state, 'worker-token');
    for (let i = 0; i < 600 && !existsSync(tokenFile); i++) await sleep(50);
    const env = { CAH_WORKER_TOKEN: readFileSync(tokenFile, 'utf8').trim() };
    const worker = await runCli(['worker', '--coordinator', `127.0.0.1:${port}`, '--exit-when-drained', '--give-up-after', '600'], { env, timeoutMs: 120_000 });
    const ended = await gpu.done;
    assert.equal(ended.code, 0, ended.stderr.slice(-2000));
    assert.equal(worker.code, 0, `the worker learned "drained" instead of dialing a gone coordinator:\n${worker.stderr.slice(-2000)}`);

    // The coordinator is gone now: a late worker gives up after --give-up-after, with one error line.
    const late = await runCli(['worker', '--coordinator', `127.0.0.1:${port}`, '--exit-when-drained', '--give-up-after', '1'], { env, timeoutMs: 60_000 });
    assert.equal(late.code, 1, late.stderr);
    assert.match(late.stderr, /unreachable for \d+ s: giving up \(--exit-when-drained\)/);
    const bad = await runCli(['worker', '--coordinator', `127.0.0.1:${port}`, '--give-up-after', '0'], { env });
    assert.equal(bad.code, 2);
    oneLine(bad, /^cah: --give-up-after must be a positive number of seconds/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
