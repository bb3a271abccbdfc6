import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { STREAM_BYTES_IN_FLIGHT } from '../src/coordinator/sample-stream.js';
import { MAX_ERROR_KINDS, OTHER_ERRORS } from '../src/store/runs.js';
import { STREAM_WINDOW_BYTES } from '../src/wire/http2-windows.js';
import type { PairFilter } from '../src/filter/pair-filter.js';
import { ShardWriter } from '../src/output/shard-writer.js';
import { CoordinatorClient, isStatus } from '../src/worker/rpc.js';
import { downloadFailure, registerRequest, runShard, startTestCoordinator, TEST_TOKEN, waitFor, wireSample, type TestCoordinator } from './support/coordinator.js';
import { RawH2 } from './support/h2-raw.js';
import { BULK_ACTOR, BULK_CONTENT_TYPE, BULK_FENCING, BULK_PATH, BULK_SHARD, CreditDecoder, encodeBulkFrame } from '../src/wire/bulk.js';
import { SESSION_METADATA_KEY, TOKEN_METADATA_KEY } from '../src/wire/contract.js';

async function parquetRows(outDir: string): Promise<Record<string, unknown>[]> {
  const parquet = readdirSync(outDir).find((n) => n.endsWith('.parquet'))!;
  return parquetReadObjects({ file: await asyncBufferFromFile(join(outDir, parquet)) });
}

test('corpus/stream: error messages a worker makes unique (sizes, a new text each sample, 300 KB long) are counted under at most 1,000 kinds of at most 300 characters; every sample keeps its own in the parquet', async () => {
  const c = await startTestCoordinator();
  const client = new CoordinatorClient(c.address, TEST_TOKEN);
  try {
    c.store.shards.add(['/data/errors.wat.gz']);
    const small = Array.from({ length: 300 }, (_, i) => downloadFailure(i, { status: 'failed_to_resize', errorMessage: `image too small: ${i + 1}x${i + 2} < 64` }));
    const hostile = Array.from({ length: 1500 }, (_, i) => downloadFailure(1000 + i, { errorMessage: `hostile ${i.toString(36)} ${Math.random().toString(36).slice(2)}${i === 7 ? 'y'.repeat(300_000) : ''}` }));
    await runShard(client, [...small, ...hostile]);
    const kinds = c.store.runs.topErrors(1_000_000);
    assert.equal(kinds.length, MAX_ERROR_KINDS + 1, 'a thousand kinds and the rest together');
    assert.equal(kinds.reduce((n, k) => n + k.count, 0), 1800, 'every failure counted once');
    assert.deepEqual(kinds.find((k) => k.message.startsWith('image too small')), { message: 'image too small: WxH < 64', count: 300 });
    assert.equal(kinds.find((k) => k.message === OTHER_ERRORS)?.count, 1500 - (MAX_ERROR_KINDS - 1));
    assert.ok(Math.max(...kinds.map((k) => k.message.length)) <= 300, 'a message of 300 KB is counted by its first 300 characters');
    const rows = await parquetRows(join(c.dir, 'out'));
    assert.equal(new Set(rows.map((r) => r['error_message'])).size, 1800, 'the parquet keeps each sample\'s own message');
  } finally {
    client.close();
    await c.close();
  }
});

test('corpus/stream: hostile keys (NUL, path, dot, too long, upper case) and unknown statuses fail those samples, not the shard', async () => {
  const c = await startTestCoordinator();
  const client = new CoordinatorClient(c.address, TEST_TOKEN);
  try {
    c.store.shards.add(['/data/keys.wat.gz']);
    const hostileKeys = ['00000000\u00000000000', '../../etc/passwd', 'abcdef0123456789.x', '0'.repeat(17), 'ABCDEF0123456789', '', '\u001b[31mred\u001b[0m'];
    const samples = [
      downloadFailure(1),
      ...hostileKeys.map((key, i) => downloadFailure(100 + i, { key })),
      downloadFailure(2, { status: 'exploded' }),
      downloadFailure(3),
    ];
    const { complete, shardId } = await runShard(client, samples);
    assert.equal(complete.kept, 0);
    const rows = await parquetRows(join(c.dir, 'out'));
    assert.deepEqual(rows.map((r) => r['key']).sort(), [samples[0]!.key, samples.at(-1)!.key].sort());
    const shard = c.store.shards.get(shardId)!;
    assert.equal(shard.state, 'done');
    const names = readdirSync(join(c.dir, 'out'));
    assert.ok(!names.some((n) => n.includes('\u0000') || n.startsWith('nul')), names.join(','));
  } finally {
    client.close();
    await c.close();
  }
});

