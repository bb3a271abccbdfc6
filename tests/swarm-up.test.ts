import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectIdOf } from '../src/swarm/hetzner/tokens.js';
import { generateEd25519KeyPair, readSwarm } from '../src/swarm/state.js';
import { swarmUp } from '../src/swarm/up.js';
import { HetznerStandin } from './support/hetzner-standin.js';

let dir: string;
let standin: HetznerStandin;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cah-swarm-up-'));
  standin = await HetznerStandin.start({ dir: join(dir, 'standin'), actionDelayMs: 30, unreachable: ['cah-part-3'] });
});

after(async () => {
  await standin.close();
  rmSync(dir, { recursive: true, force: true });
});

test('partial failure: a full project and an unreachable host are reported per server, the rest runs workers', async () => {
  standin.addProject('tok-1', { serverLimit: 1 });
  standin.addProject('tok-2', { serverLimit: 2 });
  const state = join(dir, 'state');
  const log: string[] = [];
  const report = await swarmUp({
    stateDir: state,
    count: 4,
    location: 'nbg1',
    swarm: 'part',
    type: 'auto',
    image: 'ubuntu-24.04',
    accounts: ['tok-1', 'tok-2'].map((token) => ({ token, project: projectIdOf(token) })),
    endpoint: standin.url,
    retry: { baseDelayMs: 5 },
    pollIntervalMs: 20,
    sshPort: standin.sshPort,
    bootTimeoutMs: 3000,
    log: (_o, m) => log.push(m),
  });
  const all = JSON.stringify(report.servers, null, 1);
  assert.equal(report.ok, false);
  const byName = Object.fromEntries(report.servers.map((s) => [s.name, s]));
  assert.deepEqual(Object.keys(byName), ['cah-part-1', 'cah-part-2', 'cah-part-3', 'cah-part-4']);
  assert.equal(byName['cah-part-1']!.project, projectIdOf('tok-1'));
  assert.equal(byName['cah-part-2']!.project, projectIdOf('tok-2'), 'filled from the second token');
  for (const name of ['cah-part-1', 'cah-part-2']) {
    assert.equal(byName[name]!.status, 'created', all);
    assert.match(byName[name]!.detail!, /^worker running pid=\d+/);
  }
  assert.equal(byName['cah-part-3']!.status, 'failed', all);
  assert.match(byName['cah-part-3']!.detail!, /^bootstrap: .*(ECONNREFUSED|timed out)/i, all);
  assert.ok(log.includes('waiting for SSH'), 'the wait for a host that does not answer is shown');
  // The unreachable server bills like the others: it is in the cost.
  assert.deepEqual(report.cost.map((c) => [c.location, c.servers]), [['nbg1', 3]]);
  assert.ok(report.cost[0]!.ipv4Hourly > 0 && Math.abs(report.hourlyGross - report.cost[0]!.hourly) < 1e-9);
  assert.equal(byName['cah-part-4']!.status, 'failed', all);
  assert.match(byName['cah-part-4']!.detail!, /server limit exceeded.*Console → your project → Limits/, all);
  // Servers that exist are recorded, also the unreachable one: `up` retries its bootstrap, `down` deletes it.
  assert.deepEqual(readSwarm(state, 'part')!.servers.map((s) => s.name), ['cah-part-1', 'cah-part-2', 'cah-part-3']);
  const host = standin.allServers.find((s) => s.name === 'cah-part-1')!;
  assert.match(readFileSync(join(host.root!, 'etc', 'cah', 'worker.env'), 'utf8'), /^CAH_ACTOR_ID=cah-part-1$/m);
  assert.deepEqual(standin.violations, []);
});

test('a server cah just created replaces a stale known_hosts line for its reused IP; a changed key on an existing server is refused', async () => {
  standin.addProject('tok-kh');
  const state = join(dir, 'state-kh');
  const knownHosts = join(state, 'swarm', 'known_hosts');
  const ip = standin.nextIp();
  const stale = `[${ip}]:${standin.sshPort} ssh-ed25519 ${generateEd25519KeyPair().public.split(' ')[1]}`;
  mkdirSync(join(state, 'swarm'), { recursive: true, mode: 0o700 });
  writeFileSync(knownHosts, stale + '\n', { mode: 0o600 });
  const up = () =>
    swarmUp({
      stateDir: state,
      count: 1,
      location: 'fsn1',
      swarm: 'kh',
      type: 'auto',
      image: 'debian-13',
      accounts: [{ token: 'tok-kh', project: projectIdOf('tok-kh') }],
      endpoint: standin.url,
      retry: { baseDelayMs: 5 },
      pollIntervalMs: 20,
      sshPort: standin.sshPort,
      bootTimeoutMs: 20_000,
      log: () => undefined,
    });
  const first = await up();
  assert.equal(first.servers[0]!.ip, ip, 'the stand-in reused the address');
  assert.equal(first.servers[0]!.status, 'created', JSON.stringify(first.servers));
  const pinned = readFileSync(knownHosts, 'utf8');
  assert.ok(!pinned.includes(stale), 'the stale line is gone');
  assert.equal(pinned.trim().split('\n').length, 1);

  // Now the host is known: another key at its address is an attack or a rebuild cah did not do.
  writeFileSync(knownHosts, stale + '\n', { mode: 0o600 });
  const second = await up();
  assert.equal(second.servers[0]!.status, 'failed');
  assert.match(second.servers[0]!.detail!, /host key of cah-kh-1 .* changed/);
  assert.equal(readFileSync(knownHosts, 'utf8'), stale + '\n', 'the pin stays');
});
