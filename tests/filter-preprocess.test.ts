import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { fromFloat16Bits, toFloat16Bits } from '../src/filter/float16.js';
import { CLIP_PREPROCESSING, parsePreprocessing, resizedSize } from '../src/filter/image-preprocess.js';
import { PreprocessPool } from '../src/filter/preprocess-pool.js';

const MEAN = [0.48145466, 0.4578275, 0.40821073];
const STD = [0.26862954, 0.26130258, 0.27577711];

/** Deterministic noise pixels, RGB row-major. */
function noise(width: number, height: number, seed: number): Buffer {
  const out = Buffer.alloc(width * height * 3);
  let s = seed;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** The reference: CLIP normalisation of a 224×224 window of raw RGB, planar, in plain arithmetic. */
function reference(rgb: Buffer, width: number, top: number, left: number): Float32Array {
  const out = new Float32Array(3 * 224 * 224);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < 224; y++) {
      for (let x = 0; x < 224; x++) {
        const v = rgb[((top + y) * width + left + x) * 3 + c]! / 255;
        out[c * 224 * 224 + y * 224 + x] = (v - MEAN[c]!) / STD[c]!;
      }
    }
  }
  return out;
}

const pools: PreprocessPool[] = [];
after(async () => {
  await Promise.all(pools.map((p) => p.close()));
});

function pool(dtype: 'float32' | 'float16', threads = 2): PreprocessPool {
  const p = new PreprocessPool({ preprocessing: CLIP_PREPROCESSING, dtype, threads });
  pools.push(p);
  return p;
}

test('preprocess: config parsing follows transformers (sizes as numbers or objects, resample codes)', () => {
  const p = parsePreprocessing({ size: 224, crop_size: 224, resample: 2, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5] });
  assert.deepEqual(p.resize, { shortestEdge: 224 });
  assert.deepEqual(p.crop, { width: 224, height: 224 });
  assert.equal(p.kernel, 'linear');
  assert.equal(p.width, 224);
  assert.deepEqual(p.mean, [0.5, 0.5, 0.5]);
  assert.equal(CLIP_PREPROCESSING.kernel, 'cubic');
  assert.ok(Math.abs(CLIP_PREPROCESSING.rescale - 1 / 255) < 1e-12);
  assert.throws(() => parsePreprocessing({ size: { shortest_edge: 224 }, do_center_crop: false }), /crop_size or an exact size/);
  assert.throws(() => parsePreprocessing({ crop_size: 224, image_mean: [1, 2] }), /image_mean must be three numbers/);
  // get_resize_output_image_size(default_to_square=False): the short side to 224, the long side floored.
  assert.deepEqual(resizedSize(CLIP_PREPROCESSING, 640, 480), { width: 298, height: 224 });
  assert.deepEqual(resizedSize(CLIP_PREPROCESSING, 256, 256), { width: 224, height: 224 });
  assert.deepEqual(resizedSize(CLIP_PREPROCESSING, 100, 333), { width: 224, height: 745 });
});

test('preprocess: lossless images where resizing is a no-op equal the plain normalisation, crop offsets included', async () => {
  const square = noise(224, 224, 1);
  const tall = noise(224, 300, 2);
  const wide = noise(301, 224, 3);
  const png = (raw: Buffer, width: number, height: number): Promise<Buffer> =>
    sharp(raw, { raw: { width, height, channels: 3 } }).png().toBuffer();
  const result = await pool('float32').run([await png(square, 224, 224), await png(tall, 224, 300), await png(wide, 301, 224)]);
  assert.deepEqual(result.errors, [null, null, null]);
  assert.equal(result.data.length, 3 * 3 * 224 * 224);
  const expected = [reference(square, 224, 0, 0), reference(tall, 224, 38, 0), reference(wide, 301, 0, 38)];
  expected.forEach((exp, i) => {
    let maxDiff = 0;
    for (let j = 0; j < exp.length; j++) maxDiff = Math.max(maxDiff, Math.abs(result.data[i * exp.length + j]! - exp[j]!));
    assert.ok(maxDiff < 1e-5, `image ${i}: max difference ${maxDiff}`);
  });
  result.release();
});