test('corpus/stream: a worker sending more samples than its credits is refused (RESOURCE_EXHAUSTED)', async () => {
  const c = await startTestCoordinator({ settings: { creditWindow: 4 } });
  const client = new CoordinatorClient(c.address, TEST_TOKEN);
  try {
    c.store.shards.add(['/data/greedy.wat.gz']);
    const samples = Array.from({ length: 64 }, (_, i) => downloadFailure(i));
    await assert.rejects(runShard(client, samples, { ignoreCredits: true, perMessage: 16 }), (err: unknown) => isStatus(err, grpc.status.RESOURCE_EXHAUSTED));
  } finally {
    client.close();
    await c.close();
  }
});

/** A filter that answers nothing until `release`: every sample read stays in the coordinator. */
function stuckFilter(): { filter: PairFilter; release: () => void } {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const filter: PairFilter = {
    provider: 'none',
    name: 'stuck',
    async score(batch) {
      await gate;
      return batch.map(() => ({ keep: true, similarity: 1 }));
    },
    async close() {},
  };
  return { filter, release };
}

for (const sample of [
  { imageBytes: 1024 * 1024, sent: 160 },
  // Few big frames: a paused stream must not decode ahead a buffer's worth of them.
  { imageBytes: 8 * 1024 * 1024, sent: 24 },
  // The bytes may sit in the text as well: a 1 MiB caption with a tiny image counts as much.
  { imageBytes: 1024 * 1024, sent: 160, inCaption: true },
] as const satisfies readonly { imageBytes: number; sent: number; inCaption?: boolean }[]) {
  const { imageBytes, sent } = sample;
  const inCaption = 'inCaption' in sample && sample.inCaption;
  test(`corpus/bulk: a worker sending ${imageBytes >> 20} MiB ${inCaption ? 'captions' : 'images'} faster than they are filtered is read only up to the byte bound, whatever its credits`, async () => {
    const stuck = stuckFilter();
    const c = await startTestCoordinator({ filter: stuck.filter, settings: { creditWindow: 512, creditBudget: 1024 } });
    const client = new CoordinatorClient(c.address, TEST_TOKEN);
    const stream = client.streamSamples();
    stream.on('error', () => undefined);
    try {
      c.store.shards.add(['/data/big.wat.gz']);
      const { actorId } = await client.register(registerRequest());
      const { shardId, fencingToken } = (await client.leaseShard({ actorId })).shard!;
      const granted = new Promise<number>((resolve) => stream.once('data', (g: { credits: number }) => resolve(g.credits)));
      stream.write({ actorId, shardId, fencingToken, samples: [] });
      const credits = await granted;
      const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(inCaption ? 16 : imageBytes - 3, 7)]);
      // Under the frame's 1 MiB metadata bound, and counted as the bytes it is.
      const caption = inCaption ? 'c'.repeat(imageBytes - 48 * 1024) : 'a caption';
      const unit = inCaption ? caption.length : imageBytes;
      assert.ok(credits >= sent, `the worker holds ${credits} credits: enough for all ${sent} images`);
      // What the worker could hand over: written once HTTP/2 flow control let the bytes go.
      let written = 0;
      for (let i = 0; i < sent; i++) stream.write({ actorId, shardId, fencingToken, samples: [wireSample(`big${i}`, { jpeg, caption })] }, () => written++);
      // Wait until the coordinator stops taking more (its count is still for a whole second).
      let received = -1;
      for (let still = 0, i = 0; still < 10 && i < 300; i++) {
        await new Promise((r) => setTimeout(r, 100));
        still = c.stage.queueDepth === received ? still + 1 : 0;
        received = c.stage.queueDepth;
      }
      const bound = Math.floor(STREAM_BYTES_IN_FLIGHT / unit);
      assert.ok(received >= bound / 2, `it read up to its bound (${received} images)`);
      // The bound, the message that crossed it, one buffered and one being decoded.
      assert.ok(received <= bound + 3, `${received} of ${sent} images of ${imageBytes >> 20} MiB read with the filter stuck (bound ${bound})`);
      // Taken off the wire: those read, one decoded ahead, and what the stream's HTTP/2 window holds unread.
      const window = Math.floor(STREAM_WINDOW_BYTES / unit);
      assert.ok(written <= bound + window + 4, `${written} of ${sent} images left the worker (bound ${bound}, window ${window})`);
    } finally {
      stuck.release();
      stream.cancel();
      client.close();
      await c.close();
    }
  });
}

