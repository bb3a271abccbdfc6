import { join } from 'node:path';
import { float32ToFloat16 } from '../filter/float16.js';
import { CLIP_PREPROCESSOR_CONFIG, MODEL_FILES, writeModelFiles, type Precision } from '../filter/model-dir.js';
import { GraphBuilder, attr, type DTypeName } from './onnx-graph.js';
import { buildSyntheticTokenizer } from './synthetic-tokenizer.js';

export interface TowerArch {
  width: number;
  layers: number;
  heads: number;
}

/** The shape of a CLIP model (Hugging Face CLIPModel naming). */
export interface ClipArch {
  imageSize: number;
  patchSize: number;
  vision: TowerArch;
  text: TowerArch & { contextLength: number; vocabSize: number };
  embedDim: number;
}

export const CLIP_ARCHS: Record<string, ClipArch> = {
  /** OpenAI CLIP ViT-B/32, the model LAION filtered with. */
  'vit-b-32': {
    imageSize: 224,
    patchSize: 32,
    vision: { width: 768, layers: 12, heads: 12 },
    text: { width: 512, layers: 12, heads: 8, contextLength: 77, vocabSize: 49408 },
    embedDim: 512,
  },
  /** The same graph, small enough for tests. */
  tiny: {
    imageSize: 224,
    patchSize: 32,
    vision: { width: 32, layers: 2, heads: 2 },
    text: { width: 24, layers: 2, heads: 2, contextLength: 77, vocabSize: 49408 },
    embedDim: 16,
  },
};

const LN_EPS = 1e-5;
/** Large enough to zero a softmax term, small enough for float16. */
const MASKED = -10000;

export type WeightInit = 'random' | 'ones' | 'zeros';

export interface WeightSpec {
  name: string;
  dims: number[];
  init: WeightInit;
}

/** Every weight of the architecture with its shape, in Hugging Face's names. */
export function clipWeightSpecs(arch: ClipArch): WeightSpec[] {
  const specs: WeightSpec[] = [];
  const add = (name: string, dims: number[], init: WeightInit = 'random'): void => void specs.push({ name, dims, init });
  const tower = (prefix: string, t: TowerArch): void => {
    for (let l = 0; l < t.layers; l++) {
      const p = `${prefix}.encoder.layers.${l}`;
      for (const ln of ['layer_norm1', 'layer_norm2']) {
        add(`${p}.${ln}.weight`, [t.width], 'ones');
        add(`${p}.${ln}.bias`, [t.width], 'zeros');
      }
      for (const proj of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) {
        add(`${p}.self_attn.${proj}.weight`, [t.width, t.width]);
        add(`${p}.self_attn.${proj}.bias`, [t.width]);
      }
      add(`${p}.mlp.fc1.weight`, [t.width, 4 * t.width]);
      add(`${p}.mlp.fc1.bias`, [4 * t.width]);
      add(`${p}.mlp.fc2.weight`, [4 * t.width, t.width]);
      add(`${p}.mlp.fc2.bias`, [t.width]);
    }
  };
  const v = arch.vision;
  const grid = arch.imageSize / arch.patchSize;
  add('vision_model.embeddings.patch_embedding.weight', [v.width, 3, arch.patchSize, arch.patchSize]);
  add('vision_model.embeddings.class_embedding', [v.width]);
  add('vision_model.embeddings.position_embedding.weight', [grid * grid + 1, v.width]);
  add('vision_model.pre_layrnorm.weight', [v.width], 'ones');
  add('vision_model.pre_layrnorm.bias', [v.width], 'zeros');
  tower('vision_model', v);
  add('vision_model.post_layernorm.weight', [v.width], 'ones');
  add('vision_model.post_layernorm.bias', [v.width], 'zeros');
  add('visual_projection.weight', [v.width, arch.embedDim]);
  const t = arch.text;
  add('text_model.embeddings.token_embedding.weight', [t.vocabSize, t.width]);
  add('text_model.embeddings.position_embedding.weight', [t.contextLength, t.width]);
  tower('text_model', t);
  add('text_model.final_layer_norm.weight', [t.width], 'ones');
  add('text_model.final_layer_norm.bias', [t.width], 'zeros');
  add('text_projection.weight', [t.width, arch.embedDim]);
  return specs;
}

/**
 * A weight's values: deterministic from (seed, name), uniform with standard deviation 0.02 for
 * random weights (linear weights are stored `[in, out]`, ready for MatMul).
 */
export function generateWeight(spec: WeightSpec, seed: number): Float32Array {
  const n = spec.dims.reduce((a, b) => a * b, 1);
  if (spec.init === 'ones') return new Float32Array(n).fill(1);
  if (spec.init === 'zeros') return new Float32Array(n);
  let state = (seed ^ hashName(spec.name)) >>> 0 || 1;
  const out = new Float32Array(n);
  const scale = (0.02 * Math.sqrt(3) * 2) / 4294967296;
  for (let i = 0; i < n; i++) {
    // xorshift32: fast, and good enough for weights nobody reads.
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    out[i] = (state >>> 0) * scale - 0.02 * Math.sqrt(3);
  }
  return out;
}

