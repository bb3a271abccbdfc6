import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { basename } from 'node:path';
import { gzipSync } from 'node:zlib';

/** An `<img>` of a page; `src` as written in the HTML (may be relative). */
export interface WatImage {
  src: string;
  alt?: string;
}

/**
 * Any other link of a page, e.g. `{ url: 'https://creativecommons.org/licenses/by/4.0/', path: 'A@/href', rel: 'license' }`.
 * `path` defaults to `A@/href`; `LINK@/href` entries go to Head.Link, where Common Crawl puts them.
 */
export interface WatLink {
  url: string;
  path?: string;
  text?: string;
  rel?: string;
}

export interface WatPage {
  url: string;
  images: WatImage[];
  links?: WatLink[];
  title?: string;
  /** The page's `<base href>`, written to HTML-Metadata.Head.Base. */
  base?: string;
}

export interface WriteWatOptions {
  /** One gzip member per record, like Common Crawl's .wat.gz files. */
  gzip: boolean;
  /** zlib level when gzip is on (default 6, zlib's default). */
  gzipLevel?: number;
}

const CRLF = '\r\n';
const RECORD_END = Buffer.from(CRLF + CRLF, 'latin1');
const SOURCE_WARC = 'CC-MAIN-20000101000000-20000101000000-00000.warc.gz';
const WARCINFO_ID = '<urn:uuid:00000000-0000-4000-8000-000000000000>';
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** `sha1:` + base32, the form WARC digests take; derived from `text` so the same page gets the same digest. */
function warcDigest(text: string): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of createHash('sha1').update(text).digest()) {
    value = ((value << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return `sha1:${out}`;
}

function warcDate(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function warcRecord(headers: [string, string][], body: Buffer): Buffer {
  let head = `WARC/1.0${CRLF}`;
  for (const [name, value] of headers) head += `${name}: ${value}${CRLF}`;
  head += `Content-Length: ${body.length}${CRLF}${CRLF}`;
  return Buffer.concat([Buffer.from(head, 'utf8'), body, RECORD_END]);
}

type LinkEntry = Record<string, string>;

function linkEntry(link: WatLink, defaultPath: string): LinkEntry {
  const entry: LinkEntry = {};
  if (link.text !== undefined) entry.text = link.text;
  if (link.rel !== undefined) entry.rel = link.rel;
  entry.path = link.path ?? defaultPath;
  entry.url = link.url;
  return entry;
}

/** Body links with the images spread among the anchors, as they appear in real pages; LINK@ entries apart. */
function splitLinks(page: WatPage): { links: LinkEntry[]; headLinks: LinkEntry[] } {
  const anchors: LinkEntry[] = [];
  const headLinks: LinkEntry[] = [];
  for (const link of page.links ?? []) {
    if (link.path === 'LINK@/href') headLinks.push(linkEntry(link, 'LINK@/href'));
    else anchors.push(linkEntry(link, 'A@/href'));
  }
  const images = page.images.map((image): LinkEntry =>
    image.alt === undefined ? { path: 'IMG@/src', url: image.src } : { alt: image.alt, path: 'IMG@/src', url: image.src },
  );
  const links: LinkEntry[] = [];
  const every = images.length > 0 ? Math.max(1, Math.floor(anchors.length / images.length)) : 0;
  let nextImage = 0;
  anchors.forEach((anchor, index) => {
    links.push(anchor);
    if (nextImage < images.length && (index + 1) % every === 0) links.push(images[nextImage++]!);
  });
  links.push(...images.slice(nextImage));
  return { links, headLinks };
}

/** The JSON ia-web-commons writes for one HTML response record (Common Crawl WAT, 2014–2024 shape). */
function watJson(page: WatPage, date: Date, offset: number): string {
  const { links, headLinks } = splitLinks(page);
  const head: Record<string, unknown> = {};
  if (page.base !== undefined) head.Base = page.base;
  if (headLinks.length > 0) head.Link = headLinks;
  if (page.title !== undefined) head.Title = page.title;
  const entityLength = 2000 + links.length * 120;
  const headersLength = 183;
  const blockLength = headersLength + entityLength;
  const digest = warcDigest(page.url);
  return JSON.stringify({
    Container: {
      Filename: SOURCE_WARC,
      Compressed: true,
      Offset: String(offset),
      'Gzip-Metadata': {
        'Deflate-Length': String(Math.round(blockLength / 3)),
        'Header-Length': '10',
        'Footer-Length': '8',
        'Inflated-CRC': String(createHash('md5').update(page.url).digest().readInt32BE(0)),
        'Inflated-Length': String(blockLength + 566),
      },
    },
    Envelope: {
      Format: 'WARC',
      'WARC-Header-Length': '562',
      'Block-Digest': digest,
      'Actual-Content-Length': String(blockLength),
      'WARC-Header-Metadata': {
        'WARC-Type': 'response',
        'WARC-Date': warcDate(date),
        'WARC-Record-ID': `<urn:uuid:${randomUUID()}>`,
        'Content-Length': String(blockLength),
        'Content-Type': 'application/http; msgtype=response',
        'WARC-Warcinfo-ID': WARCINFO_ID,
        'WARC-Concurrent-To': `<urn:uuid:${randomUUID()}>`,
        'WARC-IP-Address': '192.0.2.1',
        'WARC-Target-URI': page.url,
        'WARC-Payload-Digest': digest,
        'WARC-Block-Digest': digest,
        'WARC-Identified-Payload-Type': 'text/html',
      },
      'Payload-Metadata': {
        'Actual-Content-Type': 'application/http; msgtype=response',
        'HTTP-Response-Metadata': {
          'Response-Message': { Version: 'HTTP/1.1', Status: '200', Reason: 'OK' },
          'Headers-Length': String(headersLength),
          Headers: {
            Date: date.toUTCString(),
            Server: 'Apache',
            'Content-Type': 'text/html; charset=utf-8',
            'Content-Length': String(entityLength),
            Connection: 'close',
          },
          'HTML-Metadata': { Head: head, Links: links },
          'Entity-Length': String(entityLength),
          'Entity-Digest': digest,
          'Entity-Trailing-Slop-Length': '0',
        },
        'Trailing-Slop-Length': '4',
      },
    },
  });
}

/**
 * One uncompressed WARC/1.0 `metadata` record (CRLF framing, exact Content-Length) holding the WAT JSON
 * of `page`. `offset` fills Container.Offset, the position of the page in its (imaginary) source WARC.
 */
export function watMetadataRecord(page: WatPage, date: Date = new Date(), offset = 0): Buffer {
  return warcRecord(
    [
      ['WARC-Type', 'metadata'],
      ['WARC-Target-URI', page.url],
      ['WARC-Date', warcDate(date)],
      ['WARC-Record-ID', `<urn:uuid:${randomUUID()}>`],
      ['WARC-Refers-To', `<urn:uuid:${randomUUID()}>`],
      ['Content-Type', 'application/json'],
    ],
    Buffer.from(watJson(page, date, offset), 'utf8'),
  );
}

function warcinfoRecord(fileName: string, date: Date): Buffer {
  const body = `Software-Info: cah wat-writer${CRLF}Extracted-Date: ${date.toUTCString()}${CRLF}format: WARC File Format 1.0${CRLF}`;
  return warcRecord(
    [
      ['WARC-Type', 'warcinfo'],
      ['WARC-Date', warcDate(date)],
      ['WARC-Filename', fileName],
      ['WARC-Record-ID', `<urn:uuid:${randomUUID()}>`],
      ['Content-Type', 'application/warc-fields'],
    ],
    Buffer.from(body, 'utf8'),
  );
}

/** Batches small records into ~1 MB writes and waits for the file to drain, so memory stays flat. */
class BatchedFileWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private failure: Error | null = null;

  constructor(private readonly stream: WriteStream) {
    stream.on('error', (error) => {
      this.failure = error;
    });
  }

  async write(chunk: Buffer): Promise<void> {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= 1 << 20) await this.flush();
  }

  async close(): Promise<void> {
    await this.flush();
    await new Promise<void>((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      this.stream.once('error', reject);
      this.stream.end(() => resolve());
    });
  }

  destroy(): void {
    this.stream.destroy();
  }

  private async flush(): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.pending.length === 0) return;
    const batch = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    if (this.stream.write(batch)) return;
    await new Promise<void>((resolve, reject) => {
      const settle = (error?: Error): void => {
        this.stream.off('drain', settle);
        this.stream.off('error', settle);
        if (error) reject(error);
        else resolve();
      };
      this.stream.on('drain', settle);
      this.stream.on('error', settle);
    });
  }
}

/**
 * Writes a WAT file: a warcinfo record, then one metadata record per page. Streams (constant memory
 * for any number of pages); with `gzip`, one gzip member per record like Common Crawl.
 */
export async function writeWatFile(
  path: string,
  pages: Iterable<WatPage> | AsyncIterable<WatPage>,
  opts: WriteWatOptions,
): Promise<void> {
  const writer = new BatchedFileWriter(createWriteStream(path));
  const zlibOptions = opts.gzipLevel === undefined ? {} : { level: opts.gzipLevel };
  const encode = (record: Buffer): Buffer => (opts.gzip ? gzipSync(record, zlibOptions) : record);
  const date = new Date();
  let offset = 0;
  try {
    await writer.write(encode(warcinfoRecord(basename(path), date)));
    for await (const page of pages) {
      const record = watMetadataRecord(page, date, offset);
      offset += Math.round(record.length / 3);
      await writer.write(encode(record));
    }
  } catch (error) {
    writer.destroy();
    throw error;
  }
  await writer.close();
}
