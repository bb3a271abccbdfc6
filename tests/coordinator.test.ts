import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import sharp from 'sharp';
import { Coordinator } from '../src/coordinator/head.js';
import { DEFAULT_COORDINATOR_SETTINGS } from '../src/coordinator/settings.js';
import type { FilterInput, FilterVerdict, PairFilter } from '../src/filter/pair-filter.js';
import { PassThroughFilter } from '../src/filter/pair-filter.js';
import { FilterStage } from '../src/filter/stage.js';
import { Store } from '../src/store/state-file.js';
import { CoordinatorClient, isStatus } from '../src/worker/rpc.js';
import type { WireSample } from '../src/wire/contract.js';
import { TEST_TOKEN, registerRequest, startTestCoordinator } from './support/coordinator.js';

const TOKEN = 'a'.repeat(64);

async function startCoordinator(filter: PairFilter, opts: { capacity?: number; creditWindow?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'cah-coord-'));
  const store = Store.open(join(dir, 'cah.sqlite'));
  const stage = new FilterStage(filter, { batchSize: 4, maxWaitMs: 5, capacity: opts.capacity ?? 64 });
  const coordinator = new Coordinator({
    store,
    outDir: join(dir, 'out'),
    workerToken: TOKEN,
    filter: stage,
    settings: { ...DEFAULT_COORDINATOR_SETTINGS, creditWindow: opts.creditWindow ?? DEFAULT_COORDINATOR_SETTINGS.creditWindow },
    logger: pino({ level: 'silent' }),
  });
  const port = await coordinator.start('127.0.0.1:0');
  return {
    dir,
    store,
    stage,
    coordinator,
    address: `127.0.0.1:${port}`,
    async close() {
      await coordinator.stop('test done');
      await stage.close();
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const registerReq = { version: 't', host: 'test', pid: 1, actorId: '' };

test('every call with a missing or wrong worker token gets UNAUTHENTICATED', async () => {
  const c = await startCoordinator(new PassThroughFilter());
  try {
    const wrong = new CoordinatorClient(c.address, 'b'.repeat(64));
    const empty = new CoordinatorClient(c.address, '');
    for (const client of [wrong, empty]) {
      await assert.rejects(client.register(registerReq), (err) => isStatus(err, grpc.status.UNAUTHENTICATED));
      await assert.rejects(client.leaseShard({ actorId: 'x' }), (err) => isStatus(err, grpc.status.UNAUTHENTICATED));
      await assert.rejects(client.heartbeat({ actorId: 'x', shards: [] }), (err) => isStatus(err, grpc.status.UNAUTHENTICATED));
      await assert.rejects(client.claimKeys({ actorId: 'x', shardId: 1, fencingToken: 1, keys: ['k'] }), (err) => isStatus(err, grpc.status.UNAUTHENTICATED));
      await assert.rejects(
        client.completeShard({ actorId: 'x', shardId: 1, fencingToken: 1, samplesSent: 0, extraction: null, sourceErrors: [] }),
        (err) => isStatus(err, grpc.status.UNAUTHENTICATED),
      );
      await assert.rejects(client.failShard({ actorId: 'x', shardId: 1, fencingToken: 1, error: 'e' }), (err) => isStatus(err, grpc.status.UNAUTHENTICATED));
      const stream = client.streamSamples();
      const code = await new Promise<number>((resolve) => {
        stream.on('error', (err: grpc.ServiceError) => resolve(err.code));
        stream.on('data', () => resolve(-1));
        stream.write({ actorId: 'x', shardId: 1, fencingToken: 1, samples: [] });
      });
      assert.equal(code, grpc.status.UNAUTHENTICATED);
      client.close();
    }
    assert.equal(c.store.actors.list().length, 0, 'no actor was registered');
    const right = new CoordinatorClient(c.address, TOKEN);
    const res = await right.register(registerReq);
    assert.ok(res.actorId.length > 0);
    assert.equal(res.settings?.maxInFlight, DEFAULT_COORDINATOR_SETTINGS.worker.maxInFlight);
    right.close();
  } finally {
    await c.close();
  }
});

test('a stale fencing token is refused with FAILED_PRECONDITION and cannot complete the shard', async () => {
  const c = await startCoordinator(new PassThroughFilter());
  const client = new CoordinatorClient(c.address, TOKEN);
  try {
    c.store.shards.add(['/nonexistent/a.wat.gz']);
    const { actorId } = await client.register(registerReq);
    const lease = await client.leaseShard({ actorId });
    assert.ok(lease.hasShard && lease.shard);
    const { shardId, fencingToken } = lease.shard!;
    assert.deepEqual((await client.claimKeys({ actorId, shardId, fencingToken, keys: ['k1'] })).newKeys, ['k1']);
    c.store.shards.returnLease(shardId, fencingToken, 'taken away', { countsAsFailure: false, maxRetries: 3 });
    await assert.rejects(client.claimKeys({ actorId, shardId, fencingToken, keys: ['k2'] }), (err) => isStatus(err, grpc.status.FAILED_PRECONDITION));
    await assert.rejects(
      client.completeShard({ actorId, shardId, fencingToken, samplesSent: 0, extraction: null, sourceErrors: [] }),
      (err) => isStatus(err, grpc.status.FAILED_PRECONDITION),
    );
    const hb = await client.heartbeat({ actorId, shards: [{ shardId, fencingToken, candidates: 0, downloaded: 0, failed: 0, bytesIn: 0, duplicates: 0, sourceBytesRead: 0, sourceBytesTotal: 0 }] });
    assert.deepEqual(hb.revokedShardIds, [shardId]);
    assert.equal(c.store.shards.get(shardId)!.state, 'queued');
  } finally {
    client.close();
    await c.close();
  }
});

/** A filter as slow as a busy GPU: every batch takes `delayMs`. */
class SlowFilter implements PairFilter {
  readonly provider = 'test';
  readonly name = 'slow';
  maxQueueSeen = 0;
  constructor(private readonly delayMs: number, private readonly stage: () => FilterStage | null) {}
  async score(batch: FilterInput[]): Promise<FilterVerdict[]> {
    this.maxQueueSeen = Math.max(this.maxQueueSeen, this.stage()?.queueDepth ?? 0);
    await new Promise((r) => setTimeout(r, this.delayMs));
    return batch.map((b) => ({ keep: !b.caption.includes('reject'), similarity: b.caption.includes('reject') ? 0.1 : 0.9 }));
  }
  async close(): Promise<void> {}
}

test('credits: a slow filter slows the stream instead of queueing without bound; the shard commits exactly', async () => {
  let stageRef: FilterStage | null = null;
  const filter = new SlowFilter(30, () => stageRef);
  const c = await startCoordinator(filter, { capacity: 16, creditWindow: 8 });
  stageRef = c.stage;
  const client = new CoordinatorClient(c.address, TOKEN);
  try {
    c.store.shards.add(['/data/a.wat.gz']);
    const { actorId } = await client.register(registerReq);
    const { shard } = await client.leaseShard({ actorId });
    const { shardId, fencingToken } = shard!;
    const jpeg = await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 200, g: 0, b: 0 } } }).jpeg().toBuffer();
    const total = 60;
    const samples: WireSample[] = Array.from({ length: total }, (_, i) => ({
      key: i.toString(16).padStart(16, '0'),
      url: `http://example.test/${i}.jpg`,
      exif: '',
      caption: i % 5 === 0 ? `reject ${i}` : `a red square ${i}`,
      pageUrl: 'http://example.test/',
      license: '',
      status: i % 7 === 3 ? 'failed_to_download' : 'success',
      errorMessage: i % 7 === 3 ? 'HTTP 404' : '',
      width: 8,
      height: 8,
      originalWidth: 8,
      originalHeight: 8,
      sha256: '',
      jpeg: i % 7 === 3 ? Buffer.alloc(0) : jpeg,
      downloadMs: 1,
      resizeMs: 1,
      downloadAttempts: 1,
    }));
    const stream = client.streamSamples();
    let credits = 0;
    let firstGrant = -1;
    let sent = 0;
    let granted = 0;
    const waiters: (() => void)[] = [];
    stream.on('data', (g: { credits: number }) => {
      if (firstGrant < 0) firstGrant = g.credits;
      credits += g.credits;
      granted += g.credits;
      waiters.splice(0).forEach((w) => w());
    });
    const ended = new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    stream.write({ actorId, shardId, fencingToken, samples: [] });
    for (const sample of samples) {
      while (credits === 0) await new Promise<void>((r) => waiters.push(r));
      credits--;
      sent++;
      stream.write({ actorId, shardId, fencingToken, samples: [sample] });
    }
    stream.end();
    await ended;
    const res = await client.completeShard({ actorId, shardId, fencingToken, samplesSent: total, extraction: null, sourceErrors: [] });
    assert.equal(firstGrant, 8, 'the stream starts with the credit window, not an unbounded grant');
    assert.ok(granted <= total + 8, `credits come back one per written sample (granted ${granted} for ${total})`);
    assert.equal(sent, total);
    assert.ok(filter.maxQueueSeen <= 16, `filter queue stayed within capacity (saw ${filter.maxQueueSeen})`);
    const failures = samples.filter((s) => s.status !== 'success').length;
    const rejected = samples.filter((s) => s.status === 'success' && s.caption.startsWith('reject')).length;
    assert.equal(res.kept, total - failures - rejected);
    const row = c.store.shards.get(shardId)!;
    assert.equal(row.state, 'done');
    assert.equal(row.kept, res.kept);
    assert.equal(row.filteredOut, rejected);
    assert.equal(row.failed, failures);
    const outFiles = readdirSync(join(c.dir, 'out')).sort();
    assert.ok(outFiles.includes(`${res.outputShard}.tar`));
    assert.ok(existsSync(join(c.dir, 'out', `${res.outputShard}.parquet`)));
  } finally {
    client.close();
    await c.close();
  }
});

