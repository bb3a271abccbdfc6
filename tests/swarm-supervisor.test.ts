import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { bootstrapHost } from '../src/swarm/bootstrap.js';
import { projectIdOf } from '../src/swarm/hetzner/tokens.js';
import { HostKeyChangedError, KnownHosts, SshSession } from '../src/swarm/ssh.js';
import { ensureSshKeyPair, readSwarm, swarmDir, writeSwarm, type SwarmServerRecord } from '../src/swarm/state.js';
import { SwarmSupervisor, type SwarmActorEvent } from '../src/swarm/supervisor.js';
import { HetznerStandin } from './support/hetzner-standin.js';
import { SshdHost } from './support/sshd-host.js';

let dir: string;
/** What the tunnels lead to: a stand-in for the coordinator's gRPC server, answering every connection handed to it. */
const serveConnection = (connection: Duplex): void => {
  connection.end('coordinator here\n');
};
const hosts: SshdHost[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cah-supervisor-'));
});

after(async () => {
  await Promise.all(hosts.map((h) => h.stop()));
  rmSync(dir, { recursive: true, force: true });
});

async function until(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await sleep(50);
  }
}

/** Dials the tunnel's entrance on the host's side, as the worker does. */
function dial(address: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    const socket = connect(port, address);
    socket.on('data', (d) => (data += d.toString()));
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
  });
}

async function startHost(name: string, publicKey: string): Promise<{ host: SshdHost; record: SwarmServerRecord; port: number }> {
  let address = '';
  let port = 0;
  let host: SshdHost | null = null;
  // A random address and port; another try if something else holds that port.
  for (let attempt = 0; !host; attempt++) {
    address = `127.${randomInt(16, 250)}.${randomInt(1, 250)}.${randomInt(2, 250)}`;
    port = randomInt(20_000, 30_000);
    try {
      host = await SshdHost.start({ root: join(dir, name), configDir: join(dir, `${name}.sshd`), address, port, authorizedKeys: [publicKey] });
    } catch (err) {
      if (attempt >= 2) throw err;
    }
  }
  hosts.push(host);
  const record: SwarmServerRecord = { name, id: randomInt(1, 1e6), ip: address, project: 'p-test', location: 'fsn1', type: 'cx23', created: new Date().toISOString(), tunnelBind: address };
  return { host, record, port };
}

function record(state: string, swarm: string, sshPort: number, servers: SwarmServerRecord[]): void {
  writeSwarm(state, { swarm, location: 'fsn1', image: 'ubuntu-24.04', type: 'auto', sshPort, route: { mode: 'tunnel', port: 7443 }, servers });
}

test('the reverse tunnel leads from the host loopback to the coordinator port, and reopens after the link drops', async () => {
  const state = join(dir, 'state-tunnel');
  const pair = ensureSshKeyPair(state);
  const { host, record: server, port } = await startHost('cah-t-1', pair.publicKey);
  record(state, 't', port, [server]);
  const logs: string[] = [];
  const supervisor = new SwarmSupervisor({ stateDir: state, serveConnection, workerToken: 'w', log: (_o, m) => logs.push(m), isWorkerAlive: () => true, checkIntervalMs: 100 });
  await supervisor.start();
  try {
    await until('tunnel open', () => supervisor.servers()[0]?.tunnel === 'open');
    assert.deepEqual(supervisor.servers(), [{ name: 'cah-t-1', ip: server.ip, tunnel: 'open' }]);
    assert.equal(await dial(server.ip, 7443), 'coordinator here\n');

    await host.restart();
    await until('link lost', () => logs.some((m) => /lost: reconnecting/.test(m)));
    await until('tunnel reopened', () => supervisor.servers()[0]?.tunnel === 'open');
    assert.equal(await dial(server.ip, 7443), 'coordinator here\n');
  } finally {
    await supervisor.stop();
  }
  await assert.rejects(dial(server.ip, 7443), 'the tunnel closes with the supervisor');
});

