import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Transform, pipeline, type Readable } from 'node:stream';
import { createGunzip, type ZlibOptions } from 'node:zlib';
import { getGlobalDispatcher, interceptors, request } from 'undici';

/** Read and inflate in large pieces: fewer callbacks, and inflation (on the libuv pool) runs ahead of parsing. */
const CHUNK = 256 * 1024;
const BUFFER_AHEAD = 4 * 1024 * 1024;
const MAX_REDIRECTIONS = 5;

/** How far a source has been read, in raw (still compressed) bytes; total null when unknown. */
export interface SourceProgress {
  bytesRead: number;
  bytesTotal: number | null;
}

export interface OpenSourceOptions {
  signal?: AbortSignal;
  /** Updated as the raw bytes are read (progress within a shard). */
  progress?: SourceProgress;
}

function isUrl(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

async function openUrl(url: string, signal: AbortSignal | undefined): Promise<{ raw: Readable; size: number | null }> {
  const dispatcher = getGlobalDispatcher().compose(interceptors.redirect({ maxRedirections: MAX_REDIRECTIONS }));
  const res = await request(url, { method: 'GET', dispatcher, highWaterMark: CHUNK, ...(signal ? { signal } : {}) });
  if (res.statusCode < 200 || res.statusCode > 299) {
    await res.body.dump().catch(() => undefined);
    throw new Error(`HTTP ${res.statusCode} fetching ${url}`);
  }
  const length = Number(res.headers['content-length']);
  return { raw: res.body, size: Number.isFinite(length) && length > 0 ? length : null };
}

async function openFile(path: string, signal: AbortSignal | undefined): Promise<{ raw: Readable; size: number | null }> {
  const info = await stat(path).catch(() => null);
  if (!info) throw new Error(`no such file: ${path}`);
  if (!info.isFile()) throw new Error(`not a file: ${path}`);
  return { raw: createReadStream(path, { highWaterMark: CHUNK, ...(signal ? { signal } : {}) }), size: info.size };
}

/** Counts the bytes flowing through into `progress`. */
function counted(raw: Readable, progress: SourceProgress): Readable {
  const counter = new Transform({
    highWaterMark: CHUNK,
    transform(chunk: Buffer, _encoding, done) {
      progress.bytesRead += chunk.length;
      done(null, chunk);
    },
  });
  return pipeline(raw, counter, () => {
    // Errors reach the consumer through the returned stream.
  });
}

/** The first chunk of `stream` (pushed back, so nothing is lost), or null when it is empty. */
async function peek(stream: Readable): Promise<Buffer | null> {
  for (;;) {
    const chunk = stream.read() as Buffer | null;
    if (chunk !== null) {
      stream.unshift(chunk);
      return chunk;
    }
    if (stream.readableEnded) return null;
    await new Promise<void>((resolve, reject) => {
      const settle = (error?: Error): void => {
        stream.off('readable', settle);
        stream.off('end', settle);
        stream.off('error', settle);
        if (error) reject(error);
        else resolve();
      };
      stream.on('readable', settle);
      stream.on('end', settle);
      stream.on('error', settle);
    });
    if (stream.readableEnded) return null;
  }
}

/**
 * Opens a shard for reading: a local path or an http(s) URL (streamed, redirects followed, a
 * non-2xx status is an error naming it). Decompressed when the bytes start with the gzip magic,
 * whatever the name says; multi-member gzip (one member per record, as Common Crawl writes) is read
 * through to the end. Errors of the underlying stream (network, corrupt gzip) surface on the
 * returned stream.
 */
export async function openSource(source: string, opts: OpenSourceOptions = {}): Promise<Readable> {
  const opened = isUrl(source) ? await openUrl(source, opts.signal) : await openFile(source, opts.signal);
  if (opts.progress) opts.progress.bytesTotal = opened.size;
  const raw = opts.progress ? counted(opened.raw, opts.progress) : opened.raw;
  let first: Buffer | null;
  try {
    first = await peek(raw);
  } catch (error) {
    raw.destroy();
    throw error;
  }
  if (first === null || first.length < 2 || first[0] !== 0x1f || first[1] !== 0x8b) return raw;
  // highWaterMark is a Transform option zlib streams pass on; @types/node's ZlibOptions omits it.
  const options: ZlibOptions & { highWaterMark: number } = { chunkSize: CHUNK, highWaterMark: BUFFER_AHEAD };
  const gunzip = createGunzip(options);
  return pipeline(raw, gunzip, () => {
    // Errors reach the consumer through the returned stream; nothing more to do here.
  });
}