type SampleStream = ReturnType<CoordinatorClient['streamSamples']>;

/** Registers an actor, leases a shard and opens its sample stream: resolves with the stream's first credit grant. */
async function openAttemptStream(client: CoordinatorClient): Promise<{ grant: number; stream: SampleStream }> {
  const { actorId } = await client.register(registerRequest());
  const lease = (await client.leaseShard({ actorId })).shard!;
  const stream = client.streamSamples();
  stream.on('error', () => undefined);
  const grant = new Promise<number>((resolve) => stream.once('data', (g: { credits: number }) => resolve(g.credits)));
  stream.write({ actorId, shardId: lease.shardId, fencingToken: lease.fencingToken, samples: [] });
  return { grant: await grant, stream };
}

test('credits: the swarm shares one budget; a stream opened among many gets its share (at least 8), not a full window', async () => {
  const c = await startTestCoordinator({ settings: { creditWindow: 32, creditBudget: 96 } });
  const client = new CoordinatorClient(c.address, TEST_TOKEN);
  const streams: SampleStream[] = [];
  try {
    c.store.shards.add(Array.from({ length: 14 }, (_, i) => `/data/budget-${i}.wat.gz`));
    const firstGrants: number[] = [];
    for (let i = 0; i < 14; i++) {
      const { grant, stream } = await openAttemptStream(client);
      streams.push(stream);
      firstGrants.push(grant);
    }
    // 96 over 1, 2, 3 open streams is at least the window (32); then 96/4 = 24, 96/5 = 19, … down to the floor of 8.
    assert.deepEqual(firstGrants, [32, 32, 32, 24, 19, 16, 13, 12, 10, 9, 8, 8, 8, 8]);
  } finally {
    for (const stream of streams) stream.cancel();
    client.close();
    await c.close();
  }
});

