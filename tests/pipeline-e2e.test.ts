import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readdirSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startFixtureWeb, type FixtureWeb, type GroundTruthEntry } from '../src/demo/fixture-web.js';
import { buildDemoModel, demoEmbeddingDim } from '../src/model/demo-model.js';
import { GREEN, writeGreennessScorer } from './support/scorer-head.js';
import { parquetReadObjects } from 'hyparquet';
import { parse as parseNpy } from 'npyjs';
import { Store } from '../src/store/state-file.js';
import { runCli, startCli } from './support/cli.js';
import { readAllParquet, readAllTarEntries } from './support/dataset.js';

let root: string;
let web: FixtureWeb;
let model: string;
let greenness: string;

const GPU_FLAGS = [
  'gpu',
  '--local-workers', '2',
  '--until-done',
  '--allow-loopback',
  '--listen', '127.0.0.1:0',
  '--no-dashboard',
  '--download-timeout-ms', '3000',
  '--per-host-rps', '500',
  '--per-host-concurrency', '8',
  '--max-image-bytes', '2000000',
  '--heartbeat-timeout-ms', '5000',
  '--batch-size', '32',
];

/** With the demo CLIP model, a downloaded pair whose caption names another colour is filtered out. */
function withFilter(truth: GroundTruthEntry[]): GroundTruthEntry[] {
  return truth.map((t) => (t.status === 'success' && !t.matched ? { ...t, status: 'filtered_out' } : t));
}


before(async () => {
  root = mkdtempSync(join(tmpdir(), 'cah-e2e-'));
  model = join(root, 'demo-model');
  await buildDemoModel(model);
  // An extra scorer head: the image embedding's "green" component, as a column (no threshold).
  greenness = join(root, 'greenness.onnx');
  await writeGreennessScorer(greenness);
  web = await startFixtureWeb(join(root, 'web'), { seed: 7, shards: 4, pagesPerShard: 12, hangMs: 6000, maxImageBytes: 2_000_000 });
});

after(async () => {
  await web.close();
  rmSync(root, { recursive: true, force: true });
});

async function addShards(state: string): Promise<void> {
  const res = await runCli(['--state', state, 'shards', 'add', ...web.shardPaths]);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, new RegExp(`added ${web.shardPaths.length} shard`));
}

/** The dataset must hold every expected key exactly once, with the expected status and error. */
async function assertMatchesGroundTruth(out: string, truth: GroundTruthEntry[]): Promise<void> {
  const rows = await readAllParquet(out);
  const byKey = new Map<string, (typeof rows)[number]>();
  for (const row of rows) {
    assert.ok(!byKey.has(row.key), `key ${row.key} written twice`);
    byKey.set(row.key, row);
  }
  assert.deepEqual([...byKey.keys()].sort(), truth.map((t) => t.key).sort(), 'exactly the expected keys');
  for (const expected of truth) {
    const row = byKey.get(expected.key)!;
    assert.equal(row.status, expected.status, `${expected.key} (${expected.fault ?? 'no fault'}, ${expected.url}): ${row.error_message}`);
    if (expected.status === 'success') assert.ok(typeof row.similarity === 'number' && row.similarity >= 0.28, `${expected.key} similarity ${row.similarity}`);
    if (expected.status === 'filtered_out') assert.ok(typeof row.similarity === 'number' && row.similarity < 0.28, `${expected.key} similarity ${row.similarity}`);
    if (expected.errorContains) assert.ok(String(row.error_message).includes(expected.errorContains), `${expected.key}: "${row.error_message}" should mention "${expected.errorContains}"`);
  }
  const entries = await readAllTarEntries(out);
  const jpgKeys = entries.filter((e) => e.name.endsWith('.jpg')).map((e) => e.name.slice(0, -4)).sort();
  const kept = truth.filter((t) => t.status === 'success').map((t) => t.key).sort();
  assert.deepEqual(jpgKeys, kept, 'the tars hold exactly the matched pairs: no mismatched pair is kept');
  for (const e of entries.filter((x) => x.name.endsWith('.txt'))) {
    const key = e.name.slice(0, -4);
    assert.equal(e.data.toString('utf8'), truth.find((t) => t.key === key)!.caption);
  }
  assert.deepEqual(readdirSync(out).filter((n) => n.startsWith('.') && n !== '.partial' && n !== '.cah-output.json'), [], 'no stray hidden files (the ownership record aside)');
  if (existsSync(join(out, '.partial'))) assert.deepEqual(readdirSync(join(out, '.partial')), [], 'no partial files left');
}

function readParquetFile(path: string): Promise<Record<string, unknown>[]> {
  const bytes = readFileSync(path);
  return parquetReadObjects({ file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer });
}

