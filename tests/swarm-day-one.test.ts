import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectIdOf } from '../src/swarm/hetzner/tokens.js';
import { swarmUp } from '../src/swarm/up.js';
import { runCli, startCli } from './support/cli.js';
import { HetznerStandin } from './support/hetzner-standin.js';

/**
 * `cah swarm up 20 fsn1` on a new Hetzner account, through the real binary: a limit of 5 servers
 * (two project tokens of the same account), cx23 sold out in fsn1, one create action failing.
 */

let dir: string;
let standin: HetznerStandin;
/** One state directory for every test here: the worker bundle is built once (swarms have their own names). */
let state: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cah-day-one-'));
  state = join(dir, 'state');
  standin = await HetznerStandin.start({ dir: join(dir, 'standin'), actionDelayMs: 200, soldOut: { fsn1: ['cx23'] } });
});

after(async () => {
  await standin.close();
  rmSync(dir, { recursive: true, force: true });
});

function cah(args: string[], env: NodeJS.ProcessEnv): Promise<import('./support/cli.js').CliResult> {
  return runCli(['--state', state, 'swarm', ...args], {
    cwd: dir,
    env: { HCLOUD_ENDPOINT: standin.url, CAH_SWARM_SSH_PORT: String(standin.sshPort), ...env },
    timeoutMs: 240_000,
  });
}

test('swarm up 20 fsn1 on a new account: says what runs, what it costs with IPv4 per location, and what to do; down leaves nothing', async () => {
  standin.addProject('tok-new-a', { account: 'new-account', serverLimit: 5 });
  standin.addProject('tok-new-b', { account: 'new-account' });
  standin.failNextAction('create_server', 'server creation failed: internal error');
  const env = { HCLOUD_TOKEN: 'tok-new-a,tok-new-b' };

  const up = await cah(['up', '20', 'fsn1', '--name', 'day1'], env);
  const out = up.stdout;
  assert.equal(up.code, 1, up.stderr + out);
  assert.match(out, /^5\/20 servers of swarm day1 run a worker/m, out);
  assert.equal((out.match(/ created .* cpx22 /g) ?? []).length, 5, 'cx23 is sold out in fsn1: cpx22, within 1.5× its price');
  // Type 0.0094 net → 0.0112 gross, IPv4 0.0008 net → 0.0010 gross (stand-in prices, VAT 19 %).
  assert.match(out, /fsn1: 5 server\(s\) 0\.0559 €\/h \+ 5 Primary IPv4 0\.0048 €\/h = 0\.0607 €\/h/, out);
  assert.match(out, /total 0\.0607 €\/h gross/);
  assert.match(out, /what to do:\n {2}not created: resource_limit_exceeded \(403\): server limit exceeded; limits are per account.*Console → your project → Limits/, out);
  assert.equal((out.match(/server limit exceeded/g) ?? []).length, 1 + 15, 'once per missing server in the table, once under what to do');
  assert.match(up.stderr, /create action failed: deleting the server/);
  for (const step of ['server created', 'uploading the worker bundle', 'worker started']) assert.match(up.stderr, new RegExp(step));
  // The account's five places, in whichever of its projects a place was free when asked.
  const live = ['tok-new-a', 'tok-new-b'].flatMap((t) => [...standin.project(t).servers.values()]);
  assert.equal(live.length, 5);
  assert.ok(live.every((s) => s.status === 'running'), 'the failed server is not left behind');

  const down = await cah(['down', '--name', 'day1', '--yes'], env);
  assert.equal(down.code, 0, down.stderr);
  for (const s of live) {
    assert.equal((down.stdout.match(new RegExp(`deleted ${s.name} `, 'g')) ?? []).length, 1, `${s.name} printed once`);
    assert.ok(!down.stderr.includes(s.name), 'and not again as progress');
  }
  for (const t of ['tok-new-a', 'tok-new-b']) {
    assert.equal(standin.project(t).servers.size, 0);
    assert.equal(standin.project(t).sshKeys.size, 0);
  }
  assert.equal(standin.liveHosts().length, 0);
  assert.deepEqual(standin.violations, []);
});

