import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { Coordinator } from '../src/coordinator/head.js';
import { DEFAULT_COORDINATOR_SETTINGS } from '../src/coordinator/settings.js';
import { startFixtureWeb, type FixtureWeb } from '../src/demo/fixture-web.js';
import { PassThroughFilter } from '../src/filter/pair-filter.js';
import { FilterStage } from '../src/filter/stage.js';
import { Store } from '../src/store/state-file.js';
import { coordinatorCertPaths, ensureCoordinatorCertificate } from '../src/swarm/tls.js';
import { CoordinatorClient, isStatus } from '../src/worker/rpc.js';
import { runCli, startCli } from './support/cli.js';
import { HetznerStandin } from './support/hetzner-standin.js';
import { pidsWithEnv } from './support/sshd-host.js';
import { freePort } from './support/free-port.js';
import { streamAll, wireSample } from './support/coordinator.js';

let root: string;
let standin: HetznerStandin;
let web: FixtureWeb;
const HCLOUD_TOKEN = `hcloud-direct-${randomBytes(16).toString('hex')}`;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'cah-swarm-direct-'));
  standin = await HetznerStandin.start({ dir: join(root, 'standin'), actionDelayMs: 50 });
  standin.addProject(HCLOUD_TOKEN);
  web = await startFixtureWeb(join(root, 'web'), { seed: 31, shards: 2, pagesPerShard: 5, hangMs: 2000, maxImageBytes: 2_000_000 });
});

after(async () => {
  await web?.close();
  await standin?.close();
  rmSync(root, { recursive: true, force: true });
});

test('the coordinator serves TLS with its certificate: a worker pinning it gets in (calls and bulk sample stream), plain text and other certificates do not', async () => {
  const state = join(root, 'state-tls');
  const cert = await ensureCoordinatorCertificate(state, '127.0.0.1');
  const other = await ensureCoordinatorCertificate(join(root, 'state-other'), '127.0.0.1');
  const { keyPath } = coordinatorCertPaths(state);
  const store = Store.open(join(state, 'cah.sqlite'));
  const stage = new FilterStage(new PassThroughFilter(), { batchSize: 4, maxWaitMs: 5, capacity: 64 });
  const token = 't'.repeat(64);
  const coordinator = new Coordinator({ store, outDir: join(root, 'out-tls'), workerToken: token, filter: stage, settings: DEFAULT_COORDINATOR_SETTINGS, logger: pino({ level: 'silent' }) });
  const tlsPort = await freePort();
  await coordinator.start('127.0.0.1:0', { address: `127.0.0.1:${tlsPort}`, certPem: Buffer.from(cert.certPem), keyPem: readFileSync(keyPath) });
  const register = (client: CoordinatorClient) =>
    client.register({ version: 't', host: 'h', pid: 1, actorId: 'direct-1' });
  const pinned = new CoordinatorClient(`127.0.0.1:${tlsPort}`, token, Buffer.from(cert.certPem));
  const plain = new CoordinatorClient(`127.0.0.1:${tlsPort}`, token);
  const wrongCa = new CoordinatorClient(`127.0.0.1:${tlsPort}`, token, Buffer.from(other.certPem));
  const wrongToken = new CoordinatorClient(`127.0.0.1:${tlsPort}`, 'x'.repeat(64), Buffer.from(cert.certPem));
  try {
    assert.equal((await register(pinned)).actorId, 'direct-1');
    await assert.rejects(register(plain), (err) => isStatus(err, grpc.status.UNAVAILABLE), 'plain text is not served on the TLS port');
    await assert.rejects(register(wrongCa), (err) => isStatus(err, grpc.status.UNAVAILABLE), 'a certificate other than the pinned one is refused');
    await assert.rejects(register(wrongToken), (err) => isStatus(err, grpc.status.UNAUTHENTICATED), 'TLS does not replace the worker token');
    // The bulk sample stream goes over its own connection with the same pinning.
    store.shards.add(['/data/tls.wat.gz']);
    const lease = (await pinned.leaseShard({ actorId: 'direct-1' })).shard!;
    const header = { actorId: 'direct-1', shardId: lease.shardId, fencingToken: lease.fencingToken };
    await streamAll(pinned, header, [wireSample('over-tls')]);
    const done = await pinned.completeShard({ ...header, samplesSent: 1, extraction: null, sourceErrors: [] });
    assert.equal(done.kept, 1, 'the sample sent on the bulk stream over TLS was kept');
    for (const [client, why] of [
      [plain, 'plain text is not served on the TLS port'],
      [wrongCa, 'a certificate other than the pinned one is refused'],
    ] as const) {
      const stream = client.streamSamples();
      const ended = new Promise<void>((resolve, reject) => stream.on('end', resolve).on('error', reject));
      stream.write({ ...header, samples: [] });
      await assert.rejects(ended, (err) => isStatus(err, grpc.status.UNAVAILABLE), why);
    }
  } finally {
    for (const c of [pinned, plain, wrongCa, wrongToken]) c.close();
    await coordinator.stop('test done');
    await stage.close();
    store.close();
  }
});

