import { join } from 'node:path';
import { DEMO_PALETTE, type PaletteColour } from './palette.js';
import { CLIP_PREPROCESSOR_CONFIG, MODEL_FILES, writeModelFiles } from '../filter/model-dir.js';
import { GraphBuilder, attr } from './onnx-graph.js';
import { buildSyntheticTokenizer } from './synthetic-tokenizer.js';

/**
 * The demo model's constants. Image side: per pixel, a Gaussian kernel of the RGB distance to each
 * palette colour (background greys, white and black bars match none), averaged over the image and
 * divided by its total: which palette colours the coloured part of the image is, whatever its size.
 * Text side: the palette colour words of the caption. Both sides add a shared direction and one of
 * their own, so that cosine similarities look like CLIP's: about 0.55 when the caption names the
 * image's colour, about 0.12 otherwise (default threshold 0.28).
 */
export const DEMO_MODEL = {
  /** Kernel width in RGB units of 0..1: JPEG noise of ±10/255 still matches; neighbouring palette colours do not. */
  sigmaSquared: 0.02,
  /** Share of the image below which "some colour" fades to "no colour" (1% of the pixels). */
  shareEpsilon: 0.01,
  /** Weights of the colour, shared and own directions: A² + B² is the matched score, B² the mismatched. */
  colourWeight: Math.sqrt(0.43),
  sharedWeight: Math.sqrt(0.12),
  ownWeight: Math.sqrt(0.45),
} as const;

/** Palette colours, then the shared, image-only and text-only directions. */
export function demoEmbeddingDim(palette: readonly PaletteColour[] = DEMO_PALETTE): number {
  return palette.length + 3;
}

const README = `# cah DEMO CLIP model

This is a DEMO model, not CLIP. \`cah model demo\` constructs it (no training, no download) for the
synthetic web of \`cah demo\`: its image encoder measures how much of the image is each demo palette
colour and its text encoder looks for those colour words, so "a red square" matches a red image.
It has CLIP's interface (Hugging Face ONNX layout, same inputs and outputs, CLIP tokenizer format and
preprocessing) and means nothing on real photographs. For real data use
\`cah model pull Xenova/clip-vit-base-patch32\`.
`;

/** Builds the demo CLIP-signature model into `dir` (fast: a few kilobytes of ONNX). */
export async function buildDemoModel(dir: string, palette: readonly PaletteColour[] = DEMO_PALETTE): Promise<void> {
  const K = palette.length;
  const D = demoEmbeddingDim(palette);
  const tokenizer = buildSyntheticTokenizer(palette.map((c) => c.name));
  await writeModelFiles(dir, {
    kind: 'demo',
    config: {
      _name_or_path: 'cah-demo-clip',
      architectures: ['CLIPModel'],
      model_type: 'clip',
      projection_dim: D,
      text_config: { max_position_embeddings: 77, vocab_size: tokenizer.vocabSize },
      vision_config: { image_size: 224 },
    },
    preprocessor: CLIP_PREPROCESSOR_CONFIG,
    tokenizer: tokenizer.json,
    readme: README,
  });
  await buildDemoVision(join(dir, MODEL_FILES.vision.fp32), palette);
  const V = tokenizer.vocabSize;
  const colours = new Float32Array(V * D);
  palette.forEach((c, k) => (colours[tokenizer.wordIds.get(c.name)! * D + k] = DEMO_MODEL.colourWeight));
  const start = new Float32Array(V * D);
  start[tokenizer.startId * D + K] = DEMO_MODEL.sharedWeight;
  start[tokenizer.startId * D + K + 2] = DEMO_MODEL.ownWeight;
  // Tokens after which a new word begins: those ending a word, and the start token.
  const wordEnd = new Float32Array(V);
  for (const [token, id] of Object.entries(tokenizer.json.model.vocab)) if (token.endsWith('</w>')) wordEnd[id] = 1;
  wordEnd[tokenizer.startId] = 1;
  await buildDemoText(join(dir, MODEL_FILES.text.fp32), { colours, start, wordEnd, vocabSize: V, dim: D });
}

