import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Coordinator } from '../src/coordinator/head.js';
import { DEFAULT_COORDINATOR_SETTINGS } from '../src/coordinator/settings.js';
import { PassThroughFilter } from '../src/filter/pair-filter.js';
import { FilterStage } from '../src/filter/stage.js';
import { Store } from '../src/store/state-file.js';
import type { HeartbeatRequest, RegisterRequest } from '../src/wire/contract.js';
import { refusalReason } from '../src/wire/reasons.js';
import { CoordinatorClient, isStatus } from '../src/worker/rpc.js';

const TOKEN = 'a'.repeat(64);
// Only the fields every version of the contract has: optional ones decode as their defaults.
const registerReq = { version: 't', host: 'test', pid: 1, actorId: '' } as unknown as RegisterRequest;
const heartbeatOf = (actorId: string): HeartbeatRequest => ({ actorId, shards: [] }) as unknown as HeartbeatRequest;

test('a refusal declares its reason on the wire: register-again for an actor not ALIVE, stale-lease for a lease no longer held', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cah-reasons-'));
  const store = Store.open(join(dir, 'cah.sqlite'));
  const stage = new FilterStage(new PassThroughFilter(), { batchSize: 4, maxWaitMs: 5, capacity: 64 });
  const coordinator = new Coordinator({ store, outDir: join(dir, 'out'), workerToken: TOKEN, filter: stage, settings: DEFAULT_COORDINATOR_SETTINGS, logger: pino({ level: 'silent' }) });
  const client = new CoordinatorClient(`127.0.0.1:${await coordinator.start('127.0.0.1:0')}`, TOKEN);
  try {
    store.shards.add(['/nonexistent/a.wat.gz']);
    const { actorId } = await client.register(registerReq);
    const { shard } = await client.leaseShard({ actorId });
    assert.ok(shard);
    store.shards.returnLease(shard.shardId, shard.fencingToken, 'taken away', { countsAsFailure: false, maxRetries: 3 });
    await assert.rejects(client.claimKeys({ actorId, shardId: shard.shardId, fencingToken: shard.fencingToken, keys: ['k'] }), (err) => {
      assert.ok(isStatus(err, grpc.status.FAILED_PRECONDITION));
      assert.equal(refusalReason(err), 'stale-lease');
      return true;
    });
    await coordinator.actorDied(actorId, 'test', false);
    for (const call of [() => client.heartbeat(heartbeatOf(actorId)), () => client.leaseShard({ actorId })]) {
      await assert.rejects(call(), (err) => {
        assert.ok(isStatus(err, grpc.status.FAILED_PRECONDITION));
        assert.equal(refusalReason(err), 'register-again');
        return true;
      });
    }
    assert.equal(refusalReason(new Error('actor x is not ALIVE: register again')), null, 'the wording alone declares nothing');
  } finally {
    client.close();
    await coordinator.stop('test done');
    await stage.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
