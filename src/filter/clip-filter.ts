import { availableParallelism } from 'node:os';
import { basename, resolve } from 'node:path';
import { ExtraScorer, type ExtraScorerSpec } from './extra-scorers.js';
import type { ExtraColumn, FilterInput, FilterVerdict, PairFilter } from './pair-filter.js';
import { normalizeRows, rowDots, TextEncoder, VisionEncoder } from './clip-encoders.js';
import { readPreprocessing, type ImagePreprocessing } from './image-preprocess.js';
import { LanguageDetector } from './language.js';
import { locateModel, readClipConfig, type Precision } from './model-dir.js';
import { PreprocessPool, type PreparedPixels } from './preprocess-pool.js';
import { resolveProviderChoice, type ExecutionProviderChoice } from './sessions.js';
import type { StagedPairFilter } from './stage.js';
import { ClipTokenizer, DEFAULT_CONTEXT_LENGTH, type EncodedBatch } from './tokenizer.js';

export interface ClipFilterOptions {
  /** A model directory in the Hugging Face ONNX layout. */
  modelDir: string;
  /** Keep pairs whose cosine similarity is at least this (LAION: 0.28 for ViT-B/32). */
  threshold: number;
  executionProvider?: ExecutionProviderChoice;
  /** Which encoder files to use: auto = fp16 on CUDA and fp32 on CPU when both exist. */
  precision?: Precision | 'auto';
  /** Keep only captions detected as one of these ISO 639-1 languages; adds the `language` column. */
  languages?: string[];
  extraScorers?: ExtraScorerSpec[];
  /** Worker threads decoding and normalising images (default: cores − 1, at least 1). */
  preprocessThreads?: number;
  /** Per-image decode time limit in whole seconds (default 10). */
  decodeTimeoutSeconds?: number;
  log?: (msg: string) => void;
}

/** A batch between the two halves of scoring: images decoded and captions tokenized, not yet inferred. */
export interface PreparedClipBatch {
  inputs: FilterInput[];
  pixels: PreparedPixels;
  tokens: EncodedBatch;
  languages: (string | null)[] | null;
}

/** The same embeddings the filter computes, for `cah clip score` and benchmarks. */
export interface BatchEmbeddings {
  /** L2-normalised, `[n, dim]` row-major. */
  images: Float32Array;
  texts: Float32Array;
  similarities: number[];
  imageErrors: (string | null)[];
}

const fmt = (x: number): string => x.toFixed(3);

/**
 * LAION's CLIP filter on ONNX Runtime: image and caption embeddings, cosine similarity against a
 * threshold, optional language and extra-scorer columns. Images are preprocessed on worker threads
 * (`prepare`) so that a batch can be prepared while the previous one is on the model (`infer`).
 */
export class ClipFilter implements PairFilter, StagedPairFilter<PreparedClipBatch> {
  readonly name: string;
  readonly provider: string;
  readonly embeddingDim: number;
  /** The extra output columns this filter fills (verdict.extra keys). */
  readonly extraColumns: ExtraColumn[];

  private constructor(
    private readonly opts: ClipFilterOptions,
    private readonly vision: VisionEncoder,
    private readonly text: TextEncoder,
    private readonly tokenizer: ClipTokenizer,
    private readonly preprocessing: ImagePreprocessing,
    private readonly pool: PreprocessPool,
    private readonly languages: LanguageDetector | null,
    private readonly scorers: ExtraScorer[],
    info: { name: string; dim: number },
  ) {
    this.name = info.name;
    this.provider = vision.provider === text.provider ? vision.provider : `${vision.provider}+${text.provider}`;
    this.embeddingDim = info.dim;
    this.extraColumns = [
      ...(languages ? [{ name: 'language', type: 'STRING' as const }] : []),
      ...scorers.map((s) => ({ name: s.spec.name, type: 'DOUBLE' as const })),
    ];
  }

