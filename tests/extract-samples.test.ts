import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { extractCandidates, newExtractionCounts, DEFAULT_EXTRACT_OPTIONS, type ExtractOptions } from '../src/warc/extract.js';
import { openSource } from '../src/warc/open-source.js';
import type { Candidate } from '../src/warc/candidate.js';
import { runCli } from './support/cli.js';
import { sharedData } from './support/paths.js';

const WAT = sharedData('warc', 'cc-main-2014-35_eugeneware_CC-MAIN-20140820021334-00006.warc.wat');
const WHIRLWIND = sharedData('warc', 'cc-main-2024-22_whirlwind.warc.gz');
const DOLMA = sharedData('warc', 'dolma_wget_sample-0000.warc.gz');

async function extract(path: string, opts: ExtractOptions = DEFAULT_EXTRACT_OPTIONS) {
  const counts = newExtractionCounts();
  const errors: string[] = [];
  const out: Candidate[] = [];
  for await (const c of extractCandidates(await openSource(path), opts, counts, (m) => errors.push(m))) out.push(c);
  return { out, counts, errors };
}

test('eugeneware WAT: IMG@/src links with alt, short captions dropped and counted, license column', async () => {
  const all = await extract(WAT, { ...DEFAULT_EXTRACT_OPTIONS, minCaptionLength: 1 });
  const page = 'http://0pointer.de/photos/?gallery=Australia&photo=496';
  const onPage = all.out.filter((c) => c.pageUrl === page);
  assert.deepEqual(onPage.map((c) => c.caption).sort(), ['496', 'Creative Commons License', 'Next', 'Previous']);
  assert.ok(onPage.some((c) => c.url === 'http://0pointer.de/photos/galleries/Australia/lq/img-496.jpg' && c.caption === '496'));
  assert.ok(onPage.every((c) => c.license === 'http://creativecommons.org/licenses/by-sa/3.0/'), 'the page links a CC license');

  const defaults = await extract(WAT);
  assert.deepEqual(defaults.out.filter((c) => c.pageUrl === page).map((c) => c.caption).sort(), ['Creative Commons License', 'Previous']);
  assert.equal(defaults.counts.captionTooShort, 2);
});

test('a record cut off mid-body (the sample file cut 700 bytes short) is reported, not thrown', async () => {
  const bytes = readFileSync(WAT);
  const counts = newExtractionCounts();
  const errors: string[] = [];
  const out: Candidate[] = [];
  const cut = Readable.from([bytes.subarray(0, bytes.length - 700)]);
  for await (const c of extractCandidates(cut, { ...DEFAULT_EXTRACT_OPTIONS, minCaptionLength: 1 }, counts, (m) => errors.push(m))) out.push(c);
  assert.ok(errors.some((e) => /truncated/i.test(e)), `reported: ${errors.join('; ')}`);
  assert.ok(out.length >= 4, 'the records before it still come out');
});

test('whirlwind WARC: the images with non-empty alt of an.wikipedia.org/wiki/Escopete, entities decoded', async () => {
  const raw = gunzipSync(readFileSync(WHIRLWIND)).toString('utf8');
  // Independent count: <img> tags whose alt attribute is non-empty, by regex over the raw HTML.
  const expected = [...raw.matchAll(/<img\b[^>]*\balt="([^"]+)"/g)].map((m) => m[1]!);
  assert.equal(expected.length, 7);
  const { out } = await extract(WHIRLWIND, { ...DEFAULT_EXTRACT_OPTIONS, minCaptionLength: 1 });
  assert.equal(out.length, 7);
  assert.ok(out.every((c) => c.pageUrl.includes('an.wikipedia.org/wiki/Escopete')));
  assert.ok(out.some((c) => c.caption === "Escudo d'armas"), out.map((c) => c.caption).join(' | '));
  assert.ok(out.every((c) => c.url.startsWith('https://') || c.url.startsWith('http://')));
});

test('dolma wget WARC (gzip) and the plain eugeneware WARC extract without crashing', async () => {
  const dolma = await extract(DOLMA);
  assert.ok(dolma.out.length > 0);
  assert.ok(dolma.counts.pages >= 20, `pages ${dolma.counts.pages}`);
  const plainPath = sharedData('warc', 'cc-main-2014-35_eugeneware_CC-MAIN-20140820021334-00006.warc');
  const plain = await extract(plainPath, { ...DEFAULT_EXTRACT_OPTIONS, minCaptionLength: 1 });
  // Independent count: every <img ... alt="non-empty"> in the raw file.
  const imgTags = [...readFileSync(plainPath, 'latin1').matchAll(/<img\b[^>]*\balt\s*=\s*("[^"]+"|'[^']+')/gi)].length;
  assert.equal(plain.counts.candidates + plain.counts.duplicates, imgTags);
});

test('cah extract --json prints one object per line; a missing file is a one-line error', async () => {
  const res = await runCli(['extract', WAT, '--json', '--min-caption-length', '1']);
  assert.equal(res.code, 0, res.stderr);
  const lines = res.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(lines.length >= 4);
  assert.deepEqual(Object.keys(lines[0]!).sort(), ['caption', 'license', 'page_url', 'url']);
  const missing = await runCli(['extract', '/nonexistent/x.wat.gz']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^cah: cannot read \/nonexistent\/x\.wat\.gz/);
  assert.equal(missing.stderr.trim().split('\n').length, 1);
});
