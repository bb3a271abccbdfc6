import type { Metadata } from 'sharp';

/** The formats a dataset wants; libvips knows many more (SVG, PDF, TIFF, FITS …) that only cost CPU or risk. */
export type AcceptedFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'avif';

const ACCEPTED_NAMES = 'JPEG, PNG, WebP, GIF, AVIF';

/** One decode + resize may take this long before libvips stops it (sharp's `timeout`). */
export const DEFAULT_DECODE_TIMEOUT_SECONDS = 10;

/**
 * The accepted format the bytes start with, or null. Checked before libvips sees the bytes, so an
 * SVG or PDF served as image/jpeg is never parsed, whatever the Content-Type says.
 */
export function sniffImageFormat(bytes: Uint8Array): AcceptedFormat | null {
  const at = (offset: number, text: string): boolean =>
    bytes.length >= offset + text.length && [...text].every((ch, i) => bytes[offset + i] === ch.charCodeAt(0));
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (at(0, '\x89PNG\r\n\x1a\n')) return 'png';
  if (at(0, 'GIF87a') || at(0, 'GIF89a')) return 'gif';
  if (at(0, 'RIFF') && at(8, 'WEBP')) return 'webp';
  if (at(4, 'ftyp')) {
    // ISO-BMFF: the major brand, then compatible brands up to the end of the ftyp box.
    const boxSize = Math.min(bytes.length, ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0);
    for (let offset = 8; offset + 4 <= boxSize; offset += 4) {
      if (offset === 12) continue; // minor version
      if (at(offset, 'avif') || at(offset, 'avis')) return 'avif';
    }
  }
  return null;
}

/** The accepted format libvips decoded, or null (AVIF is libheif's `heif` with AV1 compression). */
export function decodedFormat(meta: Pick<Metadata, 'format' | 'compression'>): AcceptedFormat | null {
  switch (meta.format) {
    case 'jpeg':
    case 'png':
    case 'webp':
    case 'gif':
      return meta.format;
    case 'heif':
      return meta.compression === 'av1' ? 'avif' : null;
    default:
      return null;
  }
}

/** Why bytes are refused before decoding, or null when they may be decoded. */
export function formatRefusal(bytes: Uint8Array): string | null {
  return sniffImageFormat(bytes) ? null : `not an image: unsupported image format (${describeFormat(bytes)}; accepted: ${ACCEPTED_NAMES})`;
}

function describeFormat(bytes: Uint8Array): string {
  const head = Buffer.from(bytes.subarray(0, 256)).toString('latin1').trimStart().toLowerCase();
  if (head.startsWith('<?xml') || head.startsWith('<svg') || head.includes('<svg')) return 'SVG/XML';
  if (head.startsWith('%pdf')) return 'PDF';
  if (head.startsWith('<!doctype html') || head.startsWith('<html')) return 'HTML';
  if (head.startsWith('ii*\0') || head.startsWith('mm\0*')) return 'TIFF';
  return 'unknown format';
}
