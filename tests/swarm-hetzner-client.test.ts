import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HetznerClient } from '../src/swarm/hetzner/client.js';
import { HetznerApiError } from '../src/swarm/hetzner/errors.js';
import { backoffDelay, isRetryable } from '../src/swarm/hetzner/retry.js';
import { loadHetznerAccounts, projectIdOf } from '../src/swarm/hetzner/tokens.js';
import { generateEd25519KeyPair } from '../src/swarm/state.js';
import { HetznerStandin } from './support/hetzner-standin.js';
import { parseLabelSelector } from './support/label-selector.js';

let dir: string;
let standin: HetznerStandin;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cah-hclient-'));
  standin = await HetznerStandin.start({ dir: join(dir, 'standin'), realHosts: false, actionDelayMs: 30 });
});

after(async () => {
  await standin.close();
  rmSync(dir, { recursive: true, force: true });
});

const fast = { baseDelayMs: 5, maxDelayMs: 5000, maxTries: 5 };

test('lists every page (per_page 50, following next_page) and selects by label; responses match the spec', async () => {
  const token = 'tok-pages';
  standin.addProject(token, { serverLimit: 500 });
  for (let i = 0; i < 120; i++) await standin.seedServer(token, { name: `srv-${i}`, labels: i % 3 === 0 ? { 'cah-swarm': 'a' } : { team: 'web' } });
  const client = new HetznerClient({ token, endpoint: standin.url, retry: fast });
  const all = await client.listServers();
  assert.equal(all.length, 120);
  assert.equal(new Set(all.map((s) => s.id)).size, 120, 'no server twice');
  const labelled = await client.listServers('cah-swarm=a');
  assert.equal(labelled.length, 40);
  assert.ok(labelled.every((s) => s.labels['cah-swarm'] === 'a'));
  const pages = standin.requests.filter((r) => r.token === token && r.path === '/v1/servers' && r.method === 'GET');
  assert.ok(pages.every((r) => Number(r.query['per_page']) <= 50), 'never more than 50 per page');
  assert.deepEqual(pages.slice(0, 3).map((r) => r.query['page']), ['1', '2', '3']);
  assert.deepEqual(standin.violations, []);
});

test('API errors are typed: code, message and HTTP status', async () => {
  const client = new HetznerClient({ token: 'not-a-token', endpoint: standin.url, retry: fast });
  await assert.rejects(client.listLocations(), (err: unknown) => {
    assert.ok(err instanceof HetznerApiError);
    assert.equal(err.code, 'unauthorized');
    assert.equal(err.status, 401);
    assert.match(err.message, /authenticate/);
    return true;
  });
  standin.addProject('tok-404');
  const ok = new HetznerClient({ token: 'tok-404', endpoint: standin.url, retry: fast });
  await assert.rejects(ok.getServer(424242), (err: unknown) => err instanceof HetznerApiError && err.code === 'not_found' && err.status === 404);
});

test('a 429 waits for RateLimit-Reset before the retry', async () => {
  const token = 'tok-rate';
  // Three requests in the bucket, one regained per second: the fourth is refused with Reset ≈ 1-3 s ahead.
  standin.addProject(token, { rateLimit: { limit: 3, refillPerSecond: 1 } });
  const retries: { status: number; delayMs: number }[] = [];
  // No reserve: this client spends the budget to the last request, as a second process sharing the token would.
  const client = new HetznerClient({ token, endpoint: standin.url, retry: fast, rateLimitReserve: -1, onRetry: (r) => retries.push(r) });
  for (let i = 0; i < 3; i++) await client.listLocations();
  const started = Date.now();
  const locations = await client.listLocations();
  assert.ok(locations.some((l) => l.name === 'fsn1'));
  const refused = standin.requests.filter((r) => r.token === token && r.status === 429);
  assert.ok(refused.length >= 1, 'the stand-in refused at least once');
  assert.ok(retries.length >= 1 && retries.every((r) => r.status === 429));
  // The base delay is 5 ms: only RateLimit-Reset explains waiting this long.
  assert.ok(retries[0]!.delayMs >= 500, `waited ${retries[0]!.delayMs} ms`);
  const succeeded = standin.requests.filter((r) => r.token === token && r.status === 200).at(-1)!;
  assert.ok(succeeded.at - refused[0]!.at >= 500, 'the retry came after the reset, not right away');
  assert.ok(Date.now() - started < 5000);
});

