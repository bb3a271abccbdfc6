import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoordinatorClient, isStatus } from '../src/worker/rpc.js';
import { ShardWriter } from '../src/output/shard-writer.js';
import { StateFileError } from '../src/store/db.js';
import { Store } from '../src/store/state-file.js';
import { TEST_TOKEN, registerRequest, startTestCoordinator, streamAll, testKey, waitFor, wireSample } from './support/coordinator.js';
import { readAllParquet, readAllTarEntries } from './support/dataset.js';

const haveDevFull = existsSync('/dev/full');
const sample = (key: string) => ({ ...wireSample(key), license: null, errorMessage: null, sha256: null, similarity: null, downloadMs: 1, resizeMs: 1, pageUrl: '' });

/** A shard writer whose temp `member` file is /dev/full (every write to it fails with ENOSPC); `use` gets it and its .partial/ directory. */
async function onFullDisk(member: 'tar' | 'parquet', use: (writer: ShardWriter, partial: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `cah-enospc-${member}-`));
  try {
    const partial = join(dir, '.partial');
    mkdirSync(partial);
    symlinkSync('/dev/full', join(partial, `00001.t1.${member}`));
    await use(await ShardWriter.open({ outDir: dir, shardNumber: 1, attemptTag: 't1' }), partial);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a full disk under the shard writer is an error of add(), not an unhandled stream error', { skip: !haveDevFull && 'needs /dev/full' }, async () => {
  await onFullDisk('tar', async (writer, partial) => {
    let error: unknown = null;
    for (let i = 0; i < 400 && !error; i++) {
      await writer.add({ ...sample(`k${i}`), jpeg: Buffer.alloc(64 * 1024, 1), status: 'success', width: 8, height: 8, originalWidth: 8, originalHeight: 8 }).catch((err: unknown) => (error = err));
    }
    assert.equal((error as NodeJS.ErrnoException | null)?.code, 'ENOSPC');
    await writer.abort();
    assert.deepEqual(readdirSync(partial), [], 'no temp file left');
  });
});

test('a full disk under the parquet file fails the shard\'s staging with ENOSPC, not an unhandled stream error, and leaves no temp file', { skip: !haveDevFull && 'needs /dev/full' }, async () => {
  await onFullDisk('parquet', async (writer, partial) => {
    // Rows only (failed samples write no tar member): the parquet is the one file that fills.
    for (let i = 0; i < 50; i++) await writer.add({ ...sample(`k${i}`), status: 'failed_to_download', errorMessage: 'HTTP 404' });
    const error = await writer.stage({ startedAtMs: Date.now(), source: 'a.wat.gz' }).then(
      () => null,
      (err: unknown) => err,
    );
    assert.equal((error as NodeJS.ErrnoException | null)?.code, 'ENOSPC');
    assert.deepEqual(readdirSync(partial), [], 'no temp file left');
  });
});