test('preprocess: alpha is dropped and grey images become three equal channels', async () => {
  const grey = await sharp(Buffer.alloc(224 * 224, 77), { raw: { width: 224, height: 224, channels: 1 } }).png().toBuffer();
  const rgba = await sharp({ create: { width: 224, height: 224, channels: 4, background: { r: 10, g: 200, b: 30, alpha: 0.5 } } }).png().toBuffer();
  const result = await pool('float32').run([grey, rgba]);
  assert.deepEqual(result.errors, [null, null]);
  const plane = 224 * 224;
  for (let c = 0; c < 3; c++) {
    assert.ok(Math.abs(result.data[c * plane + 1000]! - (77 / 255 - MEAN[c]!) / STD[c]!) < 1e-5, `grey channel ${c}`);
  }
  const img = 3 * plane;
  assert.ok(Math.abs(result.data[img + 5]! - (10 / 255 - MEAN[0]!) / STD[0]!) < 1e-5);
  assert.ok(Math.abs(result.data[img + plane + 5]! - (200 / 255 - MEAN[1]!) / STD[1]!) < 1e-5);
  result.release();
});

test('preprocess: undecodable images get an error and a zero slot; the others in the batch are unaffected', async () => {
  const good = await sharp({ create: { width: 256, height: 256, channels: 3, background: { r: 255, g: 0, b: 0 } } }).jpeg().toBuffer();
  const truncated = good.subarray(0, 40);
  const result = await pool('float32', 1).run([good, Buffer.from('not an image'), truncated, good]);
  assert.equal(result.errors[0], null);
  assert.match(result.errors[1]!, /unsupported image format/);
  assert.ok(result.errors[2], 'a truncated JPEG is reported');
  assert.equal(result.errors[3], null);
  const per = 3 * 224 * 224;
  assert.ok(result.data.subarray(per, 2 * per).every((v) => v === 0));
  assert.ok(Math.abs(result.data[3 * per]! - (result.data[0] as number)) < 1e-6);
  assert.ok(Math.abs(result.data[0]! - (1 - MEAN[0]!) / STD[0]!) < 0.05, 'red stays red through JPEG');
  result.release();
});

test('preprocess: float16 output is the rounded float32 normalisation', async () => {
  const raw = noise(224, 224, 9);
  const png = await sharp(raw, { raw: { width: 224, height: 224, channels: 3 } }).png().toBuffer();
  const result = await pool('float16').run([png]);
  assert.ok(result.data instanceof Uint16Array);
  const exp = reference(raw, 224, 0, 0);
  for (let j = 0; j < exp.length; j += 97) {
    assert.ok(Math.abs(fromFloat16Bits(result.data[j]!) - exp[j]!) < 2e-3, `element ${j}`);
  }
  result.release();
  assert.equal(toFloat16Bits(1), 0x3c00);
  assert.equal(toFloat16Bits(-2), 0xc000);
  assert.equal(toFloat16Bits(65504), 0x7bff);
  assert.equal(toFloat16Bits(1e6), 0x7c00);
  assert.equal(fromFloat16Bits(toFloat16Bits(0.1)), 0.0999755859375);
  assert.equal(fromFloat16Bits(toFloat16Bits(2 ** -24)), 2 ** -24);
});

test('preprocess: the pool keeps batches apart when several run at once, and reuses its buffers', async () => {
  const colours = [10, 60, 120, 180, 240];
  const jpegs = await Promise.all(
    colours.map((v) => sharp({ create: { width: 256, height: 256, channels: 3, background: { r: v, g: v, b: v } } }).png().toBuffer()),
  );
  const p = pool('float32', 2);
  const runs = await Promise.all([p.run(jpegs), p.run(jpegs.slice().reverse()), p.run(jpegs.slice(0, 2))]);
  const per = 3 * 224 * 224;
  const valueOf = (data: Float32Array | Uint16Array, i: number): number => Math.round(((data[i * per]! as number) * STD[0]! + MEAN[0]!) * 255);
  assert.deepEqual(colours.map((_, i) => valueOf(runs[0]!.data, i)), colours);
  assert.deepEqual(colours.map((_, i) => valueOf(runs[1]!.data, i)), colours.slice().reverse());
  assert.deepEqual([0, 1].map((i) => valueOf(runs[2]!.data, i)), colours.slice(0, 2));
  const firstBuffer = runs[0]!.data.buffer;
  for (const r of runs) r.release();
  const again = await p.run(jpegs);
  assert.equal(again.data.buffer, firstBuffer, 'a released buffer of the same size is reused');
  again.release();
});
