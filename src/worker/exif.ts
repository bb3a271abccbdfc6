import readExif from 'exif-reader';
import { MAX_EXIF_CHARS } from '../output/sample.js';
import { oneLine } from '../text/sanitize.js';
/** EXIF blocks beyond this are not parsed at all (a JPEG APP1 segment holds at most 64 KB). */
const MAX_EXIF_BYTES = 64 * 1024;
/** Longest value of one tag, after which it is cut. */
const MAX_VALUE_CHARS = 512;

/** img2dataset's (exifread's) section names, so that readers of its `exif` column read ours alike. */
const SECTIONS = { Image: 'Image', Photo: 'EXIF', GPSInfo: 'GPS', Iop: 'Interoperability' } as const;

/**
 * The EXIF tags of an image as a JSON object of text values keyed "Section Tag" (e.g. "Image Make",
 * "EXIF ExposureTime"), as img2dataset's `exif` column holds them; binary tags (maker notes,
 * versions), the thumbnail and pointers to other IFDs are left out, text is put on one line, and
 * the whole stays under MAX_EXIF_CHARS (tags beyond it are dropped). Null when there is none or the
 * block cannot be read: a broken EXIF never fails the sample.
 */
export function exifJson(raw: Buffer | undefined): string | null {
  if (!raw || raw.length === 0 || raw.length > MAX_EXIF_BYTES) return null;
  let parsed: ReturnType<typeof readExif>;
  try {
    parsed = readExif(raw);
  } catch {
    return null;
  }
  const tags: Record<string, string> = {};
  let size = 2;
  for (const [section, prefix] of Object.entries(SECTIONS)) {
    const values = parsed[section as keyof typeof SECTIONS] as Record<string, unknown> | undefined;
    if (!values) continue;
    for (const [tag, value] of Object.entries(values)) {
      if (tag === 'ExifTag' || tag === 'GPSTag' || tag === 'InteroperabilityTag') continue;
      const text = asText(value);
      if (text === null) continue;
      const key = `${prefix} ${oneLine(tag).slice(0, 64)}`;
      const entry = JSON.stringify(key).length + JSON.stringify(text).length + 2;
      if (size + entry > MAX_EXIF_CHARS) continue;
      tags[key] = text;
      size += entry;
    }
  }
  return Object.keys(tags).length > 0 ? JSON.stringify(tags) : null;
}

function asText(value: unknown): string | null {
  if (typeof value === 'string') return oneLine(value).trim().slice(0, MAX_VALUE_CHARS) || null;
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : null;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (Array.isArray(value) && value.length <= 64 && value.every((v) => typeof v === 'number' && Number.isFinite(v))) return `[${value.join(', ')}]`;
  return null;
}
