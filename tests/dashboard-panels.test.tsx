import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stripVTControlCharacters } from 'node:util';
import { render } from 'ink-testing-library';
import type { ReactElement } from 'react';
import type { ActorSnapshot, CoordinatorSnapshot } from '../src/coordinator/snapshot.js';
import { BATCH_SECONDS_BOUNDS, SHARD_SECONDS_BOUNDS, SIMILARITY_BOUNDS, emptyHistogram } from '../src/filter/histogram.js';
import { ActorsPanel, ErrorsPanel, FilterPanel, OutputPanel, ShardsPanel, ThroughputPanel } from '../src/dashboard/panels.js';

const NOW = 1_700_000_000_000;

function actor(over: Partial<ActorSnapshot> & { actorId: string }): ActorSnapshot {
  return {
    host: 'box-1',
    pid: 100,
    state: 'ALIVE',
    deathCause: null,
    currentShardId: null,
    shard: null,
    candidatesPerSec: 0,
    imagesPerSec: 0,
    lastHeartbeatMs: NOW - 1000,
    restarts: 0,
    ...over,
  };
}

/** A hand-made snapshot of a small run. */
const snapshot: CoordinatorSnapshot = {
  runId: 'run-test-1',
  startedAtMs: NOW - 3_725_000,
  nowMs: NOW,
  paused: false,
  draining: false,
  ended: null,
  progress: 0.4937,
  actors: [
    actor({ actorId: 'w-alpha', host: '10.0.0.7', currentShardId: 42, candidatesPerSec: 123.4, imagesPerSec: 56.7, lastHeartbeatMs: NOW - 3000, restarts: 1 }),
    actor({ actorId: 'w-bravo', host: '10.0.0.8', state: 'DEAD', deathCause: 'missed heartbeats for 31 s', lastHeartbeatMs: NOW - 95_000, restarts: 3 }),
    actor({ actorId: 'w-charlie', host: '10.0.0.9', state: 'RESTARTING', deathCause: 'exit code 137', restarts: 2 }),
    actor({
      actorId: 'w-delta',
      currentShardId: 43,
      shard: { shardId: 43, fraction: 0.372, samples: { extracted: 1200, duplicates: 40, downloaded: 800, failed: 100, filteredOut: 200, kept: 300 } },
      candidatesPerSec: 12,
      imagesPerSec: 4,
    }),
    actor({ actorId: 'w-echo', state: 'EXITED' }),
  ],
  shards: { queued: 50, leased: 2, done: 40, failed: 8, total: 100 },
  etaMs: 754_000,
  totals: { extracted: 123_456, duplicates: 3_456, downloaded: 45_678, failed: 1_234, filteredOut: 30_000, kept: 9_876, bytesIn: 2_500_000_000 },
  throughput: [0, 10, 20, 40, 80].map((v, i) => ({
    atMs: NOW - (4 - i) * 1000,
    candidatesPerSec: v * 10,
    downloadedPerSec: v,
    keptPerSec: v / 2,
    mbInPerSec: v / 10,
  })),
  filter: {
    name: 'clip-vit-b32',
    provider: 'CUDA',
    batchSize: 128,
    imagesPerSec: 812,
    queueDepth: 240,
    queueCapacity: 256,
    idleFraction: 0.02,
    verdict: 'filter-bound',
  },
  histograms: {
    shardSeconds: emptyHistogram(SHARD_SECONDS_BOUNDS),
    filterBatchSeconds: emptyHistogram(BATCH_SECONDS_BOUNDS),
    similarity: emptyHistogram(SIMILARITY_BOUNDS),
  },
  topErrors: [
    { message: 'HTTP 404', count: 700 },
    { message: 'timeout after\n10 s', count: 300 },
    { message: 'not an image', count: 20 },
    { message: 'HTTP 500', count: 5 },
  ],
  output: { path: '/data/out/run-test-1', shardsWritten: 40, pairsWritten: 9_000, bytes: 1_234_000_000 },
};

function frameOf(element: ReactElement): string[] {
  const app = render(element);
  try {
    return stripVTControlCharacters(app.lastFrame() ?? '').split('\n');
  } finally {
    app.unmount();
  }
}

