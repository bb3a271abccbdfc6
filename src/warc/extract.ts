import type { Readable } from 'node:stream';
import { candidateKey, type Candidate } from './candidate.js';
import { htmlPageImages } from './html-page.js';
import type { PageImages } from './page.js';
import { readWarcRecordBatches, type WarcRecord } from './reader.js';
import { watPageImages } from './wat-page.js';

export interface ExtractOptions {
  /** Captions shorter than this (after whitespace normalisation) are dropped and counted. */
  minCaptionLength: number;
  /** Longer captions are truncated to this many characters and counted. */
  maxCaptionLength: number;
}

export const DEFAULT_EXTRACT_OPTIONS: ExtractOptions = { minCaptionLength: 5, maxCaptionLength: 2000 };

export interface ExtractionCounts {
  /** WARC records read. */
  records: number;
  /** HTML pages seen (WAT metadata of an HTML response, or a WARC HTML response). */
  pages: number;
  candidates: number;
  captionTooShort: number;
  captionTruncated: number;
  nonHttpUrls: number;
  malformedRecords: number;
  /** Candidates dropped because the same key came earlier in this file. */
  duplicates: number;
}

export function newExtractionCounts(): ExtractionCounts {
  return {
    records: 0,
    pages: 0,
    candidates: 0,
    captionTooShort: 0,
    captionTruncated: 0,
    nonHttpUrls: 0,
    malformedRecords: 0,
    duplicates: 0,
  };
}

/** The first 52 bits of a hex key as a number: a per-file dedup set of numbers is a fraction of one of strings. */
function dedupId(key: string): number {
  return parseInt(key.slice(0, 13), 16);
}

function pageOf(record: WarcRecord): PageImages | null {
  if (record.type === 'metadata') return watPageImages(record.content, record.targetUri);
  if (record.type === 'response' && record.targetUri) return htmlPageImages(record.content, record.targetUri);
  return null;
}

function normaliseCaption(alt: string, opts: ExtractOptions, counts: ExtractionCounts): string | null {
  // Most alt texts hold single spaces only: skip the regex replace (and its copy) for them.
  let caption = (/[^\S ]| {2}/.test(alt) ? alt.replace(/\s+/g, ' ') : alt).trim();
  if (caption.length === 0) return null;
  if (caption.length < opts.minCaptionLength) {
    counts.captionTooShort++;
    return null;
  }
  if (caption.length > opts.maxCaptionLength) {
    caption = caption.slice(0, opts.maxCaptionLength);
    // Do not leave half a surrogate pair at the cut.
    if (/[\uD800-\uDBFF]$/.test(caption)) caption = caption.slice(0, -1);
    counts.captionTruncated++;
  }
  return caption;
}

function resolveImageUrl(src: string, base: URL | null, counts: ExtractionCounts): string | null {
  let url: URL;
  try {
    url = base ? new URL(src.trim(), base) : new URL(src.trim());
  } catch {
    counts.nonHttpUrls++;
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    counts.nonHttpUrls++;
    return null;
  }
  // The fragment never reaches the server: the same image with or without one is one image.
  url.hash = '';
  return url.href;
}

function pageBase(page: PageImages): URL | null {
  try {
    const pageUrl = new URL(page.pageUrl);
    return page.base ? new URL(page.base.trim(), pageUrl) : pageUrl;
  } catch {
    return null;
  }
}

/**
 * Candidates of one WAT or WARC stream (already decompressed): `IMG@/src` links with alt text from
 * WAT metadata records, `<img src alt>` from WARC HTML responses. URLs are resolved against the page
 * (or its `<base href>`) and kept when http(s); captions are whitespace-normalised and length-bounded;
 * duplicates within the stream are dropped. Bad records are counted, reported through `onError`
 * and skipped. Memory stays flat whatever the stream's size (apart from the per-file dedup set).
 */
export async function* extractCandidates(
  input: Readable,
  opts: ExtractOptions,
  counts: ExtractionCounts,
  onError: (msg: string) => void,
): AsyncGenerator<Candidate> {
  const seen = new Set<number>();
  for await (const batch of readWarcRecordBatches(input, onError)) {
    for (const record of batch) {
      counts.records++;
      let page: PageImages | null;
      try {
        page = pageOf(record);
      } catch (err) {
        counts.malformedRecords++;
        onError(
          `malformed ${record.type} record at offset ${record.offset} (${record.targetUri ?? 'no target URI'}): ${(err as Error).message}`,
        );
        continue;
      }
      if (!page) continue;
      counts.pages++;
      if (page.images.length === 0) continue;
      const base = pageBase(page);
      for (const image of page.images) {
        const caption = normaliseCaption(image.alt, opts, counts);
        if (caption === null) continue;
        const url = resolveImageUrl(image.src, base, counts);
        if (url === null) continue;
        const key = candidateKey(url, caption);
        const id = dedupId(key);
        if (seen.has(id)) {
          counts.duplicates++;
          continue;
        }
        seen.add(id);
        counts.candidates++;
        yield { key, url, caption, pageUrl: page.pageUrl, license: page.license };
      }
    }
  }
}

/** A source that held no WARC record at all is the wrong file (or a broken download), not an empty shard. */
export function noRecordsMessage(source: string, warnings: readonly string[]): string {
  return `no WARC records in ${source}: is it a WARC/WAT file?${warnings[0] ? ` (${warnings[0]})` : ''}`;
}
