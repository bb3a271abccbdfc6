import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { connect } from 'node:http2';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { extractCandidates, newExtractionCounts } from '../src/warc/extract.js';
import { openSource } from '../src/warc/open-source.js';
import { watMetadataRecord } from '../src/warc/wat-writer.js';
import { CoordinatorClient, isStatus } from '../src/worker/rpc.js';
import { registerRequest, startTestCoordinator, TEST_TOKEN } from './support/coordinator.js';
import { warcRecord } from './fixtures/hostile/warc.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The rest of the bad-input corpus. Each case names what must come out and the bound it must keep;
 * the classes that already held are here so that they keep holding.
 */

const PAGE = (i: number): Buffer => watMetadataRecord({ url: `http://site${i}.test/`, images: [{ src: `/img${i}.jpg`, alt: `picture number ${i}` }] });

async function extract(input: Readable): Promise<{ candidates: number; errors: string[]; malformed: number }> {
  const counts = newExtractionCounts();
  const errors: string[] = [];
  let candidates = 0;
  for await (const _ of extractCandidates(input, { minCaptionLength: 1, maxCaptionLength: 200 }, counts, (m) => errors.push(m))) candidates++;
  return { candidates, errors, malformed: counts.malformedRecords };
}

async function withFile<T>(bytes: Buffer, name: string, fn: (path: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'cah-corpus-'));
  try {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    return await fn(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('corpus/wat: truncated gzip → the complete records’ candidates and a source error, no throw past the reader', async () => {
  const whole = Buffer.concat([0, 1, 2].map((i) => gzipSync(PAGE(i))));
  const truncated = whole.subarray(0, whole.length - 40);
  const r = await withFile(truncated, 'cut.wat.gz', async (path) => {
    const input = await openSource(path);
    try {
      return await extract(input);
    } catch (err) {
      return { candidates: -1, errors: [(err as Error).message], malformed: 0 };
    }
  });
  // Expected: the first two pages (2 candidates) and a report; the stream error surfaces as an error, never a hang.
  assert.ok(r.candidates === 2 || (r.candidates === -1 && /unexpected end|truncated/i.test(r.errors.join(' '))), JSON.stringify(r));
});

test('corpus/wat: complete gzip members then garbage → every member’s candidates and a source error naming the garbage’s byte offset', async () => {
  // 3 members fit one zlib step; 3,000 span many, so some output was delivered before zlib failed.
  for (const n of [3, 3000]) {
    const members = Array.from({ length: n }, (_, i) => gzipSync(PAGE(i)));
    const good = Buffer.concat(members);
    const sourceErrors: string[] = [];
    const r = await withFile(Buffer.concat([good, Buffer.from('this is not gzip: a broken upload\n'.repeat(10))]), 'garbage.wat.gz', async (path) => {
      const counts = newExtractionCounts();
      const errors: string[] = [];
      let candidates = 0;
      const input = await openSource(path, { onError: (m) => sourceErrors.push(m) });
      for await (const _ of extractCandidates(input, { minCaptionLength: 1, maxCaptionLength: 200 }, counts, (m) => errors.push(m))) candidates++;
      return { candidates, records: counts.records, duplicates: counts.duplicates, errors };
    });
    // Exactly each member once: nothing lost at zlib's failing step, nothing delivered twice by the salvage.
    assert.deepEqual(r, { candidates: n, records: n, duplicates: 0, errors: [] });
    assert.equal(sourceErrors.length, 1, sourceErrors.join('; '));
    assert.match(sourceErrors[0]!, new RegExp(`garbage .* at byte offset ${good.length} .* ${n} complete gzip members`));
  }
});

test('corpus/wat: a .gz that is not gzip is read as plain text; invalid JSON and missing headers are counted and skipped', async () => {
  const plain = Buffer.concat([PAGE(1), warcRecord('{"Envelope":{"Payload-Metadata":{"HTTP-Response-Metadata":{"HTML-Metadata":{"Links":[{"path":"IMG@/src","url":"/x.jpg","alt":"cut here'), PAGE(2)]);
  const r1 = await withFile(plain, 'not-really.wat.gz', async (path) => extract(await openSource(path)));
  assert.equal(r1.candidates, 2);
  assert.equal(r1.malformed, 1);
  const noLength = Buffer.concat([Buffer.from('WARC/1.0\r\nWARC-Type: metadata\r\n\r\n{}\r\n\r\n'), PAGE(3)]);
  const r2 = await extract(Readable.from([noLength]));
  assert.equal(r2.candidates, 1);
  assert.ok(r2.errors.some((e) => /Content-Length/.test(e)), r2.errors.join('; '));
});

test('corpus/wat: a 100 MB line without end (generated) is skipped as garbage with bounded memory; the next record is read', async () => {
  const rssBefore = process.memoryUsage().rss;
  let peak = rssBefore;
  async function* hugeLine(): AsyncGenerator<Buffer> {
    yield Buffer.from('WARC/1.0\r\nWARC-Type: metadata\r\nX-Long: ');
    const mb = Buffer.alloc(1024 * 1024, 0x61);
    for (let i = 0; i < 100; i++) {
      peak = Math.max(peak, process.memoryUsage().rss);
      yield mb;
    }
    yield Buffer.from('\r\n\r\n');
    yield PAGE(7);
  }
  const r = await extract(Readable.from(hugeLine()));
  assert.equal(r.candidates, 1, 'the record after the line');
  assert.ok(r.errors.some((e) => /no end of header block|garbage/.test(e)), r.errors.join('; '));
  // Bound: the reader keeps at most its 256 KB header limit of the line, not 100 MB.
  assert.ok(peak - rssBefore < 200 * 1024 * 1024, `RSS grew ${Math.round((peak - rssBefore) / 2 ** 20)} MiB`);
});

test('corpus/wat: one page with 1,000,000 links and a few images yields its images, bounded', async () => {
  const links = [];
  for (let i = 0; i < 1_000_000; i++) links.push({ url: `/page/${i}`, path: 'A@/href' });
  const record = watMetadataRecord({ url: 'http://links.test/', images: [{ src: '/a.jpg', alt: 'image a' }, { src: '/b.jpg', alt: 'image b' }], links });
  links.length = 0;
  const r = await extract(Readable.from([record]));
  assert.equal(r.candidates, 2);
});

test('corpus/grpc: garbage protobuf and a wrong content-type are refused per call; the coordinator keeps serving', async () => {
  const c = await startTestCoordinator();
  const session = connect(`http://${c.address}`);
  try {
    for (const body of [randomBytes(64), Buffer.from([0, 0, 0, 0, 10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), Buffer.from([0, 0xff, 0xff, 0xff, 0xff])]) {
      const status = await new Promise<string>((resolve) => {
        const req = session.request({ ':method': 'POST', ':path': '/cah.v1.Coordinator/Register', 'content-type': 'application/grpc', te: 'trailers', 'x-cah-token': TEST_TOKEN });
        let grpcStatus = '';
        req.on('response', (headers) => (grpcStatus = String(headers['grpc-status'] ?? grpcStatus)));
        req.on('trailers', (trailers) => (grpcStatus = String(trailers['grpc-status'] ?? grpcStatus)));
        req.on('close', () => resolve(grpcStatus));
        req.on('error', () => resolve(grpcStatus || 'reset'));
        req.resume();
        req.end(body);
      });
      assert.notEqual(status, '0', `garbage must not succeed (${body.toString('hex').slice(0, 20)})`);
    }
    const client = new CoordinatorClient(c.address, TEST_TOKEN);
    try {
      const { actorId } = await client.register(registerRequest());
      assert.ok(actorId, 'still serving');
    } finally {
      client.close();
    }
  } finally {
    session.close();
    await c.close();
  }
});

test('corpus/grpc: stale and guessed fencing tokens and unknown shards get FAILED_PRECONDITION, never touch the lease', async () => {
  const c = await startTestCoordinator();
  const client = new CoordinatorClient(c.address, TEST_TOKEN);
  try {
    c.store.shards.add(['/data/lease.wat.gz']);
    const { actorId } = await client.register(registerRequest());
    const { shard } = await client.leaseShard({ actorId });
    const { shardId, fencingToken } = shard!;
    for (const guess of [fencingToken + 1, fencingToken - 1, 0, 2 ** 52]) {
      await assert.rejects(client.completeShard({ actorId, shardId, fencingToken: guess, samplesSent: 0, extraction: null, sourceErrors: [] }), (e) => isStatus(e, grpc.status.FAILED_PRECONDITION));
      await assert.rejects(client.failShard({ actorId, shardId, fencingToken: guess, error: 'x' }), (e) => isStatus(e, grpc.status.FAILED_PRECONDITION));
    }
    await assert.rejects(client.claimKeys({ actorId, shardId: shardId + 1000, fencingToken, keys: ['0123456789abcdef'] }), (e) => isStatus(e, grpc.status.FAILED_PRECONDITION));
    assert.equal(c.store.shards.get(shardId)!.state, 'leased', 'the real lease is untouched');
  } finally {
    client.close();
    await c.close();
  }
});

test('corpus/images: oversized, endless and slow bodies, redirect loops and odd Content-Length end as bounded per-sample failures', async () => {
  const { createServer } = await import('node:http');
  const { DEFAULT_FETCH_OPTIONS, ImageFetcher } = await import('../src/worker/fetcher.js');
  const timers = new Set<NodeJS.Timeout>();
  const server = createServer((req, res) => {
    if (req.url === '/declared-huge') return void res.writeHead(200, { 'content-length': String(10 ** 12) }).end();
    if (req.url === '/endless') {
      res.writeHead(200, { 'content-type': 'image/jpeg' });
      const chunk = Buffer.alloc(64 * 1024, 1);
      const pump = (): void => {
        while (res.write(chunk));
        res.once('drain', pump);
      };
      res.on('close', () => res.removeAllListeners('drain'));
      return pump();
    }
    if (req.url === '/slow') {
      res.writeHead(200, { 'content-type': 'image/jpeg' });
      const t = setInterval(() => res.write('x'), 200);
      timers.add(t);
      res.on('close', () => clearInterval(t));
      return;
    }
    if (req.url === '/loop') return void res.writeHead(302, { location: '/loop' }).end();
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}`;
  const fetcher = new ImageFetcher({ ...DEFAULT_FETCH_OPTIONS, allowLoopback: true, perHostRps: 1000, maxBytes: 1024 * 1024, totalTimeoutMs: 1500 });
  try {
    const cases: [string, RegExp][] = [
      ['/declared-huge', /response too large: 1000000000000 bytes/],
      ['/endless', /response too large: more than 1048576 bytes/],
      ['/slow', /timeout after 1500 ms/],
      ['/loop', /too many redirects/],
    ];
    for (const [path, expected] of cases) {
      const r = await fetcher.fetch(`${base}${path}`);
      assert.ok(!r.ok && expected.test(r.error), `${path}: ${r.ok ? 'ok' : r.error}`);
    }
  } finally {
    for (const t of timers) clearInterval(t);
    await fetcher.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
