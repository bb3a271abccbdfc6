import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { candidateKey, type Candidate } from '../src/warc/candidate.js';
import { DEFAULT_EXTRACT_OPTIONS, extractCandidates, newExtractionCounts, type ExtractOptions, type ExtractionCounts } from '../src/warc/extract.js';
import { openSource } from '../src/warc/open-source.js';
import { sharedData } from './support/paths.js';

const EUGENEWARE_WAT = sharedData('warc', 'cc-main-2014-35_eugeneware_CC-MAIN-20140820021334-00006.warc.wat');
const EUGENEWARE_WARC = sharedData('warc', 'cc-main-2014-35_eugeneware_CC-MAIN-20140820021334-00006.warc');
const WHIRLWIND_WARC = sharedData('warc', 'cc-main-2024-22_whirlwind.warc.gz');
const WHIRLWIND_WAT = sharedData('warc', 'cc-main-2024-22_whirlwind.warc.wat.gz');
const DOLMA_WARC = sharedData('warc', 'dolma_wget_sample-0000.warc.gz');
const PHOTO_PAGE = 'http://0pointer.de/photos/?gallery=Australia&photo=496';

interface Extraction {
  candidates: Candidate[];
  counts: ExtractionCounts;
  errors: string[];
}

async function extract(input: string | Buffer, opts: Partial<ExtractOptions> = {}): Promise<Extraction> {
  const stream = typeof input === 'string' ? await openSource(input) : Readable.from([input]);
  const counts = newExtractionCounts();
  const errors: string[] = [];
  const candidates: Candidate[] = [];
  for await (const c of extractCandidates(stream, { ...DEFAULT_EXTRACT_OPTIONS, ...opts }, counts, (m) => errors.push(m))) candidates.push(c);
  return { candidates, counts, errors };
}

