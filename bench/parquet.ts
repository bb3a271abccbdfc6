import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { ParquetWriter, schemaFromColumnData } from 'hyparquet-writer';
import { ParquetFile } from '../src/output/parquet-file.js';
import { metadataRow, newSample, type SampleRecord } from '../src/output/sample.js';
import { ShardWriter, parquetColumns, type Row } from '../src/output/shard-writer.js';
import type { BenchResult } from './result.js';

/** A long shard's rows: three row groups of 8,192 and a rest. */
const ROWS = 30_000;
/** Rows arrive as a stream delivers them: this many, then the loop turns. */
const ROWS_PER_TURN = 64;
/** Old code and new code alternate this many times; each keeps its lowest stall. */
const ROUNDS = 3;

function row(i: number): SampleRecord {
  return newSample({
    key: i.toString(16).padStart(16, '0'),
    url: `https://images.example.com/media/2024/${i % 997}/photo-${i}.jpg?w=800&h=600`,
    caption: `A photograph of item number ${i} on a page about things, as alt text usually reads`,
    pageUrl: `https://www.example.com/articles/2024/story-${i % 211}.html`,
    status: i % 3 === 0 ? 'failed_to_download' : 'filtered_out',
    errorMessage: i % 3 === 0 ? 'HTTP 404' : null,
    width: 256,
    height: 256,
    originalWidth: 800,
    originalHeight: 600,
    similarity: 0.1 + (i % 17) / 100,
    downloadMs: 12,
    resizeMs: 4,
    downloadAttempts: 1,
  });
}

/** The longest the event loop waited (ms) while `feed` ran, fed ROWS_PER_TURN rows a turn. */
async function longestStall(feed: (i: number) => Promise<void>, finish: () => Promise<void>): Promise<number> {
  const lag = monitorEventLoopDelay({ resolution: 1 });
  lag.enable();
  for (let i = 0; i < ROWS; i++) {
    await feed(i);
    if (i % ROWS_PER_TURN === ROWS_PER_TURN - 1) await new Promise((resolve) => setImmediate(resolve));
  }
  await finish();
  lag.disable();
  return lag.max / 1e6;
}

/** The shard writer as it was: each row's metadata taken as it is added, row groups of 8,192 encoded on the event loop that feeds it. */
async function onTheLoop(dir: string): Promise<number> {
  const file = new ParquetFile(join(dir, 'loop.parquet'));
  const writer = new ParquetWriter({ writer: file.writer, schema: schemaFromColumnData({ columnData: parquetColumns([], []) }) });
  let pending: Row[] = [];
  const flush = (): void => {
    if (pending.length > 0) writer.write({ columnData: parquetColumns(pending, []), rowGroupSize: pending.length });
    pending = [];
  };
  return longestStall(
    async (i) => {
      pending.push({ meta: metadataRow(row(i)), extra: {} });
      if (pending.length >= 8192) flush();
    },
    async () => {
      flush();
      writer.finish();
      await file.close();
    },
  );
}

async function viaShardWriter(dir: string, n: number): Promise<number> {
  const writer = await ShardWriter.open({ outDir: join(dir, `out-${n}`), shardNumber: 1, attemptTag: `r${n}` });
  const stall = await longestStall(
    async (i) => void (await writer.add(row(i))),
    async () => void (await writer.stage({ startedAtMs: Date.now() })),
  );
  await writer.abort();
  return stall;
}

/**
 * `npm run bench -- parquet`: the longest event-loop stall while a shard of 30,000 rows is written,
 * the shard writer (row groups encoded on the parquet encoder thread) against the same rows encoded
 * on the loop, as the writer did before. Every stall of the coordinator's loop delays every lease,
 * heartbeat and sample of the swarm.
 */
export async function benchParquet(): Promise<BenchResult> {
  const dir = await mkdtemp(join(tmpdir(), 'cah-bench-parquet-'));
  try {
    let ours = Infinity;
    let base = Infinity;
    for (let r = 0; r < ROUNDS; r++) {
      base = Math.min(base, await onTheLoop(dir));
      ours = Math.min(ours, await viaShardWriter(dir, r));
    }
    return {
      name: 'longest event-loop stall writing a 30,000-row shard parquet',
      value: ours,
      unit: 'ms',
      baseline: 'the same rows encoded on the event loop (the writer before the encoder thread)',
      baselineValue: base,
      ratio: ours / base,
      target: '<= 0.5x (smaller is better)',
      met: ours <= 0.5 * base,
      notes: `rows fed ${ROWS_PER_TURN} a turn; lowest of ${ROUNDS} alternating rounds each; row groups of 8,192 in both`,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