test('corpus/stream: a stream that opens while the swarm\'s byte budget is full waits, and resumes once the filter catches up; both shards commit exactly', async () => {
  const stuck = stuckFilter();
  const imageBytes = 1024 * 1024;
  // A swarm budget of 6 MiB, below one stream's own bound: the first worker fills it alone.
  const c = await startTestCoordinator({ filter: stuck.filter, settings: { creditWindow: 512, creditBudget: 1024, creditBytes: 6 * imageBytes } });
  const clients = [new CoordinatorClient(c.address, TEST_TOKEN), new CoordinatorClient(c.address, TEST_TOKEN)];
  const steady = async (): Promise<number> => {
    let depth = -1;
    for (let still = 0, i = 0; still < 10 && i < 300; i++) {
      await new Promise((r) => setTimeout(r, 100));
      still = c.stage.queueDepth === depth ? still + 1 : 0;
      depth = c.stage.queueDepth;
    }
    return depth;
  };
  try {
    c.store.shards.add(['/data/swarm-a.wat.gz', '/data/swarm-b.wat.gz']);
    const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(imageBytes - 3, 7)]);
    const perShard = 12;
    const shard = (w: number): ReturnType<typeof runShard> =>
      runShard(
        clients[w]!,
        Array.from({ length: perShard }, (_, i) => wireSample(`sw${w}-${i}`, { jpeg })),
      );
    const first = shard(0);
    const filled = await steady();
    assert.ok(filled >= 6 && filled <= 6 + 2, `the first worker filled the budget: ${filled} images read`);
    // The second stream opens on a full budget: it stops reading before its first image, with nothing of its own in flight.
    const second = shard(1);
    assert.equal(await steady(), filled, 'nothing of the second worker was read while the budget was full');
    stuck.release();
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('the paused stream did not resume within 60 s')), 60_000);
    });
    const done = await Promise.race([Promise.all([first, second]), stalled]).finally(() => clearTimeout(timer));
    assert.deepEqual(
      done.map((d) => d.complete.kept),
      [perShard, perShard],
      'every image of both shards was read once the budget freed up, and kept',
    );
  } finally {
    stuck.release();
    for (const client of clients) client.close();
    await c.close();
  }
});