test('credits: a stream counts against the budget only from its attempt\'s start to its end (idle, refused or ended ones do not)', async () => {
  const c = await startTestCoordinator({ settings: { creditWindow: 32, creditBudget: 40 } });
  const client = new CoordinatorClient(c.address, TEST_TOKEN);
  const idle: SampleStream[] = [];
  try {
    c.store.shards.add(['/data/b1.wat.gz', '/data/b2.wat.gz', '/data/b3.wat.gz']);
    // Streams opened and left silent, and one refused (an unknown actor), take no share.
    for (let i = 0; i < 3; i++) {
      const stream = client.streamSamples();
      stream.on('error', () => undefined);
      idle.push(stream);
    }
    const refused = client.streamSamples();
    const refusal = new Promise<unknown>((resolve) => refused.on('error', resolve));
    refused.write({ actorId: 'nobody', shardId: 1, fencingToken: 1, samples: [] });
    await refusal;
    const a = await openAttemptStream(client);
    assert.equal(a.grant, 32, 'alone: the whole window (idle and refused streams not counted)');
    const b = await openAttemptStream(client);
    assert.equal(b.grant, 20, 'two streams share 40');
    // An ended stream gives its share back: the next one shares with b only (40 / 2), not with a too (40 / 3).
    const ended = new Promise<void>((resolve) => a.stream.on('end', () => resolve()));
    a.stream.end();
    await ended;
    const d = await openAttemptStream(client);
    assert.equal(d.grant, 20);
    b.stream.cancel();
    d.stream.cancel();
  } finally {
    for (const stream of idle) stream.cancel();
    client.close();
    await c.close();
  }
});
