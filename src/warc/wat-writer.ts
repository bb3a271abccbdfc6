import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { basename } from 'node:path';
import { gzipSync } from 'node:zlib';

/** An `<img>` of a page; `src` as written in the HTML (may be relative). */
export interface WatImage {
  src: string;
  alt?: string;
}

/** Any other link of a page, e.g. `{ url: 'https://creativecommons.org/licenses/by/4.0/', path: 'A@/href', rel: 'license' }`.
 * `path` defaults to `A@/href`; `LINK@/href` entries go to Head.Link like Common Crawl puts them. */
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
  /** `<base href>` of the page, written to HTML-Metadata.Head.Base. */
  base?: string;
}

export interface WriteWatOptions {
  /** One gzip member per record, like Common Crawl's .wat.gz files. */
  gzip: boolean;
  /** zlib level when gzip is on (default: zlib's default, 6). */
  gzipLevel?: number;
}

const CRLF = '\r\n';
const SOURCE_WARC = 'CC-MAIN-00000000000000-00000000000000-00000.warc.gz';
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** `sha1:` + base32 digest, the form WARC digests take. */
function warcDigest(text: string): string {
  const bytes = createHash('sha1').update(text).digest();
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
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
  return Buffer.concat([Buffer.from(head, 'utf8'), body, Buffer.from(CRLF + CRLF, 'latin1')]);
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

/** Images interleaved among the anchors, as they appear in real pages. */
function bodyLinks(page: WatPage): { links: LinkEntry[]; headLinks: LinkEntry[] } {
  const anchors: LinkEntry[] = [];
  const headLinks: LinkEntry[] = [];
  for (const link of page.links ?? []) {
    if (link.path === 'LINK@/href') headLinks.push(linkEntry(link, 'LINK@/href'));
    else anchors.push(linkEntry(link, 'A@/href'));
  }
  const images: LinkEntry[] = page.images.map((image) =>
    image.alt === undefined ? { path: 'IMG@/src', url: image.src } : { alt: image.alt, path: 'IMG@/src', url: image.src },
  );
  const links: LinkEntry[] = [];
  const step = images.length > 0 ? Math.max(1, Math.floor(anchors.length / images.length)) : 0;
  let nextImage = 0;
  anchors.forEach((anchor, index) => {
    links.push(anchor);
    if (nextImage < images.length && (index + 1) % step === 0) links.push(images[nextImage++]!);
  });
  while (nextImage < images.length) links.push(images[nextImage++]!);
  return { links, headLinks };
}

/** The WAT JSON Common Crawl (ia-web-commons) writes for one HTML response record. */
function watJson(page: WatPage, date: Date, offset: number): string {
  const { links, headLinks } = bodyLinks(page);
  const head: Record<string, unknown> = {};
  if (page.base !== undefined) head.Base = page.base;
  if (headLinks.length > 0) head.Link = headLinks;
  if (page.title !== undefined) head.Title = page.title;
  const entityLength = 2000 + links.length * 120;
  const headersLength = 183;
  const actualLength = entityLength + headersLength + 2;
  const digest = warcDigest(page.url);
  const metadata = {
    Container: {
      Filename: SOURCE_WARC,
      Compressed: true,
      Offset: String(offset),
      'Gzip-Metadata': {
        'Deflate-Length': String(Math.round(actualLength / 3)),
        'Header-Length': '10',
        'Footer-Length': '8',
        'Inflated-CRC': String(createHash('md5').update(page.url).digest().readInt32BE(0)),
        'Inflated-Length': String(actualLength + 600),
      },
    },
    Envelope: {
      Format: 'WARC',
      'WARC-Header-Length': '562',
      'Block-Digest': digest,
      'Actual-Content-Length': String(actualLength),
      'WARC-Header-Metadata': {
        'WARC-Type': 'response',
        'WARC-Date': warcDate(date),
        'WARC-Record-ID': `<urn:uuid:${randomUUID()}>`,
        'Content-Length': String(actualLength),
        'Content-Type': 'application/http; msgtype=response',
        'WARC-Warcinfo-ID': '<urn:uuid:00000000-0000-4000-8000-000000000000>',
        'WARC-Concurrent-To': `<urn:uuid:${randomUUID()}>`,
        'WARC-IP-Address': '127.0.0.1',
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
  };
  return JSON.stringify(metadata);
}

/** One uncompressed WARC/1.0 `metadata` record holding the WAT JSON of `page`. `offset` fills Container.Offset. */
export function watMetadataRecord(page: WatPage, date: Date = new Date(), offset = 0): Buffer {
  const body = Buffer.from(watJson(page, date, offset), 'utf8');
  return warcRecord(
    [
      ['WARC-Type', 'metadata'],
      ['WARC-Target-URI', page.url],
      ['WARC-Date', warcDate(date)],
      ['WARC-Record-ID', `<urn:uuid:${randomUUID()}>`],
      ['WARC-Refers-To', `<urn:uuid:${randomUUID()}>`],
      ['Content-Type', 'application/json'],
    ],
    body,
  );
}

function warcinfoRecord(fileName: string, date: Date): Buffer {
  const body = Buffer.from(
    `Software-Info: cah wat-writer${CRLF}Extracted-Date: ${date.toUTCString()}${CRLF}format: WARC File Format 1.0${CRLF}`,
    'utf8',
  );
  return warcRecord(
    [
      ['WARC-Type', 'warcinfo'],
      ['WARC-Date', warcDate(date)],
      ['WARC-Filename', fileName],
      ['WARC-Record-ID', `<urn:uuid:${randomUUID()}>`],
      ['Content-Type', 'application/warc-fields'],
    ],
    body,
  );
}

/** Writes whole buffers, batching small ones, waiting for the file to drain so memory stays flat. */
class BatchedWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private failure: Error | null = null;

  constructor(private readonly stream: WriteStream) {
    stream.on('error', (error) => {
      this.failure = error;
    });
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= 1 << 20) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const batch = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    if (!this.stream.write(batch)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = (): void => {
          this.stream.off('error', reject);
          resolve();
        };
        this.stream.once('drain', onDrain);
        this.stream.once('error', reject);
      });
    }
  }

  async close(): Promise<void> {
    await this.flush();
    if (this.failure) throw this.failure;
    await new Promise<void>((resolve, reject) => {
      this.stream.once('error', reject);
      this.stream.end(() => resolve());
    });
  }
}

/** Writes a WAT file: a warcinfo record, then one metadata record per page; streams, so any number of pages fits. */
export async function writeWatFile(
  path: string,
  pages: Iterable<WatPage> | AsyncIterable<WatPage>,
  opts: WriteWatOptions,
): Promise<void> {
  const writer = new BatchedWriter(createWriteStream(path));
  const encode = (record: Buffer): Buffer =>
    opts.gzip ? gzipSync(record, opts.gzipLevel === undefined ? {} : { level: opts.gzipLevel }) : record;
  const date = new Date();
  let offset = 0;
  try {
    await writer.write(encode(warcinfoRecord(basename(path), date)));
    for await (const page of pages) {
      const record = watMetadataRecord(page, date, offset);
      offset += Math.round(record.length / 3);
      await writer.write(encode(record));
    }
  } finally {
    await writer.close();
  }
}
