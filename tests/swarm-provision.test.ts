import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SwarmConfigError } from '../src/swarm/errors.js';
import { Fleet } from '../src/swarm/fleet.js';
import { HetznerClient } from '../src/swarm/hetzner/client.js';
import { projectIdOf } from '../src/swarm/hetzner/tokens.js';
import type { ServerType } from '../src/swarm/hetzner/types.js';
import { Provisioner, type Created } from '../src/swarm/provision.js';
import { candidateTypes, hourlyPrice } from '../src/swarm/server-types.js';
import { ensureSshKeyPair } from '../src/swarm/state.js';
import { HetznerStandin } from './support/hetzner-standin.js';

let dir: string;
let standin: HetznerStandin;
let types: ServerType[];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cah-provision-'));
  standin = await HetznerStandin.start({ dir: join(dir, 'standin'), realHosts: false, actionDelayMs: 20, unavailableTypes: ['cx23'] });
  standin.addProject('catalogue');
  types = await new HetznerClient({ token: 'catalogue', endpoint: standin.url }).listServerTypes();
});

after(async () => {
  await standin.close();
  rmSync(dir, { recursive: true, force: true });
});

const fleetOf = (tokens: string[]): Fleet =>
  new Fleet(tokens.map((token) => ({ token, project: projectIdOf(token) })), { endpoint: standin.url, retry: { baseDelayMs: 5 }, pollIntervalMs: 10 });

function provisioner(fleet: Fleet, swarm: string, typeChoice = 'auto'): { provisioner: Provisioner; log: string[] } {
  const log: string[] = [];
  const keyPair = ensureSshKeyPair(join(dir, `state-${swarm}`));
  return {
    provisioner: new Provisioner(fleet, { swarm, location: 'fsn1', image: 'ubuntu-24.04', types: candidateTypes(types, 'fsn1', { requested: typeChoice, arch: 'x86' }), keyPair, log: (_o, m) => log.push(m), runningTimeoutMs: 5000 }),
    log,
  };
}

async function createAll(p: Provisioner, names: string[]): Promise<Created[]> {
  const out: Created[] = [];
  for (const name of names) out.push(await p.create(name));
  return out;
}

test('auto: orderable types of one architecture up to 1.5× the cheapest, cheapest first; never deprecated or dedicated ones', () => {
  const x86 = { requested: 'auto', arch: 'x86' } as const;
  const auto = candidateTypes(types, 'fsn1', x86).map((t) => t.name);
  assert.ok(!auto.includes('cx22') && !auto.includes('cpx11'), 'deprecated types are never candidates');
  assert.ok(!auto.includes('cpx32'), 'not sold in fsn1');
  assert.deepEqual(auto, ['cx23', 'cpx22'], 'ccx13 (dedicated, 3.5× the price) and cax11 (arm) are not walked up to');
  const prices = auto.map((name) => hourlyPrice(types.find((t) => t.name === name)!, 'fsn1')!);
  assert.deepEqual([...prices].sort((a, b) => a - b), prices);
  assert.ok(prices.at(-1)! <= prices[0]! * 1.5);
  assert.deepEqual(candidateTypes(types, 'fsn1', { requested: 'auto', arch: 'arm' }).map((t) => t.name), ['cax11']);
  assert.deepEqual(candidateTypes(types, 'fsn1', { ...x86, maxPrice: 0.03 }).map((t) => t.name), ['cx23', 'cpx22', 'ccx13'], '--max-price raises the cap');
  assert.throws(() => candidateTypes(types, 'ash', { requested: 'auto', arch: 'arm' }), (err: unknown) => err instanceof SwarmConfigError && /no arm server type .* ash.*try fsn1, hel1, nbg1/.test(err.message));
  const named = (requested: string) => ({ requested, arch: 'x86' }) as const;
  assert.throws(() => candidateTypes(types, 'fsn1', named('cx22')), (err: unknown) => err instanceof SwarmConfigError && /deprecated/.test(err.message));
  assert.throws(() => candidateTypes(types, 'fsn1', named('cpx32')), (err: unknown) => err instanceof SwarmConfigError && /not available in fsn1/.test(err.message));
  assert.throws(() => candidateTypes(types, 'fsn1', named('cx99')), /unknown server type/);
  assert.deepEqual(candidateTypes(types, 'nbg1', named('cpx32')).map((t) => t.name), ['cpx32']);
});

