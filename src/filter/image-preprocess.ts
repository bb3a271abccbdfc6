import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { toFloat16Bits } from './float16.js';
import { decodedFormat, DEFAULT_DECODE_TIMEOUT_SECONDS, formatRefusal } from './image-format.js';

export type ResizeKernel = 'nearest' | 'linear' | 'cubic' | 'lanczos3';
export type PixelDType = 'float32' | 'float16';

/** What `preprocessor_config.json` asks for, resolved to numbers (plain data: it crosses to worker threads). */
export interface ImagePreprocessing {
  /** Resize so the shorter side is this long (CLIP), or to an exact size, or not at all. */
  resize: { shortestEdge: number } | { width: number; height: number } | null;
  crop: { width: number; height: number } | null;
  kernel: ResizeKernel;
  rescale: number;
  mean: [number, number, number];
  std: [number, number, number];
  /** Output size: the crop, or the exact resize. */
  width: number;
  height: number;
}

/** PIL resample codes as `preprocessor_config.json` writes them. */
const PIL_KERNELS: Record<number, ResizeKernel> = { 0: 'nearest', 1: 'lanczos3', 2: 'linear', 3: 'cubic' };

const CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

interface RawPreprocessorConfig {
  do_resize?: boolean;
  size?: number | { shortest_edge?: number; height?: number; width?: number };
  do_center_crop?: boolean;
  crop_size?: number | { height: number; width: number };
  resample?: number;
  do_rescale?: boolean;
  rescale_factor?: number;
  do_normalize?: boolean;
  image_mean?: number[];
  image_std?: number[];
}