async function buildDemoVision(path: string, palette: readonly PaletteColour[]): Promise<void> {
  const K = palette.length;
  const D = demoEmbeddingDim(palette);
  const { image_mean: mean, image_std: std } = CLIP_PREPROCESSOR_CONFIG;
  const g = new GraphBuilder('demo_vision');
  const pixels = g.input('pixel_values', 'float', ['batch_size', 3, 224, 224]);
  // Undo the CLIP normalisation: RGB in 0..1.
  const rgb = g.op('Add', [g.op('Mul', [pixels, g.constFloat(std, [1, 3, 1, 1])]), g.constFloat(mean, [1, 3, 1, 1])]);
  // |p − c|² = |p|² − 2 p·c + |c|², with 1×1 convolutions.
  const norm = g.op('Conv', [g.op('Mul', [rgb, rgb]), g.constFloat([1, 1, 1], [1, 3, 1, 1])]);
  const colours = palette.map((c) => c.rgb.map((v) => v / 255));
  const cross = g.op('Conv', [
    rgb,
    g.constFloat(colours.flatMap((c) => c.map((v) => -2 * v)), [K, 3, 1, 1]),
    g.constFloat(colours.map((c) => c.reduce((s, v) => s + v * v, 0))),
  ]);
  const dist = g.op('Add', [cross, norm]);
  const match = g.op('Exp', [g.op('Mul', [dist, g.constFloat([-1 / DEMO_MODEL.sigmaSquared], [])])]);
  const share = g.op('Flatten', [g.op('GlobalAveragePool', [match])], { axis: attr.int(1) });
  const total = g.op('ReduceSum', [share, g.constInt64([1])], { keepdims: attr.int(1) });
  const colour = g.op('Div', [share, g.op('Add', [total, g.constFloat([DEMO_MODEL.shareEpsilon], [])])]);
  const projection = new Float32Array(K * D);
  for (let k = 0; k < K; k++) projection[k * D + k] = DEMO_MODEL.colourWeight;
  const bias = new Float32Array(D);
  bias[K] = DEMO_MODEL.sharedWeight;
  bias[K + 1] = DEMO_MODEL.ownWeight;
  g.op('Add', [g.op('MatMul', [colour, g.constFloat(projection, [K, D])]), g.constFloat(bias)], {}, 'image_embeds');
  g.output('image_embeds', 'float', ['batch_size', D]);
  await g.write(path, { producer: 'cah model demo' });
}

/**
 * Sums the colour rows of the caption's tokens, counting a colour token only where a word begins
 * (after a word-final token or the start token): BPE would otherwise find "red" in "coloured".
 */
async function buildDemoText(
  path: string,
  t: { colours: Float32Array; start: Float32Array; wordEnd: Float32Array; vocabSize: number; dim: number },
): Promise<void> {
  const g = new GraphBuilder('demo_text');
  const ids = g.input('input_ids', 'int64', ['batch_size', 'sequence_length']);
  const colourRows = g.op('Gather', [g.init('colour_embedding', [t.vocabSize, t.dim], 'float', t.colours), ids], { axis: attr.int(0) });
  const previous = g.op('Slice', [ids, g.constInt64([0]), g.constInt64([-1]), g.constInt64([1])]);
  const afterWordEnd = g.op('Pad', [
    g.op('Gather', [g.init('word_end', [t.vocabSize], 'float', t.wordEnd), previous], { axis: attr.int(0) }),
    g.constInt64([0, 1, 0, 0]),
  ]);
  const wordColours = g.op('Mul', [colourRows, g.op('Unsqueeze', [afterWordEnd, g.constInt64([2])])]);
  const startRows = g.op('Gather', [g.init('start_embedding', [t.vocabSize, t.dim], 'float', t.start), ids], { axis: attr.int(0) });
  g.op('ReduceSum', [g.op('Add', [wordColours, startRows]), g.constInt64([1])], { keepdims: attr.int(0) }, 'text_embeds');
  g.output('text_embeds', 'float', ['batch_size', t.dim]);
  await g.write(path, { producer: 'cah model demo' });
}