test('RateLimit-Remaining at the reserve: requests are spaced at the refill rate and never meet a 429', async () => {
  const token = 'tok-pace';
  standin.addProject(token, { rateLimit: { limit: 20, refillPerSecond: 20 } });
  const client = new HetznerClient({ token, endpoint: standin.url, retry: fast, rateLimitReserve: 5 });
  // Four lanes, as `up` and `down` run a few calls at a time.
  await Promise.all(Array.from({ length: 4 }, async () => {
    for (let i = 0; i < 10; i++) await client.listLocations();
  }));
  const mine = standin.requests.filter((r) => r.token === token);
  assert.equal(mine.length, 40);
  assert.deepEqual(mine.filter((r) => r.status === 429).length, 0, 'paced below the budget instead of running into it');
});

test('423 locked is retried on POST and DELETE (refused before any effect), like conflict', async () => {
  const token = 'tok-locked';
  standin.addProject(token);
  const client = new HetznerClient({ token, endpoint: standin.url, retry: fast });
  const server = await standin.seedServer(token, { name: 'busy' });
  standin.failNext('DELETE', '/servers/{id}', 423, 'locked', 2);
  await client.waitForAction(await client.deleteServer(server.id));
  const deletes = standin.requests.filter((r) => r.token === token && r.method === 'DELETE');
  assert.deepEqual(deletes.map((r) => r.status), [423, 423, 200]);
  assert.deepEqual(standin.violations, []);
});

test('waiting for many actions polls them together (GET /actions?id=…&id=…) with a rising interval', async () => {
  const token = 'tok-batch';
  standin.addProject(token, { serverLimit: 100 });
  const client = new HetznerClient({ token, endpoint: standin.url, retry: fast, pollIntervalMs: 20 });
  const servers = await Promise.all(Array.from({ length: 30 }, (_, i) => standin.seedServer(token, { name: `b-${i}` })));
  const actions = [];
  for (const s of servers) actions.push(await client.deleteServer(s.id));
  const done = await client.waitForActions(actions);
  assert.ok(done.every((a) => a.status === 'success'));
  const polls = standin.requests.filter((r) => r.token === token && r.path.startsWith('/v1/actions'));
  assert.ok(polls.every((r) => r.path === '/v1/actions'), 'never one request per action');
  assert.ok(polls.length < actions.length, `${polls.length} polls for ${actions.length} actions`);
  assert.deepEqual(standin.violations, []);
});

test('conflict is retried on POST; 503 on GET; a POST is not retried on 503', async () => {
  const token = 'tok-retry';
  standin.addProject(token);
  const client = new HetznerClient({ token, endpoint: standin.url, retry: fast });
  standin.failNext('POST', '/ssh_keys', 409, 'conflict', 2);
  const key = await client.createSshKey({ name: 'k1', public_key: generateEd25519KeyPair().public, labels: {} });
  assert.equal(key.name, 'k1');
  standin.failNext('GET', '/locations', 503, 'unavailable', 2);
  assert.ok((await client.listLocations()).length > 0);
  standin.failNext('POST', '/ssh_keys', 503, 'unavailable', 1);
  await assert.rejects(
    client.createSshKey({ name: 'k2', public_key: generateEd25519KeyPair().public, labels: {} }),
    (err: unknown) => err instanceof HetznerApiError && err.code === 'unavailable' && err.status === 503,
  );
  standin.failNext('GET', '/locations', 503, 'unavailable', 5);
  await assert.rejects(client.listLocations(), (err: unknown) => err instanceof HetznerApiError && err.status === 503, 'gives up after 5 tries');
  assert.deepEqual(standin.violations, []);
});