test('actors panel: one row per worker with state, shard, rates, heartbeat age, restarts and death cause', () => {
  const lines = frameOf(<ActorsPanel actors={snapshot.actors} nowMs={NOW} width={80} maxLines={10} />);
  assert.match(lines[0]!, /Actors 5 \(2 alive, 1 restarting, 1 dead, 1 exited\)/);
  const row = (id: string) => lines.find((l) => l.startsWith(id)) ?? assert.fail(`no row for ${id}:\n${lines.join('\n')}`);
  const alpha = row('w-alpha');
  assert.match(alpha, /10\.0\.0\.7/);
  assert.match(alpha, /ALIVE\s+42\s+123\s+57\s+3s\s+1$/);
  assert.match(row('w-delta'), /ALIVE\s+43\s+37%\s+/, 'the read share of the running shard');
  assert.match(row('w-echo'), /EXITED\s+—\s+—\s+0$/, 'an actor of an ended run: no rates, no heartbeat age');
  assert.match(row('w-bravo'), /DEAD\s+missed heartbeats for 31 s\s+3$/);
  assert.match(row('w-charlie'), /RESTARTING exit code 137\s+2$/);
  // Troubled actors come first.
  assert.ok(lines.indexOf(row('w-charlie')) < lines.indexOf(alpha));
  assert.ok(lines.indexOf(row('w-bravo')) < lines.indexOf(alpha));
  for (const l of lines) assert.ok(l.length <= 80, `too wide: ${l}`);
});

test('actors panel: wide terminals show the running shard\'s samples; with no worker alive, how to attach one', () => {
  const wide = frameOf(<ActorsPanel actors={snapshot.actors} nowMs={NOW} width={140} maxLines={10} />);
  assert.match(wide.join('\n'), /read\s+cand\s+dl\s+kept\s+out\s+cand\/s/);
  const delta = wide.find((l) => l.startsWith('w-delta')) ?? assert.fail(wide.join('\n'));
  assert.match(delta, /43\s+37%\s+1\.2k\s+800\s+300\s+200\s/);
  const hint = 'cah worker --coordinator 127.0.0.1:7443';
  const none = frameOf(<ActorsPanel actors={[snapshot.actors[1]!]} nowMs={NOW} width={80} maxLines={10} attachHint={hint} />);
  assert.match(none[1]!, /^no worker attached: cah worker --coordinator 127\.0\.0\.1:7443/);
  const some = frameOf(<ActorsPanel actors={snapshot.actors} nowMs={NOW} width={80} maxLines={10} attachHint={hint} />);
  assert.doesNotMatch(some.join('\n'), /no worker attached/);
});

test('actors panel: with more actors than lines it shows what fits and a "+N more" line', () => {
  const many = Array.from({ length: 30 }, (_, i) => actor({ actorId: `w-${String(i).padStart(2, '0')}` }));
  const lines = frameOf(<ActorsPanel actors={many} nowMs={NOW} width={60} maxLines={8} />).filter((l) => l !== '');
  assert.equal(lines.length, 8);
  assert.equal(lines.filter((l) => /^w-\d\d /.test(l)).length, 5);
  assert.equal(lines.at(-1)?.trim(), '+25 more');
});

test('shards panel: counts, progress and ETA', () => {
  const lines = frameOf(<ShardsPanel shards={snapshot.shards} state={{ progress: 0.4937, etaMs: snapshot.etaMs, ended: null }} width={40} />);
  const text = lines.join('\n');
  assert.match(text, /48\/100 finished/);
  assert.match(text, /49\.3%/, 'finished shards plus the read share of running ones, floored');
  assert.match(text, /ETA 12m34s/);
  assert.match(text, /queued 50 +leased 2 +done 40 +failed 8/);
  const bar = lines[1]!.match(/[█░]+/)![0];
  const filled = [...bar].filter((c) => c === '█').length;
  assert.ok(Math.abs(filled / bar.length - 0.49) < 0.05, `bar ${bar} is not ~49% full`);
  const complete = frameOf(<ShardsPanel shards={{ queued: 0, leased: 0, done: 9, failed: 1, total: 10 }} state={{ progress: 1, etaMs: 0, ended: null }} width={40} />).join('\n');
  assert.match(complete, /100\.0% complete/);
  const drained = frameOf(
    <ShardsPanel shards={{ queued: 5, leased: 0, done: 4, failed: 1, total: 10 }} state={{ progress: 0.5, etaMs: null, ended: { atMs: NOW, reason: 'drained' } }} width={40} />,
  ).join('\n');
  assert.match(drained, /50\.0% drained \d\d:\d\d/, 'an ended run says how it ended instead of an ETA');
});

