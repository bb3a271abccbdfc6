import sharp from 'sharp';
import { decodedFormat, DEFAULT_DECODE_TIMEOUT_SECONDS, formatRefusal } from '../filter/image-format.js';
import { exifJson } from './exif.js';

export type ResizeMode = 'border' | 'keep_ratio' | 'center_crop' | 'no';

export interface ResizeOptions {
  size: number;
  mode: ResizeMode;
  /** Images whose smaller side is below this are failed. */
  minSize: number;
  jpegQuality: number;
  /** Decompression-bomb guard: PIL's default limit. */
  maxPixels: number;
  /** CPU-bomb guard: decode + resize + encode of one image stops after this many seconds. */
  timeoutSeconds?: number;
  /** Read the image's EXIF tags for the exif column. */
  extractExif?: boolean;
}

export const DEFAULT_RESIZE_OPTIONS: ResizeOptions = { size: 256, mode: 'border', minSize: 0, jpegQuality: 95, maxPixels: 89_478_484 };

export type ResizeResult =
  | { ok: true; jpeg: Buffer; width: number; height: number; originalWidth: number; originalHeight: number; exif: string | null }
  | { ok: false; error: string };

// Many resizes run at once on a small worker: one libvips thread each gives the best throughput.
sharp.concurrency(1);
sharp.cache(false);

/** Decodes, resizes like img2dataset (border/keep_ratio/center_crop/no) and encodes JPEG. */
export async function resizeImage(bytes: Buffer, opts: ResizeOptions): Promise<ResizeResult> {
  const refused = formatRefusal(bytes);
  if (refused) return { ok: false, error: refused };
  // 0 (an older coordinator's settings lack the field) would mean no limit to sharp: the default then.
  const timeoutSeconds = opts.timeoutSeconds || DEFAULT_DECODE_TIMEOUT_SECONDS;
  try {
    const meta = await sharp(bytes, { limitInputPixels: opts.maxPixels }).metadata();
    if (!decodedFormat(meta)) return { ok: false, error: `not an image: ${meta.format ?? 'unknown'} format not accepted` };
    if (!meta.width || !meta.height) return { ok: false, error: 'not an image: no dimensions' };
    const rotated = (meta.orientation ?? 1) >= 5;
    const originalWidth = rotated ? meta.height : meta.width;
    const originalHeight = rotated ? meta.width : meta.height;
    if (Math.min(originalWidth, originalHeight) < opts.minSize) {
      return { ok: false, error: `image too small: ${originalWidth}x${originalHeight} < ${opts.minSize}` };
    }
    let pipeline = sharp(bytes, { limitInputPixels: opts.maxPixels, failOn: 'error' }).rotate().flatten({ background: '#ffffff' });
    const s = opts.size;
    if (opts.mode === 'border') pipeline = pipeline.resize(s, s, { fit: 'contain', background: '#000000', kernel: 'lanczos3' });
    else if (opts.mode === 'keep_ratio') pipeline = pipeline.resize(s, s, { fit: 'outside' });
    else if (opts.mode === 'center_crop') pipeline = pipeline.resize(s, s, { fit: 'cover', position: 'centre' });
    pipeline = pipeline.timeout({ seconds: timeoutSeconds });
    const { data, info } = await pipeline.jpeg({ quality: opts.jpegQuality }).toBuffer({ resolveWithObject: true });
    const exif = opts.extractExif ? exifJson(meta.exif) : null;
    return { ok: true, jpeg: data, width: info.width, height: info.height, originalWidth, originalHeight, exif };
  } catch (err) {
    const message = (err as Error).message.split('\n')[0] ?? 'decode failed';
    if (/pixel limit/i.test(message)) return { ok: false, error: `image too large: more than ${opts.maxPixels} pixels` };
    if (/unsupported image format/i.test(message)) return { ok: false, error: 'not an image: unsupported format' };
    if (/timeout/i.test(message)) return { ok: false, error: `image too slow to decode: more than ${timeoutSeconds} s` };
    return { ok: false, error: `cannot decode image: ${message}` };
  }
}
