import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as grpc from '@grpc/grpc-js';
import { BulkFrameDecoder, BulkFrameError, CreditDecoder, MAX_BULK_METADATA_BYTES, MAX_BULK_SAMPLES, encodeBulkFrame, encodeCredits } from '../src/wire/bulk.js';
import type { WireSample } from '../src/wire/contract.js';
import { wireSample } from './support/coordinator.js';
import { chunked } from './support/chunks.js';

/** The bulk sample stream's framing (src/wire/bulk.ts): what the worker writes is what the coordinator reads, however the bytes are cut. */

const SEED = 20261202;


const sampleArb = fc.record({
  name: fc.string({ minLength: 1, maxLength: 12 }),
  caption: fc.string({ maxLength: 60 }),
  status: fc.constantFrom('success', 'failed_to_download', 'failed_to_resize'),
  jpeg: fc.uint8Array({ maxLength: 3000 }),
  width: fc.nat(4096),
});

function toWire(s: { name: string; caption: string; status: string; jpeg: Uint8Array; width: number }): WireSample {
  return wireSample(s.name, { caption: s.caption, status: s.status, jpeg: Buffer.from(s.jpeg), width: s.width });
}

test('bulk frames: every batch reads back field for field and byte for byte, whatever the chunking (2,000 cases)', () => {
  fc.assert(
    fc.property(fc.array(fc.array(sampleArb, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 4 }), fc.array(fc.nat(), { maxLength: 12 }), (batches, cuts) => {
      const wire = batches.map((b) => b.map(toWire));
      const bytes = Buffer.concat(wire.flatMap((batch) => encodeBulkFrame(batch)));
      const decoder = new BulkFrameDecoder();
      const read = chunked(bytes, cuts).flatMap((chunk) => decoder.push(chunk));
      assert.equal(decoder.atBoundary, true);
      assert.equal(read.length, wire.length);
      read.forEach((batch, i) => {
        assert.equal(batch.length, wire[i]!.length);
        batch.forEach((sample, j) => {
          const sent = wire[i]![j]!;
          assert.deepEqual({ ...sample, jpeg: null }, { ...sent, jpeg: null });
          assert.ok(Buffer.from(sample.jpeg).equals(sent.jpeg), 'image bytes');
        });
      });
    }),
    { seed: SEED, numRuns: 2000 },
  );
});

test('bulk frames: a body cut anywhere inside a frame is not at a boundary, and yields no partial batch', () => {
  const bytes = Buffer.concat(encodeBulkFrame([wireSample('a'), wireSample('b')]));
  for (let cut = 1; cut < bytes.length; cut++) {
    const decoder = new BulkFrameDecoder();
    assert.deepEqual(decoder.push(bytes.subarray(0, cut)), []);
    assert.equal(decoder.atBoundary, false, `cut at ${cut}`);
  }
});

function frameHead(metaLength: number, count: number): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(metaLength, 0);
  head.writeUInt32BE(count, 4);
  return head;
}

test('bulk frames: lengths past the bounds are refused from the frame head, before anything is buffered', () => {
  const refuses = (bytes: Buffer, status: grpc.status, pattern: RegExp, maxFrameBytes?: number): void => {
    assert.throws(
      () => new BulkFrameDecoder(maxFrameBytes).push(bytes),
      (err: unknown) => err instanceof BulkFrameError && err.status === status && pattern.test(err.message),
    );
  };
  refuses(frameHead(MAX_BULK_METADATA_BYTES + 1, 1), grpc.status.RESOURCE_EXHAUSTED, /metadata of \d+ bytes/);
  refuses(frameHead(10, MAX_BULK_SAMPLES + 1), grpc.status.RESOURCE_EXHAUSTED, /frame of \d+ samples/);
  // An image length is checked from its 4-byte prefix: 4 GiB is refused without waiting for it.
  const [head, meta] = encodeBulkFrame([wireSample('a')]);
  refuses(Buffer.concat([head!, meta!, Buffer.from([0xff, 0xff, 0xff, 0xff])]), grpc.status.RESOURCE_EXHAUSTED, /bytes of images/);
  // The images of one frame add up to the frame bound, as a gRPC message's size.
  const two = Buffer.concat(encodeBulkFrame([wireSample('a', { jpeg: Buffer.alloc(600) }), wireSample('b', { jpeg: Buffer.alloc(600) })]));
  refuses(two, grpc.status.RESOURCE_EXHAUSTED, /frame of more than 1000 bytes/, 1000);
  assert.equal(new BulkFrameDecoder(1200).push(two).length, 1, 'the same frame under a larger bound');
});

