import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoordinatorClient, isStatus } from '../src/worker/rpc.js';
import { DEFAULT_WORKER_SETTINGS } from '../src/coordinator/settings.js';
import { TEST_TOKEN, registerRequest, startTestCoordinator, streamAll, testKey, waitFor, wireSample } from './support/coordinator.js';

const FAST_HEARTBEATS = { worker: { ...DEFAULT_WORKER_SETTINGS, heartbeatIntervalMs: 200 } };
const noProgress = { candidates: 0, downloaded: 0, failed: 0, bytesIn: 0, duplicates: 0, sourceBytesRead: 0, sourceBytesTotal: 0 };

test('a CompleteShard whose samples never arrive returns the lease by the one path: out of retries, keys released, actor cleared, logged', async () => {
  const c = await startTestCoordinator({ settings: { maxRetries: 1, completeTimeoutMs: 300 } });
  const client = new CoordinatorClient(c.address, TEST_TOKEN);
  try {
    c.store.shards.add(['/data/a.wat.gz']);
    const { actorId } = await client.register(registerRequest());
    const { shard } = await client.leaseShard({ actorId });
    const { shardId, fencingToken } = shard!;
    assert.deepEqual((await client.claimKeys({ actorId, shardId, fencingToken, keys: ['k1', 'k2', 'k3'] })).newKeys, ['k1', 'k2', 'k3']);
    assert.equal(c.store.actors.get(actorId)!.currentShardId, shardId);
    await assert.rejects(
      client.completeShard({ actorId, shardId, fencingToken, samplesSent: 3, extraction: null, sourceErrors: [] }),
      (err) => isStatus(err, grpc.status.ABORTED) && /only 0 of the 3 samples/.test((err as Error).message),
    );
    assert.equal(c.store.shards.get(shardId)!.state, 'failed');
    assert.equal(c.store.dedup.count(), 0, 'the failed shard gave its keys back: other shards may keep those URLs');
    assert.equal(c.store.actors.get(actorId)!.currentShardId, null, 'the actor no longer shows the shard');
    assert.ok(c.logs.some((l) => l.msg === 'shard failed: out of retries' && l['shard'] === shardId));
  } finally {
    client.close();
    await c.close();
  }
});

test('a lease the worker no longer reports comes back uncounted; so do its leases when it registers again', async () => {
  const c = await startTestCoordinator({ settings: FAST_HEARTBEATS });
  const client = new CoordinatorClient(c.address, TEST_TOKEN);
  try {
    c.store.shards.add(['/data/a.wat.gz', '/data/b.wat.gz']);
    const { actorId } = await client.register(registerRequest());
    const a = (await client.leaseShard({ actorId })).shard!;
    const b = (await client.leaseShard({ actorId })).shard!;
    await sleep(1200);
    // The worker dropped shard a (its stream died with a connection) and works on b only.
    const hb = await client.heartbeat({ actorId, shards: [{ shardId: b.shardId, fencingToken: b.fencingToken, ...noProgress }] });
    assert.deepEqual(hb.revokedShardIds, []);
    await waitFor('shard a returned', () => c.store.shards.get(a.shardId)!.state === 'queued');
    assert.equal(c.store.shards.get(a.shardId)!.failures, 0, 'not the shard\'s fault');
    assert.equal(c.store.shards.get(b.shardId)!.state, 'leased', 'the reported lease is renewed');
    // Registering again (a new connection of the same process) returns what it held.
    await client.register(registerRequest(actorId));
    assert.equal(c.store.shards.get(b.shardId)!.state, 'queued');
    assert.equal(c.store.shards.counts().leased, 0);
  } finally {
    client.close();
    await c.close();
  }
});

