import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FilterInput, FilterVerdict, PairFilter } from '../src/filter/pair-filter.js';
import { FilterStage, type StagedPairFilter } from '../src/filter/stage.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const input = (i: number): FilterInput => ({ key: `k${i}`, jpeg: Buffer.from([i]), caption: `caption ${i}` });

/** Records the batches it sees; each verdict carries its input's key so order can be checked. */
class RecordingFilter implements PairFilter {
  readonly provider = 'test';
  readonly name = 'recording';
  readonly batches: string[][] = [];
  constructor(
    private readonly delayMs = 0,
    private readonly failWhen: (batch: FilterInput[]) => boolean = () => false,
  ) {}
  async score(batch: FilterInput[]): Promise<FilterVerdict[]> {
    this.batches.push(batch.map((b) => b.key));
    if (this.delayMs) await sleep(this.delayMs);
    if (this.failWhen(batch)) throw new Error('model exploded');
    return batch.map((b) => ({ keep: true, similarity: Number(b.key.slice(1)) / 1000, reason: b.key }));
  }
  async close(): Promise<void> {}
}

test('stage: batches hold at most batchSize pairs; the remainder runs after maxWaitMs; verdicts come back in order', async () => {
  const filter = new RecordingFilter(5);
  const stage = new FilterStage(filter, { batchSize: 4, maxWaitMs: 40, capacity: 100 });
  const started = Date.now();
  const verdicts = await Promise.all(Array.from({ length: 10 }, (_, i) => stage.submit(input(i))));
  assert.deepEqual(
    verdicts.map((v) => v.reason),
    Array.from({ length: 10 }, (_, i) => `k${i}`),
  );
  assert.deepEqual(filter.batches.map((b) => b.length), [4, 4, 2]);
  assert.deepEqual(filter.batches.flat(), Array.from({ length: 10 }, (_, i) => `k${i}`));
  assert.ok(Date.now() - started >= 35, 'the partial batch waited for maxWaitMs');
  const stats = stage.stats();
  assert.equal(stats.batches, 3);
  assert.equal(stats.processed, 10);
  assert.equal(stats.lastBatchSize, 2);
  assert.ok(stats.imagesPerSec > 0);
  assert.ok(stats.idleFraction >= 0 && stats.idleFraction <= 1);
  await stage.close();
});

test('stage: a lone pair is flushed after maxWaitMs, not before', async () => {
  const filter = new RecordingFilter();
  const stage = new FilterStage(filter, { batchSize: 256, maxWaitMs: 80, capacity: 10 });
  const started = Date.now();
  const pending = stage.submit(input(1));
  await sleep(30);
  assert.equal(filter.batches.length, 0, 'nothing runs before maxWaitMs');
  await pending;
  const waited = Date.now() - started;
  assert.ok(waited >= 75 && waited < 1000, `flushed after ${waited} ms`);
  assert.deepEqual(filter.batches, [['k1']]);
  await stage.close();
});

test('stage: queueDepth counts every pair until its verdict; drain waits for the last one', async () => {
  const filter = new RecordingFilter(30);
  const stage = new FilterStage(filter, { batchSize: 3, maxWaitMs: 5, capacity: 8 });
  assert.equal(stage.queueDepth, 0);
  assert.equal(stage.capacity, 8);
  const all = Array.from({ length: 7 }, (_, i) => stage.submit(input(i)));
  assert.equal(stage.queueDepth, 7);
  await all[0];
  assert.ok(stage.queueDepth <= 4 && stage.queueDepth >= 1, `after the first batch: ${stage.queueDepth}`);
  await stage.drain();
  assert.equal(stage.queueDepth, 0);
  assert.equal(filter.batches.flat().length, 7);
  await stage.drain();
  await stage.close();
});

