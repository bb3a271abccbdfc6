import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { DEMO_PALETTE } from '../src/model/palette.js';
import { CLIP_ARCHS, clipWeightSpecs, generateWeight, type ClipArch, type TowerArch } from '../src/model/clip-arch.js';
import { buildDemoModel, DEMO_MODEL, demoEmbeddingDim } from '../src/model/demo-model.js';
import { fromFloat16Bits } from '../src/filter/float16.js';
import { MODEL_FILES } from '../src/filter/model-dir.js';
import { ClipTokenizer } from '../src/filter/tokenizer.js';

/* A plain TypeScript CLIP forward pass (Hugging Face CLIPModel semantics), written out loop by loop. */

type Mat = Float32Array[];

function weights(arch: ClipArch, seed: number): (name: string) => Float32Array {
  const specs = new Map(clipWeightSpecs(arch).map((s) => [s.name, s]));
  return (name) => generateWeight(specs.get(name)!, seed);
}

/** x [n, in] · W [in, out] + b */
function linear(x: Mat, w: Float32Array, b: Float32Array | null, out: number): Mat {
  const inDim = x[0]!.length;
  return x.map((row) => {
    const y = new Float32Array(out);
    for (let o = 0; o < out; o++) {
      let s = b ? b[o]! : 0;
      for (let i = 0; i < inDim; i++) s += row[i]! * w[i * out + o]!;
      y[o] = s;
    }
    return y;
  });
}

function layerNorm(x: Mat, gamma: Float32Array, beta: Float32Array): Mat {
  return x.map((row) => {
    const mean = row.reduce((a, b) => a + b, 0) / row.length;
    const variance = row.reduce((a, b) => a + (b - mean) ** 2, 0) / row.length;
    return row.map((v, i) => ((v - mean) / Math.sqrt(variance + 1e-5)) * gamma[i]! + beta[i]!);
  });
}

function encoderLayer(x: Mat, w: (n: string) => Float32Array, p: string, t: TowerArch, causal: boolean): Mat {
  const W = t.width;
  const dh = W / t.heads;
  const h = layerNorm(x, w(`${p}.layer_norm1.weight`), w(`${p}.layer_norm1.bias`));
  const q = linear(h, w(`${p}.self_attn.q_proj.weight`), w(`${p}.self_attn.q_proj.bias`), W).map((r) => r.map((v) => v * dh ** -0.5));
  const k = linear(h, w(`${p}.self_attn.k_proj.weight`), w(`${p}.self_attn.k_proj.bias`), W);
  const v = linear(h, w(`${p}.self_attn.v_proj.weight`), w(`${p}.self_attn.v_proj.bias`), W);
  const S = x.length;
  const context: Mat = Array.from({ length: S }, () => new Float32Array(W));
  for (let head = 0; head < t.heads; head++) {
    for (let i = 0; i < S; i++) {
      const last = causal ? i : S - 1;
      const scores: number[] = [];
      for (let j = 0; j <= last; j++) {
        let s = 0;
        for (let d = 0; d < dh; d++) s += q[i]![head * dh + d]! * k[j]![head * dh + d]!;
        scores.push(s);
      }
      const max = Math.max(...scores);
      const exps = scores.map((s) => Math.exp(s - max));
      const total = exps.reduce((a, b) => a + b, 0);
      for (let j = 0; j <= last; j++) {
        for (let d = 0; d < dh; d++) context[i]![head * dh + d]! += (exps[j]! / total) * v[j]![head * dh + d]!;
      }
    }
  }
  const attended = linear(context, w(`${p}.self_attn.out_proj.weight`), w(`${p}.self_attn.out_proj.bias`), W).map((r, i) =>
    r.map((val, d) => val + x[i]![d]!),
  );
  const h2 = layerNorm(attended, w(`${p}.layer_norm2.weight`), w(`${p}.layer_norm2.bias`));
  const m = linear(h2, w(`${p}.mlp.fc1.weight`), w(`${p}.mlp.fc1.bias`), 4 * W).map((r) => r.map((val) => val / (1 + Math.exp(-1.702 * val))));
  return linear(m, w(`${p}.mlp.fc2.weight`), w(`${p}.mlp.fc2.bias`), W).map((r, i) => r.map((val, d) => val + attended[i]![d]!));
}

