import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { extractCandidates, newExtractionCounts } from '../src/warc/extract.js';
import { readWarcRecords } from '../src/warc/reader.js';
import { watPageImages } from '../src/warc/wat-page.js';
import { watMetadataRecord, type WatPage } from '../src/warc/wat-writer.js';
import { chunked } from './support/chunks.js';

/**
 * Property-based fuzzing (fast-check) of the WARC/WAT reader, the WAT page parser and the URL
 * resolver: 12,000 cases in all. Properties: no exception escapes (bad input is reported through
 * onError), everything terminates, every candidate is a fragment-free http(s) URL with a one-line caption.
 */

const SEED = 20261201;

async function readAll(chunks: Buffer[]): Promise<{ records: number; errors: number }> {
  let records = 0;
  let errors = 0;
  for await (const _ of readWarcRecords(Readable.from(chunks), () => errors++)) records++;
  return { records, errors };
}


const urlish = fc.oneof(
  fc.webUrl({ withFragments: true, withQueryParameters: true }),
  fc.string({ maxLength: 40 }),
  fc.constantFrom('//x.test/a.jpg', '../a.png', 'javascript:alert(1)', 'data:image/png;base64,AA', 'http://[::1', 'http://a b/c', ' http://x.test/\t', 'HTTP://X.TEST/%zz', '\u0000', 'http://user:pw@x.test/a.jpg#f'),
);
const page: fc.Arbitrary<WatPage> = fc.record({
  url: fc.oneof(fc.webUrl(), fc.constantFrom('http://x.test/', 'not a url', 'http://x.test/a\tb')),
  images: fc.array(fc.record({ src: urlish, alt: fc.option(fc.string({ maxLength: 60 }), { nil: undefined }) }), { maxLength: 6 }),
  base: fc.option(urlish, { nil: undefined }),
  links: fc.option(fc.array(fc.record({ url: urlish, rel: fc.constantFrom('license', 'nofollow') }), { maxLength: 2 }), { nil: undefined }),
});

test('fuzz: the WARC reader survives arbitrary bytes and mutated records in any chunking (4,000 cases)', async () => {
  const record = watMetadataRecord({ url: 'http://x.test/', images: [{ src: '/a.jpg', alt: 'an image' }] });
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a)),
        fc.tuple(fc.nat(record.length - 1), fc.uint8Array({ minLength: 1, maxLength: 8 }), fc.boolean()).map(([at, bytes, cut]) => {
          const mutated = Buffer.concat([record.subarray(0, at), Buffer.from(bytes), record.subarray(cut ? at + bytes.length : at)]);
          return Buffer.concat([mutated, record]);
        }),
      ),
      fc.array(fc.nat(4000), { maxLength: 5 }),
      async (bytes, cuts) => {
        const { records } = await readAll(chunked(bytes, cuts));
        assert.ok(records >= 0);
      },
    ),
    { numRuns: 4000, seed: SEED },
  );
});

test('fuzz: the WAT page parser fails only with a reported parse error, never crashes or hangs (4,000 cases)', () => {
  const prefix = Buffer.from('{"Envelope":{"Payload-Metadata":{"HTTP-Response-Metadata":{"HTML-Metadata":{"Head":{},"Links":[');
  fc.assert(
    fc.property(
      fc.oneof(
        fc.json().map((j) => Buffer.from(j)),
        fc.string({ maxLength: 300 }).map((s) => Buffer.concat([prefix, Buffer.from(s)])),
        fc.array(fc.record({ path: fc.constantFrom('IMG@/src', 'A@/href', 'IMG@/alt'), url: fc.string({ maxLength: 20 }), alt: fc.string({ maxLength: 20 }) }), { maxLength: 8 }).map((links) =>
          Buffer.concat([prefix, Buffer.from(links.map((l) => JSON.stringify(l)).join(',')), Buffer.from(']}}}}}')]),
        ),
      ),
      fc.option(fc.webUrl(), { nil: null }),
      (content, target) => {
        try {
          const result = watPageImages(content, target);
          if (result) for (const image of result.images) assert.equal(typeof image.src, 'string');
        } catch (err) {
          // Malformed JSON (SyntaxError) or a record without the expected layout (a plain Error naming it); a TypeError would be a crash.
          assert.ok(err instanceof SyntaxError || (err as Error).constructor === Error, `unexpected ${(err as Error).name}: ${(err as Error).message}`);
        }
      },
    ),
    { numRuns: 4000, seed: SEED },
  );
});

test('fuzz: the URL resolver yields only fragment-free http(s) URLs and one-line captions (4,000 cases)', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(page, { minLength: 1, maxLength: 3 }), async (pages) => {
      const counts = newExtractionCounts();
      const input = Readable.from([Buffer.concat(pages.map((p) => watMetadataRecord(p)))]);
      for await (const c of extractCandidates(input, { minCaptionLength: 1, maxCaptionLength: 50 }, counts, () => undefined)) {
        const url = new URL(c.url);
        assert.ok(url.protocol === 'http:' || url.protocol === 'https:', c.url);
        assert.equal(url.hash, '', c.url);
        assert.doesNotMatch(c.caption, /[\t\n\r]|^\s|\s$/, JSON.stringify(c.caption));
        assert.ok(c.caption.length <= 50);
      }
    }),
    { numRuns: 4000, seed: SEED },
  );
});

/** CPU milliseconds `fn` takes (this file runs in its own process: nothing else runs meanwhile). */
async function cpuMs(fn: () => Promise<void>): Promise<number> {
  const start = process.cpuUsage();
  await fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

/**
 * The reader is linear in its input: 4× the records read once cost about the CPU time of ¼ of them
 * read 4 times (same bytes in total; a quadratic reader would take 4× more). CPU time, best of 3
 * rounds, a 3× bound: robust on a loaded machine. The page parser's own check is warc-linear.test.
 */
test('fuzz: the WARC/WAT reader is linear in input size (4× the bytes cost what 4 passes over ¼ cost)', async () => {
  const images = (n: number): WatPage => ({ url: 'http://x.test/', images: Array.from({ length: n }, (_, i) => ({ src: `/i${i}.jpg`, alt: `image number ${i}` })) });
  const records = (n: number): Buffer => Buffer.concat(Array.from({ length: n }, () => watMetadataRecord(images(3))));
  const small = records(2_000);
  const large = records(8_000);
  const read = (b: Buffer): Promise<unknown> => readAll(chunked(b, Array.from({ length: 50 }, (_, k) => Math.floor((k * b.length) / 50))));
  let best = Infinity;
  for (let round = 0; round < 3 && best >= 3; round++) {
    const smallMs = await cpuMs(async () => {
      for (let i = 0; i < 4; i++) await read(small);
    });
    const largeMs = await cpuMs(async () => {
      await read(large);
    });
    best = Math.min(best, largeMs / Math.max(smallMs, 0.5));
  }
  assert.ok(best < 3, `reading 4× the records took ${best.toFixed(1)}× the CPU time of reading ¼ of them 4 times`);
});
