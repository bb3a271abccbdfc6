import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectIdOf } from '../src/swarm/hetzner/tokens.js';
import { readSwarm } from '../src/swarm/state.js';
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
  assert.equal(byName['cah-part-4']!.status, 'failed', all);
  assert.match(byName['cah-part-4']!.detail!, /server limit exceeded.*Console → your project → Limits/, all);
  // Servers that exist are recorded, also the unreachable one: `up` retries its bootstrap, `down` deletes it.
  assert.deepEqual(readSwarm(state, 'part')!.servers.map((s) => s.name), ['cah-part-1', 'cah-part-2', 'cah-part-3']);
  const host = standin.allServers.find((s) => s.name === 'cah-part-1')!;
  assert.match(readFileSync(join(host.root!, 'etc', 'cah', 'worker.env'), 'utf8'), /^CAH_ACTOR_ID=cah-part-1$/m);
  assert.deepEqual(standin.violations, []);
});