test('stage: the next batch is prepared while the current one is on the model', async () => {
  const events: { what: string; batch: number; at: number }[] = [];
  let prepared = 0;
  const filter: StagedPairFilter<{ id: number; batch: FilterInput[] }> = {
    provider: 'test',
    name: 'staged',
    async prepare(batch) {
      const id = prepared++;
      events.push({ what: 'prepare-start', batch: id, at: Date.now() });
      await sleep(40);
      events.push({ what: 'prepare-end', batch: id, at: Date.now() });
      return { id, batch };
    },
    async infer({ id, batch }) {
      events.push({ what: 'infer-start', batch: id, at: Date.now() });
      await sleep(40);
      events.push({ what: 'infer-end', batch: id, at: Date.now() });
      return batch.map(() => ({ keep: true, similarity: 0.5 }));
    },
    async score() {
      throw new Error('the stage must use prepare/infer');
    },
    async close() {},
  };
  const stage = new FilterStage(filter, { batchSize: 2, maxWaitMs: 1, capacity: 100 });
  const started = Date.now();
  await Promise.all(Array.from({ length: 8 }, (_, i) => stage.submit(input(i))));
  const elapsed = Date.now() - started;
  const at = (what: string, batch: number): number => events.find((e) => e.what === what && e.batch === batch)!.at;
  for (let b = 1; b < 4; b++) {
    assert.ok(at('prepare-start', b) < at('infer-end', b - 1), `batch ${b} prepared during batch ${b - 1}'s inference`);
    assert.ok(at('infer-start', b) >= at('infer-end', b - 1), 'one batch on the model at a time');
  }
  // Serial would be 4 × 80 ms; pipelined about 40 + 4 × 40.
  assert.ok(elapsed < 300, `pipelined run took ${elapsed} ms`);
  await stage.close();
});

test('stage: a failing batch rejects only its own pairs; later batches still run', async () => {
  const filter = new RecordingFilter(0, (batch) => batch.some((b) => b.key === 'k1'));
  const stage = new FilterStage(filter, { batchSize: 2, maxWaitMs: 1, capacity: 100 });
  const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => stage.submit(input(i))));
  assert.deepEqual(
    results.map((r) => r.status),
    ['rejected', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled'],
  );
  assert.match(String((results[0] as PromiseRejectedResult).reason), /model exploded/);
  assert.equal(stage.queueDepth, 0);
  await stage.close();
});

test('stage: a filter answering the wrong number of verdicts fails that batch with a clear error', async () => {
  const filter: PairFilter = {
    provider: 'test',
    name: 'short',
    score: async (batch) => batch.slice(1).map(() => ({ keep: true, similarity: 1 })),
    close: async () => {},
  };
  const stage = new FilterStage(filter, { batchSize: 2, maxWaitMs: 1, capacity: 10 });
  await assert.rejects(stage.submit(input(1)), /answered 0 verdicts for 1 pairs/);
  await stage.close();
});

test('stage: close fails pairs still waiting, lets running batches finish, and refuses new ones', async () => {
  const filter = new RecordingFilter(50);
  const stage = new FilterStage(filter, { batchSize: 2, maxWaitMs: 10_000, capacity: 10 });
  const running = [stage.submit(input(0)), stage.submit(input(1))];
  await sleep(10);
  const waiting = assert.rejects(stage.submit(input(2)), /filter stage closed/);
  assert.equal(stage.filterName, 'recording');
  assert.equal(stage.provider, 'test');
  await stage.close();
  assert.equal((await running[0])!.reason, 'k0');
  await waiting;
  await assert.rejects(stage.submit(input(3)), /closed/);
  assert.equal(stage.queueDepth, 0);
});

test('stage: idleFraction is high for an idle model and low for a saturated one', async () => {
  const idle = new FilterStage(new RecordingFilter(), { batchSize: 4, maxWaitMs: 1, capacity: 10 });
  await sleep(60);
  assert.ok(idle.stats().idleFraction > 0.9);
  await idle.close();

  const busy = new FilterStage(new RecordingFilter(40), { batchSize: 1, maxWaitMs: 0, capacity: 100 });
  await Promise.all(Array.from({ length: 5 }, (_, i) => busy.submit(input(i))));
  assert.ok(busy.stats().idleFraction < 0.5, `idle ${busy.stats().idleFraction}`);
  await busy.close();
});
