import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startFixtureWeb, type FixtureWeb } from '../src/demo/fixture-web.js';
import { Store } from '../src/store/state-file.js';
import { runCli, startCli } from './support/cli.js';
import { HetznerStandin } from './support/hetzner-standin.js';

/** Chaos on the swarm: a server vanishes mid-shard (its sshd and worker with it). */

let root: string;
let standin: HetznerStandin;
let web: FixtureWeb;
const HCLOUD_TOKEN = `hcloud-chaos-${randomBytes(16).toString('hex')}`;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'cah-swarm-chaos-'));
  standin = await HetznerStandin.start({ dir: join(root, 'standin'), actionDelayMs: 100 });
  standin.addProject(HCLOUD_TOKEN);
  // Slow pages keep every shard busy for seconds: there is time to lose a server in the middle of one.
  web = await startFixtureWeb(join(root, 'web'), { seed: 41, shards: 4, pagesPerShard: 6, hangMs: 1500, maxImageBytes: 2_000_000 });
});

after(async () => {
  await web?.close();
  await standin?.close();
  rmSync(root, { recursive: true, force: true });
});

const env = () => ({ HCLOUD_TOKEN, HCLOUD_ENDPOINT: standin.url, CAH_SWARM_SSH_PORT: String(standin.sshPort) });

function withStore<T>(state: string, fn: (store: Store) => T): T {
  const store = Store.openInStateDir(state, { readonly: true });
  try {
    return fn(store);
  } finally {
    store.close();
  }
}

async function until(what: string, check: () => boolean, timeoutMs: number, context: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${context()}`);
    await sleep(200);
  }
}

test('a swarm server deleted mid-shard: its lease returns, another worker finishes the shard, the server is replaced', async () => {
  const state = join(root, 'state');
  const up = await runCli(['--state', state, 'swarm', 'up', '2', 'fsn1', '--name', 'chaos'], { env: env(), timeoutMs: 180_000 });
  assert.equal(up.code, 0, up.stdout + up.stderr);
  assert.equal((await runCli(['--state', state, 'shards', 'add', ...web.shardPaths], { env: env() })).code, 0);

  const gpu = startCli(
    ['--state', state, 'gpu', '--no-dashboard', '--listen', '127.0.0.1:0', '--out', join(root, 'out'), '--allow-loopback',
      '--heartbeat-timeout-ms', '4000', '--lease-ms', '8000', '--download-timeout-ms', '3000', '--per-host-rps', '500',
      '--per-host-concurrency', '4', '--max-image-bytes', '2000000', '--replace-after-ms', '2000'],
    { env: { HCLOUD_TOKEN, HCLOUD_ENDPOINT: standin.url } },
  );
  let log = '';
  gpu.child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  gpu.child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  const context = (): string => `${log.slice(-3000)}\n${JSON.stringify(withStore(state, (s) => s.shards.list().map((r) => [r.id, r.state, r.leaseOwner, r.attempts])))}`;
  try {
    let victimShard = -1;
    await until(
      'a shard leased to cah-chaos-1',
      () => {
        const leased = withStore(state, (s) => s.shards.list().find((r) => r.state === 'leased' && r.leaseOwner === 'cah-chaos-1'));
        if (leased) victimShard = leased.id;
        return leased !== undefined;
      },
      120_000,
      context,
    );
    const lost = await standin.destroyServer('cah-chaos-1');

    await until('every shard done', () => withStore(state, (s) => s.shards.counts().done) === 4, 240_000, context);
    await until(
      'cah-chaos-1 replaced and its new worker alive',
      () => {
        const again = standin.allServers.filter((s) => s.name === 'cah-chaos-1' && s.id !== lost.id && s.status === 'running');
        return again.length === 1 && withStore(state, (s) => s.actors.get('cah-chaos-1')?.state) === 'ALIVE';
      },
      240_000,
      context,
    );
    const shard = withStore(state, (s) => s.shards.list().find((r) => r.id === victimShard))!;
    assert.equal(shard.state, 'done');
    assert.ok(shard.attempts >= 2, `the lost attempt was not the last: ${shard.attempts} attempt(s)`);
    assert.deepEqual(withStore(state, (s) => s.shards.counts()), { queued: 0, leased: 0, done: 4, failed: 0 });
    assert.match(log, /replacing the server/);
  } finally {
    gpu.child.kill('SIGTERM');
    await gpu.done;
  }
  const down = await runCli(['--state', state, 'swarm', 'down', '--name', 'chaos', '--yes'], { env: env(), timeoutMs: 120_000 });
  assert.equal(down.code, 0, down.stderr);
  assert.equal(standin.project(HCLOUD_TOKEN).servers.size, 0);
  assert.equal(standin.liveHosts().length, 0);
  assert.deepEqual(standin.violations, []);
});