function readNpy(path: string): { data: Float32Array; shape: number[]; dtype: string } {
  const bytes = readFileSync(path);
  const parsed = parseNpy(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
  return { data: parsed.data as Float32Array, shape: parsed.shape, dtype: parsed.dtype };
}

/**
 * clip-retrieval's layout: for every shard, img_emb/text_emb float16 rows of the kept pairs in the
 * parquet's order, metadata naming them; the rows' dot product is the similarity column, and the
 * extra scorer's column is the green component of the image embedding.
 */
async function assertEmbeddings(out: string): Promise<void> {
  const dim = demoEmbeddingDim();
  let total = 0;
  for (const name of readdirSync(out).filter((n) => /^\d{5}\.parquet$/.test(n))) {
    const shard = name.slice(0, 5);
    const kept = (await readParquetFile(join(out, name))).filter((r) => r['status'] === 'success');
    const img = readNpy(join(out, 'img_emb', `img_emb_${shard}.npy`));
    const txt = readNpy(join(out, 'text_emb', `text_emb_${shard}.npy`));
    assert.equal(img.dtype, 'f2');
    assert.deepEqual(img.shape, [kept.length, dim]);
    assert.deepEqual(txt.shape, [kept.length, dim]);
    const meta = await readParquetFile(join(out, 'metadata', `metadata_${shard}.parquet`));
    assert.deepEqual(meta.map((m) => m['key']), kept.map((r) => r['key']), 'embedding rows follow the kept rows of the shard parquet');
    kept.forEach((row, i) => {
      let dot = 0;
      for (let d = 0; d < dim; d++) dot += img.data[i * dim + d]! * txt.data[i * dim + d]!;
      assert.ok(Math.abs(dot - (row['similarity'] as number)) < 0.01, `${row['key']}: embeddings' dot ${dot} vs similarity ${row['similarity']}`);
      assert.ok(Math.abs((row['greenness'] as number) - img.data[i * dim + GREEN]!) < 0.01, `${row['key']}: greenness column from the scorer head`);
    });
    total += kept.length;
  }
  assert.ok(total > 0, 'some pairs were kept');
}

test('2 local workers on the fixture web: output equals the ground truth exactly', async () => {
  const state = join(root, 'state-a');
  const out = join(root, 'out-a');
  await addShards(state);
  const res = await runCli(['--state', state, ...GPU_FLAGS, '--out', out, '--model', model, '--scorer', `greenness=${greenness}`], { timeoutMs: 150_000 });
  assert.equal(res.code, 0, res.stderr.slice(-3000));
  await assertMatchesGroundTruth(out, withFilter(web.groundTruth));
  await assertEmbeddings(out);
  const stats = readdirSync(out).filter((n) => n.endsWith('_stats.json'));
  assert.equal(stats.length, web.shardPaths.length);
  const totals = stats.map((n) => JSON.parse(readFileSync(join(out, n), 'utf8')) as { count: number; successes: number });
  assert.equal(totals.reduce((a, s) => a + s.count, 0), web.groundTruth.length);
  const store = Store.openInStateDir(state, { readonly: true });
  assert.deepEqual(store.shards.counts(), { queued: 0, leased: 0, done: web.shardPaths.length, failed: 0 });
  assert.equal(store.shards.doneTotals().duplicates, web.extraction.duplicates, 'cross-shard duplicates dropped and counted');
  store.close();
});

test('a coordinator killed mid-run and restarted on the same state file still ends with exactly the ground truth', async () => {
  const state = join(root, 'state-b');
  const out = join(root, 'out-b');
  await addShards(state);
  const first = startCli(['--state', state, ...GPU_FLAGS, '--out', out, '--model', model]);
  const deadline = Date.now() + 90_000;
  let killedMidRun = false;
  while (Date.now() < deadline) {
    await sleep(100);
    if (!existsSync(join(state, 'cah.sqlite'))) continue;
    const store = Store.openInStateDir(state, { readonly: true });
    const counts = store.shards.counts();
    store.close();
    if (counts.done >= 1) {
      killedMidRun = counts.done < web.shardPaths.length;
      first.child.kill('SIGKILL');
      break;
    }
  }
  const killed = await first.done;
  assert.equal(killed.signal, 'SIGKILL');
  assert.ok(killedMidRun, 'the coordinator was killed with shards still to do');
  const second = await runCli(['--state', state, ...GPU_FLAGS, '--out', out, '--model', model], { timeoutMs: 150_000 });
  assert.equal(second.code, 0, second.stderr.slice(-3000));
  assert.match(second.stderr, /resumed from state file/);
  await assertMatchesGroundTruth(out, withFilter(web.groundTruth));
});

test('a worker killed mid-shard is restarted, its shard is retried under a new lease, and the output is still exactly the ground truth', async () => {
  const state = join(root, 'state-c');
  const out = join(root, 'out-c');
  await addShards(state);
  const run = startCli(['--state', state, ...GPU_FLAGS, '--out', out, '--model', model]);
  const deadline = Date.now() + 90_000;
  let victim: { id: string; pid: number; shard: number } | null = null;
  while (Date.now() < deadline && !victim) {
    await sleep(50);
    if (!existsSync(join(state, 'cah.sqlite'))) continue;
    const store = Store.openInStateDir(state, { readonly: true });
    const busy = store.actors.list().find((a) => a.state === 'ALIVE' && a.pid && a.currentShardId !== null && a.downloaded > 0);
    if (busy) victim = { id: busy.id, pid: busy.pid!, shard: busy.currentShardId! };
    store.close();
  }
  assert.ok(victim, 'a worker was seen downloading for a shard');
  process.kill(victim.pid, 'SIGKILL');
  const res = await run.done;
  assert.equal(res.code, 0, res.stderr.slice(-3000));
  await assertMatchesGroundTruth(out, withFilter(web.groundTruth));
  const store = Store.openInStateDir(state, { readonly: true });
  assert.deepEqual(store.shards.counts(), { queued: 0, leased: 0, done: web.shardPaths.length, failed: 0 });
  assert.ok(store.shards.get(victim.shard)!.attempts >= 2, 'the killed shard was leased again');
  assert.ok(store.actors.get(victim.id)!.restarts >= 1, 'the actor was restarted (max_restarts)');
  store.close();
});
