import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The Hugging Face ONNX layout of a CLIP model (as Xenova/clip-vit-base-patch32 publishes it). */
export const MODEL_FILES = {
  config: 'config.json',
  preprocessor: 'preprocessor_config.json',
  tokenizer: 'tokenizer.json',
  vision: { fp32: 'onnx/vision_model.onnx', fp16: 'onnx/vision_model_fp16.onnx' },
  text: { fp32: 'onnx/text_model.onnx', fp16: 'onnx/text_model_fp16.onnx' },
} as const;

export type Precision = 'fp32' | 'fp16';

export interface ModelPaths {
  dir: string;
  config: string;
  preprocessor: string;
  tokenizer: string;
  vision: string;
  text: string;
  precision: Precision;
}

const FIX = 'run `cah model pull Xenova/clip-vit-base-patch32` (or `cah model demo DIR`) and pass that directory';

/** Finds a model's files, taking the first precision in `preference` whose two encoders are both present. */
export function locateModel(dir: string, preference: readonly Precision[]): ModelPaths {
  if (!existsSync(dir)) throw new Error(`model directory ${dir} does not exist: ${FIX}`);
  for (const name of [MODEL_FILES.config, MODEL_FILES.preprocessor, MODEL_FILES.tokenizer]) {
    if (!existsSync(join(dir, name))) throw new Error(`${join(dir, name)} is missing: ${FIX}`);
  }
  for (const precision of preference) {
    const vision = join(dir, MODEL_FILES.vision[precision]);
    const text = join(dir, MODEL_FILES.text[precision]);
    if (existsSync(vision) && existsSync(text)) {
      return {
        dir,
        config: join(dir, MODEL_FILES.config),
        preprocessor: join(dir, MODEL_FILES.preprocessor),
        tokenizer: join(dir, MODEL_FILES.tokenizer),
        vision,
        text,
        precision,
      };
    }
  }
  const wanted = preference.flatMap((p) => [MODEL_FILES.vision[p], MODEL_FILES.text[p]]).join(', ');
  throw new Error(`${dir} has no ONNX encoders (looked for ${wanted}): ${FIX}`);
}

/** The fields of config.json cah uses. */
export interface ClipConfig {
  projectionDim: number | null;
  /** Text context length (text_config.max_position_embeddings; 77 for CLIP). */
  contextLength: number | null;
  /** "demo" or "random" for models cah constructed, null for real ones. */
  constructedKind: string | null;
}

export function readClipConfig(path: string): ClipConfig {
  let raw: { projection_dim?: number; text_config?: { max_position_embeddings?: number }; cah_constructed?: string };
  try {
    raw = JSON.parse(readFileSync(path, 'utf8')) as typeof raw;
  } catch (err) {
    throw new Error(`cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return {
    projectionDim: raw.projection_dim ?? null,
    contextLength: raw.text_config?.max_position_embeddings ?? null,
    constructedKind: raw.cah_constructed ?? null,
  };
}

/** CLIP's image processor settings (224 shortest edge, bicubic, centre crop, OpenAI mean/std). */
export const CLIP_PREPROCESSOR_CONFIG = {
  crop_size: { height: 224, width: 224 },
  do_center_crop: true,
  do_convert_rgb: true,
  do_normalize: true,
  do_rescale: true,
  do_resize: true,
  feature_extractor_type: 'CLIPFeatureExtractor',
  image_mean: [0.48145466, 0.4578275, 0.40821073],
  image_processor_type: 'CLIPImageProcessor',
  image_std: [0.26862954, 0.26130258, 0.27577711],
  resample: 3,
  rescale_factor: 0.00392156862745098,
  size: { shortest_edge: 224 },
};

export interface ConstructedModelFiles {
  kind: 'demo' | 'random';
  config: Record<string, unknown>;
  preprocessor: Record<string, unknown>;
  tokenizer: unknown;
  readme: string;
}

/** Writes the JSON side of a model cah constructs; the caller writes the ONNX files into `onnx/`. */
export async function writeModelFiles(dir: string, files: ConstructedModelFiles): Promise<void> {
  await mkdir(join(dir, 'onnx'), { recursive: true });
  await writeFile(join(dir, MODEL_FILES.config), JSON.stringify({ ...files.config, cah_constructed: files.kind }, null, 2) + '\n');
  await writeFile(join(dir, MODEL_FILES.preprocessor), JSON.stringify(files.preprocessor, null, 2) + '\n');
  await writeFile(join(dir, MODEL_FILES.tokenizer), JSON.stringify(files.tokenizer) + '\n');
  await writeFile(join(dir, 'README.md'), files.readme);
}