  static async create(opts: ClipFilterOptions): Promise<ClipFilter> {
    const log = opts.log ?? (() => {});
    const warn = (msg: string): void => log(`WARNING: ${msg}`);
    const choice = opts.executionProvider ?? 'auto';
    if (!Number.isFinite(opts.threshold) || opts.threshold < -1 || opts.threshold > 1) {
      throw new Error(`threshold must be between -1 and 1, got ${opts.threshold}`);
    }
    const dir = resolve(opts.modelDir);
    const precision = opts.precision ?? 'auto';
    const cudaFirst = resolveProviderChoice(choice) === 'cuda';
    const preference: Precision[] =
      precision === 'fp32' ? ['fp32'] : precision === 'fp16' ? ['fp16'] : cudaFirst ? ['fp16', 'fp32'] : ['fp32', 'fp16'];
    let paths = locateModel(dir, preference);
    const config = readClipConfig(paths.config);
    const preprocessing = readPreprocessing(paths.preprocessor);

    let vision = await VisionEncoder.open(paths.vision, choice, warn);
    if (precision === 'auto' && vision.provider === 'CPU' && paths.precision === 'fp16') {
      // fp16 was picked for a GPU that turned out absent: the fp32 files are faster on CPU.
      const fp32 = tryLocate(dir, 'fp32');
      if (fp32) {
        await vision.release();
        paths = fp32;
        vision = await VisionEncoder.open(paths.vision, 'cpu', warn);
      }
    }
    const text = await TextEncoder.open(paths.text, vision.provider === 'CPU' ? 'cpu' : choice, warn);
    const contextLength = text.contextLength ?? config.contextLength ?? DEFAULT_CONTEXT_LENGTH;
    const tokenizer = ClipTokenizer.fromFile(paths.tokenizer, contextLength);
    const dim = vision.dim ?? text.dim ?? config.projectionDim;
    if (dim === null) throw new Error(`${dir}: cannot tell the embedding size (no static output shape, no projection_dim)`);
    if (vision.dim !== null && text.dim !== null && vision.dim !== text.dim) {
      throw new Error(`${dir}: image embeddings have ${vision.dim} dimensions but text embeddings ${text.dim}`);
    }
    const languages = opts.languages && opts.languages.length > 0 ? await LanguageDetector.load() : null;
    const scorers: ExtraScorer[] = [];
    for (const spec of opts.extraScorers ?? []) scorers.push(await ExtraScorer.open(spec, vision.provider === 'CPU' ? 'cpu' : choice, warn));
    const threads = opts.preprocessThreads ?? Math.max(1, availableParallelism() - 1);
    const pool = new PreprocessPool({ preprocessing, dtype: vision.dtype, threads, decodeTimeoutSeconds: opts.decodeTimeoutSeconds });
    // sharp decodes on libuv's thread pool, shared by all worker threads and sized once at start-up.
    const uvThreads = Number(process.env['UV_THREADPOOL_SIZE']) || 4;
    if (threads > uvThreads) {
      log(`note: image decoding is limited to libuv's ${uvThreads} threads; start cah with UV_THREADPOOL_SIZE=${threads} to use ${threads} cores`);
    }

    const kind = config.constructedKind ? ` (${config.constructedKind.toUpperCase()} model, constructed by cah, not a trained CLIP)` : '';
    const name = `CLIP ${basename(dir)} ${paths.precision}`;
    log(
      `CLIP filter: ${basename(dir)}${kind}, ${paths.precision}, execution provider ${vision.provider}` +
        `, embeddings ${dim}-d, threshold ${opts.threshold}, ${threads} preprocessing thread${threads === 1 ? '' : 's'}`,
    );
    return new ClipFilter(opts, vision, text, tokenizer, preprocessing, pool, languages, scorers, { name, dim });
  }

  async score(batch: FilterInput[]): Promise<FilterVerdict[]> {
    return this.infer(await this.prepare(batch));
  }

  /** Decodes images on the worker threads, tokenizes captions and detects languages. */
  async prepare(batch: FilterInput[]): Promise<PreparedClipBatch> {
    const pixels = await this.pool.run(batch.map((b) => b.jpeg));
    const captions = batch.map((b) => b.caption);
    return {
      inputs: batch,
      pixels,
      tokens: this.tokenizer.encodeBatch(captions),
      languages: this.languages ? captions.map((c) => this.languages!.detect(c)) : null,
    };
  }

