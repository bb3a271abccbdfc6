import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { swarmDown } from '../src/swarm/down.js';
import { projectIdOf } from '../src/swarm/hetzner/tokens.js';
import { listSwarm } from '../src/swarm/ls.js';
import { ensureSshKeyPair, readSwarm, writeSwarm } from '../src/swarm/state.js';
import { HetznerStandin } from './support/hetzner-standin.js';

let dir: string;
let standin: HetznerStandin;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cah-down-'));
  standin = await HetznerStandin.start({ dir: join(dir, 'standin'), realHosts: false, actionDelayMs: 20 });
});

after(async () => {
  await standin.close();
  rmSync(dir, { recursive: true, force: true });
});

const accounts = (...tokens: string[]) => tokens.map((token) => ({ token, project: projectIdOf(token) }));
const common = () => ({ endpoint: standin.url, retry: { baseDelayMs: 5 }, pollIntervalMs: 10, log: () => undefined });

test('down deletes exactly the swarm across > 50 servers (all pages, two projects) and nothing else', async () => {
  const state = join(dir, 'state-big');
  const pair = ensureSshKeyPair(state);
  standin.addProject('tok-a', { serverLimit: 200 });
  standin.addProject('tok-b', { serverLimit: 200 });
  const mine: number[] = [];
  const theirs: number[] = [];
  for (let i = 1; i <= 70; i++) {
    const token = i <= 55 ? 'tok-a' : 'tok-b';
    mine.push((await standin.seedServer(token, { name: `cah-big-${i}`, labels: { 'cah-swarm': 'big' } })).id);
    if (i % 5 === 0) theirs.push((await standin.seedServer(token, { name: `web-${i}` })).id);
    if (i % 7 === 0) theirs.push((await standin.seedServer(token, { name: `cah-other-${i}`, labels: { 'cah-swarm': 'other' } })).id);
    if (i % 9 === 0) theirs.push((await standin.seedServer(token, { name: `tagged-${i}`, labels: { 'cah-swarm-x': 'big' } })).id);
  }
  // Our key is registered in project A (labelled as cah's); project B holds the user's own copy of the same key.
  standin.project('tok-a').sshKeys.set(1, { id: 1, name: 'cah-big', fingerprint: pair.fingerprint, public_key: pair.publicKey, labels: { 'cah-swarm': 'big' }, created: new Date().toISOString() });
  standin.project('tok-b').sshKeys.set(2, { id: 2, name: 'laptop', fingerprint: pair.fingerprint, public_key: pair.publicKey, labels: {}, created: new Date().toISOString() });

  const dry = await swarmDown({ ...common(), stateDir: state, swarm: 'big', accounts: accounts('tok-a', 'tok-b'), dryRun: true });
  assert.equal(dry.servers.length, 70);
  assert.equal(standin.project('tok-a').servers.size + standin.project('tok-b').servers.size, 70 + theirs.length, 'a dry run deletes nothing');

  let asked = 0;
  const report = await swarmDown({
    ...common(),
    stateDir: state,
    swarm: 'big',
    accounts: accounts('tok-a', 'tok-b'),
    dryRun: false,
    confirm: async (servers) => {
      asked = servers.length;
      return true;
    },
  });
  assert.equal(asked, 70);
  assert.deepEqual(report.failed, []);
  assert.deepEqual(report.servers.map((s) => s.id).sort(), [...mine].sort());
  const left = [...standin.project('tok-a').servers.keys(), ...standin.project('tok-b').servers.keys()].sort();
  assert.deepEqual(left, [...theirs].sort(), 'exactly the unrelated servers are left');
  const lists = standin.requests.filter((r) => r.method === 'GET' && r.path === '/v1/servers' && r.query['label_selector'] === 'cah-swarm=big');
  assert.ok(lists.some((r) => r.query['page'] === '2'), 'followed the pagination');
  assert.ok(lists.every((r) => Number(r.query['per_page']) <= 50));
  // Project A still has swarm "other": our key stays there. B's key is not labelled as ours: untouched.
  assert.deepEqual(report.keysRemoved, []);
  assert.equal(standin.project('tok-a').sshKeys.size, 1);
  assert.equal(standin.project('tok-b').sshKeys.size, 1);

  const again = await swarmDown({ ...common(), stateDir: state, swarm: 'big', accounts: accounts('tok-a', 'tok-b'), dryRun: false });
  assert.deepEqual(again.servers, [], 'running it again finds nothing');
  assert.deepEqual(again.failed, []);
  assert.deepEqual(standin.violations, []);
});