test('an unavailable server type falls back to the next candidate', async () => {
  standin.addProject('tok-type');
  const { provisioner: p, log } = provisioner(fleetOf(['tok-type']), 'typefb');
  const created = await createAll(p, ['cah-typefb-1', 'cah-typefb-2']);
  assert.ok(created.every((c) => c.ok));
  const servers = [...standin.project('tok-type').servers.values()];
  assert.deepEqual(servers.map((s) => s.serverType), ['cpx22', 'cpx22'], 'cx23 is out of capacity: cpx22 instead');
  assert.equal(log.filter((m) => /trying the next one/.test(m)).length, 1, 'the unavailable type is skipped for the servers after it');
  const creates = standin.requests.filter((r) => r.token === 'tok-type' && r.method === 'POST' && r.path === '/v1/servers');
  assert.deepEqual(creates.map((r) => r.status), [412, 201, 201]);
  const running = await p.running(created[0] as Extract<Created, { ok: true }>);
  assert.ok(running.ok && running.record.type === 'cpx22' && running.record.ip.startsWith('127.'));
});

test('a named type that is out of capacity is a per-server failure, not a fallback', async () => {
  standin.addProject('tok-named');
  const { provisioner: p } = provisioner(fleetOf(['tok-named']), 'named', 'cx23');
  const [outcome] = await createAll(p, ['cah-named-1']);
  assert.ok(outcome && !outcome.ok);
  assert.match(outcome.detail, /fsn1 accepts no new server of cx23 now \(sold out\)/);
  assert.equal(standin.project('tok-named').servers.size, 0);
});

test('resource_limit_exceeded on the first token: the rest is filled from the second', async () => {
  standin.addProject('tok-full', { serverLimit: 3 });
  standin.addProject('tok-spare', { serverLimit: 10 });
  await standin.seedServer('tok-full', { name: 'someone-elses-db' });
  const { provisioner: p, log } = provisioner(fleetOf(['tok-full', 'tok-spare']), 'quota');
  const created = await createAll(p, ['cah-quota-1', 'cah-quota-2', 'cah-quota-3', 'cah-quota-4']);
  assert.ok(created.every((c) => c.ok), JSON.stringify(created.filter((c) => !c.ok)));
  const names = (token: string): string[] => [...standin.project(token).servers.values()].map((s) => s.name).sort();
  assert.deepEqual(names('tok-full'), ['cah-quota-1', 'cah-quota-2', 'someone-elses-db']);
  assert.deepEqual(names('tok-spare'), ['cah-quota-3', 'cah-quota-4']);
  assert.equal(log.filter((m) => /next token/.test(m)).length, 1);
  assert.ok([...standin.project('tok-spare').servers.values()].every((s) => s.labels['cah-swarm'] === 'quota'));
  // The SSH key was registered in both projects, once each.
  assert.equal(standin.project('tok-full').sshKeys.size, 1);
  assert.equal(standin.project('tok-spare').sshKeys.size, 1);
});

test('every project full: the remaining servers fail with the reason, nothing else is touched', async () => {
  standin.addProject('tok-tiny', { serverLimit: 1 });
  const { provisioner: p } = provisioner(fleetOf(['tok-tiny']), 'tiny');
  const created = await createAll(p, ['cah-tiny-1', 'cah-tiny-2', 'cah-tiny-3']);
  assert.deepEqual(created.map((c) => c.ok), [true, false, false]);
  const failure = created[1] as Extract<Created, { ok: false }>;
  assert.match(failure.detail, /server limit/);
});

