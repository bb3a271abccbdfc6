import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_WORKER_SETTINGS } from '../src/coordinator/settings.js';
import { startFixtureWeb, type FixtureWeb } from '../src/demo/fixture-web.js';
import { Store } from '../src/store/state-file.js';
import { KnownHosts } from '../src/swarm/ssh.js';
import { generateEd25519KeyPair } from '../src/swarm/state.js';
import { HostLink } from '../src/swarm/tunnel.js';
import { runCli, startCli } from './support/cli.js';
import { startTestCoordinator, TEST_TOKEN } from './support/coordinator.js';
import { readAllParquet, readAllTarEntries } from './support/dataset.js';
import { DelayProxy } from './support/delay-proxy.js';
import { freePort } from './support/free-port.js';
import { SSHD, SshdHost } from './support/sshd-host.js';

let root: string;
let web: FixtureWeb;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'cah-link-'));
  web = await startFixtureWeb(join(root, 'web'), { seed: 23, shards: 3, pagesPerShard: 10, hangMs: 4000, maxImageBytes: 2_000_000 });
});

after(async () => {
  await web.close();
  rmSync(root, { recursive: true, force: true });
});

/** `cah gpu` listening on loopback, no local workers; and the worker token it made. */
async function startCoordinator(name: string): Promise<{ gpu: ReturnType<typeof startCli>; port: number; token: string; state: string; out: string }> {
  const state = join(root, `state-${name}`);
  const out = join(root, `out-${name}`);
  const added = await runCli(['--state', state, 'shards', 'add', ...web.shardPaths]);
  assert.equal(added.code, 0, added.stderr);
  const port = await freePort();
  const gpu = startCli([
    '--state', state, 'gpu', '--listen', `127.0.0.1:${port}`, '--allow-loopback', '--no-dashboard', '--out', out,
    '--download-timeout-ms', '2500', '--per-host-rps', '500', '--per-host-concurrency', '8', '--max-image-bytes', '2000000', '--heartbeat-timeout-ms', '8000',
  ]);
  const tokenFile = join(state, 'worker-token');
  for (let i = 0; i < 600 && !existsSync(tokenFile); i++) await sleep(50);
  return { gpu, port, token: readFileSync(tokenFile, 'utf8').trim(), state, out };
}

/** The worker exits once no shard is left (--exit-when-drained); then the coordinator is stopped. */
async function finish(run: Awaited<ReturnType<typeof startCoordinator>>, worker: ReturnType<typeof startCli>): Promise<void> {
  const timer = setTimeout(() => worker.child.kill('SIGKILL'), 150_000);
  const w = await worker.done;
  clearTimeout(timer);
  run.gpu.child.kill('SIGTERM');
  // A hang detector, not a timing: the coordinator exits within seconds of SIGTERM, whatever its peers' links do.
  let hung = false;
  const stopTimer = setTimeout(() => {
    hung = true;
    run.gpu.child.kill('SIGKILL');
  }, 60_000);
  const gpu = await run.gpu.done;
  clearTimeout(stopTimer);
  assert.equal(w.code, 0, w.stderr.slice(-3000));
  assert.ok(!hung, 'cah gpu did not exit within 60 s of SIGTERM');
  assert.equal(gpu.signal ?? gpu.code, 0, gpu.stderr.slice(-3000));
}

/** The dataset holds every expected key exactly once, with its expected status, and the tars exactly the successes. */
async function assertExactOutput(out: string): Promise<void> {
  const rows = await readAllParquet(out);
  const keys = rows.map((r) => r.key);
  assert.equal(new Set(keys).size, keys.length, 'no key written twice');
  assert.deepEqual([...keys].sort(), web.groundTruth.map((t) => t.key).sort(), 'exactly the expected keys');
  const byKey = new Map(rows.map((r) => [r.key, r]));
  for (const t of web.groundTruth) assert.equal(byKey.get(t.key)!.status, t.status, `${t.key} (${t.fault ?? 'no fault'}): ${byKey.get(t.key)!.error_message}`);
  const jpgs = (await readAllTarEntries(out)).filter((e) => e.name.endsWith('.jpg')).map((e) => e.name.slice(0, -4)).sort();
  assert.deepEqual(jpgs, web.groundTruth.filter((t) => t.status === 'success').map((t) => t.key).sort());
}

test('a worker dialing the coordinator through a 30 ms link completes every shard with exact output', async () => {
  const run = await startCoordinator('delay');
  const proxy = await DelayProxy.start({ targetPort: run.port, rttMs: 30, lifetimeMs: 240_000 });
  try {
    const worker = startCli(['worker', '--coordinator', proxy.address, '--exit-when-drained'], { env: { CAH_WORKER_TOKEN: run.token } });
    await finish(run, worker);
    assert.ok(proxy.bytes.up > 100_000, `the samples went through the delayed link (${proxy.bytes.up} bytes)`);
  } finally {
    await proxy.close();
  }
  await assertExactOutput(run.out);
  const store = Store.openInStateDir(run.state, { readonly: true });
  assert.deepEqual(store.shards.counts(), { queued: 0, leased: 0, done: web.shardPaths.length, failed: 0 });
  store.close();
});