function visionForward(arch: ClipArch, w: (n: string) => Float32Array, pixels: Float32Array): Float32Array {
  const { width: W } = arch.vision;
  const P = arch.patchSize;
  const size = arch.imageSize;
  const grid = size / P;
  const conv = w('vision_model.embeddings.patch_embedding.weight');
  const tokens: Mat = [w('vision_model.embeddings.class_embedding')];
  for (let gy = 0; gy < grid; gy++) {
    for (let gx = 0; gx < grid; gx++) {
      const t = new Float32Array(W);
      for (let o = 0; o < W; o++) {
        let s = 0;
        for (let c = 0; c < 3; c++)
          for (let ky = 0; ky < P; ky++)
            for (let kx = 0; kx < P; kx++) s += conv[((o * 3 + c) * P + ky) * P + kx]! * pixels[(c * size + gy * P + ky) * size + gx * P + kx]!;
        t[o] = s;
      }
      tokens.push(t);
    }
  }
  const pos = w('vision_model.embeddings.position_embedding.weight');
  let x: Mat = tokens.map((t, i) => t.map((v, d) => v + pos[i * W + d]!));
  x = layerNorm(x, w('vision_model.pre_layrnorm.weight'), w('vision_model.pre_layrnorm.bias'));
  for (let l = 0; l < arch.vision.layers; l++) x = encoderLayer(x, w, `vision_model.encoder.layers.${l}`, arch.vision, false);
  const pooled = layerNorm([x[0]!], w('vision_model.post_layernorm.weight'), w('vision_model.post_layernorm.bias'));
  return linear(pooled, w('visual_projection.weight'), null, arch.embedDim)[0]!;
}

