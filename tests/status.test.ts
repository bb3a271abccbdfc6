import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../src/store/state-file.js';
import { formatSwarmCost, swarmCost } from '../src/swarm/cost.js';
import { writeSwarm } from '../src/swarm/state.js';
import { EventEmitter } from 'node:events';
import { coordinatorSource } from '../src/cli/present.js';
import type { RunningCoordinator } from '../src/coordinator/run.js';
import { sampleSnapshot } from './support/sample-snapshot.js';
import { runCli } from './support/cli.js';

test('cah status --json reports what the store says', async () => {
  const state = mkdtempSync(join(tmpdir(), 'cah-status-'));
  try {
    const store = Store.openInStateDir(state);
    store.shards.add(['s1', 's2', 's3', 's4', 's5']);
    const a = store.shards.lease('local-1', 60_000)!;
    store.shards.complete(a.shardId, a.fencingToken, { candidates: 40, duplicates: 2, downloaded: 30, failed: 10, kept: 25, filteredOut: 5, bytesIn: 1000, outputBytes: 5000, outputShard: '00001' });
    const b = store.shards.lease('local-1', 60_000)!;
    store.shards.returnLease(b.shardId, b.fencingToken, 'HTTP 403 on source', { countsAsFailure: true, maxRetries: 1 });
    store.shards.lease('local-2', 60_000);
    store.actors.register('local-1', { kind: 'local', host: 'box', pid: 11, version: '0.1.0' });
    store.actors.register('local-2', { kind: 'local', host: 'box', pid: 12, version: '0.1.0' });
    store.actors.markDead('local-1', 'missed heartbeats for 31 s');
    store.runs.start('run-x', '/data/out', {});
    store.runs.addErrors(new Map([['HTTP 404', 7], ['timeout', 3]]));
    const expectedCounts = store.shards.counts();
    const expectedActors = store.actors.list();
    store.close();

    const res = await runCli(['--state', state, 'status', '--json']);
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout) as {
      coordinatorUp: boolean;
      shards: Record<string, number>;
      filteredOut: number;
      duplicates: number;
      snapshot: { shards: Record<string, number>; actors: { actorId: string; state: string; deathCause: string | null; pid: number }[]; topErrors: { message: string; count: number }[]; output: { pairsWritten: number; path: string } };
    };
    assert.equal(out.coordinatorUp, false);
    assert.deepEqual(
      { queued: out.snapshot.shards['queued'], leased: out.snapshot.shards['leased'], done: out.snapshot.shards['done'], failed: out.snapshot.shards['failed'] },
      expectedCounts,
    );
    assert.deepEqual(expectedCounts, { queued: 2, leased: 1, done: 1, failed: 1 });
    assert.deepEqual(
      out.snapshot.actors.map((x) => [x.actorId, x.state, x.deathCause, x.pid]),
      expectedActors.map((x) => [x.id, x.state, x.deathCause, x.pid]),
    );
    assert.deepEqual(out.snapshot.topErrors.slice(0, 2), [{ message: 'HTTP 404', count: 7 }, { message: 'timeout', count: 3 }]);
    assert.equal(out.snapshot.output.pairsWritten, 25);
    assert.deepEqual(out.shards, { queued: 2, leased: 1, done: 1, failed: 1, total: 5 }, '`cah status --json | jq .shards` as the help shows');
    assert.equal(out.filteredOut, 5);
    assert.equal(out.duplicates, 2);
    assert.equal(out.snapshot.output.path, '/data/out');

    const text = await runCli(['--state', state, 'status']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /local-1/);
    assert.match(text.stdout, /DEAD/);

    const missing = await runCli(['status', '--db', join(state, 'nope.sqlite')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^cah: no state file at .*nope\.sqlite/);
    assert.doesNotMatch(missing.stderr, /at .*\.js:\d+/, 'no stack trace for a user mistake');
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
});

test('the swarm\'s cost: € per hour from the recorded prices, ≈ € during the run, kept pairs per €', async () => {
  const state = mkdtempSync(join(tmpdir(), 'cah-cost-'));
  try {
    const server = (i: number, hourlyGross?: number) => ({
      name: `cah-c-${i}`, id: i, ip: `203.0.113.${i}`, project: 'p1', location: 'fsn1', type: 'cx23', created: '2026-11-24T00:00:00Z',
      ...(hourlyGross !== undefined ? { hourlyGross } : {}),
    });
    writeSwarm(state, { swarm: 'c', location: 'fsn1', image: 'ubuntu-24.04', type: 'auto', sshPort: 22, route: { mode: 'tunnel', port: 7443 }, servers: [server(1, 0.01), server(2, 0.01), server(3)] });
    const cost = swarmCost(state, { startedAtMs: 0, nowMs: 2 * 3_600_000, kept: 1000 })!;
    assert.equal(cost.servers, 3);
    assert.equal(cost.unpriced, 1);
    assert.ok(Math.abs(cost.hourlyGross - 0.02) < 1e-12);
    assert.equal(cost.runHours, 2);
    assert.ok(Math.abs(cost.runGross - 0.04) < 1e-12);
    assert.ok(Math.abs(cost.keptPerEuro! - 25_000) < 1e-6);
    assert.equal(formatSwarmCost(cost), 'Cost 3 swarm servers (1 without a price) · 0.0200 €/h · ≈0.04 € this run · 25,000 kept/€');
    assert.equal(swarmCost(join(state, 'elsewhere'), { startedAtMs: 0, nowMs: 1, kept: 0 }), null, 'no swarm, no cost');

    const store = Store.openInStateDir(state);
    store.runs.start('run-c', '/data/out', {});
    store.close();
    const res = await runCli(['--state', state, 'status', '--json']);
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout) as { cost: { servers: number; hourlyGross: number } | null };
    assert.equal(out.cost?.servers, 3);
    assert.ok(Math.abs(out.cost!.hourlyGross - 0.02) < 1e-12);
    // The live snapshot of `cah gpu` (dashboard, log lines) carries the same figures.
    const snapshot = { ...sampleSnapshot(), startedAtMs: 0, nowMs: 3_600_000 };
    const running = { snapshot: () => snapshot, coordinator: new EventEmitter() } as unknown as RunningCoordinator;
    const live = coordinatorSource(running, state).current().output.cost!;
    assert.ok(Math.abs(live.hourlyGross - 0.02) < 1e-12);
    assert.ok(Math.abs(live.keptPerEuro! - snapshot.totals.kept / 0.02) < 1e-6);
    assert.equal(coordinatorSource(running).current().output.cost, undefined, 'without a state directory, no cost');
    const text = await runCli(['--state', state, 'status']);
    assert.match(text.stdout, /^Cost 3 swarm servers \(1 without a price\) · 0\.0200 €\/h · ≈\d+\.\d\d € this run · .* kept\/€$/m);
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
});