test('corpus/stream: the parquet buffer is bounded by bytes, not only rows (long strings flush early)', async () => {
  const out = mkdtempSync(join(tmpdir(), 'cah-hostile-parquet-'));
  try {
    const writer = await ShardWriter.open({ outDir: out, shardNumber: 1, attemptTag: 't1' });
    const caption = 'x'.repeat(1024 * 1024);
    for (let i = 0; i < 40; i++) {
      const w = downloadFailure(i, { caption });
      await writer.add({ ...w, license: null, errorMessage: w.errorMessage, width: null, height: null, originalWidth: null, originalHeight: null, sha256: null, similarity: null, jpeg: null, status: 'failed_to_download', resizeMs: null });
    }
    const committed = await writer.commit({ startedAtMs: Date.now() });
    const metadata = await parquetMetadataAsync(await asyncBufferFromFile(committed.parquetPath));
    assert.equal(Number(metadata.num_rows), 40);
    assert.ok(metadata.row_groups.length >= 2, `40 MB of captions in ${metadata.row_groups.length} row group(s)`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

/** The garbage collector, for measuring what stays reachable (the test runner passes no --expose-gc). */
function collector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** A raw HTTP/2 connection to `c` with the worker token, and a lease it holds (a peer that has the token). */
async function leasedPeer(c: TestCoordinator, client: CoordinatorClient): Promise<{ raw: RawH2; headers: Record<string, string> }> {
  c.store.shards.add([`/data/flood-${Date.now()}.wat.gz`]);
  const { actorId } = await client.register(registerRequest());
  const { shardId, fencingToken } = (await client.leaseShard({ actorId })).shard!;
  const session = (client as unknown as { metadata: grpc.Metadata }).metadata.get(SESSION_METADATA_KEY)[0] as string;
  const [host, port] = c.address.split(':');
  const raw = await RawH2.open(host!, Number(port));
  const headers = {
    ':scheme': 'http',
    ':authority': c.address,
    [TOKEN_METADATA_KEY]: TEST_TOKEN,
    [SESSION_METADATA_KEY]: session,
    [BULK_ACTOR]: actorId,
    [BULK_SHARD]: String(shardId),
    [BULK_FENCING]: String(fencingToken),
  };
  return { raw, headers };
}

/**
 * A raw bulk stream on `c` under a lease of its own, once it holds `credits` credits: samples sent
 * before the grant would be refused as an overrun, so a peer waits for them as a worker does.
 */
async function rawBulkStream(c: TestCoordinator, client: CoordinatorClient, credits: number): Promise<RawH2> {
  const { raw, headers } = await leasedPeer(c, client);
  try {
    raw.request({ ':method': 'POST', ':path': BULK_PATH, 'content-type': BULK_CONTENT_TYPE, ...headers });
    const granted = (): number => new CreditDecoder().push(Buffer.concat(raw.body)).reduce((a, b) => a + b, 0);
    await waitFor(`${credits} credits granted to the raw stream`, () => granted() >= credits, 10_000);
    return raw;
  } catch (err) {
    raw.close();
    throw err;
  }
}

/**
 * A bulk stream with a lease, paused: its first frame fills a 1 MiB swarm byte budget behind a
 * filter that never finishes. `attack` then sends what it likes on it.
 */
async function onPausedBulkStream(attack: (raw: RawH2, gc: () => void) => Promise<void>): Promise<void> {
  const stuck = stuckFilter();
  const c = await startTestCoordinator({ filter: stuck.filter, settings: { creditBytes: 1024 * 1024 } });
  const client = new CoordinatorClient(c.address, TEST_TOKEN);
  let raw: RawH2 | null = null;
  try {
    raw = await rawBulkStream(c, client, 8);
    const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(200_000, 7)]);
    const frame = Buffer.concat(encodeBulkFrame(Array.from({ length: 8 }, (_, i) => wireSample(`flood${i}`, { jpeg }))));
    for (let at = 0; at < frame.length; at += 16_384) await raw.data(frame.subarray(at, at + 16_384), 1);
    await waitFor('the frame read and the stream paused behind the stuck filter', () => c.stage.queueDepth === 8, 10_000);
    await attack(raw, collector());
  } finally {
    raw?.close();
    stuck.release();
    client.close();
    await c.close();
  }
}

test('corpus/bulk: one-byte DATA frames on a paused sample stream are cut off (ENHANCE_YOUR_CALM) once 16,384 are held; the heap does not grow with them', async () => {
  await onPausedBulkStream(async (raw, gc) => {
    gc();
    const before = process.memoryUsage().heapUsed;
    // A million one-byte frames: 1 MB of payload, well inside the stream's 16 MiB window.
    await raw.data(Buffer.from([0]), 1_000_000);
    await waitFor('the stream reset', () => raw.resetCode !== null, 10_000);
    gc();
    const grownMb = (process.memoryUsage().heapUsed - before) / 2 ** 20;
    // Held, a million chunks take ~120 MB of heap (measured without the bound: +102 MB).
    assert.ok(grownMb < 40, `the heap grew by ${grownMb.toFixed(0)} MB`);
    assert.equal(raw.resetCode, 11, 'the stream was reset with ENHANCE_YOUR_CALM');
  });
});

test('corpus/bulk: one-byte DATA frames each read beside 48 KB of ignored frames do not pin their read buffers on a paused sample stream', async () => {
  await onPausedBulkStream(async (raw, gc) => {
    gc();
    const before = process.memoryUsage().arrayBuffers;
    // 2,000 chunks, under the count bound: each would keep its socket read's buffer (up to 64 KB) alive.
    await raw.data(Buffer.from([0]), 2000, 48 * 1024);
    await raw.ping();
    gc();
    const grownMb = (process.memoryUsage().arrayBuffers - before) / 2 ** 20;
    assert.equal(raw.resetCode, null, 'the stream is still open (under the count bound)');
    assert.ok(grownMb < 32, `buffers held grew by ${grownMb.toFixed(0)} MB for 2,000 bytes of payload`);
  });
});

test('corpus/bulk: an image arriving 1 KiB per DATA frame, each read beside 48 KB of ignored frames, does not pin the read buffers while the stream reads it', async () => {
  const c = await startTestCoordinator();
  const client = new CoordinatorClient(c.address, TEST_TOKEN);
  const gc = collector();
  let raw: RawH2 | null = null;
  try {
    raw = await rawBulkStream(c, client, 1);
    // A frame of one sample whose image is announced at 60 MB: the decoder keeps its bytes until it is whole.
    const [head, metadata] = encodeBulkFrame([wireSample('pinned')]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(60_000_000, 0);
    await raw.data(Buffer.concat([head!, metadata!, length]), 1);
    gc();
    const before = process.memoryUsage().arrayBuffers;
    await raw.data(Buffer.alloc(1024, 7), 2000, 48 * 1024);
    await raw.ping();
    gc();
    const grownMb = (process.memoryUsage().arrayBuffers - before) / 2 ** 20;
    assert.equal(raw.resetCode, null, 'the stream is still open: nothing in it is out of bounds');
    // Kept as views, the 2 MB of image bytes pinned ~124 MB of read buffers (measured by a reviewer).
    assert.ok(grownMb < 32, `buffers held grew by ${grownMb.toFixed(0)} MB for 2 MB of image bytes`);
  } finally {
    raw?.close();
    client.close();
    await c.close();
  }
});

test('corpus/grpc: a unary call sent as one-byte DATA frames is reset (ENHANCE_YOUR_CALM) after 1,024 of them, before its handler runs', async () => {
  const c = await startTestCoordinator();
  const client = new CoordinatorClient(c.address, TEST_TOKEN);
  let raw: RawH2 | null = null;
  let heartbeats = 0;
  const heartbeat = c.coordinator.heartbeat.bind(c.coordinator);
  c.coordinator.heartbeat = (...args) => (heartbeats++, heartbeat(...args));
  try {
    const peer = await leasedPeer(c, client);
    raw = peer.raw;
    raw.request({ ':method': 'POST', ':path': '/cah.v1.Coordinator/Heartbeat', 'content-type': 'application/grpc', te: 'trailers', ...peer.headers });
    // One message of 100 KB (the unary limit is 1 MiB), sent a byte per frame.
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(100_000, 1);
    await raw.data(prefix, 1);
    await raw.data(Buffer.from([0]), 100_000);
    const r = raw;
    await waitFor('the call reset', () => r.resetCode !== null, 10_000);
    assert.equal(raw.resetCode, 11, 'the call was reset with ENHANCE_YOUR_CALM');
    assert.equal(heartbeats, 0, 'the handler never ran');
  } finally {
    raw?.close();
    client.close();
    await c.close();
  }
});
