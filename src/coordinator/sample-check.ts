import { sniffImageFormat } from '../filter/image-format.js';
import { MAX_EXIF_CHARS, WORKER_STATUSES } from '../output/sample.js';
import { oneLine } from '../text/sanitize.js';
import { SAMPLE_KEY_FORMAT } from '../warc/candidate.js';
import type { WireSample } from '../wire/contract.js';

const SAMPLE_STATUSES: ReadonlySet<string> = new Set(WORKER_STATUSES);

/** A worker's message shown in an error: on one line, bounded. */
function shown(text: string): string {
  const line = oneLine(text);
  return JSON.stringify(line.length > 40 ? `${line.slice(0, 40)}…` : line);
}

/**
 * Why a sample from a worker cannot become a row at all (a key outside the key format, an unknown
 * status), or null. Such a sample is dropped and counted as an error; the rest of the shard goes on.
 */
export function sampleRefusal(wire: WireSample): string | null {
  if (!SAMPLE_KEY_FORMAT.test(wire.key)) return `refused sample: key ${shown(wire.key)} is not 16 lowercase hex digits`;
  if (!SAMPLE_STATUSES.has(wire.status)) return `refused sample ${wire.key}: unknown status ${shown(wire.status)}`;
  return null;
}

/**
 * Workers promise resized JPEGs; a success carrying anything else (an SVG labelled jpeg, nothing
 * at all) fails that sample instead of reaching the decoder or the tar.
 */
export function imageRefusal(wire: WireSample): string | null {
  if (wire.status !== 'success') return null;
  if (wire.jpeg.length === 0) return 'worker sent a success without image bytes';
  if (sniffImageFormat(wire.jpeg) !== 'jpeg') return 'worker sent image bytes that are not a JPEG';
  return null;
}

/** A URL as the dataset stores it: user:password@ removed (a page's leaked secret is not metadata). */
export function storedUrl(url: string): string {
  if (!url.includes('@')) return url;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url;
  }
  if (!parsed.username && !parsed.password) return url;
  parsed.username = '';
  parsed.password = '';
  return parsed.href;
}

/**
 * A worker's exif value as the dataset stores it: a JSON object of text values within the bound,
 * on one line; anything else from a broken or hostile worker is dropped (null), not the sample.
 */
export function storedExif(exif: string): string | null {
  if (exif === '' || exif.length > MAX_EXIF_CHARS) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(exif);
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return null;
  const entries = Object.entries(parsed as Record<string, unknown>);
  if (!entries.every(([, value]) => typeof value === 'string')) return null;
  return JSON.stringify(Object.fromEntries(entries.map(([key, value]) => [oneLine(key), oneLine(value as string)])));
}