/** Reads a model's `preprocessor_config.json` (the Hugging Face CLIPImageProcessor fields). */
export function readPreprocessing(path: string): ImagePreprocessing {
  let raw: RawPreprocessorConfig;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8')) as RawPreprocessorConfig;
  } catch (err) {
    throw new Error(`cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return parsePreprocessing(raw);
}

export function parsePreprocessing(raw: RawPreprocessorConfig): ImagePreprocessing {
  let resize: ImagePreprocessing['resize'] = null;
  if (raw.do_resize !== false && raw.size !== undefined) {
    if (typeof raw.size === 'number') resize = { shortestEdge: raw.size };
    else if (raw.size.shortest_edge !== undefined) resize = { shortestEdge: raw.size.shortest_edge };
    else if (raw.size.height !== undefined && raw.size.width !== undefined) resize = { width: raw.size.width, height: raw.size.height };
  }
  let crop: ImagePreprocessing['crop'] = null;
  if (raw.do_center_crop !== false && raw.crop_size !== undefined) {
    crop = typeof raw.crop_size === 'number' ? { width: raw.crop_size, height: raw.crop_size } : { ...raw.crop_size };
  }
  const out = crop ?? (resize && 'width' in resize ? resize : null);
  if (!out) throw new Error('preprocessor_config.json: needs crop_size or an exact size to know the model input size');
  const normalize = raw.do_normalize !== false;
  const mean = normalize ? triple(raw.image_mean ?? CLIP_MEAN, 'image_mean') : ([0, 0, 0] as [number, number, number]);
  const std = normalize ? triple(raw.image_std ?? CLIP_STD, 'image_std') : ([1, 1, 1] as [number, number, number]);
  return {
    resize,
    crop,
    kernel: PIL_KERNELS[raw.resample ?? 3] ?? 'cubic',
    rescale: raw.do_rescale === false ? 1 : (raw.rescale_factor ?? 1 / 255),
    mean,
    std,
    width: out.width,
    height: out.height,
  };
}

function triple(values: number[], field: string): [number, number, number] {
  if (values.length !== 3 || values.some((v) => !Number.isFinite(v))) {
    throw new Error(`preprocessor_config.json: ${field} must be three numbers`);
  }
  return [values[0]!, values[1]!, values[2]!];
}

/** CLIP's preprocessing of the standard ViT processors (the reference values for the tests too). */
export const CLIP_PREPROCESSING: ImagePreprocessing = parsePreprocessing({
  size: { shortest_edge: 224 },
  crop_size: { height: 224, width: 224 },
  resample: 3,
});

/** Resized size as transformers' `get_resize_output_image_size(default_to_square=False)` computes it. */
export function resizedSize(p: ImagePreprocessing, width: number, height: number): { width: number; height: number } {
  if (!p.resize) return { width, height };
  if ('width' in p.resize) return { width: p.resize.width, height: p.resize.height };
  const edge = p.resize.shortestEdge;
  const short = Math.min(width, height);
  const long = Math.max(width, height);
  const newLong = Math.floor((edge * long) / short);
  return width <= height ? { width: edge, height: newLong } : { width: newLong, height: edge };
}

/**
 * Decodes, resizes and centre-crops one image to 8-bit RGB, `width × height × 3`, row-major. An
 * image that takes longer than `timeoutSeconds` (whole seconds, sharp's unit) is an error saying so.
 */
export async function decodeToModelRgb(image: Uint8Array, p: ImagePreprocessing, timeoutSeconds = DEFAULT_DECODE_TIMEOUT_SECONDS): Promise<Buffer> {
  // Workers send JPEGs, but a hostile one may send anything: the same format check and time limit as theirs.
  const refused = formatRefusal(image);
  if (refused) throw new Error(refused);
  const input = sharp(image, { failOn: 'error' }).timeout({ seconds: timeoutSeconds });
  const meta = await input.metadata();
  if (!decodedFormat(meta)) throw new Error(`not an image: ${meta.format ?? 'unknown'} format not accepted`);
  if (!meta.width || !meta.height) throw new Error('image has no size');
  const size = resizedSize(p, meta.width, meta.height);
  let pipeline = input.removeAlpha().toColourspace('srgb');
  if (size.width !== meta.width || size.height !== meta.height) {
    pipeline = pipeline.resize(size.width, size.height, { fit: 'fill', kernel: p.kernel });
  }
  const { data, info } = await pipeline
    .raw()
    .toBuffer({ resolveWithObject: true })
    .catch((err: Error) => {
      // libvips says only 'timeout: N% complete'.
      throw /timeout/i.test(err.message) ? new Error(`image too slow to decode: more than ${timeoutSeconds} s`) : err;
    });
  if (info.channels !== 3 || info.width !== size.width || info.height !== size.height) {
    throw new Error(`decoding produced ${info.width}×${info.height}×${info.channels}, expected ${size.width}×${size.height}×3`);
  }
  return info.width === p.width && info.height === p.height ? data : centreCrop(data, info.width, info.height, p);
}

/** transformers' center_crop: offset floor((size − crop) / 2), black padding where the image is smaller. */
function centreCrop(rgb: Buffer, width: number, height: number, p: ImagePreprocessing): Buffer {
  const out = Buffer.alloc(p.width * p.height * 3);
  const top = Math.floor((height - p.height) / 2);
  const left = Math.floor((width - p.width) / 2);
  for (let y = 0; y < p.height; y++) {
    const sy = y + top;
    if (sy < 0 || sy >= height) continue;
    const x0 = Math.max(0, -left);
    const x1 = Math.min(p.width, width - left);
    if (x1 > x0) rgb.copy(out, (y * p.width + x0) * 3, (sy * width + left + x0) * 3, (sy * width + left + x1) * 3);
  }
  return out;
}

/**
 * Writes one image's RGB bytes as normalised planar floats (CHW) into `out` at `offset`:
 * `(value × rescale − mean[c]) / std[c]`, as float32 or as float16 bits.
 */
export function writePlanar(rgb: Uint8Array, p: ImagePreprocessing, out: Float32Array | Uint16Array, offset: number, dtype: PixelDType): void {
  const plane = p.width * p.height;
  for (let c = 0; c < 3; c++) {
    const scale = p.rescale / p.std[c]!;
    const shift = -p.mean[c]! / p.std[c]!;
    const base = offset + c * plane;
    if (dtype === 'float32') {
      for (let i = 0, j = c; i < plane; i++, j += 3) out[base + i] = rgb[j]! * scale + shift;
    } else {
      // 256 possible inputs per channel: a lookup table makes the float16 path as cheap as float32.
      const table = new Uint16Array(256);
      for (let v = 0; v < 256; v++) table[v] = toFloat16Bits(Math.fround(v * scale + shift));
      for (let i = 0, j = c; i < plane; i++, j += 3) out[base + i] = table[rgb[j]!]!;
    }
  }
}