test('a full disk fails the attempt without charging the shard, pauses leasing until writable, leaves no temp file; then the shard completes', { skip: !haveDevFull && 'needs /dev/full' }, async () => {
  const c = await startTestCoordinator({ settings: { maxRetries: 1, retryBackoffMs: 0 }, superviseIntervalMs: 3_600_000 });
  const client = new CoordinatorClient(c.address, TEST_TOKEN);
  const partial = join(c.outDir, '.partial');
  try {
    c.store.shards.add(['/data/a.wat.gz']);
    const { actorId } = await client.register(registerRequest());
    const samples = Array.from({ length: 30 }, (_, i) => wireSample(`k${i}`, { jpeg: Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(200 * 1024, i)]) }));
    // Attempt 1: the tar fills the disk while samples stream. Attempt 2: the commit's stats file does.
    for (const [attempt, victim] of [[1, (t: number) => `00001.t${t}.tar`], [2, (t: number) => `00001.t${t}_stats.json`]] as const) {
      const { shardId, fencingToken } = (await client.leaseShard({ actorId })).shard!;
      mkdirSync(partial, { recursive: true });
      symlinkSync('/dev/full', join(partial, victim(fencingToken)));
      await streamAll(client, { actorId, shardId, fencingToken }, samples);
      await assert.rejects(
        client.completeShard({ actorId, shardId, fencingToken, samplesSent: samples.length, extraction: null, sourceErrors: [] }),
        (err) => isStatus(err, grpc.status.UNAVAILABLE) && /ENOSPC/.test((err as Error).message),
        `attempt ${attempt}`,
      );
      const row = c.store.shards.get(shardId)!;
      assert.deepEqual([row.state, row.failures], ['queued', 0], `attempt ${attempt}: the coordinator's disk is not the shard's fault (max retries 1)`);
      assert.deepEqual(readdirSync(partial), [], `attempt ${attempt}: no temp file left after the aborted attempt`);
      assert.match(c.coordinator.outputFault ?? '', /ENOSPC/);
      assert.equal((await client.leaseShard({ actorId })).hasShard, false, 'leasing paused while the disk is full');
      // Still full: the probe fails and leasing stays paused.
      symlinkSync('/dev/full', join(partial, '.write-probe'));
      assert.equal(await c.coordinator.probeOutput(), false);
      assert.ok(c.coordinator.outputFault);
      // Space again: leasing resumes.
      assert.equal(await c.coordinator.probeOutput(), true);
      assert.equal(c.coordinator.outputFault, null);
    }
    assert.ok(c.logs.some((l) => /leasing paused until it is writable/.test(l.msg)) && c.logs.some((l) => /leasing resumed/.test(l.msg)));
    const { shardId, fencingToken } = (await client.leaseShard({ actorId })).shard!;
    await streamAll(client, { actorId, shardId, fencingToken }, samples);
    const res = await client.completeShard({ actorId, shardId, fencingToken, samplesSent: samples.length, extraction: null, sourceErrors: [] });
    assert.equal(res.kept, samples.length);
    assert.equal((await readAllTarEntries(c.outDir)).filter((e) => e.name.endsWith('.jpg')).length, samples.length);
  } finally {
    client.close();
    await c.close();
  }
});

