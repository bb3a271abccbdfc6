import { Parser } from 'htmlparser2';
import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync } from 'node:zlib';
import { isLicenseUrl, type PageImages, type RawImage } from './page.js';

/** Decoded bodies larger than this are cut off: an image page is never this big, a zip bomb is. */
const MAX_BODY_BYTES = 32 * 1024 * 1024;
const HEADER_SNIFF_BYTES = 4096;

interface HttpResponse {
  status: number;
  headers: Map<string, string>;
  body: Buffer;
}

/** Status line and headers of an HTTP/1.x response as stored in a WARC response record (CRLF or bare LF lines). */
function parseHttpResponse(content: Buffer): HttpResponse {
  const headers = new Map<string, string>();
  let statusLine: string | null = null;
  let lineStart = 0;
  for (;;) {
    const lineEnd = content.indexOf(0x0a, lineStart);
    if (lineEnd < 0) throw new Error('no end of HTTP headers');
    const line = content.toString('latin1', lineStart, content[lineEnd - 1] === 0x0d ? lineEnd - 1 : lineEnd);
    lineStart = lineEnd + 1;
    if (statusLine === null) {
      statusLine = line;
      continue;
    }
    if (line === '') break;
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  const status = /^HTTP\/\d(?:\.\d)?\s+(\d{3})/.exec(statusLine);
  if (!status) throw new Error(`not an HTTP response: ${JSON.stringify(statusLine.slice(0, 40))}`);
  return { status: Number(status[1]), headers, body: content.subarray(lineStart) };
}

function dechunk(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let pos = 0;
  for (;;) {
    const lineEnd = body.indexOf('\n', pos);
    if (lineEnd < 0) break;
    const size = parseInt(body.toString('latin1', pos, lineEnd).split(';')[0]!.trim(), 16);
    if (!Number.isFinite(size)) throw new Error('broken chunked transfer-encoding');
    if (size === 0) break;
    parts.push(body.subarray(lineEnd + 1, lineEnd + 1 + size));
    pos = lineEnd + 1 + size;
    while (body[pos] === 0x0d || body[pos] === 0x0a) pos++;
  }
  return Buffer.concat(parts);
}

/**
 * Undoes Content-Encoding. Crawlers often store the body already decoded but keep the header
 * (Common Crawl 2014 did), so a body that does not decode is taken as it is.
 */
function decodeContent(body: Buffer, encoding: string): Buffer {
  const options = { maxOutputLength: MAX_BODY_BYTES };
  const coding = encoding.toLowerCase();
  try {
    if ((coding === 'gzip' || coding === 'x-gzip') && body[0] === 0x1f && body[1] === 0x8b) return gunzipSync(body, options);
    // HTTP's deflate is zlib-wrapped, but some servers send raw deflate.
    if (coding === 'deflate') return body[0] === 0x78 ? inflateSync(body, options) : inflateRawSync(body, options);
    if (coding === 'br') return brotliDecompressSync(body, options);
  } catch {
    return body;
  }
  return body;
}

/** Charset from the Content-Type header, else from a `<meta>` near the start of the document; utf-8 by default. */
function charsetOf(contentType: string, body: Buffer): string {
  const declared = /charset\s*=\s*["']?([\w.:-]+)/i.exec(contentType)?.[1];
  if (declared) return declared.toLowerCase();
  const head = body.toString('latin1', 0, Math.min(body.length, HEADER_SNIFF_BYTES));
  return /<meta[^>]+charset\s*=\s*["']?([\w.:-]+)/i.exec(head)?.[1]?.toLowerCase() ?? 'utf-8';
}

function decodeText(body: Buffer, charset: string): string {
  if (charset === 'utf-8' || charset === 'utf8' || charset === 'us-ascii' || charset === 'ascii') return body.toString('utf8');
  try {
    return new TextDecoder(charset).decode(body);
  } catch {
    return body.toString('utf8');
  }
}

function looksLikeHtml(contentType: string, body: Buffer): boolean {
  if (contentType) return /\b(text\/html|application\/xhtml\+xml)\b/i.test(contentType);
  return /^\s*(<!doctype html|<html)/i.test(body.toString('latin1', 0, Math.min(body.length, 512)));
}

/**
 * Images of a WARC `response` record holding an HTML page (null for anything else): the HTTP
 * message is parsed (chunked transfer-encoding and gzip/deflate/br content-encoding undone), the
 * body decoded in its declared charset and run through htmlparser2 for `<img src alt>`,
 * `<base href>` and a Creative Commons `<a|link rel=license href>`. Throws on a broken message.
 */
export function htmlPageImages(content: Buffer, pageUrl: string): PageImages | null {
  const response = parseHttpResponse(content);
  if (response.status < 200 || response.status > 299) return null;
  const contentType = response.headers.get('content-type') ?? '';
  let body = response.body;
  if (/\bchunked\b/i.test(response.headers.get('transfer-encoding') ?? '')) body = dechunk(body);
  body = decodeContent(body, response.headers.get('content-encoding')?.trim() ?? '');
  if (!looksLikeHtml(contentType, body)) return null;

  const images: RawImage[] = [];
  let base: string | null = null;
  let license: string | null = null;
  const parser = new Parser(
    {
      onopentag(name, attrs) {
        if (name === 'img') {
          const src = attrs['src'];
          const alt = attrs['alt'];
          if (src && alt) images.push({ src, alt });
        } else if (name === 'base') {
          if (base === null && attrs['href']) base = attrs['href'];
        } else if (name === 'a' || name === 'link') {
          const href = attrs['href']?.trim();
          if (license === null && href && isLicenseUrl(href)) license = href;
        }
      },
    },
    { decodeEntities: true },
  );
  parser.write(decodeText(body, charsetOf(contentType, body)));
  parser.end();
  return { pageUrl, base, license, images };
}