test('waitForAction polls until success, and an action error becomes an API error', async () => {
  const token = 'tok-action';
  standin.addProject(token);
  const client = new HetznerClient({ token, endpoint: standin.url, retry: fast, pollIntervalMs: 10 });
  const server = await standin.seedServer(token, { name: 'to-delete' });
  const action = await client.deleteServer(server.id);
  assert.equal(action.status, 'running');
  const done = await client.waitForAction(action);
  assert.equal(done.status, 'success');
  await assert.rejects(client.getServer(server.id), (err: unknown) => err instanceof HetznerApiError && err.code === 'not_found');
  const other = await standin.seedServer(token, { name: 'stuck' });
  standin.failNextAction('delete_server', 'server is locked');
  await assert.rejects(client.waitForAction(await client.deleteServer(other.id)), (err: unknown) => {
    assert.ok(err instanceof HetznerApiError);
    assert.equal(err.code, 'action_failed');
    assert.match(err.message, /delete_server failed: server is locked/);
    return true;
  });
});

test('backoff doubles from the base delay up to the cap, with jitter; retry rules follow hcloud-go', () => {
  const policy = { baseDelayMs: 1000, maxDelayMs: 60_000, maxTries: 5 };
  assert.equal(backoffDelay(policy, 1, () => 0), 500);
  assert.equal(backoffDelay(policy, 1, () => 1), 1000);
  assert.equal(backoffDelay(policy, 3, () => 1), 4000);
  assert.equal(backoffDelay(policy, 10, () => 1), 60_000);
  const err = (status: number, code: string): HetznerApiError => new HetznerApiError(code, code, status);
  assert.ok(isRetryable('POST', err(409, 'conflict')));
  assert.ok(isRetryable('DELETE', err(423, 'locked')));
  assert.ok(isRetryable('GET', err(429, 'rate_limit_exceeded')));
  assert.ok(isRetryable('GET', err(502, 'bad_gateway')));
  assert.ok(isRetryable('GET', err(504, 'timeout')));
  assert.ok(!isRetryable('POST', err(502, 'bad_gateway')));
  assert.ok(!isRetryable('GET', err(409, 'uniqueness_error')));
  assert.ok(!isRetryable('GET', err(500, 'server_error')));
});

test('tokens come from HCLOUD_TOKEN (several, comma or newline separated) or .env; the project id hides the token', () => {
  const accounts = loadHetznerAccounts({ HCLOUD_TOKEN: 'aaa, bbb\nccc,aaa' }, dir);
  assert.deepEqual(accounts.map((a) => a.token), ['aaa', 'bbb', 'ccc']);
  assert.ok(accounts.every((a) => !a.project.includes(a.token)));
  assert.equal(accounts[0]!.project, projectIdOf('aaa'));
  writeFileSync(join(dir, '.env'), 'OTHER=1\nHCLOUD_TOKEN="t1,t2"\n');
  assert.deepEqual(loadHetznerAccounts({}, dir).map((a) => a.token), ['t1', 't2']);
  assert.deepEqual(loadHetznerAccounts({}, join(dir, 'standin')), []);
});

test('the stand-in label selectors: =, ==, !=, presence, absence, in, notin, AND', () => {
  const labels = { 'cah-swarm': 'a', env: 'prod' };
  const cases: [string, boolean][] = [
    ['cah-swarm=a', true],
    ['cah-swarm==b', false],
    ['cah-swarm!=b', true],
    ['cah-swarm', true],
    ['!cah-swarm', false],
    ['!team', true],
    ['env in (dev,prod)', true],
    ['env notin (dev,prod)', false],
    ['cah-swarm=a,env=dev', false],
    ['cah-swarm=a,env in (prod, stage)', true],
  ];
  for (const [selector, expected] of cases) assert.equal(parseLabelSelector(selector)(labels), expected, selector);
  assert.throws(() => parseLabelSelector('env in (a'));
});

