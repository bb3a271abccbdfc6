import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { MetricsError, parseListenAddress, startMetricsServer } from '../src/coordinator/metrics.js';
import { HeldSnapshotSource, sampleSnapshot } from './support/sample-snapshot.js';
import { needsPromtool } from './support/requirements.js';

/** The value of one sample line, e.g. `cah_shards{state="done"}`. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  assert.ok(line, `no sample ${series} in:\n${text}`);
  return Number(line.slice(series.length + 1));
}

test('GET /metrics serves the snapshot in the Prometheus text format', async () => {
  const snapshot = sampleSnapshot({ actors: 12 });
  const source = new HeldSnapshotSource(snapshot);
  const server = await startMetricsServer(source, '127.0.0.1:0');
  try {
    const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    assert.match(text, /# TYPE cah_candidates_total counter/);
    assert.match(text, /# TYPE cah_shards gauge/);
    for (const state of ['queued', 'leased', 'done', 'failed'] as const) {
      assert.equal(sample(text, `cah_shards{state="${state}"}`), snapshot.shards[state]);
    }
    const count = (state: string) => snapshot.actors.filter((a) => a.state === state).length;
    for (const state of ['ALIVE', 'RESTARTING', 'DEAD', 'PENDING_CREATION', 'EXITED']) {
      assert.equal(sample(text, `cah_actors{state="${state}"}`), count(state));
    }
    assert.equal(sample(text, 'cah_candidates_total'), snapshot.totals.extracted);
    assert.equal(sample(text, 'cah_downloaded_total'), snapshot.totals.downloaded);
    assert.equal(sample(text, 'cah_samples_total{status="kept"}'), snapshot.totals.kept);
    assert.equal(sample(text, 'cah_samples_total{status="filtered_out"}'), snapshot.totals.filteredOut);
    assert.equal(sample(text, 'cah_samples_total{status="failed"}'), snapshot.totals.failed);
    assert.equal(sample(text, 'cah_samples_total{status="duplicate"}'), snapshot.totals.duplicates);
    assert.equal(sample(text, 'cah_written_total'), snapshot.output.pairsWritten);
    assert.equal(sample(text, 'cah_bytes_in_total'), snapshot.totals.bytesIn);
    assert.equal(sample(text, 'cah_progress_ratio'), snapshot.progress);
    assert.equal(sample(text, 'cah_filter_queue_depth'), snapshot.filter.queueDepth);
    assert.equal(sample(text, 'cah_filter_queue_capacity'), snapshot.filter.queueCapacity);
    assert.equal(sample(text, `cah_filter_bottleneck{verdict="${snapshot.filter.verdict}"}`), 1);
    assert.equal(sample(text, `cah_filter_info{name="clip-vit-b32",provider="CUDA"}`), 1);
    assert.doesNotMatch(text, /_per_second/, 'rates are rate() over the counters, not gauges that read 0 between ticks');
    // Histograms: cumulative buckets ending in +Inf = count.
    for (const [name, h] of [
      ['cah_shard_duration_seconds', snapshot.histograms.shardSeconds],
      ['cah_filter_batch_duration_seconds', snapshot.histograms.filterBatchSeconds],
      ['cah_similarity', snapshot.histograms.similarity],
    ] as const) {
      assert.match(text, new RegExp(`# TYPE ${name} histogram`));
      assert.equal(sample(text, `${name}_bucket{le="+Inf"}`), h.count);
      assert.equal(sample(text, `${name}_count`), h.count);
      assert.ok(h.count > 0);
      assert.equal(sample(text, `${name}_bucket{le="${h.bounds[h.bounds.length - 1]}"}`), h.cumulative.at(-1));
    }
    assert.doesNotMatch(text, /^# TYPE \S+_total gauge/m, 'no gauge named like a counter (promtool rejects them)');
    assert.equal(sample(text, 'cah_eta_seconds'), snapshot.etaMs! / 1000);
    assert.match(text, /^process_cpu_seconds_total /m, 'the process metrics too');

    // The next scrape reads the snapshot of that moment.
    source.set({ ...snapshot, shards: { ...snapshot.shards, done: 1000 }, etaMs: null, paused: true, filter: { ...snapshot.filter, verdict: 'workers-bound' } });
    const next = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
    assert.equal(sample(next, 'cah_shards{state="done"}'), 1000);
    assert.equal(sample(next, 'cah_paused'), 1);
    assert.ok(Number.isNaN(sample(next, 'cah_eta_seconds')));
    assert.equal(sample(next, 'cah_filter_bottleneck{verdict="workers-bound"}'), 1);
    assert.equal(sample(next, `cah_filter_bottleneck{verdict="${snapshot.filter.verdict}"}`), 0);

    assert.equal((await fetch(`http://127.0.0.1:${server.port}/`)).status, 404);
  } finally {
    await server.close();
  }
});

test('two servers keep separate registries, and a taken port is a clear error', async () => {
  const a = await startMetricsServer(new HeldSnapshotSource(sampleSnapshot({ actors: 3 })), '127.0.0.1:0');
  try {
    const b = await startMetricsServer(new HeldSnapshotSource(sampleSnapshot({ actors: 7 })), '127.0.0.1:0');
    try {
      const textA = await (await fetch(`http://127.0.0.1:${a.port}/metrics`)).text();
      const textB = await (await fetch(`http://127.0.0.1:${b.port}/metrics`)).text();
      assert.equal(sample(textA, 'cah_actors{state="ALIVE"}'), 3);
      assert.equal(sample(textB, 'cah_actors{state="RESTARTING"}'), 1);
      assert.equal(sample(textB, 'cah_actors{state="ALIVE"}'), 6, 'one of the 7 restarts');
    } finally {
      await b.close();
    }
    await assert.rejects(startMetricsServer(new HeldSnapshotSource(sampleSnapshot()), `127.0.0.1:${a.port}`), (err: unknown) => {
      assert.ok(err instanceof MetricsError);
      assert.match(err.message, /cannot serve \/metrics on 127\.0\.0\.1:\d+: EADDRINUSE/);
      return true;
    });
  } finally {
    await a.close();
  }
});

test('listen addresses: HOST:PORT, [IPv6]:PORT, :PORT; anything else is a usage error', () => {
  assert.deepEqual(parseListenAddress('127.0.0.1:9464'), { host: '127.0.0.1', port: 9464 });
  assert.deepEqual(parseListenAddress('[::1]:80'), { host: '::1', port: 80 });
  assert.deepEqual(parseListenAddress(':9464'), { host: '0.0.0.0', port: 9464 });
  for (const bad of ['9464', 'localhost', 'host:99999', 'host:port']) {
    assert.throws(() => parseListenAddress(bad), MetricsError, bad);
  }
});

test('promtool check metrics passes on the whole /metrics output', { skip: needsPromtool }, async () => {
  const snapshot = sampleSnapshot({ actors: 5 });
  for (const s of [snapshot, { ...snapshot, etaMs: null, ended: { atMs: snapshot.nowMs, reason: 'done' } }]) {
    const server = await startMetricsServer(new HeldSnapshotSource(s), '127.0.0.1:0');
    try {
      const text = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
      const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      assert.equal(check.status, 0, `promtool check metrics:\n${check.stdout}${check.stderr}`);
      assert.equal((check.stdout + check.stderr).trim(), '', 'no lint warnings either');
    } finally {
      await server.close();
    }
  }
});
