import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { request } from 'undici';

const CHUNK = 256 * 1024;

/**
 * Opens a shard: a local path or an http(s) URL, decompressed when it starts with the gzip magic
 * (the name is not trusted). Multi-member gzip (one member per record, as Common Crawl writes) is
 * read through to the end.
 */
export async function openSource(source: string, opts: { signal?: AbortSignal } = {}): Promise<Readable> {
  let raw: Readable;
  if (/^https?:\/\//i.test(source)) {
    const res = await request(source, { method: 'GET', maxRedirections: 5, ...(opts.signal ? { signal: opts.signal } : {}) } as Parameters<typeof request>[1]);
    if (res.statusCode < 200 || res.statusCode >= 300) {
      res.body.destroy();
      throw new Error(`HTTP ${res.statusCode} for ${source}`);
    }
    raw = res.body;
  } else {
    const info = await stat(source).catch(() => null);
    if (!info || !info.isFile()) throw new Error(`no such file: ${source}`);
    raw = createReadStream(source, { highWaterMark: CHUNK, ...(opts.signal ? { signal: opts.signal } : {}) });
  }
  return sniffGzip(raw);
}

/** Peeks at the first bytes and pipes through gunzip when they are the gzip magic. */
async function sniffGzip(raw: Readable): Promise<Readable> {
  const first = await new Promise<Buffer | null>((resolve, reject) => {
    const onReadable = (): void => {
      const chunk = raw.read() as Buffer | null;
      cleanup();
      resolve(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(null);
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const cleanup = (): void => {
      raw.off('readable', onReadable);
      raw.off('end', onEnd);
      raw.off('error', onError);
    };
    raw.once('readable', onReadable);
    raw.once('end', onEnd);
    raw.once('error', onError);
  });
  const out = new PassThrough({ highWaterMark: CHUNK });
  if (!first) {
    out.end();
    return out;
  }
  const gzip = first.length >= 2 && first[0] === 0x1f && first[1] === 0x8b;
  const target = gzip ? createGunzip({ chunkSize: CHUNK }) : out;
  raw.on('error', (err) => target.destroy(err));
  if (gzip) {
    target.on('error', (err) => out.destroy(new Error(`gzip: ${err.message}`)));
    target.pipe(out);
  }
  target.write(first);
  raw.pipe(target);
  return out;
}