test('down forgets the swarm record and removes our SSH key once no cah server is left in the project', async () => {
  const state = join(dir, 'state-small');
  const pair = ensureSshKeyPair(state);
  standin.addProject('tok-c');
  const server = await standin.seedServer('tok-c', { name: 'cah-small-1', labels: { 'cah-swarm': 'small' } });
  await standin.seedServer('tok-c', { name: 'mail' });
  standin.project('tok-c').sshKeys.set(3, { id: 3, name: 'cah-small', fingerprint: pair.fingerprint, public_key: pair.publicKey, labels: { 'cah-swarm': 'small' }, created: new Date().toISOString() });
  writeSwarm(state, {
    swarm: 'small',
    location: 'fsn1',
    image: 'ubuntu-24.04',
    type: 'auto',
    sshPort: 22,
    route: { mode: 'tunnel', port: 7443 },
    servers: [{ name: 'cah-small-1', id: server.id, ip: server.ip, project: projectIdOf('tok-c'), location: 'fsn1', type: 'cpx22', created: server.created }],
  });
  const declined = await swarmDown({ ...common(), stateDir: state, swarm: 'small', accounts: accounts('tok-c'), dryRun: false, confirm: async () => false });
  assert.ok(declined.aborted);
  assert.equal(standin.project('tok-c').servers.size, 2, 'declining deletes nothing');

  const report = await swarmDown({ ...common(), stateDir: state, swarm: 'small', accounts: accounts('tok-c'), dryRun: false });
  assert.deepEqual(report.servers.map((s) => s.name), ['cah-small-1']);
  assert.deepEqual(report.keysRemoved, [`cah-small (${projectIdOf('tok-c')})`]);
  assert.equal(standin.project('tok-c').sshKeys.size, 0);
  assert.deepEqual([...standin.project('tok-c').servers.values()].map((s) => s.name), ['mail']);
  assert.equal(readSwarm(state, 'small'), null);
});

test('ls lists every cah server with its hourly price and its actor state, never the others', async () => {
  standin.addProject('tok-ls');
  await standin.seedServer('tok-ls', { name: 'cah-ls-1', labels: { 'cah-swarm': 'ls' } });
  await standin.seedServer('tok-ls', { name: 'cah-ls-2', labels: { 'cah-swarm': 'ls' } });
  await standin.seedServer('tok-ls', { name: 'cah-other-1', labels: { 'cah-swarm': 'other' } });
  await standin.seedServer('tok-ls', { name: 'db' });
  const rows = await listSwarm({
    endpoint: standin.url,
    accounts: accounts('tok-ls'),
    swarm: 'ls',
    actors: (name) => (name === 'cah-ls-1' ? { state: 'ALIVE', lastHeartbeat: Date.now(), deathCause: null } : null),
  });
  assert.deepEqual(rows.map((r) => r.name), ['cah-ls-1', 'cah-ls-2']);
  assert.equal(rows[0]!.actor?.state, 'ALIVE');
  assert.equal(rows[1]!.actor, null);
  assert.ok(rows.every((r) => r.type === 'cpx22' && r.location === 'fsn1' && r.hourlyGross !== null && r.hourlyGross > 0.01));
  const all = await listSwarm({ endpoint: standin.url, accounts: accounts('tok-ls'), actors: () => null });
  assert.deepEqual(all.map((r) => r.name).sort(), ['cah-ls-1', 'cah-ls-2', 'cah-other-1']);
});