test('swarm up --direct: workers dial cah gpu over TLS with the pinned certificate, no tunnel; down removes them', async () => {
  const state = join(root, 'state');
  const port = await freePort();
  const env = { HCLOUD_TOKEN, HCLOUD_ENDPOINT: standin.url, CAH_SWARM_SSH_PORT: String(standin.sshPort) };
  const up = await runCli(['--state', state, 'swarm', 'up', '2', 'fsn1', '--name', 'direct', '--direct', `127.0.0.1:${port}`], { env, timeoutMs: 180_000 });
  assert.equal(up.code, 0, up.stdout + up.stderr);
  const servers = standin.allServers.filter((s) => s.labels['cah-swarm'] === 'direct');
  assert.equal(servers.length, 2);
  const certPem = readFileSync(coordinatorCertPaths(state).certPath, 'utf8');
  for (const server of servers) {
    const workerEnv = readFileSync(join(server.root!, 'etc', 'cah', 'worker.env'), 'utf8');
    assert.match(workerEnv, new RegExp(`^CAH_COORDINATOR=127\\.0\\.0\\.1:${port}$`, 'm'));
    assert.match(workerEnv, /^CAH_COORDINATOR_CA=.*coordinator-ca\.pem$/m);
    assert.equal(readFileSync(join(server.root!, 'etc', 'cah', 'coordinator-ca.pem'), 'utf8'), certPem, 'the pinned certificate is the coordinator\'s');
    assert.ok(!server.userData.includes(HCLOUD_TOKEN));
  }

  assert.equal((await runCli(['--state', state, 'shards', 'add', ...web.shardPaths])).code, 0);
  const gpu = startCli(
    ['--state', state, 'gpu', '--no-dashboard', '--listen', '127.0.0.1:0', '--tls-listen', `127.0.0.1:${port}`, '--out', join(root, 'out'),
      '--allow-loopback', '--heartbeat-timeout-ms', '10000', '--download-timeout-ms', '1500', '--per-host-rps', '500', '--max-restarts', '0'],
    { env },
  );
  const snapshot = (): { done: number; alive: string[] } => {
    const store = Store.openInStateDir(state, { readonly: true });
    try {
      return { done: store.shards.counts().done, alive: store.actors.list().filter((a) => a.state === 'ALIVE').map((a) => a.id).sort() };
    } finally {
      store.close();
    }
  };
  const deadline = Date.now() + 90_000;
  let seen = snapshot();
  while (Date.now() < deadline && (seen.done < 2 || seen.alive.length < 2)) {
    await sleep(250);
    seen = snapshot();
  }
  gpu.child.kill('SIGTERM');
  const result = await gpu.done;
  assert.equal(result.code, 0, result.stderr.slice(-3000));
  assert.match(result.stderr + result.stdout, /serving TLS for workers that dial in directly/);
  assert.deepEqual(seen.alive, ['cah-direct-1', 'cah-direct-2'], `both swarm workers registered over TLS\n${result.stderr.slice(-2000)}`);
  assert.equal(seen.done, 2);

  const down = await runCli(['--state', state, 'swarm', 'down', '--name', 'direct', '--yes'], { env, timeoutMs: 120_000 });
  assert.equal(down.code, 0, down.stderr);
  for (const server of servers) assert.deepEqual(pidsWithEnv('CAH_HOST_ROOT', server.root!), [], `${server.name}: no process left`);
  assert.ok(existsSync(coordinatorCertPaths(state).certPath));
  assert.deepEqual(standin.violations, []);
});
