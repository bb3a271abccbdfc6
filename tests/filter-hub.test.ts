import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, test } from 'node:test';
import { clipModelFiles, defaultModelCache, modelCacheDir, pullModel, type PullProgress } from '../src/model/hub.js';
import { startHubStandin, type HubStandin, type StandinFile } from './support/hub-standin.js';

const REPO = 'Xenova/clip-vit-base-patch32';
const files: Record<string, StandinFile> = {
  'config.json': { content: Buffer.from(JSON.stringify({ model_type: 'clip', projection_dim: 512 })) },
  'preprocessor_config.json': { content: Buffer.from(JSON.stringify({ crop_size: 224, size: 224 })) },
  'tokenizer.json': { content: Buffer.from(JSON.stringify({ model: { type: 'BPE', vocab: {}, merges: [] } })) },
  'onnx/vision_model.onnx': { content: randomBytes(400_000), lfs: true },
  'onnx/text_model.onnx': { content: randomBytes(250_000), lfs: true },
};
const wanted = clipModelFiles(['fp32']);

let root = '';
let hub: HubStandin;
let run = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'cah-hub-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});
afterEach(async () => {
  await hub?.close();
});

async function pull(dir: string, extra: Partial<Parameters<typeof pullModel>[0]> = {}): Promise<PullProgress[]> {
  const events: PullProgress[] = [];
  await pullModel({ repo: REPO, dir, files: wanted.required, optionalFiles: wanted.optional, endpoint: hub.endpoint, onProgress: (p) => events.push(p), ...extra });
  return events;
}

const freshDir = (): string => join(root, `model-${run++}`);

async function assertComplete(dir: string): Promise<void> {
  for (const [path, f] of Object.entries(files)) {
    assert.ok((await readFile(join(dir, path))).equals(f.content), `${path} has the hub's bytes`);
    assert.ok(!existsSync(join(dir, `${path}.incomplete`)));
  }
}

test('hub: pulls every file of the layout; LFS files via the CDN redirect; absent external-data files are skipped', async () => {
  hub = await startHubStandin({ repo: REPO, files });
  const dir = freshDir();
  const events = await pull(dir);
  await assertComplete(dir);
  assert.ok(hub.requests.some((r) => r.method === 'HEAD' && r.path === `/${REPO}/resolve/main/onnx/vision_model.onnx`));
  assert.ok(hub.requests.some((r) => r.method === 'GET' && r.path.startsWith('/cdn/')), 'LFS bytes come from the redirect target');
  assert.ok(hub.requests.some((r) => r.method === 'HEAD' && r.path.endsWith('onnx/vision_model.onnx_data')), 'external data was looked for');
  assert.ok(!existsSync(join(dir, 'onnx/vision_model.onnx_data')));
  assert.equal(events.filter((e) => e.phase === 'done').length, 5);

  // A second pull finds everything in place and downloads nothing.
  const before = hub.requests.filter((r) => r.method === 'GET').length;
  const again = await pull(dir);
  assert.equal(hub.requests.filter((r) => r.method === 'GET').length, before);
  assert.equal(again.filter((e) => e.phase === 'skip').length, 5);
});

test('hub: a download cut off mid-file resumes with a Range request and completes', async () => {
  hub = await startHubStandin({ repo: REPO, files });
  hub.cutNextDownload('onnx/vision_model.onnx', 150_000);
  const dir = freshDir();
  const events = await pull(dir);
  await assertComplete(dir);
  const ranged = hub.requests.filter((r) => r.method === 'GET' && r.range !== null);
  assert.equal(ranged.length, 1, JSON.stringify(hub.requests));
  const from = Number(/^bytes=(\d+)-$/.exec(ranged[0]!.range!)![1]);
  assert.ok(from > 0 && from <= 150_000, `resumed from ${from}`);
  assert.ok(events.some((e) => e.phase === 'retry' && e.file === 'onnx/vision_model.onnx'));
  assert.ok(events.some((e) => e.phase === 'resume' && e.received === from));
});

test('hub: a partial file left by an earlier run is resumed, not downloaded again', async () => {
  hub = await startHubStandin({ repo: REPO, files });
  const dir = freshDir();
  await mkdir(join(dir, 'onnx'), { recursive: true });
  await writeFile(join(dir, 'onnx/text_model.onnx.incomplete'), files['onnx/text_model.onnx']!.content.subarray(0, 100_000));
  await pull(dir);
  await assertComplete(dir);
  const textGets = hub.requests.filter((r) => r.method === 'GET' && r.range !== null);
  assert.deepEqual(textGets.map((r) => r.range), ['bytes=100000-']);
});

test('hub: a corrupted LFS file fails its sha256 check and is deleted', async () => {
  hub = await startHubStandin({ repo: REPO, files });
  hub.corrupt('onnx/text_model.onnx');
  const dir = freshDir();
  await assert.rejects(pull(dir), /onnx\/text_model\.onnx: sha256 [0-9a-f]{64} does not match the hub's [0-9a-f]{64} \(corrupted download\)/);
  assert.ok(!existsSync(join(dir, 'onnx/text_model.onnx')));
  assert.ok(!existsSync(join(dir, 'onnx/text_model.onnx.incomplete')));
});

test('hub: a corrupted small file fails its git blob hash check', async () => {
  hub = await startHubStandin({ repo: REPO, files });
  hub.corrupt('tokenizer.json');
  await assert.rejects(pull(freshDir()), /tokenizer\.json: git hash [0-9a-f]{40} does not match/);
});

test('hub: a missing file, a bad id and a gated repo get messages that name the fix', async () => {
  const partial = { ...files };
  delete partial['onnx/text_model.onnx'];
  hub = await startHubStandin({ repo: REPO, files: partial });
  await assert.rejects(pull(freshDir()), /has no onnx\/text_model\.onnx \(HTTP 404\): check the hub id and --revision/);
  await assert.rejects(pull(freshDir(), { repo: 'not a repo' }), /is not a hub id like Xenova\/clip-vit-base-patch32/);
  await hub.close();

  hub = await startHubStandin({ repo: REPO, files, token: 'secret' });
  await assert.rejects(pull(freshDir()), /access denied \(HTTP 401\).*set HF_TOKEN/);
  const dir = freshDir();
  await pull(dir, { token: 'secret' });
  await assertComplete(dir);
  assert.ok(hub.requests.filter((r) => r.path.startsWith(`/${REPO}/`)).some((r) => r.authorization === 'Bearer secret'));
});

test('hub: cache directories follow CAH_CACHE / XDG_CACHE_HOME and name revisions', () => {
  assert.equal(defaultModelCache({ CAH_CACHE: '/c' }), '/c/models');
  assert.equal(defaultModelCache({ XDG_CACHE_HOME: '/x' }), '/x/cah/models');
  assert.equal(modelCacheDir('/c/models', REPO), '/c/models/Xenova--clip-vit-base-patch32');
  assert.equal(modelCacheDir('/c/models', REPO, 'refs/pr/1'), '/c/models/Xenova--clip-vit-base-patch32@refs_pr_1');
  assert.deepEqual(clipModelFiles(['fp16']).required.slice(-2), ['onnx/vision_model_fp16.onnx', 'onnx/text_model_fp16.onnx']);
});
