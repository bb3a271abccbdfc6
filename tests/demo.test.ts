import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GroundTruthEntry } from '../src/demo/fixture-web.js';
import { runCli } from './support/cli.js';
import { readAllParquet, readAllTarEntries } from './support/dataset.js';

test('cah demo (npm start): a readable dataset whose kept set is exactly the matched pairs the fixture web served', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cah-demo-'));
  try {
    const res = await runCli(['demo', '--dir', dir, '--shards', '3', '--pages-per-shard', '12', '--seed', '5', '--no-dashboard'], { timeoutMs: 170_000 });
    assert.equal(res.code, 0, res.stderr.slice(-3000));
    const out = join(dir, 'dataset');
    assert.match(res.stdout, new RegExp(`dataset\\s+${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    assert.match(res.stderr, /DEMO CLIP model/);
    const served = JSON.parse(readFileSync(join(dir, 'ground-truth.json'), 'utf8')) as GroundTruthEntry[];
    const matched = served.filter((t) => t.status === 'success' && t.matched).map((t) => t.key).sort();
    const mismatched = served.filter((t) => t.status === 'success' && !t.matched).map((t) => t.key);
    assert.ok(matched.length > 10 && mismatched.length > 3, `the demo web serves both kinds (${matched.length} matched, ${mismatched.length} mismatched)`);

    // Read back with independent readers: hyparquet, tar-stream, JSON.parse.
    const rows = await readAllParquet(out);
    assert.equal(rows.length, served.length, 'one parquet row per candidate served');
    const kept = rows.filter((r) => r.status === 'success').map((r) => r.key).sort();
    assert.deepEqual(kept, matched, 'kept = the matched pairs');
    for (const key of mismatched) assert.equal(rows.find((r) => r.key === key)?.status, 'filtered_out', `${key} mismatched, filtered out`);
    const entries = await readAllTarEntries(out);
    assert.deepEqual(entries.filter((e) => e.name.endsWith('.jpg')).map((e) => e.name.slice(0, -4)).sort(), matched);
    for (const e of entries.filter((x) => x.name.endsWith('.json'))) {
      const meta = JSON.parse(e.data.toString('utf8')) as { key: string; status: string; similarity: number };
      assert.equal(meta.status, 'success');
      assert.ok(meta.similarity >= 0.28);
    }
    const stats = readdirSync(out).filter((n) => n.endsWith('_stats.json')).map((n) => JSON.parse(readFileSync(join(out, n), 'utf8')) as { count: number; successes: number; filtered_out: number });
    assert.equal(stats.length, 3);
    assert.equal(stats.reduce((a, s) => a + s.successes, 0), matched.length);
    assert.equal(stats.reduce((a, s) => a + s.filtered_out, 0), mismatched.length);
    assert.match(res.stdout, new RegExp(`kept\\s+${matched.length} \\(demo CLIP model`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
