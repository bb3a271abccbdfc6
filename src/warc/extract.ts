import { Parser } from 'htmlparser2';
import type { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { candidateKey, type Candidate } from './candidate.js';
import { readWarcRecords, type WarcRecord } from './reader.js';

export interface ExtractOptions {
  /** Captions shorter than this (after whitespace normalisation) are dropped and counted. */
  minCaptionLength: number;
  /** Longer captions are truncated to this many characters. */
  maxCaptionLength: number;
}

export const DEFAULT_EXTRACT_OPTIONS: ExtractOptions = { minCaptionLength: 5, maxCaptionLength: 2000 };

export interface ExtractionCounts {
  records: number;
  pages: number;
  candidates: number;
  captionTooShort: number;
  captionTruncated: number;
  nonHttpUrls: number;
  malformedRecords: number;
  duplicates: number;
}

export function newExtractionCounts(): ExtractionCounts {
  return { records: 0, pages: 0, candidates: 0, captionTooShort: 0, captionTruncated: 0, nonHttpUrls: 0, malformedRecords: 0, duplicates: 0 };
}

const IMG_MARKER = Buffer.from('"IMG@');
const LICENSE_URL = /^https?:\/\/(www\.)?creativecommons\.org\/(licenses|publicdomain)\//i;

interface RawImage {
  src: string;
  alt: string;
}

interface PageImages {
  pageUrl: string;
  base: string | null;
  license: string | null;
  images: RawImage[];
}

/**
 * Candidates of one WAT or WARC stream: `IMG@/src` links with alt text from WAT metadata records,
 * `<img src alt>` from WARC HTML responses. URLs resolved against the page (or its <base href>),
 * http/https only, captions whitespace-normalised and length-bounded, duplicates within the file
 * dropped. Bad records are reported through onError and skipped.
 */
export async function* extractCandidates(
  input: Readable,
  opts: ExtractOptions,
  counts: ExtractionCounts,
  onError: (msg: string) => void,
): AsyncGenerator<Candidate> {
  const seen = new Set<string>();
  for await (const record of readWarcRecords(input, onError)) {
    counts.records++;
    let page: PageImages | null = null;
    try {
      if (record.type === 'metadata') page = watPage(record);
      else if (record.type === 'response') page = htmlPage(record);
    } catch (err) {
      counts.malformedRecords++;
      onError(`malformed ${record.type} record at offset ${record.offset} (${record.targetUri ?? 'no target URI'}): ${(err as Error).message}`);
      continue;
    }
    if (!page) continue;
    counts.pages++;
    for (const candidate of toCandidates(page, opts, counts)) {
      if (seen.has(candidate.key)) {
        counts.duplicates++;
        continue;
      }
      seen.add(candidate.key);
      counts.candidates++;
      yield candidate;
    }
  }
}

function* toCandidates(page: PageImages, opts: ExtractOptions, counts: ExtractionCounts): Generator<Candidate> {
  let base: URL;
  try {
    base = new URL(page.base ?? page.pageUrl, page.pageUrl);
  } catch {
    return;
  }
  for (const image of page.images) {
    let caption = image.alt.replace(/\s+/g, ' ').trim();
    if (caption.length === 0) continue;
    if (caption.length < opts.minCaptionLength) {
      counts.captionTooShort++;
      continue;
    }
    if (caption.length > opts.maxCaptionLength) {
      caption = caption.slice(0, opts.maxCaptionLength);
      counts.captionTruncated++;
    }
    let url: URL;
    try {
      url = new URL(image.src.trim(), base);
    } catch {
      counts.nonHttpUrls++;
      continue;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      counts.nonHttpUrls++;
      continue;
    }
    url.hash = '';
    const href = url.href;
    yield { key: candidateKey(href, caption), url: href, caption, pageUrl: page.pageUrl, license: page.license };
  }
}

interface WatLinkJson {
  path?: string;
  url?: string;
  alt?: string;
  rel?: string;
}

/** WAT metadata: Envelope → Payload-Metadata → HTTP-Response-Metadata → HTML-Metadata. */
function watPage(record: WarcRecord): PageImages | null {
  // Most records have no image link at all: skip them without parsing JSON.
  if (record.content.indexOf(IMG_MARKER) < 0) return null;
  const json = JSON.parse(record.content.toString('utf8')) as {
    Envelope?: {
      'WARC-Header-Metadata'?: { 'WARC-Target-URI'?: string };
      'Payload-Metadata'?: {
        'HTTP-Response-Metadata'?: {
          'HTML-Metadata'?: { Head?: { Base?: string; Link?: WatLinkJson[] }; Links?: WatLinkJson[] };
        };
      };
    };
  };
  const envelope = json.Envelope;
  const pageUrl = envelope?.['WARC-Header-Metadata']?.['WARC-Target-URI'];
  const html = envelope?.['Payload-Metadata']?.['HTTP-Response-Metadata']?.['HTML-Metadata'];
  if (!pageUrl || !html) return null;
  const links = Array.isArray(html.Links) ? html.Links : [];
  const headLinks = Array.isArray(html.Head?.Link) ? html.Head!.Link! : [];
  const images: RawImage[] = [];
  let license: string | null = null;
  for (const link of [...headLinks, ...links]) {
    if (typeof link !== 'object' || link === null || typeof link.url !== 'string') continue;
    if (link.path === 'IMG@/src' && typeof link.alt === 'string') images.push({ src: link.url, alt: link.alt });
    else if (license === null && LICENSE_URL.test(link.url)) license = link.url;
  }
  return { pageUrl, base: typeof html.Head?.Base === 'string' ? html.Head.Base : null, license, images };
}

/** WARC response: the HTTP message, then the HTML through htmlparser2. */
function htmlPage(record: WarcRecord): PageImages | null {
  if (!record.targetUri) return null;
  const content = record.content;
  const split = findHeaderEnd(content);
  if (split < 0) return null;
  const head = content.subarray(0, split).toString('latin1');
  const headers = new Map<string, string>();
  for (const line of head.split(/\r?\n/).slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  const contentType = headers.get('content-type') ?? '';
  if (!/html/i.test(contentType)) return null;
  let body = content.subarray(split + (content[split] === 0x0d ? 4 : 2));
  if (/chunked/i.test(headers.get('transfer-encoding') ?? '')) body = dechunk(body);
  if (/gzip/i.test(headers.get('content-encoding') ?? '')) body = gunzipSync(body);
  const charset = /charset=["']?([\w-]+)/i.exec(contentType)?.[1]?.toLowerCase();
  const text = body.toString(charset === 'iso-8859-1' || charset === 'latin1' || charset === 'windows-1252' ? 'latin1' : 'utf8');
  const images: RawImage[] = [];
  let base: string | null = null;
  let license: string | null = null;
  const parser = new Parser(
    {
      onopentag(name, attrs) {
        if (name === 'img' && attrs['src'] !== undefined && attrs['alt'] !== undefined) images.push({ src: attrs['src'], alt: attrs['alt'] });
        else if (name === 'base' && base === null && attrs['href']) base = attrs['href'];
        else if ((name === 'a' || name === 'link') && license === null && attrs['href'] && (/\blicense\b/i.test(attrs['rel'] ?? '') || LICENSE_URL.test(attrs['href']))) {
          if (LICENSE_URL.test(attrs['href'])) license = attrs['href'];
        }
      },
    },
    { decodeEntities: true, lowerCaseTags: true, lowerCaseAttributeNames: true },
  );
  parser.write(text);
  parser.end();
  return { pageUrl: record.targetUri, base, license, images };
}

function findHeaderEnd(content: Buffer): number {
  const crlf = content.indexOf('\r\n\r\n');
  const lf = content.indexOf('\n\n');
  if (crlf < 0) return lf;
  if (lf < 0) return crlf;
  return Math.min(crlf, lf);
}

function dechunk(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let pos = 0;
  while (pos < body.length) {
    const lineEnd = body.indexOf('\r\n', pos);
    if (lineEnd < 0) break;
    const size = parseInt(body.subarray(pos, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(size) || size <= 0) break;
    parts.push(body.subarray(lineEnd + 2, lineEnd + 2 + size));
    pos = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}