test('stand-in fidelity: filters, lookups, pricing, batched actions, ID-or-name fields and the create rules of the real API', async () => {
  const token = 'tok-fidelity';
  standin.addProject(token, { serverLimit: 20 });
  const client = new HetznerClient({ token, endpoint: standin.url, retry: fast, pollIntervalMs: 10 });
  const get = <T>(path: string, query: Record<string, string | number | number[]> = {}): Promise<T> => client.call<T>('GET', path, { query });

  // Name filters select, they do not return the first element.
  assert.deepEqual((await get<{ server_types: { name: string }[] }>('/server_types', { name: 'cx23' })).server_types.map((t) => t.name), ['cx23']);
  assert.deepEqual((await get<{ locations: { name: string }[] }>('/locations', { name: 'hel1' })).locations.map((l) => l.name), ['hel1']);
  assert.equal((await get<{ server_type: { name: string } }>('/server_types/105')).server_type.name, 'cpx32');
  // A type lists only the locations where it is sold.
  const cpx32 = (await get<{ server_type: { locations: { name: string }[]; prices: { location: string }[] } }>('/server_types/105')).server_type;
  assert.deepEqual(cpx32.locations.map((l) => l.name), ['nbg1', 'ash']);
  assert.deepEqual(cpx32.prices.map((p) => p.location), ['nbg1', 'ash']);
  const debian = (await get<{ images: { name: string; architecture: string }[] }>('/images', { name: 'debian-13', architecture: 'arm' })).images;
  assert.deepEqual(debian.map((i) => [i.name, i.architecture]), [['debian-13', 'arm']]);
  const pricing = await client.getPricing();
  assert.ok(pricing.primary_ips.find((p) => p.type === 'ipv4')!.prices.some((p) => p.location === 'fsn1' && Number(p.price_hourly.gross) > 0));
  await assert.rejects(get('/actions'), (err: unknown) => err instanceof HetznerApiError && err.code === 'invalid_input', 'GET /actions needs id');

  const key = await client.createSshKey({ name: '4242', public_key: generateEd25519KeyPair().public, labels: {} });
  const base = { server_type: 'cx23', image: 'debian-13', location: 'fsn1', labels: {}, user_data: '#cloud-config\n', start_after_create: true };
  // ssh_keys: an integer is an ID, a string a name, also a numeric one.
  await assert.rejects(client.createServer({ ...base, name: 'by-id-string', ssh_keys: [String(key.id)] }), /ssh_keys/);
  const byName = await client.createServer({ ...base, name: 'by-name', ssh_keys: ['4242'] });
  const created = await client.createServer({ ...base, name: 'by-id', server_type: 103 as unknown as string, location: 1 as unknown as string, ssh_keys: [key.id] });
  assert.equal(created.server.status, 'initializing', 'a new server is initializing, not running');
  assert.equal(created.server.server_type.name, 'cx23');
  assert.match(created.server.public_net.ipv6!.ip, /::\/64$/, 'an IPv6 network');
  await client.waitForActions([created.action, ...created.next_actions]);
  assert.equal((await client.getServer(created.server.id)).status, 'running');

  await assert.rejects(client.createServer({ ...base, name: 'big-user-data', ssh_keys: [key.id], user_data: 'x'.repeat(32 * 1024 + 1) }), /32 KiB/);
  await assert.rejects(client.createServer({ ...base, name: 'old-type', server_type: 'cx22', ssh_keys: [key.id] }), /no longer available/);
  const stillSold = await client.createServer({ ...base, name: 'deprecated-but-sold', server_type: 'cpx11', ssh_keys: [key.id] });
  assert.ok(stillSold.server.server_type.deprecation, 'cpx11: deprecation announced, unavailable_after still ahead');
  await assert.rejects(client.createServer({ ...base, name: 'arm-image-x86-type', image: 160_000_031 as unknown as string, ssh_keys: [key.id] }), /image/);

  // Repeated status filters (any of them) and sort.
  await client.waitForActions([byName.action, stillSold.action]);
  const del = await client.deleteServer(byName.server.id);
  const statuses = await get<{ servers: { name: string; status: string }[] }>('/servers', { status: ['running', 'deleting'] as unknown as number[], sort: 'name:desc' });
  assert.deepEqual(statuses.servers.map((s) => s.name), ['deprecated-but-sold', 'by-name', 'by-id']);
  await client.waitForAction(del);
  assert.deepEqual(standin.violations, []);
});
