import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import sharp from 'sharp';
import { candidateKey } from '../src/warc/candidate.js';
import { DEFAULT_FETCH_OPTIONS, ImageFetcher, parseRetryAfter } from '../src/worker/fetcher.js';
import { processCandidates } from '../src/worker/process.js';
import { DEFAULT_RESIZE_OPTIONS } from '../src/worker/resize.js';
import type { SampleRecord } from '../src/output/sample.js';
import { downloadFailure, runShard, startTestCoordinator, TEST_TOKEN } from './support/coordinator.js';
import { CoordinatorClient } from '../src/worker/rpc.js';

test('Retry-After is read as seconds or as an HTTP date', () => {
  assert.equal(parseRetryAfter('3'), 3000);
  assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6000);
  assert.equal(parseRetryAfter('soon'), null);
  assert.equal(parseRetryAfter(undefined), null);
});

test('transient failures (429, 5xx, reset) are retried later in the same attempt with per-host backoff; permanent ones are not', async () => {
  const png = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#08f' } }).png().toBuffer();
  const seen = new Map<string, number[]>();
  const server: Server = createServer((req, res) => {
    const path = req.url!;
    const times = seen.get(path) ?? [];
    times.push(Date.now());
    seen.set(path, times);
    const n = times.length;
    const image = (): void => void res.writeHead(200, { 'content-type': 'image/png' }).end(png);
    if (path === '/429.png') return n === 1 ? void res.writeHead(429, { 'retry-after': '1' }).end() : image();
    if (path === '/503.png') return n <= 2 ? void res.writeHead(503).end() : image();
    if (path === '/reset.png') return n === 1 ? void req.socket.destroy() : image();
    if (path === '/down.png') return void res.writeHead(500).end();
    if (path === '/missing.png') return void res.writeHead(404).end();
    if (path === '/page.png') return void res.writeHead(200, { 'content-type': 'image/png' }).end('<html>not an image</html>');
    if (path === '/optout.png') return void res.writeHead(200, { 'x-robots-tag': 'noai' }).end(png);
    image();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const fetcher = new ImageFetcher({ ...DEFAULT_FETCH_OPTIONS, allowLoopback: true, perHostRps: 1000, perHostConcurrency: 8 });
  try {
    const names = ['429', '503', 'reset', 'down', 'missing', 'page', 'optout', 'fine'];
    const candidates = names.map((name) => {
      const url = `${base}/${name}.png`;
      return { key: candidateKey(url, name), url, caption: name, pageUrl: `${base}/`, license: null };
    });
    const out: SampleRecord[] = [];
    for await (const s of processCandidates(candidates, fetcher, DEFAULT_RESIZE_OPTIONS, { urlRetries: 2 })) out.push(s);
    assert.equal(out.length, names.length, 'exactly one sample per candidate');
    const by = (name: string): SampleRecord => out.find((s) => s.caption === name)!;
    const expect: Record<string, [string, number]> = {
      '429': ['success', 2],
      '503': ['success', 3],
      reset: ['success', 2],
      down: ['failed_to_download', 3],
      missing: ['failed_to_download', 1],
      page: ['failed_to_resize', 1],
      optout: ['failed_to_download', 1],
      fine: ['success', 1],
    };
    for (const [name, [status, attempts]] of Object.entries(expect)) {
      assert.equal(by(name).status, status, `${name}: ${by(name).errorMessage}`);
      assert.equal(by(name).downloadAttempts, attempts, name);
      assert.equal(seen.get(`/${name}.png`)!.length, attempts, `${name}: requests the server saw`);
    }
    const t429 = seen.get('/429.png')!;
    assert.ok(t429[1]! - t429[0]! >= 900, `Retry-After: 1 honoured (${t429[1]! - t429[0]!} ms)`);
  } finally {
    await fetcher.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('with --url-retries 0 nothing is retried', async () => {
  let hits = 0;
  const server: Server = createServer((_req, res) => {
    hits++;
    res.writeHead(503).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x.png`;
  const fetcher = new ImageFetcher({ ...DEFAULT_FETCH_OPTIONS, allowLoopback: true, perHostRps: 1000 });
  try {
    const out: SampleRecord[] = [];
    for await (const s of processCandidates([{ key: candidateKey(url, 'x'), url, caption: 'x', pageUrl: url, license: null }], fetcher, DEFAULT_RESIZE_OPTIONS, { urlRetries: 0 })) out.push(s);
    assert.equal(hits, 1);
    assert.equal(out[0]!.downloadAttempts, 1);
  } finally {
    await fetcher.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('the parquet row says how many download attempts were made', async () => {
  const c = await startTestCoordinator();
  const client = new CoordinatorClient(c.address, TEST_TOKEN);
  try {
    c.store.shards.add(['/data/retries.wat.gz']);
    await runShard(client, [downloadFailure(1, { downloadAttempts: 3, errorMessage: 'HTTP 503' }), downloadFailure(2, { downloadAttempts: 1 })]);
    const out = join(c.dir, 'out');
    const rows = await parquetReadObjects({ file: await asyncBufferFromFile(join(out, readdirSync(out).find((n) => n.endsWith('.parquet'))!)) });
    assert.deepEqual(rows.map((r) => r['download_attempts']).sort(), [1, 3]);
  } finally {
    client.close();
    await c.close();
  }
});
