import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { sniffImageFormat } from '../src/filter/image-format.js';
import { CLIP_PREPROCESSING, decodeToModelRgb, type ImagePreprocessing } from '../src/filter/image-preprocess.js';
import { PreprocessPool } from '../src/filter/preprocess-pool.js';
import { DEFAULT_FETCH_OPTIONS, ImageFetcher } from '../src/worker/fetcher.js';
import { processCandidates } from '../src/worker/process.js';
import { DEFAULT_RESIZE_OPTIONS, resizeImage } from '../src/worker/resize.js';
import { candidateKey } from '../src/warc/candidate.js';
import { cpuHeavyPng, encodedImages, pixelBombPng, svgCpuBomb } from './fixtures/hostile/images.js';
import { downloadFailure, runShard, startTestCoordinator, TEST_TOKEN } from './support/coordinator.js';
import { CoordinatorClient } from '../src/worker/rpc.js';

test('corpus/images: only JPEG, PNG, WebP, GIF, AVIF are decoded, decided from the bytes', async () => {
  const { accepted, refused } = await encodedImages();
  for (const [format, bytes] of Object.entries(accepted)) {
    assert.equal(sniffImageFormat(bytes), format);
    const r = await resizeImage(bytes, DEFAULT_RESIZE_OPTIONS);
    assert.ok(r.ok, `${format}: ${JSON.stringify(r.ok ? '' : r.error)}`);
  }
  for (const [name, bytes] of Object.entries(refused)) {
    const r = await resizeImage(bytes, DEFAULT_RESIZE_OPTIONS);
    assert.ok(!r.ok && /^not an image/.test(r.error), `${name}: ${r.ok ? "accepted" : r.error}`);
    await assert.rejects(decodeToModelRgb(bytes, CLIP_PREPROCESSING), /not an image/, name);
  }
  const bomb = await resizeImage(await pixelBombPng(), DEFAULT_RESIZE_OPTIONS);
  assert.ok(!bomb.ok && /too large/.test(bomb.error), JSON.stringify(bomb));
});

test('corpus/images: the 1.3 MB SVG CPU bomb served as image/jpeg ends at once as a per-sample failure', async () => {
  const svg = svgCpuBomb();
  assert.ok(svg.length > 1_200_000, `bomb is ${svg.length} bytes`);
  const { accepted } = await encodedImages();
  const server: Server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'image/jpeg' }).end(req.url === '/bomb.jpg' ? svg : accepted['png']);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const fetcher = new ImageFetcher({ ...DEFAULT_FETCH_OPTIONS, perHostRps: 1000, allowLoopback: true });
  try {
    const candidates = ['bomb', 'fine'].map((name) => {
      const url = `http://127.0.0.1:${port}/${name}.jpg`;
      return { key: candidateKey(url, name), url, caption: name, pageUrl: `http://127.0.0.1:${port}/`, license: null };
    });
    const cpuBefore = process.cpuUsage();
    const out = [];
    for await (const s of processCandidates(candidates, fetcher, DEFAULT_RESIZE_OPTIONS)) out.push(s);
    const cpu = process.cpuUsage(cpuBefore);
    const bomb = out.find((s) => s.caption === 'bomb')!;
    assert.equal(bomb.status, 'failed_to_resize');
    assert.match(bomb.errorMessage!, /not an image: unsupported image format \(SVG/);
    assert.equal(out.find((s) => s.caption === 'fine')!.status, 'success');
    // Bound: rendering took 83 s of CPU; refusing it costs milliseconds. 20 s is generous on a loaded machine.
    assert.ok((cpu.user + cpu.system) / 1e6 < 20, `CPU ${(cpu.user + cpu.system) / 1e6} s`);
  } finally {
    await fetcher.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('corpus/images: an image slower than the per-image time limit (1 s here, 10 s by default) ends as a per-sample timeout, in the worker and in the coordinator', { timeout: 180_000 }, async () => {
  const heavy = await cpuHeavyPng();
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'image/png' }).end(heavy);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const fetcher = new ImageFetcher({ ...DEFAULT_FETCH_OPTIONS, maxBytes: 16 * 1024 * 1024, perHostRps: 1000, allowLoopback: true });
  try {
    const url = `http://127.0.0.1:${port}/heavy.png`;
    const candidates = [{ key: candidateKey(url, 'heavy'), url, caption: 'heavy', pageUrl: `http://127.0.0.1:${port}/`, license: null }];
    const out = [];
    // Resizing it to 9000 px takes several seconds of CPU: the 1 s limit must stop it.
    for await (const s of processCandidates(candidates, fetcher, { ...DEFAULT_RESIZE_OPTIONS, size: 9000, timeoutSeconds: 1 })) out.push(s);
    assert.equal(out.length, 1);
    assert.equal(out[0]!.status, 'failed_to_resize', JSON.stringify(out[0]!.errorMessage));
    assert.match(out[0]!.errorMessage!, /image too slow to decode: more than 1 s/);
  } finally {
    await fetcher.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
  // The coordinator's preprocessing: directly, and through the pool's option (its per-image error).
  const exact = (n: number): ImagePreprocessing => ({ ...CLIP_PREPROCESSING, resize: { width: n, height: n }, crop: null, width: n, height: n });
  await assert.rejects(decodeToModelRgb(heavy, exact(4000), 1), /image too slow to decode: more than 1 s/);
  const pool = new PreprocessPool({ preprocessing: exact(2000), dtype: 'float32', threads: 1, decodeTimeoutSeconds: 1 });
  try {
    const prepared = await pool.run([heavy]);
    assert.match(prepared.errors[0] ?? 'decoded', /image too slow to decode: more than 1 s/);
    prepared.release();
  } finally {
    await pool.close();
  }
});

test('corpus/images: the coordinator re-checks what workers send: an SVG sent as a JPEG success fails that sample only', async () => {
  const c = await startTestCoordinator();
  const client = new CoordinatorClient(c.address, TEST_TOKEN);
  try {
    c.store.shards.add(['/data/hostile.wat.gz']);
    const { accepted } = await encodedImages();
    const samples = [
      downloadFailure(1, { status: 'success', errorMessage: '', jpeg: svgCpuBomb(200), width: 8, height: 8 }),
      downloadFailure(2, { status: 'success', errorMessage: '', jpeg: accepted['png']!, width: 8, height: 8 }),
      downloadFailure(3, { status: 'success', errorMessage: '', jpeg: accepted['jpeg']!, width: 8, height: 8 }),
      downloadFailure(4),
    ];
    const { complete } = await runShard(client, samples);
    assert.equal(complete.kept, 1);
    const out = join(c.dir, 'out');
    const parquet = readdirSync(out).find((n) => n.endsWith('.parquet'))!;
    const rows = await parquetReadObjects({ file: await asyncBufferFromFile(join(out, parquet)) });
    const byKey = new Map(rows.map((r) => [r['key'] as string, r]));
    assert.equal(rows.length, 4);
    assert.equal(byKey.get(samples[0]!.key)!['status'], 'failed_to_resize');
    assert.match(byKey.get(samples[0]!.key)!['error_message'] as string, /not a JPEG/);
    assert.equal(byKey.get(samples[1]!.key)!['status'], 'failed_to_resize', 'workers send JPEGs only');
    assert.equal(byKey.get(samples[2]!.key)!['status'], 'success');
  } finally {
    client.close();
    await c.close();
  }
});
