import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SCANNED_TOTALS_SQL } from '../src/store/shards.js';
import { Store } from '../src/store/state-file.js';
import type { BenchResult } from './result.js';

/** About two crawls' worth of WAT shards (a crawl has 80,000–100,000), 90% of them done. */
const SHARDS = 200_000;
const READS = 20;

/** The same figures counted from every shard, as counts() and doneTotals() did before shard_totals. */
function scan(store: Store): void {
  store.db.prepare(SCANNED_TOTALS_SQL.counts).all();
  store.db.prepare(SCANNED_TOTALS_SQL.done).get();
}

function msPerRead(read: () => void): number {
  const started = performance.now();
  for (let i = 0; i < READS; i++) read();
  return (performance.now() - started) / READS;
}

/**
 * `npm run bench -- store`: what the snapshot's shard figures cost the coordinator's event loop
 * (the dashboard and /metrics read them every second) with 200,000 shards: the totals the store
 * keeps by triggers against counting the shards, in the same state file.
 */
export async function benchStore(): Promise<BenchResult> {
  const dir = await mkdtemp(join(tmpdir(), 'cah-bench-store-'));
  const store = Store.open(join(dir, 'cah.sqlite'));
  try {
    store.shards.add(Array.from({ length: SHARDS }, (_, i) => `https://data.commoncrawl.org/crawl-data/CC-MAIN-2024-10/segments/${i}/wat/CC-MAIN-${i}.warc.wat.gz`));
    store.db.prepare(`UPDATE shards SET state = 'done', candidates = 4000, downloaded = 3000, kept = 900, bytes_in = 9e7, output_bytes = 2e7 WHERE id % 10 != 0`).run();
    const ours = msPerRead(() => {
      store.shards.counts();
      store.shards.doneTotals();
    });
    const base = msPerRead(() => scan(store));
    return {
      name: 'shard figures of a snapshot, 200,000 shards',
      value: ours,
      unit: 'ms',
      baseline: 'counting and summing the shards',
      baselineValue: base,
      ratio: ours / base,
      target: '<= 0.1x (smaller is better)',
      met: ours <= 0.1 * base,
      notes: `counts() and doneTotals(), mean of ${READS} reads each, 90% of the shards done`,
    };
  } finally {
    store.close();
    await rm(dir, { recursive: true, force: true });
  }
}