test('a changed host key is refused: by the supervisor, by SSH sessions and by the bootstrap; the pin stays', async () => {
  const state = join(dir, 'state-key');
  const pair = ensureSshKeyPair(state);
  const { host, record: server, port } = await startHost('cah-k-1', pair.publicKey);
  record(state, 'k', port, [server]);
  const logs: string[] = [];
  const supervisor = new SwarmSupervisor({ stateDir: state, serveConnection, workerToken: 'w', log: (_o, m) => logs.push(m), isWorkerAlive: () => true, checkIntervalMs: 100 });
  await supervisor.start();
  const knownHosts = new KnownHosts(join(swarmDir(state), 'known_hosts'));
  try {
    await until('tunnel open', () => supervisor.servers()[0]?.tunnel === 'open');
    const pinned = knownHosts.pinned(server.ip, port);
    assert.ok(pinned?.startsWith('ssh-ed25519 '), 'pinned on first contact');
    assert.equal(pinned, host.hostPublicKey.split(' ').slice(0, 2).join(' '));

    await host.regenerateHostKey();
    await until('refused', () => logs.includes('host key changed: refusing to connect'));
    assert.equal(supervisor.servers()[0]?.tunnel, 'down');
    assert.equal(knownHosts.pinned(server.ip, port), pinned, 'the pin is not overwritten');
  } finally {
    await supervisor.stop();
  }
  const target = { name: 'cah-k-1', host: server.ip, port };
  await assert.rejects(SshSession.connect(target, { privateKey: pair.privateKey, knownHosts }), (err: unknown) => {
    assert.ok(err instanceof HostKeyChangedError);
    assert.match(err.message, /host key of cah-k-1 .* changed \(pinned SHA256:.*, presented SHA256:.*\): refusing/);
    return true;
  });
  const started = Date.now();
  await assert.rejects(
    bootstrapHost(target, {
      privateKey: pair.privateKey,
      knownHosts,
      bundle: { id: 'x', packPath: '/nonexistent', modulesPath: '/nonexistent', platform: 'none' },
      workerToken: 'w',
      route: { mode: 'tunnel', port: 7443 },
      connectDeadline: Date.now() + 60_000,
      log: () => undefined,
    }),
    HostKeyChangedError,
  );
  assert.ok(Date.now() - started < 20_000, 'a changed key is not retried like a booting server');
});

test('a dead worker is restarted over SSH, then its server is deleted and recreated', async () => {
  const standin = await HetznerStandin.start({ dir: join(dir, 'standin'), actionDelayMs: 50 });
  try {
    const token = 'tok-replace';
    standin.addProject(token);
    const state = join(dir, 'state-replace');
    const pair = ensureSshKeyPair(state);
    standin.project(token).sshKeys.set(1, { id: 1, name: 'cah-r', fingerprint: pair.fingerprint, public_key: pair.publicKey, labels: { 'cah-swarm': 'r' }, created: new Date().toISOString() });
    const old = await standin.seedServer(token, { name: 'cah-r-1', labels: { 'cah-swarm': 'r' }, host: true, keys: [pair.publicKey] });
    // The host's worker control script, recording what it is asked to do.
    mkdirSync(join(old.root!, 'opt', 'cah', 'bin'), { recursive: true });
    writeFileSync(join(old.root!, 'opt', 'cah', 'bin', 'cah-worker-ctl'), '#!/bin/sh\necho "$@" >> "$CAH_HOST_ROOT/ctl.log"\n');
    chmodSync(join(old.root!, 'opt', 'cah', 'bin', 'cah-worker-ctl'), 0o755);
    record(state, 'r', standin.sshPort, [
      { name: 'cah-r-1', id: old.id, ip: old.ip, project: projectIdOf(token), location: 'fsn1', type: 'cpx22', created: old.created, tunnelBind: old.ip },
    ]);

    const events: SwarmActorEvent[] = [];
    const supervisor = new SwarmSupervisor({
      stateDir: state,
      serveConnection,
      workerToken: 'w',
      log: () => undefined,
      isWorkerAlive: () => false,
      onActorEvent: (e) => events.push(e),
      restartAfterMs: 300,
      replaceAfterMs: 2500,
      checkIntervalMs: 100,
      accounts: [{ token, project: projectIdOf(token) }],
      fleet: { endpoint: standin.url, retry: { baseDelayMs: 5 }, pollIntervalMs: 20 },
    });
    await supervisor.start();
    try {
      await until('restart over SSH', () => events.some((e) => e.state === 'RESTARTING'));
      await until('ctl called', () => {
        try {
          return readFileSync(join(old.root!, 'ctl.log'), 'utf8') === 'restart\n';
        } catch {
          return false;
        }
      });
      await until('recreated', () => (readSwarm(state, 'r')?.servers[0]?.id ?? old.id) !== old.id, 30_000);
    } finally {
      await supervisor.stop();
    }
    assert.deepEqual(events.slice(0, 4).map((e) => e.state), ['PENDING_CREATION', 'RESTARTING', 'DEAD', 'PENDING_CREATION']);
    assert.ok(events.every((e) => e.server === 'cah-r-1'));
    assert.equal(readFileSync(join(old.root!, 'ctl.log'), 'utf8'), 'restart\n', 'restarted once, not on every check');
    const servers = [...standin.project(token).servers.values()];
    assert.equal(servers.length, 1);
    assert.equal(servers[0]!.name, 'cah-r-1');
    assert.notEqual(servers[0]!.id, old.id);
    assert.deepEqual(servers[0]!.labels, { 'cah-swarm': 'r' });
    assert.equal(old.host, null, 'the old server was deleted');
    const rec = readSwarm(state, 'r')!.servers[0]!;
    assert.equal(rec.ip, servers[0]!.ip);
    assert.deepEqual(standin.violations, []);
  } finally {
    await standin.close();
  }
});