test('a link cut while samples are streaming still ends with exact output', async () => {
  const run = await startCoordinator('cut');
  const proxy = await DelayProxy.start({ targetPort: run.port, rttMs: 20, lifetimeMs: 240_000 });
  let cuts = 0;
  try {
    const worker = startCli(['worker', '--coordinator', proxy.address, '--exit-when-drained'], { env: { CAH_WORKER_TOKEN: run.token } });
    // Cut twice, each time once a fresh ~60 KB of samples has gone up the link.
    const cutter = (async () => {
      let mark = 0;
      while (cuts < 2 && worker.child.exitCode === null) {
        await sleep(20);
        if (proxy.bytes.up - mark > 60_000) {
          proxy.cut();
          cuts++;
          mark = proxy.bytes.up;
        }
      }
    })();
    await finish(run, worker);
    await cutter;
  } finally {
    await proxy.close();
  }
  assert.ok(cuts >= 1, 'the link was cut mid-stream');
  assert.ok(proxy.accepted > 1, 'the worker dialed again after the cut');
  await assertExactOutput(run.out);
});

test('a link that goes silent while samples are streaming (no reset, nothing relayed) is found dead by keepalives; the output is exact', async () => {
  const run = await startCoordinator('stall');
  const proxy = await DelayProxy.start({ targetPort: run.port, rttMs: 20, lifetimeMs: 240_000 });
  let stalled = false;
  try {
    const worker = startCli(['worker', '--coordinator', proxy.address, '--exit-when-drained'], { env: { CAH_WORKER_TOKEN: run.token } });
    // Once samples flow, every connection of the worker (its calls and its sample stream) goes silent.
    const staller = (async () => {
      while (!stalled && worker.child.exitCode === null) {
        await sleep(20);
        if (proxy.bytes.up > 60_000) {
          proxy.stall();
          stalled = true;
        }
      }
    })();
    await finish(run, worker);
    await staller;
  } finally {
    await proxy.close();
  }
  assert.ok(stalled, 'the link went silent mid-stream');
  assert.ok(proxy.accepted > 2, 'the worker dialed again once its connections were found dead');
  await assertExactOutput(run.out);
});

test(
  'a worker through the SSH reverse tunnel, its link cut mid-stream, still ends with exact output',
  { skip: existsSync(SSHD) ? false : `no sshd at ${SSHD} (install openssh-server); the tunnel's channel handling is still run by the swarm supervisor tests` },
  async () => {
    // The worker's host is a real sshd on its own loopback address; the coordinator's SSH link reaches it through a 20 ms proxy.
    const c = await startTestCoordinator({
      settings: {
        heartbeatTimeoutMs: 8000,
        worker: { ...DEFAULT_WORKER_SETTINGS, allowLoopback: true, downloadTimeoutMs: 2500, perHostRps: 500, perHostConcurrency: 8, maxImageBytes: 2_000_000 },
      },
    });
    c.store.shards.add(web.shardPaths);
    const keys = generateEd25519KeyPair();
    const address = '127.0.0.61';
    const host = await SshdHost.start({ root: join(root, 'tunnel-host'), configDir: join(root, 'tunnel-sshd'), address, port: await freePort(), authorizedKeys: [keys.public] });
    const proxy = await DelayProxy.start({ targetPort: host.opts.port, targetHost: address, rttMs: 20, lifetimeMs: 240_000 });
    const tunnelPort = await freePort();
    const link = new HostLink({
      target: { name: 'tunnel-test', host: '127.0.0.1', port: proxy.port },
      privateKey: keys.private,
      knownHosts: new KnownHosts(join(root, 'tunnel-known_hosts')),
      tunnel: { bind: address, port: tunnelPort, serve: (connection) => c.coordinator.serveConnection(connection) },
      log: () => undefined,
      minRetryMs: 100,
      maxRetryMs: 500,
    });
    link.start();
    let cuts = 0;
    try {
      for (let i = 0; i < 200 && !link.isOpen; i++) await sleep(50);
      assert.ok(link.isOpen, 'the tunnel opened');
      const worker = startCli(['worker', '--coordinator', `${address}:${tunnelPort}`, '--exit-when-drained'], { env: { CAH_WORKER_TOKEN: TEST_TOKEN } });
      const timer = setTimeout(() => worker.child.kill('SIGKILL'), 150_000);
      // Cut the SSH connection twice, each time once a fresh ~60 KB of samples has come down it (the
      // coordinator dialed the host, so samples flow target → client): the tunnel and every stream in it drop.
      let mark = 0;
      while (worker.child.exitCode === null && worker.child.signalCode === null) {
        await sleep(20);
        if (cuts < 2 && proxy.bytes.down - mark > 60_000) {
          proxy.cut();
          cuts++;
          mark = proxy.bytes.down;
        }
      }
      const w = await worker.done;
      clearTimeout(timer);
      assert.equal(w.code, 0, w.stderr.slice(-3000));
      assert.deepEqual(c.store.shards.counts(), { queued: 0, leased: 0, done: web.shardPaths.length, failed: 0 });
    } finally {
      await link.close();
      await proxy.close();
      await host.stop();
      await c.close(false);
    }
    assert.ok(cuts >= 1, 'the link was cut mid-stream');
    assert.ok(proxy.accepted > 1, 'the coordinator opened the tunnel again after the cut');
    await assertExactOutput(c.outDir);
  },
);