function warcRecord(type: string, uri: string, content: Buffer): Buffer {
  const head = `WARC/1.0\r\nWARC-Type: ${type}\r\nWARC-Target-URI: ${uri}\r\nContent-Length: ${content.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head), content, Buffer.from('\r\n\r\n')]);
}

function httpResponse(headers: Record<string, string>, body: Buffer): Buffer {
  const head = ['HTTP/1.1 200 OK', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)].join('\r\n');
  return Buffer.concat([Buffer.from(`${head}\r\n\r\n`, 'latin1'), body]);
}

function attribute(tag: string, name: string): string | undefined {
  const match = new RegExp(`\\s${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i').exec(tag);
  return match ? (match[1] ?? match[2] ?? match[3]) : undefined;
}

/** `<img>` tags with a non-empty alt in raw HTML (comments removed), by regexes independent of the extractor. */
function imgTagsWithAlt(html: string): { src: string; alt: string }[] {
  const found: { src: string; alt: string }[] = [];
  for (const [tag] of html.replace(/<!--[\s\S]*?-->/g, '').matchAll(/<img\b[^>]*>/gi)) {
    const alt = attribute(tag, 'alt');
    const src = attribute(tag, 'src');
    if (alt?.trim() && src) found.push({ src, alt });
  }
  return found;
}

/** Target URI and HTML of each response record, split by a regex (independent of the reader). */
function htmlResponses(warcText: string): { uri: string; html: string }[] {
  return warcText
    .split(/\r\nWARC\/1\.[01]\r\n/)
    .filter((part) => /^WARC-Type: response\r$/m.test(part) && /^Content-Type: text\/html/im.test(part))
    .map((part) => ({ uri: /^WARC-Target-URI: <?([^>\s]+)>?\r$/m.exec(part)![1]!, html: part }));
}

function decodeBasicEntities(text: string): string {
  return text
    .replace(/&#(\d+);/g, (_, n: string) => String.fromCodePoint(Number(n)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

test('eugeneware WAT: the photo page has exactly 4 IMG@/src links with alt; defaults drop "496" and "Next"', async () => {
  const all = await extract(EUGENEWARE_WAT, { minCaptionLength: 1 });
  assert.deepEqual(all.errors, []);
  const onPage = all.candidates.filter((c) => c.pageUrl === PHOTO_PAGE);
  assert.deepEqual(
    onPage.map((c) => [c.url, c.caption]),
    [
      ['http://0pointer.de/photos/galleries/Australia/lq/img-496.jpg', '496'],
      ['http://0pointer.de/photos/galleries/Australia/thumbs/img-495.jpg', 'Previous'],
      ['http://0pointer.de/photos/galleries/Australia/thumbs/img-497.jpg', 'Next'],
      ['http://creativecommons.org/images/public/somerights20.png', 'Creative Commons License'],
    ],
  );
  // The page links the CC BY-SA 3.0 license (a plain A@/href, recognised by its URL).
  assert.ok(onPage.every((c) => c.license === 'http://creativecommons.org/licenses/by-sa/3.0/'));
  assert.ok(onPage.every((c) => c.key === candidateKey(c.url, c.caption)));
  assert.equal(all.counts.captionTooShort, 0);

  const defaults = await extract(EUGENEWARE_WAT);
  assert.deepEqual(
    defaults.candidates.map((c) => c.caption),
    ['Previous', 'Creative Commons License'],
  );
  assert.equal(defaults.counts.captionTooShort, 2);
  assert.equal(defaults.counts.records, 9);
  assert.equal(defaults.counts.candidates, 2);
});

test('eugeneware WAT cut mid-record: the cut is reported through onError and the candidates before it still come out', async () => {
  const whole = readFileSync(EUGENEWARE_WAT);
  const { candidates, errors, counts } = await extract(whole.subarray(0, whole.length - 700), { minCaptionLength: 1 });
  assert.equal(candidates.length, 4);
  assert.equal(errors.length, 1);
  assert.match(errors[0]!, /truncated record/);
  assert.equal(counts.records, 8);
});

test('whirlwind WARC (per-record gzip members): the 7 images with alt of an.wikipedia.org/wiki/Escopete, entities decoded', async () => {
  const raw = gunzipSync(readFileSync(WHIRLWIND_WARC)).toString('utf8');
  const html = raw.slice(raw.indexOf('<!DOCTYPE html>'));
  const expected = imgTagsWithAlt(html);
  assert.equal(expected.length, 7, 'the page as the README describes it');
  const { candidates, counts, errors } = await extract(WHIRLWIND_WARC, { minCaptionLength: 1 });
  assert.deepEqual(errors, []);
  assert.equal(counts.pages, 1);
  assert.deepEqual(
    candidates.map((c) => [c.url, c.caption]),
    expected.map(({ src, alt }) => [new URL(decodeBasicEntities(src), 'https://an.wikipedia.org/wiki/Escopete').href, decodeBasicEntities(alt)]),
  );
  assert.ok(candidates.some((c) => c.caption === "Escudo d'armas"));
  assert.ok(candidates.every((c) => c.pageUrl === 'https://an.wikipedia.org/wiki/Escopete'));
  assert.ok(candidates.every((c) => c.license?.startsWith('https://creativecommons.org/licenses/by-sa/4.0/')));
});

test('whirlwind WAT: the request metadata holds no HTML page and gives nothing, without complaint', async () => {
  const { candidates, counts, errors } = await extract(WHIRLWIND_WAT);
  assert.deepEqual(errors, []);
  assert.equal(counts.records, 2);
  assert.equal(counts.pages, 0);
  assert.equal(candidates.length, 0);
});

test('eugeneware plain WARC: its HTML responses are parsed, every <img> with alt accounted for', async () => {
  const raw = readFileSync(EUGENEWARE_WARC).toString('latin1');
  const expectedTags = imgTagsWithAlt(raw).length;
  assert.equal(expectedTags, 861);
  const { candidates, counts, errors } = await extract(EUGENEWARE_WARC, { minCaptionLength: 1 });
  assert.deepEqual(errors, []);
  // 4 responses: three HTML pages and an empty, typeless 0-byte one from msn.com.
  assert.equal(counts.pages, 3);
  assert.equal(candidates.length + counts.duplicates + counts.captionTooShort + counts.nonHttpUrls, expectedTags);
  assert.equal(new Set(candidates.map((c) => c.pageUrl)).size, 3);
  // The 0x20.be page says Content-Encoding: gzip but the crawler stored it decoded: still read.
  assert.ok(candidates.some((c) => c.caption === 'Powered by MediaWiki'));
});

test('dolma wget WARC (gzip): candidates from its HTML responses, no errors', async () => {
  const expected = new Set<string>();
  for (const { uri, html } of htmlResponses(gunzipSync(readFileSync(DOLMA_WARC)).toString('utf8'))) {
    for (const { src, alt } of imgTagsWithAlt(html)) {
      const url = new URL(decodeBasicEntities(src).trim(), uri);
      url.hash = '';
      expected.add(`${url.href}\n${decodeBasicEntities(alt).replace(/\s+/g, ' ').trim()}`);
    }
  }
  const { candidates, counts, errors } = await extract(DOLMA_WARC, { minCaptionLength: 1 });
  assert.deepEqual(errors, []);
  assert.equal(counts.records, 48);
  assert.equal(counts.pages, 22);
  assert.ok(candidates.length > 0);
  assert.deepEqual(new Set(candidates.map((c) => `${c.url}\n${c.caption}`)), expected);
  assert.equal(new Set(candidates.map((c) => c.key)).size, candidates.length);
});

test('HTML responses: chunked transfer-encoding, gzip content-encoding, latin1 charset, <base href>, rel=license', async () => {
  const html = Buffer.from(
    '<html><head><base href="https://cdn.example.org/assets/"><link rel="license" href="https://creativecommons.org/licenses/by/4.0/"></head>' +
      '<body><img src="cat.jpg" alt="A  caf\xe9\n cat"><img src="/abs.png" alt="Absolute path"><img src="data:image/png;base64,AA" alt="inline data">' +
      '<img src="javascript:void(0)" alt="script url"><img src="x.png" alt=""><img alt="no src at all"><img src="cat.jpg" alt="A caf\xe9 cat"></body></html>',
    'latin1',
  );
  const gz = gzipSync(html);
  const chunks = Buffer.concat([
    Buffer.from(`${(100).toString(16)}\r\n`),
    gz.subarray(0, 100),
    Buffer.from(`\r\n${(gz.length - 100).toString(16)};ext=1\r\n`),
    gz.subarray(100),
    Buffer.from('\r\n0\r\n\r\n'),
  ]);
  const response = httpResponse(
    { 'Content-Type': 'text/html; charset=ISO-8859-1', 'Transfer-Encoding': 'chunked', 'Content-Encoding': 'gzip' },
    chunks,
  );
  const { candidates, counts, errors } = await extract(warcRecord('response', 'https://www.example.org/pets/index.html', response));
  assert.deepEqual(errors, []);
  assert.deepEqual(
    candidates.map((c) => [c.url, c.caption, c.license]),
    [
      ['https://cdn.example.org/assets/cat.jpg', 'A café cat', 'https://creativecommons.org/licenses/by/4.0/'],
      ['https://cdn.example.org/abs.png', 'Absolute path', 'https://creativecommons.org/licenses/by/4.0/'],
    ],
  );
  assert.equal(counts.nonHttpUrls, 2);
  assert.equal(counts.duplicates, 1);
  assert.equal(counts.pages, 1);
});

test('HTML: charset from <meta>, no license without a CC link, non-HTML and non-2xx responses skipped', async () => {
  const page = httpResponse(
    { 'Content-Type': 'text/html' },
    Buffer.from('<meta charset="windows-1252"><img src="a.jpg" alt="\x93quoted\x94 caption"><a rel="license" href="/terms">terms</a>', 'latin1'),
  );
  const image = httpResponse({ 'Content-Type': 'image/jpeg' }, Buffer.from('<img src="a.jpg" alt="not html">'));
  const notFound = Buffer.from('HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\n\r\n<img src="a.jpg" alt="error page">');
  // Stored de-chunked under the original header, as crawlers do: taken as it is.
  const dechunked = httpResponse({ 'Content-Type': 'text/html', 'Transfer-Encoding': 'chunked' }, Buffer.from('<img src="d.jpg" alt="Stored dechunked">'));
  const input = Buffer.concat([
    warcRecord('response', 'http://x.example/', page),
    warcRecord('response', 'http://x.example/d', dechunked),
    warcRecord('response', 'http://x.example/a.jpg', image),
    warcRecord('response', 'http://x.example/missing', notFound),
    warcRecord('request', 'http://x.example/', Buffer.from('GET / HTTP/1.1\r\n\r\n')),
  ]);
  const { candidates, counts, errors } = await extract(input);
  assert.deepEqual(errors, []);
  assert.deepEqual(candidates.map((c) => [c.url, c.caption, c.license]), [
    ['http://x.example/a.jpg', '\u201cquoted\u201d caption', null],
    ['http://x.example/d.jpg', 'Stored dechunked', null],
  ]);
  assert.equal(counts.records, 5);
  assert.equal(counts.pages, 2);
});

test('a broken response record is counted and reported with its URI, and the records after it still extracted', async () => {
  const good = httpResponse({ 'Content-Type': 'text/html' }, Buffer.from('<img src="b.jpg" alt="after the bad one">'));
  const input = Buffer.concat([
    warcRecord('response', 'http://bad.example/', Buffer.from('this is not an HTTP response at all')),
    warcRecord('response', 'http://good.example/', good),
  ]);
  const { candidates, counts, errors } = await extract(input);
  assert.equal(counts.malformedRecords, 1);
  assert.equal(errors.length, 1);
  assert.match(errors[0]!, /malformed response record at offset 0 \(http:\/\/bad\.example\/\)/);
  assert.deepEqual(candidates.map((c) => c.url), ['http://good.example/b.jpg']);
});

test('a fragment, even an empty one, is dropped from image URLs; whitespace runs in alt texts become one space', async () => {
  const links = [
    '{"path":"IMG@/src","url":"/a.jpg#","alt":"an image with an empty fragment"}',
    '{"path":"IMG@/src","url":"/b.jpg#top","alt":"an image\\twith  odd\\u00a0spacing"}',
  ].join(',');
  const json = `{"Envelope":{"WARC-Header-Metadata":{"WARC-Target-URI":"http://example.com/p"},"Payload-Metadata":{"HTTP-Response-Metadata":{"HTML-Metadata":{"Links":[${links}]}}}}}`;
  const { candidates } = await extract(warcRecord('metadata', 'http://example.com/p', Buffer.from(json)));
  assert.deepEqual(
    candidates.map((c) => [c.url, c.caption]),
    [
      ['http://example.com/a.jpg', 'an image with an empty fragment'],
      ['http://example.com/b.jpg', 'an image with odd spacing'],
    ],
  );
});