test('bulk frames: a frame of no samples is refused (it would cost a decode and need no credit)', () => {
  assert.throws(() => new BulkFrameDecoder().push(Buffer.concat(encodeBulkFrame([]))), (err: unknown) => err instanceof BulkFrameError && /0 samples/.test(err.message));
});

/** CPU milliseconds to decode a frame whose metadata holds a caption of `bytes` bytes, delivered one byte per chunk (1-byte DATA frames). */
function byteByByteMs(bytes: number): number {
  const body = Buffer.concat(encodeBulkFrame([wireSample('slow', { caption: 'c'.repeat(bytes) })]));
  const decoder = new BulkFrameDecoder();
  const start = process.cpuUsage();
  let read = 0;
  for (let i = 0; i < body.length; i++) read += decoder.push(body.subarray(i, i + 1)).length;
  const used = process.cpuUsage(start);
  assert.equal(read, 1);
  return (used.user + used.system) / 1000;
}

test('bulk frames: a frame sent one byte per DATA frame is decoded in linear time (4x the input, well under 10x the time)', () => {
  // The frame head was once read through Buffer.concat of every buffered chunk while the metadata
  // arrived: 20,000 1-byte frames blocked the event loop for 8 s, 40,000 for 33 s.
  byteByByteMs(4000);
  const small = Math.max(1, byteByByteMs(40_000));
  const large = byteByByteMs(160_000);
  assert.ok(large < 10 * small, `4x the bytes took ${(large / small).toFixed(1)}x the CPU (${small.toFixed(0)} → ${large.toFixed(0)} ms)`);
});

test('bulk frames: an image arriving one byte per chunk is held in blocks, not as a Buffer object per byte', () => {
  const [head, meta] = encodeBulkFrame([wireSample('slow')]);
  const decoder = new BulkFrameDecoder();
  decoder.push(Buffer.concat([head!, meta!, Buffer.from([0, 1, 0, 0])]));
  for (let i = 0; i < 60_000; i++) decoder.push(Buffer.from([i & 0xff]));
  const held = (decoder as unknown as { chunks: Buffer[]; head: number }).chunks.length - (decoder as unknown as { head: number }).head;
  assert.ok(held <= 2, `60,000 bytes of a 64 KiB image are held in ${held} buffers`);
  assert.equal(decoder.pendingBytes, 4 + 60_000, "the image so far and its length prefix");
});

test('bulk frames: metadata that does not decode, or that holds another count of samples, is refused', () => {
  const garbage = Buffer.from([0x22, 0xff, 0xff, 0xff, 0x0f, 1, 2]);
  assert.throws(() => new BulkFrameDecoder().push(Buffer.concat([frameHead(garbage.length, 1), garbage])), (err: unknown) => err instanceof BulkFrameError && /does not decode/.test(err.message));
  const [, meta] = encodeBulkFrame([wireSample('a'), wireSample('b')]);
  assert.throws(
    () => new BulkFrameDecoder().push(Buffer.concat([frameHead(meta!.length, 3), meta!])),
    (err: unknown) => err instanceof BulkFrameError && /declares 3 samples and its metadata holds 2/.test(err.message),
  );
});

test('bulk frames: the images are written from the sender’s own buffers, not copies', () => {
  const jpeg = Buffer.alloc(5000, 3);
  const buffers = encodeBulkFrame([wireSample('a', { jpeg })]);
  assert.ok(buffers.includes(jpeg));
});

test('credit grants read back across any chunking', () => {
  const grants = [1, 8, 512, 2 ** 31, 7];
  const bytes = Buffer.concat(grants.map(encodeCredits));
  for (let cut = 0; cut <= bytes.length; cut++) {
    const decoder = new CreditDecoder();
    assert.deepEqual([...decoder.push(bytes.subarray(0, cut)), ...decoder.push(bytes.subarray(cut))], grants);
  }
});