test('a server with the same name but without our label is left alone', async () => {
  standin.addProject('tok-clash');
  const theirs = await standin.seedServer('tok-clash', { name: 'cah-clash-1', labels: { owner: 'alice' } });
  const { provisioner: p } = provisioner(fleetOf(['tok-clash']), 'clash');
  const [outcome] = await createAll(p, ['cah-clash-1']);
  assert.ok(outcome && !outcome.ok && /left alone/.test(outcome.detail));
  assert.deepEqual(standin.project('tok-clash').servers.get(theirs.id)?.labels, { owner: 'alice' });
  assert.deepEqual(standin.violations, []);
});

test('ssh_keys go as integer IDs, as the official clients send them; the API reads a numeric string as a key name', async () => {
  standin.addProject('tok-ids');
  const { provisioner: p } = provisioner(fleetOf(['tok-ids']), 'ids');
  const [created] = await createAll(p, ['cah-ids-1']);
  assert.ok(created?.ok, JSON.stringify(created));
  const key = [...standin.project('tok-ids').sshKeys.values()][0]!;
  const client = new HetznerClient({ token: 'tok-ids', endpoint: standin.url });
  const body = { name: 'by-string', server_type: 'cpx22', image: 'ubuntu-24.04', location: 'fsn1', ssh_keys: [String(key.id)], labels: {}, user_data: '', start_after_create: true };
  await assert.rejects(client.createServer(body), /SSH key|ssh_keys/);
  assert.deepEqual(standin.violations.filter((v) => !/ssh_keys/.test(v)), []);
});

test('a failed create action: the server is deleted (it would bill, labelled, forever) and created again', async () => {
  standin.addProject('tok-flaky');
  standin.failNextAction('create_server', 'server creation failed: internal error');
  const { provisioner: p, log } = provisioner(fleetOf(['tok-flaky']), 'flaky');
  const [created] = await createAll(p, ['cah-flaky-1']);
  assert.ok(created?.ok);
  const running = await p.running(created as Extract<Created, { ok: true }>);
  assert.ok(running.ok, JSON.stringify(running));
  const servers = [...standin.project('tok-flaky').servers.values()];
  assert.deepEqual(servers.map((s) => [s.name, s.status]), [['cah-flaky-1', 'running']], 'one server left, the second one, running');
  assert.equal(running.record.id, servers[0]!.id);
  assert.equal(standin.allServers.filter((s) => s.name === 'cah-flaky-1').length, 2, 'created twice');
  assert.ok(log.some((m) => /create action failed: deleting the server/.test(m)));
});

test('limits are per account: a second project of the same account adds no server; the message says where to raise them', async () => {
  standin.addProject('tok-acct-a', { account: 'alice', serverLimit: 2 });
  standin.addProject('tok-acct-b', { account: 'alice' });
  const { provisioner: p } = provisioner(fleetOf(['tok-acct-a', 'tok-acct-b']), 'acct');
  const created = await createAll(p, ['cah-acct-1', 'cah-acct-2', 'cah-acct-3', 'cah-acct-4']);
  assert.deepEqual(created.map((c) => c.ok), [true, true, false, false]);
  assert.equal(standin.project('tok-acct-b').servers.size, 0, 'the second project got nothing');
  const failure = created[2] as Extract<Created, { ok: false }>;
  assert.match(failure.detail, /server limit exceeded; limits are per account.*Console → your project → Limits/);
  const creates = standin.requests.filter((r) => ['tok-acct-a', 'tok-acct-b'].includes(r.token) && r.method === 'POST' && r.path === '/v1/servers');
  // (cx23 is out of capacity in this stand-in: its 412 comes first.)
  assert.deepEqual(creates.map((r) => r.status).filter((st) => st !== 412), [201, 201, 403, 403], 'after both projects answered the limit, the fourth server is not even asked for');
});