test('throughput panel: sparklines of each series, latest values and run totals', () => {
  const lines = frameOf(<ThroughputPanel points={snapshot.throughput} totals={snapshot.totals} width={80} rows={4} />);
  assert.match(lines[0]!, /Throughput 123k cand · 3\.5k dup · 45\.7k dl · 9\.9k kept · 1\.2k failed · 2\.5 GB in/);
  const series = (label: string) => lines.find((l) => l.startsWith(label)) ?? assert.fail(`no ${label} line`);
  // 0, 10, 20, 40, 80 scaled to the maximum: the newest point is the full block, the oldest the lowest.
  assert.match(series('cand/s'), /▁▂▃▅█\s+800$/);
  assert.match(series('dl/s'), /▁▂▃▅█\s+80$/);
  assert.match(series('kept/s'), /▁▂▃▅█\s+40$/);
  assert.match(series('MB/s in'), /▁▂▃▅█\s+8\.0$/);
  const paired = frameOf(<ThroughputPanel points={snapshot.throughput} totals={snapshot.totals} width={80} rows={2} />);
  assert.equal(paired.length, 3);
  assert.match(paired[1]!, /^cand\/s .*800 +dl\/s .*80$/);
});

test('filter panel: provider, batch, rate, queue and verdict', () => {
  const text = frameOf(<FilterPanel filter={snapshot.filter} totals={snapshot.totals} width={40} />).join('\n');
  assert.match(text, /Filter clip-vit-b32 on CUDA/);
  assert.match(text, /kept 9\.9k +filtered out 30\.0k$/m, 'the CLIP outcome');
  assert.match(frameOf(<FilterPanel filter={snapshot.filter} totals={snapshot.totals} width={60} />).join('\n'), /filtered out 30\.0k +\(25% kept\)/);
  assert.match(text, /batch 128 +812 img\/s +idle 2%/);
  assert.match(text, /240\/256/);
  assert.match(text, /filter-bound/);
  const starving = frameOf(<FilterPanel filter={{ ...snapshot.filter, provider: 'CPU', queueDepth: 0, idleFraction: 0.9, verdict: 'workers-bound' }} totals={snapshot.totals} width={40} />).join('\n');
  assert.match(starving, /on CPU/);
  assert.match(starving, /workers-bound \(add workers\)/);
  for (const [verdict, text] of [['paused', /paused/], ['draining', /draining/], ['done', /▶ done/], ['no-workers', /no worker attached/]] as const) {
    const frame = frameOf(<FilterPanel filter={{ ...snapshot.filter, verdict }} totals={snapshot.totals} width={40} />).join('\n');
    assert.match(frame, text);
    assert.doesNotMatch(frame, /add workers/, `${verdict}: no advice to add workers`);
  }
});

test('errors panel: the top messages with their counts, one line each', () => {
  const lines = frameOf(<ErrorsPanel errors={snapshot.topErrors} width={40} rows={3} />);
  assert.match(lines[0]!, /Errors top 3, 1\.0k in all/);
  assert.match(lines[1]!, /700 HTTP 404$/);
  assert.match(lines[2]!, /300 timeout after 10 s$/);
  assert.match(lines[3]!, /20 not an image$/);
  assert.equal(lines.length, 4, 'only the top 3');
  assert.match(frameOf(<ErrorsPanel errors={[]} width={40} rows={3} />)[0]!, /Errors none/);
});

test('output panel: path, shards, pairs and bytes; a long path keeps its end', () => {
  const text = frameOf(<OutputPanel output={snapshot.output} width={40} />).join('\n');
  assert.match(text, /Output 1\.2 GB/);
  assert.match(text, /\/data\/out\/run-test-1/);
  assert.match(text, /shards 40 +pairs written 9\.0k/);
  const long = { ...snapshot.output, path: '/very/long/path/to/the/dataset/directory/of/run-test-1' };
  const lines = frameOf(<OutputPanel output={long} width={30} />);
  assert.equal(lines[1], '…' + long.path.slice(-29));
  assert.doesNotMatch(text, /€/, 'no swarm, no cost');
  const priced = frameOf(<OutputPanel output={{ ...snapshot.output, cost: { hourlyGross: 0.132, keptPerEuro: 2_310_000 } }} width={40} />).join('\n');
  assert.match(priced, /Output 1\.2 GB  0\.13 €\/h/);
  assert.match(priced, /shards 40 +pairs written 9\.0k  2\.3M\/€/);
});
