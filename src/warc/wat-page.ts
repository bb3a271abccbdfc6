import { decodeHTML } from 'entities';
import { isLicenseUrl, type PageImages, type RawImage } from './page.js';

// Needles start with a byte that is rare in JSON: Buffer.indexOf scans for the first byte, and `"` is everywhere.
const HTML_METADATA = Buffer.from('HTML-Metadata"');
const IMG_SRC = Buffer.from('IMG@/src"');
const PATH_KEY = Buffer.from('"path":"');
/** Bytes that send a record down the full JSON.parse path: a base or a license link changes its candidates. */
const NEEDS_FULL_PARSE = [Buffer.from('Base"'), Buffer.from('creativecommons.org')];
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

interface WatLinkJson {
  path?: unknown;
  url?: unknown;
  alt?: unknown;
}

interface WatJson {
  Envelope?: {
    'WARC-Header-Metadata'?: { 'WARC-Target-URI'?: unknown };
    'Payload-Metadata'?: {
      'HTTP-Response-Metadata'?: {
        'HTML-Metadata'?: { Head?: { Base?: unknown; Link?: unknown }; Links?: unknown };
      };
    };
  };
}

/** ia-web-commons writes attribute values as they stand in the HTML, entities and all. */
function decodeValue(value: string): string {
  return value.includes('&') ? decodeHTML(value) : value;
}

function linkArray(value: unknown): WatLinkJson[] {
  return Array.isArray(value) ? (value.filter((link) => typeof link === 'object' && link !== null) as WatLinkJson[]) : [];
}

/** Head.Base is a string in Common Crawl's WATs; an object with url/href is accepted too. */
function baseOf(value: unknown): string | null {
  if (typeof value === 'string' && value.trim()) return decodeValue(value.trim());
  if (typeof value === 'object' && value !== null) {
    const { url, href } = value as { url?: unknown; href?: unknown };
    const found = typeof url === 'string' ? url : typeof href === 'string' ? href : null;
    return found?.trim() ? decodeValue(found.trim()) : null;
  }
  return null;
}

/**
 * The `IMG@/src` link objects read one by one, each JSON.parsed on its own: ia-web-commons writes
 * them as flat objects of strings, so a link is the bytes between the `{` before its `"path"` and
 * the `}` after it. Null when anything looks different (a brace inside a value, two image paths in
 * one object, another layout), and the caller parses the whole record instead.
 *
 * Linear in the record's size whatever it holds: each link's `{` is looked for only back to the end
 * of the previous link, and its `}` only up to the next image path, so no byte is scanned or parsed
 * more than a fixed number of times (a record of repeated `"path":"IMG@/src"` keys was quadratic).
 */
function imageLinksFast(content: Buffer, from: number): RawImage[] | null {
  const images: RawImage[] = [];
  let floor = from;
  let at = content.indexOf(IMG_SRC, from);
  while (at >= 0) {
    const pathAt = at - PATH_KEY.length;
    if (pathAt < floor || content.compare(PATH_KEY, 0, PATH_KEY.length, pathAt, at) !== 0) return null;
    let start = pathAt - 1;
    while (start >= floor && content[start] !== OPEN_BRACE) start--;
    const end = content.indexOf(CLOSE_BRACE, at);
    const next = content.indexOf(IMG_SRC, at + IMG_SRC.length);
    if (start < floor || end < 0 || (next >= 0 && next < end)) return null;
    let link: WatLinkJson;
    try {
      link = JSON.parse(content.toString('utf8', start, end + 1)) as WatLinkJson;
    } catch {
      return null;
    }
    if (link.path !== 'IMG@/src' || typeof link.url !== 'string') return null;
    if (typeof link.alt === 'string' && link.alt) images.push({ src: decodeValue(link.url), alt: decodeValue(link.alt) });
    floor = end + 1;
    at = next;
  }
  return images;
}

/** The whole record's JSON: Envelope → Payload-Metadata → HTTP-Response-Metadata → HTML-Metadata. */
function parseFully(content: Buffer, targetUri: string | null): PageImages {
  const json = JSON.parse(content.toString('utf8')) as WatJson;
  const envelope = json.Envelope;
  const uri = envelope?.['WARC-Header-Metadata']?.['WARC-Target-URI'];
  const pageUrl = typeof uri === 'string' && uri ? uri : targetUri;
  const html = envelope?.['Payload-Metadata']?.['HTTP-Response-Metadata']?.['HTML-Metadata'];
  if (!pageUrl || !html) throw new Error('no Envelope.Payload-Metadata.HTTP-Response-Metadata.HTML-Metadata');
  const images: RawImage[] = [];
  let license: string | null = null;
  const consider = (link: WatLinkJson): void => {
    if (typeof link.url !== 'string') return;
    if (link.path === 'IMG@/src') {
      if (typeof link.alt === 'string' && link.alt) images.push({ src: decodeValue(link.url), alt: decodeValue(link.alt) });
    } else if (license === null && isLicenseUrl(link.url.trim())) {
      license = decodeValue(link.url.trim());
    }
  };
  linkArray(html.Head?.Link).forEach(consider);
  linkArray(html.Links).forEach(consider);
  return { pageUrl, base: baseOf(html.Head?.Base), license, images };
}

/** A JSON object's bytes begin with `{` and end with `}`: what a truncated or cut record lacks. */
function isWholeObject(content: Buffer): boolean {
  let start = 0;
  let end = content.length - 1;
  while (start <= end && content[start]! <= 0x20) start++;
  while (end >= start && content[end]! <= 0x20) end--;
  return content[start] === OPEN_BRACE && content[end] === CLOSE_BRACE;
}

/**
 * The page in a WAT `metadata` record, or null when the record describes no HTML page. Images are
 * the Links entries whose path is exactly `IMG@/src` with a non-empty alt. Most records hold no
 * `"IMG@` at all and are not parsed; of the rest, only the image link objects are, unless the
 * record has a `<base>` or a license link, or an unusual layout: then the whole JSON is.
 * Throws on malformed JSON.
 */
export function watPageImages(content: Buffer, targetUri: string | null): PageImages | null {
  const htmlAt = content.indexOf(HTML_METADATA);
  if (htmlAt < 0) return null;
  if (content.indexOf(IMG_SRC, htmlAt) < 0) return targetUri === null ? null : { pageUrl: targetUri, base: null, license: null, images: [] };
  if (targetUri === null || !isWholeObject(content) || NEEDS_FULL_PARSE.some((marker) => content.includes(marker, htmlAt))) {
    return parseFully(content, targetUri);
  }
  const images = imageLinksFast(content, htmlAt);
  return images ? { pageUrl: targetUri, base: null, license: null, images } : parseFully(content, targetUri);
}
