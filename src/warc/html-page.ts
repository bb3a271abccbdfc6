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

const CHUNK_SIZE_LINE = /^([0-9a-f]+)[ \t]*(?:;[^\r\n]*)?\r?$/i;

/**
 * Undoes chunked transfer-encoding. A body that does not start with a chunk-size line was stored
 * de-chunked under the original header and is taken as it is; a cut-off body keeps the chunks it has.
 */
function dechunk(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let pos = 0;
  for (;;) {
    const lineEnd = body.indexOf(0x0a, pos);
    const size = lineEnd < 0 ? null : CHUNK_SIZE_LINE.exec(body.toString('latin1', pos, lineEnd));
    if (!size) return parts.length === 0 && pos === 0 ? body : Buffer.concat(parts);
    const length = parseInt(size[1]!, 16);
    if (length === 0) return Buffer.concat(parts);
    parts.push(body.subarray(lineEnd + 1, lineEnd + 1 + length));
    pos = lineEnd + 1 + length;
    if (body[pos] === 0x0d) pos++;
    if (body[pos] === 0x0a) pos++;
  }
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

/** WHATWG's windows-1252 at 0x80–0x9F (where it differs from latin1); 0 where it keeps the C1 control. */
const WINDOWS_1252_C1 = [
  0x20ac, 0, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017d, 0,
  0, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0, 0x017e, 0x0178,
];
/** Labels the Encoding Standard maps to windows-1252 (Node 20's TextDecoder decodes them as plain latin1). */
const WINDOWS_1252_LABELS = new Set(['windows-1252', 'cp1252', 'iso-8859-1', 'iso8859-1', 'latin1', 'l1', 'us-ascii', 'ascii', 'x-cp1252', 'cp819', 'ibm819']);

function decodeWindows1252(body: Buffer): string {
  return body.toString('latin1').replace(/[\x80-\x9f]/g, (c) => {
    const mapped = WINDOWS_1252_C1[c.charCodeAt(0) - 0x80]!;
    return mapped ? String.fromCharCode(mapped) : c;
  });
}

function decodeText(body: Buffer, charset: string): string {
  if (charset === 'utf-8' || charset === 'utf8') return body.toString('utf8');
  if (WINDOWS_1252_LABELS.has(charset)) return decodeWindows1252(body);
  try {
    return new TextDecoder(charset).decode(body);
  } catch {
    return body.toString('utf8');
  }
}

const HTML_TYPE = /\b(text\/html|application\/xhtml\+xml)\b/i;

/** Without a Content-Type, the document itself says whether it is HTML. */
function startsLikeHtml(body: Buffer): boolean {
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
  if (contentType && !HTML_TYPE.test(contentType)) return null;
  let body = response.body;
  if (/\bchunked\b/i.test(response.headers.get('transfer-encoding') ?? '')) body = dechunk(body);
  body = decodeContent(body, response.headers.get('content-encoding')?.trim() ?? '');
  if (!contentType && !startsLikeHtml(body)) return null;

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
