import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { cudaProviderInstalled } from '../src/filter/sessions.js';
import sharp from 'sharp';
import { DEMO_PALETTE, DEMO_SHAPES, type PaletteColour } from '../src/model/palette.js';
import { buildRandomClip, CLIP_ARCHS } from '../src/model/clip-arch.js';
import { ClipFilter } from '../src/filter/clip-filter.js';
import { buildDemoModel, demoEmbeddingDim } from '../src/model/demo-model.js';
import { GREEN, writeGreennessScorer } from './support/scorer-head.js';
import { FilterStage } from '../src/filter/stage.js';

let dir = '';
let demoDir = '';
const filters: ClipFilter[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cah-clip-'));
  demoDir = join(dir, 'demo');
  const started = Date.now();
  await buildDemoModel(demoDir);
  const ms = Date.now() - started;
  assert.ok(ms < 2000, `buildDemoModel took ${ms} ms`);
});
after(async () => {
  await Promise.all(filters.map((f) => f.close()));
  await rm(dir, { recursive: true, force: true });
});

async function open(opts: Partial<Parameters<typeof ClipFilter.create>[0]> = {}): Promise<{ filter: ClipFilter; logs: string[] }> {
  const logs: string[] = [];
  const filter = await ClipFilter.create({
    modelDir: demoDir,
    threshold: 0.28,
    executionProvider: 'cpu',
    preprocessThreads: 2,
    log: (m) => logs.push(m),
    ...opts,
  });
  filters.push(filter);
  return { filter, logs };
}

/** Like the demo web: a palette shape on light grey or white, of varied size and place. */
function shapeSvg(shape: string, colour: PaletteColour, v: { width: number; height: number; background: string; dx: number; dy: number; scale: number }): Buffer {
  const fill = `rgb(${colour.rgb.join(',')})`;
  const s = Math.min(v.width, v.height) * v.scale;
  const cx = v.width / 2 + v.dx * (v.width - s) * 0.5;
  const cy = v.height / 2 + v.dy * (v.height - s) * 0.5;
  const body =
    shape === 'square'
      ? `<rect x="${cx - s / 2}" y="${cy - s / 2}" width="${s}" height="${s}" fill="${fill}"/>`
      : shape === 'circle'
        ? `<circle cx="${cx}" cy="${cy}" r="${s / 2}" fill="${fill}"/>`
        : `<polygon points="${cx},${cy - s / 2} ${cx + s / 2},${cy + s / 2} ${cx - s / 2},${cy + s / 2}" fill="${fill}"/>`;
  return Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${v.width}" height="${v.height}"><rect width="100%" height="100%" fill="${v.background}"/>${body}</svg>`,
  );
}

/** The worker's way: JPEG from the site, then resized into 256×256 with black border bars, JPEG again. */
async function demoJpeg(shape: string, colour: PaletteColour, variant: number): Promise<Buffer> {
  const variants = [
    { width: 400, height: 300, background: 'rgb(200,200,200)', dx: 0, dy: 0, scale: 0.8, quality: 80 },
    { width: 300, height: 500, background: 'white', dx: 0.8, dy: -0.7, scale: 0.75, quality: 60 },
    { width: 256, height: 256, background: 'rgb(210,210,210)', dx: -0.9, dy: 0.9, scale: 0.7, quality: 40 },
  ];
  const v = variants[variant % variants.length]!;
  const site = await sharp(shapeSvg(shape, colour, v)).jpeg({ quality: v.quality }).toBuffer();
  return sharp(site)
    .resize(256, 256, { fit: 'contain', background: { r: 0, g: 0, b: 0 } })
    .jpeg({ quality: 90 })
    .toBuffer();
}

const captionFor = (colour: string, shape: string, style: number): string =>
  [`a photo of a ${colour} ${shape}`, `a ${colour} ${shape} on a grey background`, `${colour.toUpperCase()} ${shape}!`, `small ${colour} ${shape}, centred`][style % 4]!;

