import assert from 'node:assert/strict';
import { createReadStream, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createGunzip, gunzipSync } from 'node:zlib';
import type { Candidate } from '../src/warc/candidate.js';
import { DEFAULT_EXTRACT_OPTIONS, extractCandidates, newExtractionCounts, type ExtractionCounts } from '../src/warc/extract.js';
import { readWarcRecords, type WarcRecord } from '../src/warc/reader.js';
import { openSource } from '../src/warc/open-source.js';
import { syntheticPages } from '../src/warc/synthetic.js';
import { watMetadataRecord, writeWatFile, type WatPage } from '../src/warc/wat-writer.js';
import { sharedData } from './support/paths.js';

const dir = mkdtempSync(join(tmpdir(), 'cah-warc-roundtrip-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function extractFile(path: string, opts = DEFAULT_EXTRACT_OPTIONS): Promise<{ candidates: Candidate[]; counts: ExtractionCounts; errors: string[] }> {
  const counts = newExtractionCounts();
  const errors: string[] = [];
  const candidates: Candidate[] = [];
  for await (const c of extractCandidates(await openSource(path), opts, counts, (m) => errors.push(m))) candidates.push(c);
  return { candidates, counts, errors };
}

const LONG_ALT = 'word '.repeat(600);
const PAGES: WatPage[] = [
  {
    url: 'https://site.example/dir/page.html',
    title: 'A page',
    images: [
      { src: 'img/a.jpg', alt: 'A red bicycle' },
      { src: '/abs/b.png', alt: '  Multi   line\n\tcaption  ' },
      { src: 'data:image/gif;base64,R0lGODlhAQABAAAAACw=', alt: 'inline image' },
      { src: 'javascript:void(0)', alt: 'script link' },
      { src: 'c.jpg', alt: 'abc' },
      { src: 'd.jpg' },
      { src: 'e.jpg', alt: '' },
      { src: 'long.jpg', alt: LONG_ALT },
      { src: 'img/a.jpg', alt: 'A red bicycle' },
      { src: 'https://other.example/x.jpg#fragment', alt: 'Fragment image' },
      { src: 'amp.jpg?a=1&amp;b=2', alt: 'Tom &amp; Jerry' },
    ],
    links: [
      { url: '/about', text: 'About us' },
      { url: 'style.css', path: 'LINK@/href', rel: 'stylesheet' },
    ],
  },
  {
    url: 'http://licensed.example/gallery/',
    base: 'https://cdn.example/static/',
    images: [{ src: 'p.jpg', alt: 'Based image' }],
    links: [{ url: 'https://creativecommons.org/licenses/by-sa/4.0/', rel: 'license', text: 'CC BY-SA' }],
  },
  { url: 'https://nothing.example/', images: [], links: [{ url: '/x', text: 'x' }] },
  {
    url: 'https://site.example/other.html',
    images: [{ src: 'https://site.example/dir/img/a.jpg', alt: 'A red bicycle' }],
  },
];

test('writeWatFile → extractCandidates gives back exactly the pages’ images', async () => {
  for (const gzip of [false, true]) {
    const path = join(dir, gzip ? 'pages.wat.gz' : 'pages.wat');
    await writeWatFile(path, PAGES, { gzip });
    const { candidates, counts, errors } = await extractFile(path);
    assert.deepEqual(errors, []);
    assert.deepEqual(
      candidates.map((c) => [c.url, c.caption, c.pageUrl, c.license]),
      [
        ['https://site.example/dir/img/a.jpg', 'A red bicycle', 'https://site.example/dir/page.html', null],
        ['https://site.example/abs/b.png', 'Multi line caption', 'https://site.example/dir/page.html', null],
        ['https://site.example/dir/long.jpg', LONG_ALT.trim().slice(0, 2000), 'https://site.example/dir/page.html', null],
        ['https://other.example/x.jpg', 'Fragment image', 'https://site.example/dir/page.html', null],
        ['https://site.example/dir/amp.jpg?a=1&b=2', 'Tom & Jerry', 'https://site.example/dir/page.html', null],
        ['https://cdn.example/static/p.jpg', 'Based image', 'http://licensed.example/gallery/', 'https://creativecommons.org/licenses/by-sa/4.0/'],
      ],
      `gzip: ${gzip}`,
    );
    assert.equal(candidates[2]!.caption.length, 2000);
    assert.deepEqual(counts, {
      records: 5,
      pages: 4,
      candidates: 6,
      captionTooShort: 1,
      captionTruncated: 1,
      nonHttpUrls: 2,
      malformedRecords: 0,
      duplicates: 2,
    });
  }
});

test('gzip output is one member per record, each a whole WARC record, warcinfo first', async () => {
  const path = join(dir, 'members.wat.gz');
  await writeWatFile(path, PAGES, { gzip: true });
  const bytes = readFileSync(path);
  const members: number[] = [];
  for (let at = bytes.indexOf(Buffer.from([0x1f, 0x8b, 0x08])); at >= 0; at = bytes.indexOf(Buffer.from([0x1f, 0x8b, 0x08]), at + 3)) members.push(at);
  assert.equal(members.length, PAGES.length + 1);
  const first = gunzipSync(bytes.subarray(0, members[1])).toString('utf8');
  assert.match(first, /^WARC\/1\.0\r\nWARC-Type: warcinfo\r\n/);
  const second = gunzipSync(bytes.subarray(members[1], members[2])).toString('utf8');
  assert.match(second, /^WARC\/1\.0\r\nWARC-Type: metadata\r\nWARC-Target-URI: https:\/\/site\.example\/dir\/page\.html\r\n/);
  assert.ok(second.endsWith('}\r\n\r\n'));
});

test('a WAT record has the JSON shape of a real Common Crawl WAT record', async () => {
  const records = async (input: Readable): Promise<WarcRecord[]> => {
    const all: WarcRecord[] = [];
    for await (const r of readWarcRecords(input, () => {})) all.push(r);
    return all;
  };
  const real = (await records(await openSource(sharedData('warc', 'cc-main-2014-35_eugeneware_CC-MAIN-20140820021334-00006.warc.wat'))))
    .slice(1)
    .map((r) => JSON.parse(r.content.toString('utf8')) as Record<string, any>)
    .find((j) => j.Envelope['Payload-Metadata']['HTTP-Response-Metadata']?.['HTML-Metadata'])!;
  const ours = (await records(Readable.from([watMetadataRecord(PAGES[0]!)])))[0]!;
  assert.equal(Number(ours.headers['content-length']), ours.content.length);
  const json = JSON.parse(ours.content.toString('utf8')) as Record<string, any>;
  const keysOf = (o: Record<string, unknown>): string[] => Object.keys(o).sort();
  assert.deepEqual(keysOf(json), keysOf(real));
  assert.deepEqual(keysOf(json.Envelope), keysOf(real.Envelope));
  assert.deepEqual(keysOf(json.Container), keysOf(real.Container));
  const response = json.Envelope['Payload-Metadata']['HTTP-Response-Metadata'];
  const realResponse = real.Envelope['Payload-Metadata']['HTTP-Response-Metadata'];
  for (const key of ['Response-Message', 'Headers', 'HTML-Metadata']) assert.ok(key in response && key in realResponse, key);
  assert.equal(json.Envelope['Payload-Metadata']['Actual-Content-Type'], 'application/http; msgtype=response');
  assert.equal(json.Envelope['WARC-Header-Metadata']['WARC-Target-URI'], PAGES[0]!.url);
  assert.equal(json.Envelope['WARC-Header-Metadata']['WARC-Type'], 'response');
  const links = response['HTML-Metadata'].Links as Record<string, string>[];
  assert.deepEqual(links.find((l) => l.path === 'IMG@/src'), { alt: 'A red bicycle', path: 'IMG@/src', url: 'img/a.jpg' });
  assert.deepEqual(links.find((l) => l.path === 'A@/href'), { text: 'About us', path: 'A@/href', url: '/about' });
  assert.deepEqual(response['HTML-Metadata'].Head.Link, [{ rel: 'stylesheet', path: 'LINK@/href', url: 'style.css' }]);
  assert.equal(response['HTML-Metadata'].Head.Title, 'A page');
});

test('a WAT record with broken JSON is counted and reported; the records after it are still extracted', async () => {
  const before = watMetadataRecord({ url: 'https://before.example/', images: [{ src: 'a.jpg', alt: 'Before the break' }] });
  const cut = (() => {
    const json = JSON.stringify({
      Envelope: { 'Payload-Metadata': { 'HTTP-Response-Metadata': { 'HTML-Metadata': { Links: [{ path: 'IMG@/src', url: 'x.jpg', alt: 'Lost caption' }] } } } },
    });
    const body = json.slice(0, json.length - 10);
    return `WARC/1.0\r\nWARC-Type: metadata\r\nWARC-Target-URI: https://broken.example/\r\nContent-Length: ${body.length}\r\n\r\n${body}\r\n\r\n`;
  })();
  const corrupt = watMetadataRecord({ url: 'https://corrupt.example/', images: [{ src: 'b.jpg', alt: 'Corrupt link' }] })
    .toString('utf8')
    .replace('"alt":"Corrupt link"', '"alt":"Corrupt link"?');
  const fixedLength = corrupt.replace(/Content-Length: (\d+)/, (_, n: string) => `Content-Length: ${Number(n) + 1}`);
  const afterRecord = watMetadataRecord({ url: 'https://after.example/', images: [{ src: 'c.jpg', alt: 'After the break' }] });
  const path = join(dir, 'broken.wat');
  writeFileSync(path, Buffer.concat([before, Buffer.from(cut), Buffer.from(fixedLength), afterRecord]));
  const { candidates, counts, errors } = await extractFile(path);
  assert.deepEqual(candidates.map((c) => c.caption), ['Before the break', 'After the break']);
  assert.equal(counts.malformedRecords, 2);
  assert.equal(errors.length, 2);
  assert.match(errors[0]!, /malformed metadata record at offset \d+ \(https:\/\/broken\.example\/\)/);
  assert.match(errors[1]!, /malformed metadata record at offset \d+ \(https:\/\/corrupt\.example\/\)/);
});

/** The V8 collector, reachable without starting node with --expose-gc. */
function collector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

test('constant memory: a ~50 MB WAT.gz streams through extraction with live memory far below its decompressed size', async () => {
  const path = join(dir, 'big.wat.gz');
  await writeWatFile(path, syntheticPages(20_000, { seed: 7 }), { gzip: true, gzipLevel: 1 });
  const compressed = statSync(path).size;
  assert.ok(compressed > 40e6, `generated ${compressed} bytes`);
  let decompressed = 0;
  for await (const chunk of createReadStream(path).pipe(createGunzip())) decompressed += (chunk as Buffer).length;
  const gc = collector();
  const live = (): number => {
    gc();
    const usage = process.memoryUsage();
    return usage.heapUsed + usage.arrayBuffers;
  };
  const baseline = live();
  let peak = 0;
  let records = 0;
  const counts = newExtractionCounts();
  for await (const _candidate of extractCandidates(await openSource(path), DEFAULT_EXTRACT_OPTIONS, counts, () => {})) {
    if (counts.records - records >= 1000) {
      records = counts.records;
      peak = Math.max(peak, live() - baseline);
    }
  }
  assert.equal(counts.records, 20_001);
  assert.ok(counts.candidates > 10_000);
  assert.ok(decompressed > 100e6, `decompressed ${decompressed}`);
  assert.ok(peak < decompressed / 4, `live memory grew by ${(peak / 1e6).toFixed(1)} MB for ${(decompressed / 1e6).toFixed(0)} MB of WAT`);
});