  /** Runs both encoders and turns similarities, languages and extra scores into verdicts. */
  async infer(prepared: PreparedClipBatch): Promise<FilterVerdict[]> {
    const n = prepared.inputs.length;
    if (n === 0) {
      prepared.pixels.release();
      return [];
    }
    const dim = this.embeddingDim;
    let images: Float32Array;
    let texts: Float32Array;
    try {
      images = normalizeRows(await this.vision.embed(prepared.pixels.data, n, this.preprocessing.height, this.preprocessing.width), dim);
      texts = normalizeRows(await this.text.embed(prepared.tokens, n), dim);
    } finally {
      prepared.pixels.release();
    }
    const similarities = rowDots(images, texts, dim);
    const extraScores = await Promise.all(this.scorers.map((s) => s.score(images, n, dim)));
    const allowed = this.opts.languages?.map((l) => l.toLowerCase());
    return prepared.inputs.map((_, i) => {
      const extra: Record<string, string | number | null> = {};
      const reasons: string[] = [];
      if (prepared.languages && allowed) {
        const language = prepared.languages[i] ?? null;
        extra['language'] = language;
        if (!language || !allowed.includes(language)) reasons.push(`language ${language ?? 'unknown'} not in ${allowed.join(',')}`);
      }
      const imageError = prepared.pixels.errors[i];
      if (imageError) {
        for (const scorer of this.scorers) extra[scorer.spec.name] = null;
        return { keep: false, similarity: null, reason: `image could not be decoded: ${imageError}`, ...withExtra(extra) };
      }
      const similarity = similarities[i]!;
      if (similarity < this.opts.threshold) reasons.unshift(`similarity ${fmt(similarity)} < threshold ${this.opts.threshold}`);
      this.scorers.forEach((scorer, s) => {
        const value = extraScores[s]![i]!;
        extra[scorer.spec.name] = value;
        const limit = scorer.spec.threshold;
        if (limit !== undefined && value > limit) reasons.push(`${scorer.spec.name} ${fmt(value)} > threshold ${limit}`);
      });
      if (reasons.length > 0) return { keep: false, similarity, reason: reasons.join('; '), ...withExtra(extra) };
      return {
        keep: true,
        similarity,
        ...withExtra(extra),
        imageEmbedding: images.slice(i * dim, (i + 1) * dim),
        textEmbedding: texts.slice(i * dim, (i + 1) * dim),
      };
    });
  }

  /** L2-normalised image embeddings `[n, dim]`, with per-image decoding errors (their rows are meaningless). */
  async embedImages(jpegs: readonly Uint8Array[]): Promise<{ embeddings: Float32Array; errors: (string | null)[] }> {
    const pixels = await this.pool.run(jpegs);
    try {
      const raw = await this.vision.embed(pixels.data, jpegs.length, this.preprocessing.height, this.preprocessing.width);
      return { embeddings: normalizeRows(raw, this.embeddingDim), errors: pixels.errors };
    } finally {
      pixels.release();
    }
  }

  /** L2-normalised text embeddings `[n, dim]`. */
  async embedTexts(texts: readonly string[]): Promise<Float32Array> {
    return normalizeRows(await this.text.embed(this.tokenizer.encodeBatch(texts), texts.length), this.embeddingDim);
  }

  /** Normalised embeddings and similarities of image–text pairs (no threshold, no extra columns). */
  async embedPairs(jpegs: readonly Uint8Array[], captions: readonly string[]): Promise<BatchEmbeddings> {
    if (jpegs.length !== captions.length) throw new Error('embedPairs: as many captions as images, please');
    const { embeddings: images, errors } = await this.embedImages(jpegs);
    const texts = await this.embedTexts(captions);
    return { images, texts, similarities: rowDots(images, texts, this.embeddingDim), imageErrors: errors };
  }

  async close(): Promise<void> {
    await this.pool.close();
    await Promise.all([this.vision.release(), this.text.release(), ...this.scorers.map((s) => s.release())]);
  }
}

function withExtra(extra: Record<string, string | number | null>): Pick<FilterVerdict, 'extra'> {
  return Object.keys(extra).length > 0 ? { extra } : {};
}

function tryLocate(dir: string, precision: Precision): ReturnType<typeof locateModel> | null {
  try {
    return locateModel(dir, [precision]);
  } catch {
    return null;
  }
}
