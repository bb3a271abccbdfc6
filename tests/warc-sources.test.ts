import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { ExtractError, runExtract } from '../src/warc/extract-command.js';
import { DEFAULT_EXTRACT_OPTIONS } from '../src/warc/extract.js';
import { openSource } from '../src/warc/open-source.js';
import { expandShardSources, ShardSourceError } from '../src/warc/shard-sources.js';
import { sharedData } from './support/paths.js';
import { sourceGuard } from '../src/worker/ssrf.js';

/** The test server listens on loopback: these tests opt in, as `--allow-loopback` does. */
const LOOPBACK = sourceGuard({ allowLoopback: true });

const dir = mkdtempSync(join(tmpdir(), 'cah-warc-sources-'));
const LISTED = Array.from({ length: 5 }, (_, i) => `crawl-data/CC-MAIN-2024-22/segments/1715971057216.39/wat/CC-MAIN-2024-0000${i}.warc.wat.gz`);
const EUGENEWARE_WAT = sharedData('warc', 'cc-main-2014-35_eugeneware_CC-MAIN-20140820021334-00006.warc.wat');
let server: Server;
let base = '';
const savedBase = process.env['CAH_COMMONCRAWL_BASE'];

before(async () => {
  const listing = gzipSync(LISTED.join('\n') + '\n');
  const members = Buffer.concat(['WARC/1.0\r\nWARC-Type: a\r\nContent-Length: 1\r\n\r\nx\r\n\r\n', 'WARC/1.0\r\nWARC-Type: b\r\nContent-Length: 2\r\n\r\nyz\r\n\r\n'].map((r) => gzipSync(r)));
  server = createServer((req, res) => {
    if (req.url === '/crawl-data/CC-MAIN-2024-22/wat.paths.gz') {
      res.end(listing);
    } else if (req.url === '/records.bin') {
      res.write(members.subarray(0, 10));
      setTimeout(() => res.end(members.subarray(10)), 20);
    } else if (req.url === '/moved.wat.gz') {
      res.writeHead(302, { location: '/records.bin' }).end();
    } else {
      res.writeHead(404).end('not here');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  if (savedBase === undefined) delete process.env['CAH_COMMONCRAWL_BASE'];
  else process.env['CAH_COMMONCRAWL_BASE'] = savedBase;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

async function readAll(source: string): Promise<string> {
  let text = '';
  for await (const chunk of await openSource(source, { guard: LOOPBACK })) text += (chunk as Buffer).toString('utf8');
  return text;
}

test('a local *.paths.gz listing expands to Common Crawl URLs, capped by limit', async () => {
  delete process.env['CAH_COMMONCRAWL_BASE'];
  const path = join(dir, 'wat.paths.gz');
  writeFileSync(path, gzipSync(LISTED.join('\r\n') + '\r\n'));
  assert.deepEqual(await expandShardSources(path, { limit: 3 }), LISTED.slice(0, 3).map((p) => `https://data.commoncrawl.org/${p}`));
  assert.equal((await expandShardSources(path)).length, 5);
});

test('a crawl id expands through <base>/crawl-data/<id>/wat.paths.gz (CAH_COMMONCRAWL_BASE on loopback)', async () => {
  process.env['CAH_COMMONCRAWL_BASE'] = `${base}/`;
  assert.deepEqual(await expandShardSources('CC-MAIN-2024-22', { limit: 2, guard: LOOPBACK }), LISTED.slice(0, 2).map((p) => `${base}/${p}`));
  assert.deepEqual(await expandShardSources(`${base}/crawl-data/CC-MAIN-2024-22/wat.paths.gz`, { guard: LOOPBACK }), LISTED.map((p) => `${base}/${p}`));
  await assert.rejects(expandShardSources('CC-MAIN-1999-01', { guard: LOOPBACK }), (err: unknown) => err instanceof ShardSourceError && /HTTP 404/.test(err.message));
});

test('single shards: a local file becomes its absolute path, a URL stays as it is', async () => {
  const local = join(dir, 'one.warc.wat');
  copyFileSync(EUGENEWARE_WAT, local);
  assert.deepEqual(await expandShardSources(local), [local]);
  const url = 'https://data.commoncrawl.org/crawl-data/x/CC-MAIN-1.warc.wat.gz';
  assert.deepEqual(await expandShardSources(url, { limit: 1 }), [url]);
});

test('unknown shapes and missing files are ShardSourceErrors saying what is accepted', async () => {
  for (const source of ['notes.txt', 'CC-MAIN-24', 'ftp://host/file.wat.gz', `${base}/index.html`]) {
    await assert.rejects(expandShardSources(source), (err: unknown) => err instanceof ShardSourceError && /expected .*paths\.gz.*CC-MAIN-2024-22/.test(err.message), source);
  }
  await assert.rejects(expandShardSources(join(dir, 'missing.wat.gz')), (err: unknown) => err instanceof ShardSourceError && /no such file/.test(err.message));
});

test('openSource: gzip recognised by its magic bytes, not its name; multi-member gzip read to the end', async () => {
  const members = ['first member\n', 'second member\n', 'third member\n'].map((t) => gzipSync(t));
  const misnamed = join(dir, 'members.txt');
  writeFileSync(misnamed, Buffer.concat(members));
  assert.equal(await readAll(misnamed), 'first member\nsecond member\nthird member\n');
  const plainButGz = join(dir, 'plain.wat.gz');
  writeFileSync(plainButGz, 'not compressed');
  assert.equal(await readAll(plainButGz), 'not compressed');
  const empty = join(dir, 'empty.wat');
  writeFileSync(empty, '');
  assert.equal(await readAll(empty), '');
});

test('openSource over HTTP: streamed, gunzipped, redirects followed, non-2xx is an error naming the status', async () => {
  assert.equal(await readAll(`${base}/records.bin`), 'WARC/1.0\r\nWARC-Type: a\r\nContent-Length: 1\r\n\r\nx\r\n\r\nWARC/1.0\r\nWARC-Type: b\r\nContent-Length: 2\r\n\r\nyz\r\n\r\n');
  assert.match(await readAll(`${base}/moved.wat.gz`), /WARC-Type: b/);
  await assert.rejects(openSource(`${base}/nope.wat.gz`, { guard: LOOPBACK }), /HTTP 404/);
  await assert.rejects(openSource(join(dir, 'nowhere.wat')), /no such file: .*nowhere\.wat/);
});

function sink(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const parts: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => parts.push(chunk));
  return { stream, text: () => Buffer.concat(parts).toString('utf8') };
}

test('runExtract: JSON lines or tab-separated candidates on out, a one-line summary on err', async () => {
  const json = sink();
  const err = sink();
  const counts = await runExtract(EUGENEWARE_WAT, { ...DEFAULT_EXTRACT_OPTIONS, minCaptionLength: 1, json: true }, json.stream, err.stream);
  const lines = json.text().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.length, 4);
  assert.deepEqual(lines[0], {
    url: 'http://0pointer.de/photos/galleries/Australia/lq/img-496.jpg',
    caption: '496',
    page_url: 'http://0pointer.de/photos/?gallery=Australia&photo=496',
    license: 'http://creativecommons.org/licenses/by-sa/3.0/',
  });
  assert.equal(counts.candidates, 4);
  assert.match(err.text(), /^4 candidates from 1 pages in 9 records; .*\n$/);

  const tsv = sink();
  await runExtract(EUGENEWARE_WAT, { ...DEFAULT_EXTRACT_OPTIONS, json: false }, tsv.stream, sink().stream);
  assert.deepEqual(tsv.text().trim().split('\n').map((l) => l.split('\t')), [
    ['http://0pointer.de/photos/galleries/Australia/thumbs/img-495.jpg', 'Previous', 'http://0pointer.de/photos/?gallery=Australia&photo=496', 'http://creativecommons.org/licenses/by-sa/3.0/'],
    ['http://creativecommons.org/images/public/somerights20.png', 'Creative Commons License', 'http://0pointer.de/photos/?gallery=Australia&photo=496', 'http://creativecommons.org/licenses/by-sa/3.0/'],
  ]);

  await assert.rejects(
    runExtract(join(dir, 'absent.wat.gz'), { ...DEFAULT_EXTRACT_OPTIONS, json: true }, sink().stream, sink().stream),
    (e: unknown) => e instanceof ExtractError && e.code === 'CAH_EXTRACT_UNREADABLE' && /cannot read .*absent\.wat\.gz: no such file/.test(e.message),
  );
  const notWarc = join(dir, 'notes.wat.gz');
  writeFileSync(notWarc, gzipSync('just some text\nthat is not a WARC file\n'));
  const warnings = sink();
  await assert.rejects(
    runExtract(notWarc, { ...DEFAULT_EXTRACT_OPTIONS, json: true }, sink().stream, warnings.stream),
    (e: unknown) => e instanceof ExtractError && e.code === 'CAH_EXTRACT_EMPTY' && /no WARC records in .*notes\.wat\.gz: is it a WARC\/WAT file\?/.test(e.message),
  );
  assert.match(warnings.text(), /skipped \d+ bytes of garbage/);
});
