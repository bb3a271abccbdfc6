import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { ShardStats, errorGroup } from '../src/output/stats.js';
import { DEFAULT_RESIZE_OPTIONS } from '../src/worker/resize.js';
import { DEFAULT_FETCH_OPTIONS, ImageFetcher } from '../src/worker/fetcher.js';
import { processCandidates } from '../src/worker/process.js';

test('error groups: per-sample numbers (scores, byte counts, sizes, addresses) are taken out; codes and settings stay', () => {
  const cases: [string, string][] = [
    ['similarity 0.213 < threshold 0.28', 'similarity < threshold 0.28'],
    ['similarity -0.031 < threshold 0.28', 'similarity < threshold 0.28'],
    ['similarity 0.1 < threshold 0.28; watermark 0.912 > threshold 0.8', 'similarity < threshold 0.28; watermark > threshold 0.8'],
    ['response too large: 12345678 bytes > 10485760', 'response too large: N bytes > 10485760'],
    ['response too large: more than 10485760 bytes', 'response too large: more than N bytes'],
    ['image too small: 12x40 < 64', 'image too small: WxH < 64'],
    ['connect ECONNREFUSED 127.0.0.2:8080', 'connect ECONNREFUSED ADDRESS'],
    ['HTTP 404', 'HTTP 404'],
    ['timeout after 1000 ms', 'timeout after 1000 ms'],
    ['language fr not in en,de', 'language fr not in en,de'],
  ];
  for (const [message, group] of cases) assert.equal(errorGroup(message), group, message);
});

test('_stats.json: img2dataset\'s keys, status_dict keyed by "success" and grouped error messages', () => {
  const stats = new ShardStats();
  const add = (status: string, errorMessage: string | null) => stats.add({ status, errorMessage, downloadMs: 10, resizeMs: status === 'success' ? 2 : null });
  for (let i = 0; i < 5; i++) add('success', null);
  for (let i = 0; i < 3; i++) add('filtered_out', `similarity 0.${100 + i} < threshold 0.28`);
  add('failed_to_download', 'HTTP 404');
  add('failed_to_download', 'HTTP 404');
  add('failed_to_resize', 'image too small: 3x4 < 10');
  add('failed_to_resize', 'image too small: 5x9 < 10');
  const json = stats.json({ source: 's.wat.gz', sourceErrors: [], extraction: { candidates: 12 }, startedAtMs: 1000, endedAtMs: 3500 }) as Record<string, unknown>;
  // What img2dataset's logger process reads from every stats file.
  assert.equal(json['count'], 12);
  assert.equal(json['successes'], 5);
  assert.equal(json['failed_to_download'], 2);
  assert.equal(json['failed_to_resize'], 2);
  assert.equal(json['duration'], 2.5);
  assert.deepEqual(json['status_dict'], {
    success: 5,
    'similarity < threshold 0.28': 3,
    'HTTP 404': 2,
    'image too small: WxH < 10': 2,
  });
  const dict = json['status_dict'] as Record<string, number>;
  assert.equal(Object.values(dict).reduce((a, b) => a + b, 0), json['count'], 'every sample counted once');
  assert.equal(json['filtered_out'], 3);
  assert.deepEqual(json['error_counts'], {
    filtered_out: { 'similarity < threshold 0.28': 3 },
    failed_to_download: { 'HTTP 404': 2 },
    failed_to_resize: { 'image too small: WxH < 10': 2 },
  });
});

test('sha256 is of the original download, as img2dataset computes it, not of the re-encoded JPEG', async () => {
  const png = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#3366cc' } }).png().toBuffer();
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'image/png' }).end(png));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const fetcher = new ImageFetcher({ ...DEFAULT_FETCH_OPTIONS, allowLoopback: true });
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/a.png`;
    const candidates = [{ key: 'k1', url, caption: 'a blue rectangle', pageUrl: 'http://example.com/', license: null }];
    const samples = [];
    for await (const s of processCandidates(candidates, fetcher, { ...DEFAULT_RESIZE_OPTIONS, size: 16 }, { maxInFlight: 1 })) samples.push(s);
    assert.equal(samples.length, 1);
    const sample = samples[0]!;
    assert.equal(sample.status, 'success', sample.errorMessage ?? '');
    assert.equal(sample.sha256, createHash('sha256').update(png).digest('hex'));
    assert.notEqual(sample.sha256, createHash('sha256').update(sample.jpeg!).digest('hex'));
  } finally {
    await fetcher.close();
    server.close();
  }
});
