import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startFixtureWeb, type FixtureWeb } from '../src/demo/fixture-web.js';
import { Store } from '../src/store/state-file.js';
import { runCli, startCli } from './support/cli.js';
import { HetznerStandin, type StandinServer } from './support/hetzner-standin.js';
import { pidsWithEnv } from './support/sshd-host.js';

let root: string;
let standin: HetznerStandin;
let web: FixtureWeb;
const HCLOUD_TOKEN = `hcloud-e2e-${randomBytes(16).toString('hex')}`;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'cah-swarm-e2e-'));
  standin = await HetznerStandin.start({ dir: join(root, 'standin'), actionDelayMs: 100 });
  standin.addProject(HCLOUD_TOKEN);
  web = await startFixtureWeb(join(root, 'web'), { seed: 23, shards: 3, pagesPerShard: 5, hangMs: 2000, maxImageBytes: 2_000_000 });
});

after(async () => {
  await web?.close();
  await standin?.close();
  rmSync(root, { recursive: true, force: true });
});

function cah(state: string, args: string[], timeoutMs = 180_000) {
  return runCli(['--state', state, ...args], {
    env: { HCLOUD_TOKEN, HCLOUD_ENDPOINT: standin.url, CAH_SWARM_SSH_PORT: String(standin.sshPort) },
    timeoutMs,
  });
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

/** The end of a host's worker log, for failure messages. */
function workerLog(server: StandinServer): string {
  const file = join(server.root!, 'var', 'log', 'cah', 'worker.log');
  return existsSync(file) ? `${server.name}:\n${readFileSync(file, 'utf8').split('\n').slice(-8).join('\n')}` : `${server.name}: no log`;
}

/** The worker process of a host, from its pid file. */
function workerPid(server: StandinServer): number | null {
  const pidFile = join(server.root!, 'run', 'cah', 'worker.pid');
  if (!existsSync(pidFile)) return null;
  const pid = Number(readFileSync(pidFile, 'utf8'));
  return existsSync(`/proc/${pid}`) ? pid : null;
}

test('swarm up 3 → workers connect through the tunnels and process the shards → swarm down leaves nothing of the swarm and nothing else touched', async () => {
  const state = join(root, 'state');
  const unrelated = await standin.seedServer(HCLOUD_TOKEN, { name: 'db-prod', host: true });
  const otherSwarm = await standin.seedServer(HCLOUD_TOKEN, { name: 'cah-other-1', labels: { 'cah-swarm': 'other' }, host: true });

  const up = await cah(state, ['swarm', 'up', '3', 'fsn1', '--name', 'e2e']);
  assert.equal(up.code, 0, up.stdout + up.stderr);
  assert.match(up.stdout, /3\/3 servers of swarm e2e run a worker/);
  assert.match(up.stdout, /^ {2}fsn1: 3 server\(s\) \d+\.\d{4} €\/h \+ 3 Primary IPv4 \d+\.\d{4} €\/h = \d+\.\d{4} €\/h/m);
  assert.match(up.stdout, /total \d+\.\d{4} €\/h gross/);
  const swarm = standin.allServers.filter((s) => s.labels['cah-swarm'] === 'e2e');
  assert.deepEqual(swarm.map((s) => s.name).sort(), ['cah-e2e-1', 'cah-e2e-2', 'cah-e2e-3']);
  assert.ok(swarm.every((s) => s.serverType === 'cx23' && s.location === 'fsn1'), 'auto picked the cheapest orderable x86 type');

  const workerToken = readFileSync(join(state, 'worker-token'), 'utf8').trim();
  for (const server of swarm) {
    const pid = workerPid(server);
    assert.ok(pid, `${server.name}: worker running`);
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    assert.ok(cmdline.some((a) => a.endsWith('dist/src/cli/main.js')) && cmdline.includes('worker'));
    assert.deepEqual(cmdline.slice(cmdline.indexOf('--actor-id'), cmdline.indexOf('--actor-id') + 2), ['--actor-id', server.name]);
    assert.ok(cmdline.includes(`${server.ip}:7443`), 'dials the tunnel on its own loopback');
    assert.ok(!cmdline.join(' ').includes(workerToken), 'the worker token is not on the command line');
    const env = join(server.root!, 'etc', 'cah', 'worker.env');
    assert.equal(statSync(env).mode & 0o777, 0o600);
    assert.match(readFileSync(env, 'utf8'), new RegExp(`^CAH_WORKER_TOKEN=${workerToken}$`, 'm'));
    assert.ok(!existsSync(join(server.root!, 'opt', 'cah', 'current', 'node_modules', 'better-sqlite3')), 'no SQLite in the worker bundle');
    assert.ok(!existsSync(join(server.root!, 'opt', 'cah', 'current', 'node_modules', 'onnxruntime-node')), 'no ONNX Runtime in the worker bundle');
    assert.ok(!server.userData.includes(workerToken) && !server.userData.includes(HCLOUD_TOKEN), 'cloud-init user data holds no secret');
    assert.match(server.userData, /^#cloud-config/);
  }

  // Idempotent: a second run creates nothing and restarts nothing.
  const pidsBefore = swarm.map(workerPid);
  const again = await cah(state, ['swarm', 'up', '3', 'fsn1', '--name', 'e2e', '--json']);
  assert.equal(again.code, 0, again.stderr);
  const report = JSON.parse(again.stdout) as {
    servers: { name: string; status: string; hourlyGross: number }[];
    hourlyGross: number;
    cost: { location: string; serversHourly: number; ipv4Hourly: number; hourly: number }[];
  };
  assert.deepEqual(report.servers.map((s) => s.status), ['existing', 'existing', 'existing']);
  assert.ok(report.servers.every((s) => s.hourlyGross > 0), 'each server priced from the API');
  assert.equal(report.cost.length, 1);
  assert.ok(Math.abs(report.cost[0]!.serversHourly - report.servers.reduce((a, s) => a + s.hourlyGross, 0)) < 1e-9);
  assert.ok(report.cost[0]!.ipv4Hourly > 0, 'each server\'s Primary IPv4 is billed too');
  assert.ok(Math.abs(report.hourlyGross - report.cost[0]!.serversHourly - report.cost[0]!.ipv4Hourly) < 1e-9);
  assert.deepEqual(swarm.map(workerPid), pidsBefore, `the workers were left running\n${again.stderr}\n${swarm.map(workerLog).join('\n')}`);
  assert.equal(standin.allServers.length, 5);

  // The real `cah gpu`: it opens the reverse tunnels to the recorded swarm and shows its servers as actors.
  assert.equal((await cah(state, ['shards', 'add', ...web.shardPaths])).code, 0);
  const gpu = startCli(
    ['--state', state, 'gpu', '--no-dashboard', '--listen', '127.0.0.1:0', '--out', join(root, 'out'), '--allow-loopback',
      '--heartbeat-timeout-ms', '10000', '--download-timeout-ms', '1500', '--per-host-rps', '500', '--per-host-concurrency', '8',
      '--max-image-bytes', '2000000', '--max-restarts', '0'],
    { env: { HCLOUD_TOKEN, HCLOUD_ENDPOINT: standin.url } },
  );
  const swarmActors = (): { id: string; state: string; pid: number | null }[] => {
    const store = Store.openInStateDir(state, { readonly: true });
    try {
      return store.actors.list().filter((a) => a.kind === 'swarm');
    } finally {
      store.close();
    }
  };
  const shardsDone = (): number => {
    const store = Store.openInStateDir(state, { readonly: true });
    try {
      return store.shards.counts().done;
    } finally {
      store.close();
    }
  };
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline && (shardsDone() < 3 || swarmActors().filter((a) => a.state === 'ALIVE').length < 3)) await sleep(250);
  const actorsWhileRunning = swarmActors();
  gpu.child.kill('SIGTERM');
  const gpuResult = await gpu.done;
  assert.equal(gpuResult.code, 0, gpuResult.stderr.slice(-3000));
  assert.match(gpuResult.stdout + gpuResult.stderr, /holding the swarm/);
  assert.deepEqual(
    actorsWhileRunning.map((a) => [a.id, a.state]).sort(),
    [['cah-e2e-1', 'ALIVE'], ['cah-e2e-2', 'ALIVE'], ['cah-e2e-3', 'ALIVE']],
    `every swarm worker registered through its tunnel\n${gpuResult.stderr.slice(-3000)}\n${swarm.map(workerLog).join('\n')}`,
  );
  const store = Store.openInStateDir(state, { readonly: true });
  assert.deepEqual(store.shards.counts(), { queued: 0, leased: 0, done: 3, failed: 0 });
  assert.ok(store.shards.list().every((s) => s.downloaded > 0));
  store.close();

  const status = await cah(state, ['status', '--json']);
  assert.equal(status.code, 0, status.stderr);
  const cost = (JSON.parse(status.stdout) as { cost: { servers: number; unpriced: number; hourlyGross: number; runGross: number; keptPerEuro: number | null } }).cost;
  assert.equal(cost.servers, 3);
  assert.equal(cost.unpriced, 0, 'every server recorded with its price');
  assert.ok(Math.abs(cost.hourlyGross - report.hourlyGross) < 1e-9, 'the €/h that up reported');
  assert.ok(cost.runGross > 0 && cost.keptPerEuro !== null && cost.keptPerEuro > 0);

  const ls = await cah(state, ['swarm', 'ls', '--json']);
  assert.equal(ls.code, 0, ls.stderr);
  const rows = JSON.parse(ls.stdout) as { name: string; actor: { state: string } | null }[];
  assert.deepEqual(rows.map((r) => r.name), ['cah-e2e-1', 'cah-e2e-2', 'cah-e2e-3', 'cah-other-1']);
  assert.ok(rows.slice(0, 3).every((r) => r.actor !== null), 'joined with the actors table');
  assert.equal(rows[3]!.actor, null);

  // The Hetzner token reached no host: not in any file, process environment or log there.
  const logsOnHosts = swarm.flatMap((s) => filesUnder(join(s.root!, 'var', 'log')));
  assert.ok(logsOnHosts.length >= 3, 'the workers wrote logs');
  for (const server of swarm) {
    for (const file of filesUnder(server.root!)) assert.ok(!readFileSync(file).includes(HCLOUD_TOKEN), `token found in ${file}`);
    for (const pid of pidsWithEnv('CAH_HOST_ROOT', server.root!)) {
      assert.ok(!readFileSync(`/proc/${pid}/environ`).includes(HCLOUD_TOKEN), `token in the environment of pid ${pid}`);
    }
  }
  for (const file of filesUnder(join(root, 'standin')).filter((f) => f.endsWith('sshd.log'))) assert.ok(!readFileSync(file).includes(HCLOUD_TOKEN));

  const logsCmd = await cah(state, ['swarm', 'logs', 'cah-e2e-2']);
  assert.equal(logsCmd.code, 0, logsCmd.stderr);
  assert.match(logsCmd.stdout, /cah-e2e-2|registered|coordinator/i);

  const down = await cah(state, ['swarm', 'down', '--name', 'e2e', '--yes']);
  assert.equal(down.code, 0, down.stderr);
  for (const name of ['cah-e2e-1', 'cah-e2e-2', 'cah-e2e-3']) assert.match(down.stdout, new RegExp(`deleted ${name} `));
  const left = [...standin.project(HCLOUD_TOKEN).servers.values()].map((s) => s.name).sort();
  assert.deepEqual(left, ['cah-other-1', 'db-prod'], 'the unrelated servers are untouched');
  for (const server of swarm) assert.deepEqual(pidsWithEnv('CAH_HOST_ROOT', server.root!), [], `${server.name}: no process left`);
  assert.ok(unrelated.host && unrelated.host.processes().length > 0, 'the unrelated host still runs');
  assert.ok(otherSwarm.host && otherSwarm.host.processes().length > 0);

  const downAgain = await cah(state, ['swarm', 'down', '--name', 'e2e', '--yes']);
  assert.equal(downAgain.code, 0);
  assert.match(downAgain.stdout, /no servers to delete/);
  assert.deepEqual(standin.violations, []);
});