test('leases are bound to actors and actors to their process: another client with the worker token cannot act on them', async () => {
  const c = await startTestCoordinator();
  const victim = new CoordinatorClient(c.address, TEST_TOKEN);
  const attacker = new CoordinatorClient(c.address, TEST_TOKEN);
  try {
    c.store.shards.add(['/data/a.wat.gz']);
    const { actorId } = await victim.register(registerRequest('cah-victim'));
    const { shardId, fencingToken } = (await victim.leaseShard({ actorId })).shard!;
    await assert.rejects(attacker.register(registerRequest('cah-victim')), (err) => isStatus(err, grpc.status.ALREADY_EXISTS), 'an id alive on another connection is refused');
    const header = { actorId, shardId, fencingToken };
    await assert.rejects(attacker.failShard({ ...header, error: 'x' }), (err) => isStatus(err, grpc.status.PERMISSION_DENIED));
    await assert.rejects(attacker.claimKeys({ ...header, keys: ['k'] }), (err) => isStatus(err, grpc.status.PERMISSION_DENIED));
    await assert.rejects(attacker.heartbeat({ actorId, shards: [] }), (err) => isStatus(err, grpc.status.PERMISSION_DENIED));
    const own = await attacker.register(registerRequest('cah-attacker'));
    for (const call of [
      () => attacker.failShard({ actorId: own.actorId, shardId, fencingToken, error: 'x' }),
      () => attacker.completeShard({ actorId: own.actorId, shardId, fencingToken, samplesSent: 0, extraction: null, sourceErrors: [] }),
    ]) {
      await assert.rejects(call(), (err) => isStatus(err, grpc.status.FAILED_PRECONDITION), 'a lease of another actor is refused');
    }
    assert.notEqual(fencingToken + 1, fencingToken, 'exact');
    await assert.rejects(attacker.failShard({ actorId: own.actorId, shardId, fencingToken: fencingToken + 1, error: 'x' }), (err) => isStatus(err, grpc.status.FAILED_PRECONDITION));
    const row = c.store.shards.get(shardId)!;
    assert.deepEqual([row.state, row.failures, row.leaseOwner], ['leased', 0, 'cah-victim'], 'the victim\'s lease is untouched');
    await victim.completeShard({ actorId, shardId, fencingToken, samplesSent: 0, extraction: null, sourceErrors: [] });
    assert.equal(c.store.shards.get(shardId)!.state, 'done', 'the fencing token survives the wire exactly');
  } finally {
    victim.close();
    attacker.close();
    await c.close();
  }
});

test('a worker that heartbeats but never finishes loses its lease at the maximum lease age', async () => {
  const c = await startTestCoordinator({ settings: { maxLeaseAgeMs: 1500, retryBackoffMs: 0, ...FAST_HEARTBEATS } });
  const client = new CoordinatorClient(c.address, TEST_TOKEN);
  try {
    c.store.shards.add(['/data/a.wat.gz']);
    const { actorId } = await client.register(registerRequest());
    const { shardId, fencingToken } = (await client.leaseShard({ actorId })).shard!;
    let revoked = false;
    for (let i = 0; i < 60 && !revoked; i++) {
      const hb = await client.heartbeat({ actorId, shards: [{ shardId, fencingToken, ...noProgress }] });
      revoked = hb.revokedShardIds.includes(shardId);
      await sleep(100);
    }
    assert.ok(revoked, 'the heartbeat tells the worker the lease is gone');
    const row = c.store.shards.get(shardId)!;
    assert.equal(row.state, 'queued');
    assert.match(row.error ?? '', /older than the maximum lease age/);
    assert.equal(row.failures, 1);
  } finally {
    client.close();
    await c.close();
  }
});

test('a width ≥ 2^31 fails that sample only: the shard commits and no temp file is left', async () => {
  const c = await startTestCoordinator();
  const client = new CoordinatorClient(c.address, TEST_TOKEN);
  try {
    c.store.shards.add(['/data/a.wat.gz']);
    const { actorId } = await client.register(registerRequest());
    const { shardId, fencingToken } = (await client.leaseShard({ actorId })).shard!;
    await streamAll(client, { actorId, shardId, fencingToken }, [wireSample('k1'), wireSample('k2', { width: 2 ** 31 }), wireSample('k3', { originalHeight: 2 ** 32 - 1 })]);
    const res = await client.completeShard({ actorId, shardId, fencingToken, samplesSent: 3, extraction: null, sourceErrors: [] });
    assert.equal(res.kept, 1);
    const row = c.store.shards.get(shardId)!;
    assert.deepEqual([row.state, row.failed], ['done', 2]);
    const { readAllParquet } = await import('./support/dataset.js');
    const rows = await readAllParquet(c.outDir);
    assert.deepEqual(rows.map((r) => [r.key, r.status]).sort(), [['k1', 'success'], ['k2', 'failed_to_resize'], ['k3', 'failed_to_resize']].map(([k, s]) => [testKey(k!), s]).sort());
    const { readdirSync } = await import('node:fs');
    assert.deepEqual(readdirSync(`${c.outDir}/.partial`), []);
  } finally {
    client.close();
    await c.close();
  }
});

test('a heartbeat listing more shards than a worker works on is refused (each would cost a query); a normal one answers', async () => {
  const c = await startTestCoordinator();
  const client = new CoordinatorClient(c.address, TEST_TOKEN);
  try {
    const { actorId } = await client.register(registerRequest());
    const shards = Array.from({ length: 5000 }, (_, i) => ({ shardId: i + 1, fencingToken: i + 1, ...noProgress }));
    await assert.rejects(client.heartbeat({ actorId, shards }), (err) => isStatus(err, grpc.status.INVALID_ARGUMENT));
    const hb = await client.heartbeat({ actorId, shards: shards.slice(0, 2) });
    assert.deepEqual(hb.revokedShardIds, [1, 2], 'not held: revoked, and no progress recorded for them');
    assert.equal(c.coordinator.snapshot().actors.find((a) => a.actorId === actorId)?.shard ?? null, null);
  } finally {
    client.close();
    await c.close();
  }
});
