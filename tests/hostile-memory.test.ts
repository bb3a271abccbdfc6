import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ByteBudget } from '../src/worker/byte-budget.js';
import { DnsCache } from '../src/worker/dns-cache.js';
import { DEFAULT_FETCH_OPTIONS, ImageFetcher } from '../src/worker/fetcher.js';
import { HostLimiter } from '../src/worker/politeness.js';

test('corpus/memory: the DNS cache stays within its cap over 50,000 distinct hosts, most recently used kept', async () => {
  let upstreamCalls = 0;
  const cache = new DnsCache((_host, cb) => {
    upstreamCalls++;
    cb(null, [{ address: '93.184.216.34', family: 4 }]);
  }, 60_000, 1000);
  const resolve = (host: string): Promise<void> => new Promise((r) => cache.resolve(host, () => r()));
  for (let i = 0; i < 50_000; i++) {
    await resolve(`host${i}.test`);
    if (i % 100 === 0) await resolve('hot.test');
  }
  assert.ok(cache.size <= 1000, `cache holds ${cache.size} entries`);
  const before = upstreamCalls;
  await resolve('hot.test');
  assert.equal(upstreamCalls, before, 'a recently used host is still cached');
});

test('corpus/memory: 20,000 fast-failing hosts do not leave 20,000 politeness entries', async () => {
  const limiter = new HostLimiter(4, 20);
  for (let batch = 0; batch < 20; batch++) {
    for (let i = 0; i < 1000; i++) {
      const release = await limiter.acquire(`dead${batch}-${i}.test`);
      release();
    }
    await new Promise((r) => setTimeout(r, 60));
  }
  // Released hosts still inside their 50 ms spacing interval were never removed before the sweep.
  assert.ok(limiter.size <= 4096, `limiter holds ${limiter.size} hosts`);
});

test('corpus/memory: the byte budget never deadlocks and holds at most limit + one body', async () => {
  const budget = new ByteBudget(100);
  const holders = Array.from({ length: 20 }, () => ({}));
  let done = 0;
  await Promise.all(
    holders.map(async (h, i) => {
      for (let c = 0; c < 6; c++) {
        await budget.take(h, 10);
        await new Promise((r) => setImmediate(r));
      }
      await new Promise((r) => setTimeout(r, i % 3));
      budget.release(h);
      done++;
    }),
  );
  assert.equal(done, 20);
  assert.equal(budget.held, 0);
  assert.ok(budget.peakHeld <= 100 + 60, `peak ${budget.peakHeld}`);
});

test('corpus/memory: 128 concurrent 10 MB bodies stay within the in-flight byte budget', async () => {
  const body = Buffer.alloc(10 * 1024 * 1024, 7);
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.length });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const limit = 64 * 1024 * 1024;
  const fetcher = new ImageFetcher({ ...DEFAULT_FETCH_OPTIONS, allowLoopback: true, perHostConcurrency: 128, perHostRps: 100_000, maxBytesInFlight: limit, totalTimeoutMs: 120_000 });
  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 20);
  try {
    const results = await Promise.all(
      Array.from({ length: 128 }, async (_, i) => {
        const r = await fetcher.fetch(`http://127.0.0.1:${port}/${i}.jpg`);
        // The caller holds the bytes a moment (as a resize would), then hands them back.
        await new Promise((resolve) => setTimeout(resolve, 5));
        if (r.ok) r.release();
        return r.ok;
      }),
    );
    assert.equal(results.filter(Boolean).length, 128, 'every body arrived');
    assert.ok(fetcher.budget.peakHeld <= limit + body.length, `peak held ${fetcher.budget.peakHeld} bytes`);
    assert.equal(fetcher.budget.held, 0);
    // Unbounded, this peaked at 1.7 GB RSS; the budget keeps it near 64 MB (+ GC slack, generous bound).
    assert.ok(rssPeak - rssBefore < 900 * 1024 * 1024, `RSS grew ${Math.round((rssPeak - rssBefore) / 2 ** 20)} MiB`);
  } finally {
    clearInterval(sampler);
    await fetcher.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