test('50 servers cost well under the 3,600 requests an hour allows', async () => {
  const token = 'tok-fifty';
  // Records only: fifty sshd hosts are not what this counts.
  const api = await HetznerStandin.start({ dir: join(dir, 'standin-fifty'), realHosts: false, actionDelayMs: 1500 });
  api.addProject(token, { serverLimit: 60 });
  const report = await swarmUp({
    stateDir: state,
    count: 50,
    location: 'nbg1',
    swarm: 'fifty',
    type: 'auto',
    image: 'ubuntu-24.04',
    accounts: [{ token, project: projectIdOf(token) }],
    endpoint: api.url,
    sshPort: api.sshPort,
    // The bootstrap is not what is counted: no host needs to answer.
    bootTimeoutMs: 1,
    log: () => undefined,
  });
  assert.equal(report.servers.length, 50);
  await api.close();
  const requests = api.requests.filter((r) => r.token === token);
  const byKind = new Map<string, number>();
  for (const r of requests) byKind.set(`${r.method} ${r.path.replace(/\d+/g, '{id}')}`, (byKind.get(`${r.method} ${r.path.replace(/\d+/g, '{id}')}`) ?? 0) + 1);
  const summary = JSON.stringify(Object.fromEntries(byKind));
  assert.equal(byKind.get('POST /v{id}/servers'), 50, summary);
  assert.ok(requests.length <= 50 * 3, `${requests.length} requests for 50 servers: ${summary}`);
  assert.ok(requests.every((r) => r.status !== 429));
});

test('Ctrl-C during up says which servers exist (they bill) and how to delete them, exit 130', async () => {
  standin.addProject('tok-intr');
  const env = { HCLOUD_TOKEN: 'tok-intr', HCLOUD_ENDPOINT: standin.url, CAH_SWARM_SSH_PORT: String(standin.sshPort) };
  const { child, done } = startCli(['--state', state, 'swarm', 'up', '3', 'fsn1', '--name', 'intr'], { cwd: dir, env });
  await new Promise<void>((resolve) => {
    let seen = '';
    child.stderr!.on('data', (d: Buffer) => {
      seen += d.toString();
      if (/server created server=cah-intr-1 /.test(seen)) resolve();
    });
  });
  child.kill('SIGINT');
  const res = await done;
  assert.equal(res.code, 130, res.stderr);
  assert.match(res.stderr, /cah swarm up interrupted\. Swarm intr has [1-3] server\(s\) recorded, billed until deleted:/);
  assert.match(res.stderr, /^ {2}cah-intr-1 {2}127\.\S+ {2}id \d+ {2}cpx22 {2}fsn1$/m);
  assert.match(res.stderr, /Delete them all: cah swarm down --name intr --yes/);
  const down = await cah(['down', '--name', 'intr', '--yes'], { HCLOUD_TOKEN: 'tok-intr' });
  assert.equal(down.code, 0, down.stderr);
  assert.equal(standin.project('tok-intr').servers.size, 0, 'the command it printed deletes everything');
});

test('a location that sells none of the candidate types: up stops asking and names the locations that sell them', async () => {
  const api = await HetznerStandin.start({ dir: join(dir, 'standin-soldout'), realHosts: false, actionDelayMs: 20, soldOut: { fsn1: ['cx23', 'cpx22'] } });
  try {
    api.addProject('tok-soldout');
    const report = await swarmUp({
      stateDir: state,
      count: 3,
      location: 'fsn1',
      swarm: 'soldout',
      type: 'auto',
      image: 'ubuntu-24.04',
      accounts: [{ token: 'tok-soldout', project: projectIdOf('tok-soldout') }],
      endpoint: api.url,
      retry: { baseDelayMs: 5 },
      pollIntervalMs: 10,
      log: () => undefined,
    });
    assert.equal(report.running, 0);
    assert.deepEqual(report.problems, ['fsn1 accepts no new server of cx23, cpx22 now (sold out); locations that sell them now: ash, hel1, nbg1 (cah swarm up N LOCATION --name …)']);
    const creates = api.requests.filter((r) => r.method === 'POST' && r.path === '/v1/servers');
    assert.deepEqual(creates.map((r) => r.status), [412, 412], 'each type asked for once, then no more');
    assert.equal(api.project('tok-soldout').servers.size, 0);
    assert.equal(report.hourlyGross, 0, 'nothing exists, nothing bills');
  } finally {
    await api.close();
  }
});