function hashName(name: string): number {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
  return h >>> 0;
}

export interface RandomClipOptions {
  precision?: Precision;
  seed?: number;
}

const RANDOM_README = `# cah RANDOM CLIP model (benchmarks only)

\`cah model random\` constructed this model: CLIP's architecture with random weights. It computes as
much as the real model and its similarities mean nothing. Use it to measure throughput; for
filtering use \`cah model pull Xenova/clip-vit-base-patch32\`.
`;

/**
 * Writes a CLIP model of `arch` with random weights into `dir` (Hugging Face ONNX layout; weights in
 * ONNX external data files beside each encoder, so even ViT-B/32 in fp32 stays far from protobuf's 2 GB).
 */
export async function buildRandomClip(dir: string, arch: ClipArch, opts: RandomClipOptions = {}): Promise<void> {
  const precision = opts.precision ?? 'fp32';
  const seed = opts.seed ?? 1;
  // A byte-level CLIP-format tokenizer with the end token at the top id, as CLIP's EOS pooling expects.
  const tokenizer = buildSyntheticTokenizer([], { vocabSize: arch.text.vocabSize });
  await writeModelFiles(dir, {
    kind: 'random',
    config: {
      _name_or_path: 'cah-random-clip',
      architectures: ['CLIPModel'],
      model_type: 'clip',
      projection_dim: arch.embedDim,
      text_config: {
        hidden_size: arch.text.width,
        num_hidden_layers: arch.text.layers,
        num_attention_heads: arch.text.heads,
        intermediate_size: 4 * arch.text.width,
        max_position_embeddings: arch.text.contextLength,
        vocab_size: arch.text.vocabSize,
      },
      vision_config: {
        hidden_size: arch.vision.width,
        num_hidden_layers: arch.vision.layers,
        num_attention_heads: arch.vision.heads,
        intermediate_size: 4 * arch.vision.width,
        image_size: arch.imageSize,
        patch_size: arch.patchSize,
      },
    },
    preprocessor: {
      ...CLIP_PREPROCESSOR_CONFIG,
      crop_size: { height: arch.imageSize, width: arch.imageSize },
      size: { shortest_edge: arch.imageSize },
    },
    tokenizer: tokenizer.json,
    readme: RANDOM_README,
  });
  const specs = new Map(clipWeightSpecs(arch).map((s) => [s.name, s]));
  const dtype: DTypeName = precision === 'fp16' ? 'float16' : 'float';
  const weight = (g: GraphBuilder, name: string): string => {
    const spec = specs.get(name);
    if (!spec) throw new Error(`no weight ${name}`);
    return g.init(name, spec.dims, dtype, () => {
      const values = generateWeight(spec, seed);
      return precision === 'fp16' ? float32ToFloat16(values) : values;
    });
  };
  const visionPath = join(dir, MODEL_FILES.vision[precision]);
  await visionGraph(arch, dtype, weight).write(visionPath, { externalData: `${visionPath}_data`, producer: 'cah model random' });
  const textPath = join(dir, MODEL_FILES.text[precision]);
  await textGraph(arch, dtype, weight).write(textPath, { externalData: `${textPath}_data`, producer: 'cah model random' });
}

type WeightRef = (g: GraphBuilder, name: string) => string;

function scalar(g: GraphBuilder, value: number, dtype: DTypeName): string {
  return dtype === 'float16'
    ? g.init(g.fresh('const'), [], 'float16', float32ToFloat16(Float32Array.of(value)))
    : g.constFloat([value], []);
}

function layerNorm(g: GraphBuilder, x: string, prefix: string, w: WeightRef): string {
  return g.op('LayerNormalization', [x, w(g, `${prefix}.weight`), w(g, `${prefix}.bias`)], {
    axis: attr.int(-1),
    epsilon: attr.float(LN_EPS),
  });
}

function linear(g: GraphBuilder, x: string, prefix: string, w: WeightRef, bias = true): string {
  const y = g.op('MatMul', [x, w(g, `${prefix}.weight`)]);
  return bias ? g.op('Add', [y, w(g, `${prefix}.bias`)]) : y;
}