function textForward(arch: ClipArch, w: (n: string) => Float32Array, ids: number[]): Float32Array {
  const { width: W } = arch.text;
  const table = w('text_model.embeddings.token_embedding.weight');
  const pos = w('text_model.embeddings.position_embedding.weight');
  let x: Mat = ids.map((id, i) => Float32Array.from({ length: W }, (_, d) => table[id * W + d]! + pos[i * W + d]!));
  for (let l = 0; l < arch.text.layers; l++) x = encoderLayer(x, w, `text_model.encoder.layers.${l}`, arch.text, true);
  x = layerNorm(x, w('text_model.final_layer_norm.weight'), w('text_model.final_layer_norm.bias'));
  const eos = ids.indexOf(Math.max(...ids));
  return linear([x[eos]!], w('text_projection.weight'), null, arch.embedDim)[0]!;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

let dir = '';
const arch = CLIP_ARCHS['tiny']!;
const seed = 7;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cah-forward-'));
  const { buildRandomClip } = await import('../src/model/clip-arch.js');
  await buildRandomClip(join(dir, 'tiny'), arch, { precision: 'fp32', seed });
  await buildRandomClip(join(dir, 'tiny16'), arch, { precision: 'fp16', seed });
  await buildDemoModel(join(dir, 'demo'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function randomPixels(n: number, s: number): Float32Array {
  const out = new Float32Array(n * 3 * 224 * 224);
  let state = s;
  for (let i = 0; i < out.length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = (state / 2 ** 32) * 4 - 2;
  }
  return out;
}

test('forward: ONNX Runtime on the constructed CLIP graph equals the TypeScript reference to 1e-4 (vision and text)', async () => {
  const w = weights(arch, seed);
  const pixels = randomPixels(2, 3);
  const vision = await ort.InferenceSession.create(join(dir, 'tiny', MODEL_FILES.vision.fp32));
  const text = await ort.InferenceSession.create(join(dir, 'tiny', MODEL_FILES.text.fp32));
  try {
    const out = (await vision.run({ pixel_values: new ort.Tensor('float32', pixels, [2, 3, 224, 224]) }))['image_embeds']!;
    assert.deepEqual(out.dims, [2, arch.embedDim]);
    const per = 3 * 224 * 224;
    for (let i = 0; i < 2; i++) {
      const expected = visionForward(arch, w, pixels.subarray(i * per, (i + 1) * per));
      const got = (out.data as Float32Array).subarray(i * arch.embedDim, (i + 1) * arch.embedDim);
      assert.ok(Math.max(...expected.map(Math.abs)) > 1e-3, 'the reference output is not trivially zero');
      assert.ok(maxDiff(got, expected) < 1e-4, `image ${i}: max difference ${maxDiff(got, expected)}`);
    }

    const tokenizer = ClipTokenizer.fromFile(join(dir, 'tiny', MODEL_FILES.tokenizer));
    const captions = ['a photo of a cat', 'Ünïcödé 🙂 and a much longer caption with several words in it'];
    const batch = tokenizer.encodeBatch(captions);
    const tout = (await text.run({ input_ids: new ort.Tensor('int64', batch.inputIds, [2, 77]) }))['text_embeds']!;
    for (let i = 0; i < 2; i++) {
      const ids = Array.from(batch.inputIds.subarray(i * 77, (i + 1) * 77), Number);
      const expected = textForward(arch, w, ids);
      const got = (tout.data as Float32Array).subarray(i * arch.embedDim, (i + 1) * arch.embedDim);
      assert.ok(maxDiff(got, expected) < 1e-4, `caption ${i}: max difference ${maxDiff(got, expected)}`);
    }
    const differs = maxDiff((tout.data as Float32Array).subarray(0, arch.embedDim), (tout.data as Float32Array).subarray(arch.embedDim));
    assert.ok(differs > 1e-3, 'different captions give different embeddings');
  } finally {
    await vision.release();
    await text.release();
  }
});

test('forward: the float16 variant computes the same function within float16 precision', async () => {
  const half = Uint16Array.from(randomPixels(1, 11), toHalf);
  // Both variants see exactly the same input values.
  const pixels = Float32Array.from(half, fromFloat16Bits);
  const s32 = await ort.InferenceSession.create(join(dir, 'tiny', MODEL_FILES.vision.fp32));
  const s16 = await ort.InferenceSession.create(join(dir, 'tiny16', MODEL_FILES.vision.fp16));
  try {
    assert.equal(s16.inputMetadata[0]!.isTensor && s16.inputMetadata[0]!.type, 'float16');
    const full = (await s32.run({ pixel_values: new ort.Tensor('float32', pixels, [1, 3, 224, 224]) }))['image_embeds']!.data as Float32Array;
    const out16 = (await s16.run({ pixel_values: new ort.Tensor('float16', half, [1, 3, 224, 224]) }))['image_embeds']!;
    assert.equal(out16.type, 'float16');
    const got = Array.from(out16.data as Uint16Array, fromFloat16Bits);
    const scale = Math.max(...Array.from(full, Math.abs));
    assert.ok(maxDiff(got, full) < 0.02 * scale + 1e-3, `max difference ${maxDiff(got, full)} vs scale ${scale}`);
  } finally {
    await s32.release();
    await s16.release();
  }
});

function toHalf(v: number): number {
  // Independent of src/filter/float16.ts: via DataView's float32 bits, truncating to 10 mantissa bits is close enough here.
  const view = new DataView(new ArrayBuffer(4));
  view.setFloat32(0, v);
  const x = view.getUint32(0);
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  if (exp <= 0) return sign;
  return sign | (exp << 10) | ((x >>> 13) & 0x3ff);
}

/** The demo model in plain arithmetic: palette Gaussian shares, normalised, plus shared and own directions. */
function demoImageReference(pixels: Float32Array): Float32Array {
  const mean = [0.48145466, 0.4578275, 0.40821073];
  const std = [0.26862954, 0.26130258, 0.27577711];
  const K = DEMO_PALETTE.length;
  const share = new Float64Array(K);
  const plane = 224 * 224;
  for (let i = 0; i < plane; i++) {
    const rgb = [0, 1, 2].map((c) => pixels[c * plane + i]! * std[c]! + mean[c]!);
    DEMO_PALETTE.forEach((colour, k) => {
      const d = colour.rgb.reduce((s, v, c) => s + (rgb[c]! - v / 255) ** 2, 0);
      share[k]! += Math.exp(-d / DEMO_MODEL.sigmaSquared) / plane;
    });
  }
  const total = share.reduce((a, b) => a + b, 0);
  const out = new Float32Array(demoEmbeddingDim());
  for (let k = 0; k < K; k++) out[k] = (DEMO_MODEL.colourWeight * share[k]!) / (total + DEMO_MODEL.shareEpsilon);
  out[K] = DEMO_MODEL.sharedWeight;
  out[K + 1] = DEMO_MODEL.ownWeight;
  return out;
}

test('forward: the demo model equals its plain-arithmetic definition', async () => {
  const plane = 224 * 224;
  // Image 0: random; image 1: the left half green, the rest light grey (in normalised units).
  const pixels = new Float32Array(2 * 3 * plane);
  pixels.set(randomPixels(1, 5).map((v) => v / 2));
  const mean = [0.48145466, 0.4578275, 0.40821073];
  const std = [0.26862954, 0.26130258, 0.27577711];
  const green = DEMO_PALETTE.find((c) => c.name === 'green')!.rgb;
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) {
      const v = i % 224 < 112 ? green[c]! / 255 : 200 / 255;
      pixels[3 * plane + c * plane + i] = (v - mean[c]!) / std[c]!;
    }
  }
  const vision = await ort.InferenceSession.create(join(dir, 'demo', MODEL_FILES.vision.fp32));
  const text = await ort.InferenceSession.create(join(dir, 'demo', MODEL_FILES.text.fp32));
  try {
    const out = (await vision.run({ pixel_values: new ort.Tensor('float32', pixels, [2, 3, 224, 224]) }))['image_embeds']!.data as Float32Array;
    const D = demoEmbeddingDim();
    for (let i = 0; i < 2; i++) {
      const expected = demoImageReference(pixels.subarray(i * 3 * plane, (i + 1) * 3 * plane));
      assert.ok(maxDiff(out.subarray(i * D, (i + 1) * D), expected) < 1e-4, `image ${i}`);
    }
    const greenIndex = DEMO_PALETTE.findIndex((c) => c.name === 'green');
    assert.ok(out[D + greenIndex]! > 0.9 * DEMO_MODEL.colourWeight, 'the half-green image is green');

    const tokenizer = ClipTokenizer.fromFile(join(dir, 'demo', MODEL_FILES.tokenizer));
    // "coloured", "centred" and "evergreen" end in colour words but are not colour words.
    const batch = tokenizer.encodeBatch(['A GREEN square', 'a coloured shape, centred, evergreen greenish']);
    const t = (await text.run({ input_ids: new ort.Tensor('int64', batch.inputIds, [2, 77]) }))['text_embeds']!.data as Float32Array;
    const K = DEMO_PALETTE.length;
    const expectedGreen = new Float32Array(D);
    expectedGreen[greenIndex] = DEMO_MODEL.colourWeight;
    expectedGreen[K] = DEMO_MODEL.sharedWeight;
    expectedGreen[K + 2] = DEMO_MODEL.ownWeight;
    assert.ok(maxDiff(t.subarray(0, D), expectedGreen) < 1e-6);
    const expectedNone = expectedGreen.slice();
    expectedNone[greenIndex] = 0;
    assert.ok(maxDiff(t.subarray(D), expectedNone) < 1e-6);
  } finally {
    await vision.release();
    await text.release();
  }
});
