import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { LookupFunction } from 'node:net';
import { Transform, pipeline, type Readable } from 'node:stream';
import { createGunzip, type ZlibOptions } from 'node:zlib';
import { Agent, request } from 'undici';

/** Read and inflate in large pieces: fewer callbacks, and inflation (on the libuv pool) runs ahead of parsing. */
const CHUNK = 256 * 1024;
const BUFFER_AHEAD = 4 * 1024 * 1024;
const MAX_REDIRECTIONS = 5;

/**
 * What may be fetched (the worker's SSRF rules, given by the caller): `check` refuses a URL before
 * any request (scheme, IP literal), `lookup` hands sockets only allowed addresses.
 */
export interface UrlGuard {
  lookup: LookupFunction;
  check(url: URL): string | null;
}

/** How far a source has been read, in raw (still compressed) bytes; total null when unknown. */
export interface SourceProgress {
  bytesRead: number;
  bytesTotal: number | null;
}

export interface OpenSourceOptions {
  signal?: AbortSignal;
  /** Required to open a URL: shard sources obey the same address rules as images. */
  guard?: UrlGuard;
  /** Updated as the raw bytes are read (progress within a shard). */
  progress?: SourceProgress;
}

function isUrl(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

async function openUrl(url: string, guard: UrlGuard | undefined, signal: AbortSignal | undefined): Promise<{ raw: Readable; size: number | null }> {
  if (!guard) throw new Error(`refused: ${url}: no address rules to fetch it under`);
  const agent = new Agent({ connect: { lookup: guard.lookup } });
  try {
    let current = new URL(url);
    // Redirects by hand: every hop is checked like the first.
    for (let hop = 0; ; hop++) {
      const refused = guard.check(current);
      if (refused) throw new Error(refused);
      const res = await request(current, { method: 'GET', dispatcher: agent, highWaterMark: CHUNK, ...(signal ? { signal } : {}) });
      const location = res.headers['location'];
      if (res.statusCode >= 300 && res.statusCode < 400 && location) {
        await res.body.dump().catch(() => undefined);
        if (hop >= MAX_REDIRECTIONS) throw new Error(`too many redirects fetching ${url}`);
        current = new URL(String(location), current);
        continue;
      }
      if (res.statusCode < 200 || res.statusCode > 299) {
        await res.body.dump().catch(() => undefined);
        throw new Error(`HTTP ${res.statusCode} fetching ${url}`);
      }
      res.body.once('close', () => void agent.close());
      const length = Number(res.headers['content-length']);
      return { raw: res.body, size: Number.isFinite(length) && length > 0 ? length : null };
    }
  } catch (err) {
    void agent.close();
    const e = err as { message?: string; cause?: { message?: string } };
    // A refused lookup surfaces as the connection error's cause.
    if (e.cause?.message?.startsWith('refused:')) throw new Error(e.cause.message);
    throw err;
  }
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
 * Opens a shard for reading: a local path or an http(s) URL (streamed, through `guard`, redirects
 * followed and checked, a non-2xx status is an error naming it). Decompressed when the bytes start with the gzip magic,
 * whatever the name says; multi-member gzip (one member per record, as Common Crawl writes) is read
 * through to the end. Errors of the underlying stream (network, corrupt gzip) surface on the
 * returned stream.
 */
export async function openSource(source: string, opts: OpenSourceOptions = {}): Promise<Readable> {
  const opened = isUrl(source) ? await openUrl(source, opts.guard, opts.signal) : await openFile(source, opts.signal);
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