test('a half-published shard (killed between renames) is removed at restart and redone; readers never see it as complete', async () => {
  const first = await startTestCoordinator();
  const client = new CoordinatorClient(first.address, TEST_TOKEN);
  const { dir, outDir } = first;
  try {
    first.store.shards.add(['/data/a.wat.gz', '/data/b.wat.gz']);
    const { actorId } = await client.register(registerRequest());
    const a = (await client.leaseShard({ actorId })).shard!;
    await streamAll(client, { actorId, shardId: a.shardId, fencingToken: a.fencingToken }, [wireSample('a1'), wireSample('a2')]);
    await client.completeShard({ actorId, shardId: a.shardId, fencingToken: a.fencingToken, samplesSent: 2, extraction: null, sourceErrors: [] });
    const b = (await client.leaseShard({ actorId })).shard!;
    assert.deepEqual((await client.claimKeys({ actorId, shardId: b.shardId, fencingToken: b.fencingToken, keys: [testKey('b1')] })).newKeys, [testKey('b1')]);
    client.close();
    await first.close(false);
    // What a coordinator killed between its renames leaves: shard 2's parquet and tar without the commit marker.
    const done = readFileSync(join(outDir, '00001.parquet'));
    writeFileSync(join(outDir, '00002.parquet'), done);
    writeFileSync(join(outDir, '00002.tar'), readFileSync(join(outDir, '00001.tar')));
    assert.ok(existsSync(join(outDir, '00001_stats.json')) && !existsSync(join(outDir, '00002_stats.json')), 'the stats file is the commit marker');

    const second = await startTestCoordinator({ dir });
    try {
      assert.deepEqual(readdirSync(outDir).filter((n) => n.startsWith('0000')).sort(), ['00001.parquet', '00001.tar', '00001_stats.json']);
      assert.ok(second.logs.some((l) => l.msg === 'resumed from state file' && JSON.stringify(l['half_published_removed']) === '["00002"]'));
      const again = new CoordinatorClient(second.address, TEST_TOKEN);
      const { actorId: id2 } = await again.register(registerRequest());
      const redo = (await again.leaseShard({ actorId: id2 })).shard!;
      assert.equal(redo.shardId, b.shardId);
      assert.deepEqual((await again.claimKeys({ actorId: id2, shardId: redo.shardId, fencingToken: redo.fencingToken, keys: [testKey('b1')] })).newKeys, [testKey('b1')], 'its keys are still its own');
      await streamAll(again, { actorId: id2, shardId: redo.shardId, fencingToken: redo.fencingToken }, [wireSample('b1')]);
      await again.completeShard({ actorId: id2, shardId: redo.shardId, fencingToken: redo.fencingToken, samplesSent: 1, extraction: null, sourceErrors: [] });
      again.close();
      assert.deepEqual((await readAllParquet(outDir)).map((r) => r.key).sort(), ['a1', 'a2', 'b1'].map(testKey), 'each key exactly once');
    } finally {
      await second.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an output directory of another state is refused; --incremental numbers the new shards after its files; --overwrite deletes its dataset files', async () => {
  const root = mkdtempSync(join(tmpdir(), 'cah-owner-'));
  const outDir = join(root, 'a', 'out');
  try {
    const a = await startTestCoordinator({ dir: join(root, 'a') });
    const client = new CoordinatorClient(a.address, TEST_TOKEN);
    a.store.shards.add(['/data/a.wat.gz']);
    const { actorId } = await client.register(registerRequest());
    const l = (await client.leaseShard({ actorId })).shard!;
    await streamAll(client, { actorId, shardId: l.shardId, fencingToken: l.fencingToken }, [wireSample('x1')]);
    await client.completeShard({ actorId, shardId: l.shardId, fencingToken: l.fencingToken, samplesSent: 1, extraction: null, sourceErrors: [] });
    client.close();
    await a.close(false);
    const tarBefore = readFileSync(join(outDir, '00001.tar'));

    // Another state directory on the same --out.
    mkdirSync(join(root, 'b'));
    const bDir = join(root, 'b');
    const linkOut = () => {
      rmSync(join(bDir, 'out'), { recursive: true, force: true });
      symlinkSync(outDir, join(bDir, 'out'));
    };
    linkOut();
    await assert.rejects(startTestCoordinator({ dir: bDir }), /is not empty and belongs to the run of the state directory .*--incremental .*--overwrite/);
    const b = await startTestCoordinator({ dir: bDir, outputMode: 'incremental' });
    const client2 = new CoordinatorClient(b.address, TEST_TOKEN);
    b.store.shards.add(['/data/other.wat.gz']);
    const { actorId: id2 } = await client2.register(registerRequest());
    const l2 = (await client2.leaseShard({ actorId: id2 })).shard!;
    assert.equal(l2.shardId, 1, 'the new state numbers its shards from 1 too');
    await streamAll(client2, { actorId: id2, shardId: l2.shardId, fencingToken: l2.fencingToken }, [wireSample('y1')]);
    const res = await client2.completeShard({ actorId: id2, shardId: l2.shardId, fencingToken: l2.fencingToken, samplesSent: 1, extraction: null, sourceErrors: [] });
    client2.close();
    await b.close(false);
    assert.equal(res.outputShard, '00002', 'written after the files already there');
    assert.deepEqual(readFileSync(join(outDir, '00001.tar')), tarBefore, 'the first run\'s shard is untouched');

    // The first state now finds the directory taken; it may overwrite it.
    await assert.rejects(startTestCoordinator({ dir: join(root, 'a') }), /belongs to the run of the state directory/);
    writeFileSync(join(outDir, 'notes.txt'), 'mine');
    const a2 = await startTestCoordinator({ dir: join(root, 'a'), outputMode: 'overwrite' });
    await a2.close(false);
    assert.deepEqual(readdirSync(outDir).sort(), ['.cah-output.json', 'notes.txt'], 'only dataset files were deleted');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('the state file: a damaged one is a one-line error at open; one deleted while running stops the coordinator', async () => {
  const c = await startTestCoordinator({ superviseIntervalMs: 50 });
  const path = join(c.dir, 'cah.sqlite');
  try {
    let fatal: Error | null = null;
    c.coordinator.once('fatal', (err: Error) => (fatal = err));
    unlinkSync(path);
    await waitFor('the coordinator notices', () => fatal !== null);
    assert.match(fatal!.message, /state file .*cah\.sqlite was deleted or replaced while the coordinator ran/);
  } finally {
    await c.close();
  }
  const dir = mkdtempSync(join(tmpdir(), 'cah-damaged-'));
  try {
    const db = join(dir, 'cah.sqlite');
    const store = Store.open(db);
    store.shards.add(Array.from({ length: 2000 }, (_, i) => `/data/shard-${i}-${'x'.repeat(100)}.wat.gz`));
    store.close();
    // Damage a page in the middle of the table (not the header): quick_check finds it at open.
    const bytes = readFileSync(db);
    bytes.fill(0x5a, 4096 * 20 + 100, 4096 * 20 + 3000);
    writeFileSync(db, bytes);
    assert.throws(() => Store.open(db), (err) => err instanceof StateFileError && /is damaged|cannot be used/.test(err.message) && !err.message.includes('\n'));
    writeFileSync(db, Buffer.concat([Buffer.from('not a database at all'), bytes.subarray(64)]));
    assert.throws(() => Store.open(db, { readonly: true }), (err) => err instanceof StateFileError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a SQLite failure while running stops the coordinator and is never charged to the shard', async () => {
  const c = await startTestCoordinator({ settings: { maxRetries: 1, retryBackoffMs: 0 }, superviseIntervalMs: 3_600_000 });
  const client = new CoordinatorClient(c.address, TEST_TOKEN);
  let reopened: Store | null = null;
  try {
    c.store.shards.add(['/data/a.wat.gz']);
    const { actorId } = await client.register(registerRequest());
    const lease = (await client.leaseShard({ actorId })).shard!;
    let fatal: Error | null = null;
    c.coordinator.once('fatal', (err: Error) => (fatal = err));
    await streamAll(client, { actorId, shardId: lease.shardId, fencingToken: lease.fencingToken }, [wireSample('s1')]);
    // Damaged pages surface as SQLITE_CORRUPT from whichever statement reads them: here, marking the shard done.
    const complete = c.store.shards.complete.bind(c.store.shards);
    c.store.shards.complete = () => {
      throw Object.assign(new Error('database disk image is malformed'), { code: 'SQLITE_CORRUPT' });
    };
    const err = await client
      .completeShard({ actorId, shardId: lease.shardId, fencingToken: lease.fencingToken, samplesSent: 1, extraction: null, sourceErrors: [] })
      .then(() => null, (e: unknown) => e);
    c.store.shards.complete = complete;
    assert.ok(isStatus(err, grpc.status.UNAVAILABLE), `the worker is told to come back, not that its shard failed: ${String(err)}`);
    await waitFor('the coordinator stops on its state file', () => fatal !== null);
    assert.match(fatal!.message, /state file .*cah\.sqlite failed: database disk image is malformed: stopping/);
    const row = c.store.shards.get(lease.shardId)!;
    assert.equal(row.failures, 0, 'not counted against the shard\'s retries (maxRetries 1 would have failed it)');
    assert.notEqual(row.state, 'failed');
    assert.ok(!c.logs.some((l) => /shard failed/.test(l.msg)), 'no "shard failed" line');
  } finally {
    client.close();
    await c.close(false);
  }
  try {
    // After a restart the shard is whole again: queued for another attempt, or done by recovery of its published files.
    reopened = Store.open(join(c.dir, 'cah.sqlite'));
    reopened.shards.requeueAllLeased();
    assert.ok(['queued', 'done'].includes(reopened.shards.get(1)!.state), reopened.shards.get(1)!.state);
  } finally {
    reopened?.close();
    rmSync(c.dir, { recursive: true, force: true });
  }
});
