import { test } from 'node:test';
import assert from 'node:assert/strict';
import { watPageImages } from '../src/warc/wat-page.js';

const URI = 'http://example.com/page';

function record(links: string): Buffer {
  return Buffer.from(
    `{"Envelope":{"WARC-Header-Metadata":{"WARC-Target-URI":"${URI}"},"Payload-Metadata":{"HTTP-Response-Metadata":{"HTML-Metadata":{"Links":[${links}]}}}}}`,
  );
}

/** Hostile and ordinary shapes of a WAT record, each built from `n` repetitions. */
const SHAPES: { name: string; build: (n: number) => Buffer; images: (n: number) => number }[] = [
  {
    name: 'one link object with n repeated "path":"IMG@/src" keys',
    build: (n) => record(`{${'"path":"IMG@/src",'.repeat(n)}"url":"a.jpg","alt":"an image"}`),
    images: () => 1,
  },
  {
    name: 'n image paths and a single closing brace at the end',
    build: (n) => record(`{"url":"a.jpg","alt":"x",${'"path":"IMG@/src","u":"v",'.repeat(n)}"z":"y"}`),
    images: () => 1,
  },
  {
    name: 'n ordinary image links',
    build: (n) => record(Array.from({ length: n }, (_, i) => `{"path":"IMG@/src","url":"/i/${i}.jpg","alt":"picture ${i}"}`).join(',')),
    images: (n) => n,
  },
  {
    name: 'n anchors between image links',
    build: (n) => record(Array.from({ length: n }, (_, i) => (i % 8 === 0 ? `{"path":"IMG@/src","url":"/i/${i}.jpg","alt":"p ${i}"}` : `{"path":"A@/href","url":"/a/${i}","text":"link ${i}"}`)).join(',')),
    images: (n) => Math.ceil(n / 8),
  },
];

function cpuMs(fn: () => void): number {
  const start = process.cpuUsage();
  fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

/**
 * Linear time, checked by growing the input 8× and parsing it 8× less often: the same bytes in
 * total, so a linear parser spends about the same CPU time on both sides (a quadratic one 8× more).
 * Best of 3 rounds; the bound (3×) leaves room for a loaded machine.
 */
for (const shape of SHAPES) {
  test(`WAT page parsing is linear in the record's size: ${shape.name}`, () => {
    const n = 2000;
    const small = shape.build(n);
    const large = shape.build(8 * n);
    assert.equal(watPageImages(small, URI)!.images.length, shape.images(n));
    assert.equal(watPageImages(large, URI)!.images.length, shape.images(8 * n));
    let best = Infinity;
    for (let round = 0; round < 3 && best >= 3; round++) {
      const smallMs = cpuMs(() => {
        for (let i = 0; i < 8; i++) watPageImages(small, URI);
      });
      const largeMs = cpuMs(() => watPageImages(large, URI));
      best = Math.min(best, largeMs / Math.max(smallMs, 0.5));
    }
    assert.ok(best < 3, `parsing a record 8× larger took ${best.toFixed(1)}× the CPU time of 8 smaller ones (${large.length} bytes)`);
  });
}
