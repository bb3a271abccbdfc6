import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exactnessLine, runChaos } from './support/chaos.js';

test('chaos: worker kills, a coordinator killed mid-publish, short and long connection cuts, a worker stopped past its lease — the dataset is exact', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'cah-chaos-'));
  try {
    const report = await runChaos({ root, seed: 8, shards: 12, pagesPerShard: 10, workers: 3, plan: { kind: 'suite' }, deadlineMs: 240_000 });
    t.diagnostic(`${report.keys} keys in ${report.seconds.toFixed(0)} s, faults ${JSON.stringify(report.faults)}: ${exactnessLine(report)}`);
    assert.ok(report.keys > 300, `a real workload (${report.keys} keys)`);
    assert.equal(exactnessLine(report), 'lost=0 duplicated=0 unreadable=0 hung=0', report.details.join('\n'));
    assert.deepEqual(report.details, []);
    const f = report.faults;
    assert.ok(f['worker_kills']! >= 10, `≥ 10 worker kills (${JSON.stringify(f)})`);
    assert.ok(f['coordinator_kills']! >= 1 && f['cuts']! >= 1 && f['long_cuts']! >= 1 && f['stops']! >= 1, `every fault happened: ${JSON.stringify(f)}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
