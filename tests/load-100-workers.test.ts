import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runLoad } from '../bench/load.js';

test('load: 100 simulated workers streaming at once complete exactly (150 shards done, every pair kept, none twice)', async () => {
  const figures = await runLoad({ workers: 100, shards: 150, pairsPerShard: 12, pairBytes: 1024 });
  assert.equal(figures.shardsDone, 150);
  assert.equal(figures.kept, 1800);
  assert.equal(figures.pairs, 1800);
  // A memory bound, not a timing one: 100 streams of small pairs must not balloon the process.
  assert.ok(figures.peakRssMiB < 1024, `peak RSS ${figures.peakRssMiB.toFixed(0)} MiB`);
});

test("load: 100 simulated workers joining one after another at a swarm's pace complete exactly", async () => {
  // The bench's latency rows run this way (bench/load.ts): each worker paced at its share, joins spread out.
  const figures = await runLoad({ workers: 100, shards: 100, pairsPerShard: 6, pairBytes: 1024, offeredPairsPerSecond: 3000, joinOverMs: 500 });
  assert.equal(figures.shardsDone, 100);
  assert.equal(figures.kept, 600);
  assert.ok(figures.leaseMsP50 > 0, 'leases were timed');
});
