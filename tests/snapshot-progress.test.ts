import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SnapshotBuilder, type FilterStageView } from '../src/coordinator/snapshot-builder.js';
import { BATCH_SECONDS_BOUNDS, SIMILARITY_BOUNDS, emptyHistogram } from '../src/filter/histogram.js';
import { Store } from '../src/store/state-file.js';

const FILTER: FilterStageView = {
  filterName: 'test',
  provider: 'CPU',
  queueDepth: 0,
  capacity: 10,
  stats: () => ({
    imagesPerSec: 0,
    idleFraction: 0.5,
    lastBatchSize: 0,
    batches: 0,
    processed: 0,
    batchSeconds: emptyHistogram(BATCH_SECONDS_BOUNDS),
    similarity: emptyHistogram(SIMILARITY_BOUNDS),
  }),
};

test('progress moves sample by sample within a shard; the ETA counts down between heartbeats; rates do not drop to 0 between them', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cah-progress-'));
  mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  try {
    const store = Store.openInStateDir(dir);
    store.shards.add(['s1', 's2', 's3', 's4']);
    store.actors.register('a', { kind: 'local', host: 'h', pid: 1, version: 'x' });
    const lease = store.shards.lease('a', 600_000)!;
    store.runs.start('run-t', '/out', {});
    const builder = new SnapshotBuilder(store, FILTER, '/out', 'run-t');
    const beat = (candidates: number, downloaded: number, read: number): void =>
      builder.recordProgress('a', [
        { shardId: lease.shardId, fencingToken: lease.fencingToken, candidates, duplicates: 10, downloaded, failed: 0, bytesIn: 0, sourceBytesRead: read, sourceBytesTotal: 1000 },
      ]);
    const seen: { progress: number; eta: number | null; candPerSec: number }[] = [];
    for (let s = 0; s <= 12; s++) {
      if (s % 2 === 0) beat(200 + s * 10, 10 + s * 5, Math.min(1000, 400 + s * 50)); // a heartbeat every 2 s
      builder.tick();
      const snap = builder.build({ paused: false, draining: false });
      seen.push({ progress: snap.progress, eta: snap.etaMs, candPerSec: snap.throughput.at(-1)?.candidatesPerSec ?? 0 });
      mock.timers.tick(1000);
    }
    const snap = builder.build({ paused: false, draining: false });
    assert.equal(snap.shards.done, 0, 'no shard finished');
    assert.ok(seen.at(-1)!.progress > seen[0]!.progress && seen.at(-1)!.progress > 0, 'progress moved within the running shard');
    const actor = snap.actors.find((a) => a.actorId === 'a')!;
    assert.equal(actor.shard?.samples.extracted, 330, 'extracted counts duplicates too');
    assert.equal(actor.shard?.samples.duplicates, 10);
    assert.ok(actor.shard!.fraction! > 0 && actor.shard!.fraction! < 1);
    assert.equal(snap.totals.extracted, 330);
    assert.ok(seen.slice(2).every((x) => x.candPerSec > 0), `candidates/s never reads 0 while work flows: ${seen.map((x) => x.candPerSec.toFixed(1)).join(',')}`);
    // Between two heartbeats (odd seconds) the ETA still counts down.
    const etas = seen.slice(4).map((s) => s.eta);
    assert.ok(etas.every((e) => e !== null), `an ETA once progress is measured: ${etas.join(',')}`);
    for (let i = 1; i < etas.length; i += 2) assert.ok(etas[i]! < etas[i - 1]!, `ETA counts down between heartbeats: ${etas.join(',')}`);
    store.close();
  } finally {
    mock.timers.reset();
    rmSync(dir, { recursive: true, force: true });
  }
});
