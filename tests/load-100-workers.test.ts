import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runLoad } from '../bench/load.js';

test('load: 100 simulated workers streaming at once all complete exactly (every shard done, every pair kept)', async () => {
  const figures = await runLoad({ workers: 100, pairsPerWorker: 20, pairBytes: 1024 });
  assert.equal(figures.shardsDone, 100);
  assert.equal(figures.kept, 2000);
  assert.equal(figures.pairs, 2000);
  // A memory bound, not a timing one: 100 streams of small pairs must not balloon the process.
  assert.ok(figures.peakRssMiB < 1024, `peak RSS ${figures.peakRssMiB.toFixed(0)} MiB`);
});