test('demo model: over every palette colour × shape × placement, matched captions score above 0.28 and mismatched below', async () => {
  const { filter } = await open();
  const images: { key: string; jpeg: Buffer; colour: string; shape: string; variant: number }[] = [];
  for (const colour of DEMO_PALETTE) {
    for (const shape of DEMO_SHAPES) {
      for (let variant = 0; variant < 3; variant++) {
        images.push({ key: `${colour.name}-${shape}-${variant}`, jpeg: await demoJpeg(shape, colour, variant), colour: colour.name, shape, variant });
      }
    }
  }
  // The filter's verdicts on the matched pairs…
  const verdicts = await filter.score(images.map((im) => ({ key: im.key, jpeg: im.jpeg, caption: captionFor(im.colour, im.shape, im.variant) })));
  verdicts.forEach((v, i) => assert.equal(v.keep, true, `${images[i]!.key}: ${v.reason}`));
  const matched = verdicts.map((v) => v.similarity!);
  // …and every image against a caption of each other palette colour (same cosine, from the embeddings).
  const { embeddings } = await filter.embedImages(images.map((im) => im.jpeg));
  const captions = DEMO_PALETTE.flatMap((c) => DEMO_SHAPES.map((s, i) => ({ colour: c.name, shape: s, text: captionFor(c.name, s, i + 1) })));
  const texts = await filter.embedTexts(captions.map((c) => c.text));
  const D = filter.embeddingDim;
  const mismatched: number[] = [];
  images.forEach((im, i) => {
    captions.forEach((c, j) => {
      if (c.colour === im.colour || c.shape !== im.shape) return;
      let dot = 0;
      for (let d = 0; d < D; d++) dot += embeddings[i * D + d]! * texts[j * D + d]!;
      mismatched.push(dot);
    });
  });
  assert.equal(matched.length, 6 * 3 * 3);
  assert.equal(mismatched.length, 6 * 3 * 3 * 5);
  assert.ok(Math.min(...matched) > 0.4, `weakest matched pair ${Math.min(...matched)}`);
  assert.ok(Math.max(...mismatched) < 0.18, `strongest mismatched pair ${Math.max(...mismatched)}`);
});

test('clip filter: kept pairs carry normalised embeddings; rejected ones a reason; bad images do not stop the batch', async () => {
  const { filter, logs } = await open();
  assert.equal(filter.provider, 'CPU');
  assert.equal(filter.embeddingDim, demoEmbeddingDim());
  assert.ok(logs.some((l) => /DEMO model/.test(l) && /execution provider CPU/.test(l)), logs.join('\n'));
  const red = DEMO_PALETTE[0]!;
  const jpeg = await demoJpeg('circle', red, 0);
  const verdicts = await filter.score([
    { key: 'a', jpeg, caption: 'a red circle' },
    { key: 'b', jpeg: Buffer.from('garbage'), caption: 'a red circle' },
    { key: 'c', jpeg, caption: 'a blue circle' },
  ]);
  const [kept, broken, rejected] = verdicts as [(typeof verdicts)[0], (typeof verdicts)[0], (typeof verdicts)[0]];
  assert.equal(kept.keep, true);
  assert.equal(kept.reason, undefined);
  for (const e of [kept.imageEmbedding!, kept.textEmbedding!]) {
    assert.equal(e.length, filter.embeddingDim);
    assert.ok(Math.abs(Math.hypot(...e) - 1) < 1e-5);
  }
  const dot = kept.imageEmbedding!.reduce((s, v, i) => s + v * kept.textEmbedding![i]!, 0);
  assert.ok(Math.abs(dot - kept.similarity!) < 1e-6);
  assert.equal(broken.keep, false);
  assert.equal(broken.similarity, null);
  assert.match(broken.reason!, /^image could not be decoded: /);
  assert.equal(rejected.keep, false);
  assert.match(rejected.reason!, /^similarity 0\.\d{3} < threshold 0\.28$/);
  assert.equal(rejected.imageEmbedding, undefined);
  assert.ok(rejected.similarity! < 0.28);
});

test('clip filter: --languages adds a language column and drops other languages', async () => {
  const { filter } = await open({ languages: ['en'] });
  assert.deepEqual(filter.extraColumns, [{ name: 'language', type: 'STRING' }]);
  const jpeg = await demoJpeg('square', DEMO_PALETTE[1]!, 0);
  const [en, de] = await filter.score([
    { key: 'en', jpeg, caption: 'a photo of a green square on a grey background' },
    { key: 'de', jpeg, caption: 'ein Foto von einem green Quadrat auf grauem Hintergrund' },
  ]);
  assert.equal(en!.keep, true);
  assert.equal(en!.extra!['language'], 'en');
  assert.equal(de!.keep, false);
  assert.equal(de!.extra!['language'], 'de');
  assert.match(de!.reason!, /language de not in en/);
  assert.ok(de!.similarity! > 0.28, 'the similarity itself was fine');
});

test('clip filter: an extra scorer on the image embedding adds its column and drops rows above its threshold', async () => {
  const green = GREEN;
  const scorerPath = join(dir, 'greenness.onnx');
  await writeGreennessScorer(scorerPath);
  const { filter } = await open({ extraScorers: [{ name: 'greenness', modelPath: scorerPath, threshold: 0.3 }] });
  assert.deepEqual(filter.extraColumns, [{ name: 'greenness', type: 'DOUBLE' }]);
  const [greenV, redV] = await filter.score([
    { key: 'g', jpeg: await demoJpeg('circle', DEMO_PALETTE[green]!, 1), caption: 'a green circle' },
    { key: 'r', jpeg: await demoJpeg('circle', DEMO_PALETTE[0]!, 1), caption: 'a red circle' },
  ]);
  assert.ok((greenV!.extra!['greenness'] as number) > 0.5);
  assert.equal(greenV!.keep, false);
  assert.match(greenV!.reason!, /^greenness 0\.\d{3} > threshold 0\.3$/);
  assert.ok(Math.abs(redV!.extra!['greenness'] as number) < 0.01);
  assert.equal(redV!.keep, true);
  await assert.rejects(ClipFilter.create({ modelDir: demoDir, threshold: 0.28, executionProvider: 'cpu', extraScorers: [{ name: 'bad name', modelPath: scorerPath }] }), /column name/);
});