/** Pre-LN transformer layer: x + attn(ln1(x)), then + mlp(ln2(x)) with quick GELU. */
function encoderLayer(g: GraphBuilder, x: string, prefix: string, t: TowerArch, dtype: DTypeName, w: WeightRef, mask: string | null): string {
  const headDim = t.width / t.heads;
  const h = layerNorm(g, x, `${prefix}.layer_norm1`, w);
  const split = (y: string): string => g.op('Reshape', [y, g.constInt64([0, 0, t.heads, headDim])]);
  const q = g.op('Transpose', [split(g.op('Mul', [linear(g, h, `${prefix}.self_attn.q_proj`, w), scalar(g, headDim ** -0.5, dtype)]))], {
    perm: attr.ints([0, 2, 1, 3]),
  });
  const k = g.op('Transpose', [split(linear(g, h, `${prefix}.self_attn.k_proj`, w))], { perm: attr.ints([0, 2, 3, 1]) });
  const v = g.op('Transpose', [split(linear(g, h, `${prefix}.self_attn.v_proj`, w))], { perm: attr.ints([0, 2, 1, 3]) });
  let scores = g.op('MatMul', [q, k]);
  if (mask) scores = g.op('Add', [scores, mask]);
  const context = g.op('MatMul', [g.op('Softmax', [scores], { axis: attr.int(-1) }), v]);
  const merged = g.op('Reshape', [g.op('Transpose', [context], { perm: attr.ints([0, 2, 1, 3]) }), g.constInt64([0, 0, t.width])]);
  const attended = g.op('Add', [x, linear(g, merged, `${prefix}.self_attn.out_proj`, w)]);
  const m = linear(g, layerNorm(g, attended, `${prefix}.layer_norm2`, w), `${prefix}.mlp.fc1`, w);
  const gelu = g.op('Mul', [m, g.op('Sigmoid', [g.op('Mul', [m, scalar(g, 1.702, dtype)])])]);
  return g.op('Add', [attended, linear(g, gelu, `${prefix}.mlp.fc2`, w)]);
}

function visionGraph(arch: ClipArch, dtype: DTypeName, w: WeightRef): GraphBuilder {
  const v = arch.vision;
  const g = new GraphBuilder('clip_vision');
  const pixels = g.input('pixel_values', dtype, ['batch_size', 3, arch.imageSize, arch.imageSize]);
  const patches = g.op('Conv', [pixels, w(g, 'vision_model.embeddings.patch_embedding.weight')], {
    kernel_shape: attr.ints([arch.patchSize, arch.patchSize]),
    strides: attr.ints([arch.patchSize, arch.patchSize]),
  });
  const tokens = g.op('Transpose', [g.op('Reshape', [patches, g.constInt64([0, v.width, -1])])], { perm: attr.ints([0, 2, 1]) });
  // The class token, repeated over the batch: Expand to [batch, 1, width].
  const batch = g.op('Slice', [g.op('Shape', [pixels]), g.constInt64([0]), g.constInt64([1])]);
  const clsShape = g.op('Concat', [batch, g.constInt64([1, v.width])], { axis: attr.int(0) });
  const clsToken = g.op('Expand', [
    g.op('Reshape', [w(g, 'vision_model.embeddings.class_embedding'), g.constInt64([1, 1, v.width])]),
    clsShape,
  ]);
  const embedded = g.op('Add', [
    g.op('Concat', [clsToken, tokens], { axis: attr.int(1) }),
    w(g, 'vision_model.embeddings.position_embedding.weight'),
  ]);
  let x = layerNorm(g, embedded, 'vision_model.pre_layrnorm', w);
  for (let l = 0; l < v.layers; l++) x = encoderLayer(g, x, `vision_model.encoder.layers.${l}`, v, dtype, w, null);
  const pooled = layerNorm(g, g.op('Gather', [x, g.constInt64([0], [])], { axis: attr.int(1) }), 'vision_model.post_layernorm', w);
  g.op('MatMul', [pooled, w(g, 'visual_projection.weight')], {}, 'image_embeds');
  g.output('image_embeds', dtype, ['batch_size', arch.embedDim]);
  return g;
}

function textGraph(arch: ClipArch, dtype: DTypeName, w: WeightRef): GraphBuilder {
  const t = arch.text;
  const L = t.contextLength;
  const g = new GraphBuilder('clip_text');
  const ids = g.input('input_ids', 'int64', ['batch_size', L]);
  const embedded = g.op('Add', [
    g.op('Gather', [w(g, 'text_model.embeddings.token_embedding.weight'), ids], { axis: attr.int(0) }),
    w(g, 'text_model.embeddings.position_embedding.weight'),
  ]);
  const causal = new Float32Array(L * L);
  for (let i = 0; i < L; i++) for (let j = i + 1; j < L; j++) causal[i * L + j] = MASKED;
  const mask = g.init('causal_mask', [L, L], dtype, dtype === 'float16' ? float32ToFloat16(causal) : causal);
  let x = embedded;
  for (let l = 0; l < t.layers; l++) x = encoderLayer(g, x, `text_model.encoder.layers.${l}`, t, dtype, w, mask);
  x = layerNorm(g, x, 'text_model.final_layer_norm', w);
  // CLIP pools at the end token, the highest id in each row: argmax, first occurrence.
  const eos = g.op('ArgMax', [ids], { axis: attr.int(1), keepdims: attr.int(1) });
  const pooled = g.op('GatherND', [x, eos], { batch_dims: attr.int(1) });
  g.op('MatMul', [pooled, w(g, 'text_projection.weight')], {}, 'text_embeds');
  g.output('text_embeds', dtype, ['batch_size', arch.embedDim]);
  return g;
}
