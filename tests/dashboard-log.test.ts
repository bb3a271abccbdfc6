import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { formatStatusText, snapshotSummary, startStatusLog } from '../src/dashboard/log-lines.js';
import { HeldSnapshotSource, sampleSnapshot } from './support/sample-snapshot.js';

function jsonLines(): { stream: Writable; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  let partial = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      partial += chunk.toString();
      const parts = partial.split('\n');
      partial = parts.pop()!;
      for (const p of parts) lines.push(JSON.parse(p) as Record<string, unknown>);
      done();
    },
  });
  return { stream, lines };
}

test('snapshotSummary carries the dashboard figures', () => {
  const s = sampleSnapshot({ actors: 12 });
  const summary = snapshotSummary(s);
  assert.equal(summary['runId'], s.runId);
  assert.equal(summary['shardsDone'], s.shards.done);
  assert.equal(summary['shardsFailed'], s.shards.failed);
  assert.equal(summary['shardsQueued'], s.shards.queued);
  assert.equal(summary['progress'], Number(s.progress.toFixed(4)));
  assert.equal(summary['filteredOut'], s.totals.filteredOut);
  assert.equal(summary['duplicates'], s.totals.duplicates);
  assert.equal(summary['etaS'], s.etaMs! / 1000);
  assert.equal(summary['actorsAlive'], 10);
  assert.equal(summary['actorsDead'], 1);
  assert.equal(summary['actorsRestarting'], 1);
  assert.equal(summary['kept'], s.totals.kept);
  assert.equal(summary['keptPerSec'], Number(s.throughput.at(-1)!.keptPerSec.toFixed(1)));
  assert.equal(summary['filterProvider'], 'CUDA');
  assert.equal(summary['verdict'], s.filter.verdict);
  assert.deepEqual(summary['topErrors'], s.topErrors.slice(0, 3));
  assert.equal(summary['outputPath'], s.output.path);
  assert.ok(!('snapshot' in summary) && !('coordinatorUp' in summary), 'cah status --json adds those itself');
});

test('startStatusLog writes one JSON line with the figures every interval, and a last one on stop', async () => {
  const first = sampleSnapshot();
  const source = new HeldSnapshotSource(first);
  const { stream, lines } = jsonLines();
  const log = startStatusLog(source, pino(stream), 30);
  try {
    for (let i = 0; i < 100 && lines.length < 2; i++) await sleep(10);
    assert.ok(lines.length >= 2, `${lines.length} lines`);
    const line = lines[0]!;
    assert.equal(line['level'], 30);
    assert.equal(line['shards_done'], first.shards.done);
    assert.equal(line['filter_queue_depth'], first.filter.queueDepth);
    assert.equal(line['filtered_out'], first.totals.filteredOut);
    for (const key of Object.keys(line)) assert.match(key, /^[a-z0-9_]+$/, `log keys are snake_case: ${key}`);
    assert.match(String(line['msg']), new RegExp(`^status: ${first.shards.done + first.shards.failed}/${first.shards.total} shards`));
    source.set({ ...first, shards: { ...first.shards, done: 1234 } });
    const before = lines.length;
    for (let i = 0; i < 100 && lines.length === before; i++) await sleep(10);
    assert.equal(lines.at(-1)!['shards_done'], 1234);
  } finally {
    log.stop();
  }
  assert.equal(lines.at(-1)!['final'], true);
  const count = lines.length;
  log.stop();
  await sleep(80);
  assert.equal(lines.length, count, 'nothing after stop');
});

test('startStatusLog logs a warning and goes on when the snapshot cannot be read', async () => {
  let fail = true;
  const good = sampleSnapshot();
  const source = { current: () => { if (fail) throw new Error('store is busy'); return good; }, subscribe: () => () => undefined };
  const { stream, lines } = jsonLines();
  const log = startStatusLog(source, pino(stream), 20);
  try {
    for (let i = 0; i < 100 && lines.length === 0; i++) await sleep(10);
    assert.equal(lines[0]!['level'], 40);
    assert.match(String((lines[0]!['err'] as { message: string }).message), /store is busy/);
    fail = false;
    for (let i = 0; i < 100 && !lines.some((l) => l['shards_done'] === good.shards.done); i++) await sleep(10);
    assert.ok(lines.some((l) => l['shards_done'] === good.shards.done));
  } finally {
    log.stop();
  }
});

test('formatStatusText prints every panel as plain text within the width', () => {
  const s = sampleSnapshot({ actors: 30 });
  const text = formatStatusText(s, 90);
  assert.doesNotMatch(text, /\x1b/, 'no escape codes');
  for (const line of text.split('\n')) assert.ok([...line].length <= 90, `too wide: ${line}`);
  assert.match(text, new RegExp(`^cah · run ${s.runId}`));
  assert.match(text, new RegExp(`${s.shards.done + s.shards.failed}/${s.shards.total} finished`));
  assert.match(text, /Filter clip-vit-b32 on CUDA/);
  assert.match(text, /filter-bound/);
  assert.match(text, /Actors 30 \(28 alive, 1 restarting, 1 dead\)/);
  for (const a of s.actors) assert.match(text, new RegExp(`^${a.actorId} `, 'm'), 'every actor listed');
  assert.match(text, /hz-cx22-10 .*DEAD +missed heartbeats for 31 s/);
  assert.match(text, /413k HTTP 404 Not Found/);
  assert.match(text, new RegExp(s.output.path));
  assert.match(formatStatusText(s), /Throughput/);
});