test('clip filter: CUDA requested on a machine without it falls back to CPU with a warning (or runs on CUDA where present)', async () => {
  const { filter, logs } = await open({ executionProvider: 'cuda' });
  if (filter.provider === 'CUDA') {
    assert.ok(logs.some((l) => /execution provider CUDA/.test(l)));
  } else {
    assert.equal(filter.provider, 'CPU');
    assert.ok(logs.some((l) => /^WARNING: CUDA execution provider unavailable/.test(l)), logs.join('\n'));
    const [v] = await filter.score([{ key: 'x', jpeg: await demoJpeg('square', DEMO_PALETTE[2]!, 0), caption: 'a blue square' }]);
    assert.equal(v!.keep, true);
  }
});

test('clip filter: auto on a CPU install (no CUDA provider installed) runs on CPU without a warning', { skip: cudaProviderInstalled() ? 'this onnxruntime-node install has the CUDA provider' : false }, async () => {
  const { filter, logs } = await open({ executionProvider: 'auto' });
  assert.equal(filter.provider, 'CPU');
  assert.ok(!logs.some((l) => /WARNING|CUDA/.test(l)), `no CUDA warning when no GPU was asked for:\n${logs.join('\n')}`);
});

test('clip filter: on a GPU the demo model runs on CUDA', { skip: process.env['CAH_TEST_GPU'] ? false : 'GPU-only: set CAH_TEST_GPU=1 on a machine with CUDA and onnxruntime-node installed with --onnxruntime-node-install=cuda12' }, async () => {
  const { filter } = await open({ executionProvider: 'cuda' });
  assert.equal(filter.provider, 'CUDA');
});

test('clip filter: fp16 and fp32 encoders of the same model agree (float16 pixels from the workers)', async () => {
  const arch = CLIP_ARCHS['tiny']!;
  const tiny = join(dir, 'tiny');
  await buildRandomClip(tiny, arch, { precision: 'fp32', seed: 3 });
  await buildRandomClip(tiny, arch, { precision: 'fp16', seed: 3 });
  const { filter: f32, logs } = await open({ modelDir: tiny, precision: 'fp32' });
  const { filter: f16 } = await open({ modelDir: tiny, precision: 'fp16' });
  assert.ok(logs.some((l) => /RANDOM model/.test(l)));
  const jpegs = await Promise.all([demoJpeg('circle', DEMO_PALETTE[0]!, 0), demoJpeg('square', DEMO_PALETTE[3]!, 2)]);
  const captions = ['a photo of a cat', 'the quick brown fox'];
  const a = await f32.embedPairs(jpegs, captions);
  const b = await f16.embedPairs(jpegs, captions);
  let cos = 0;
  for (let i = 0; i < arch.embedDim; i++) cos += a.images[i]! * b.images[i]!;
  assert.ok(cos > 0.99, `image embeddings agree (cosine ${cos})`);
  a.similarities.forEach((s, i) => assert.ok(Math.abs(s - b.similarities[i]!) < 0.02, `pair ${i}: ${s} vs ${b.similarities[i]}`));
});

test('clip filter: through the FilterStage, verdicts match their pairs across batches', async () => {
  const { filter } = await open();
  const stage = new FilterStage(filter, { batchSize: 8, maxWaitMs: 5, capacity: 64 });
  const pairs = await Promise.all(
    Array.from({ length: 30 }, async (_, i) => {
      const colour = DEMO_PALETTE[i % DEMO_PALETTE.length]!;
      const named = i % 3 === 0 ? DEMO_PALETTE[(i + 1) % DEMO_PALETTE.length]! : colour;
      return { key: `p${i}`, jpeg: await demoJpeg(DEMO_SHAPES[i % 3]!, colour, i), caption: `a ${named.name} thing`, expect: named === colour };
    }),
  );
  const verdicts = await Promise.all(pairs.map((p) => stage.submit(p)));
  verdicts.forEach((v, i) => assert.equal(v.keep, pairs[i]!.expect, pairs[i]!.key));
  assert.ok(stage.stats().batches >= 4);
  assert.equal(stage.queueDepth, 0);
  await stage.close();
});

test('clip filter: a directory without a model names the fix', async () => {
  await assert.rejects(ClipFilter.create({ modelDir: join(dir, 'nothing'), threshold: 0.28 }), /does not exist: run `cah model pull/);
  await assert.rejects(ClipFilter.create({ modelDir: demoDir, threshold: 3 }), /threshold must be between -1 and 1/);
});
