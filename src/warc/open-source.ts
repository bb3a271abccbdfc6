import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { LookupFunction } from 'node:net';
import { Readable, Transform, pipeline } from 'node:stream';
import { crc32, createGunzip, inflateRawSync, type ZlibOptions } from 'node:zlib';
import { Agent, request } from 'undici';

/** Read and inflate in large pieces: fewer callbacks, and inflation (on the libuv pool) runs ahead of parsing. */
const CHUNK = 256 * 1024;
const BUFFER_AHEAD = 4 * 1024 * 1024;
const MAX_REDIRECTIONS = 5;
/** A member larger than this (compressed or inflated) is not salvaged: the salvage inflates whole members in memory. */
const MAX_SALVAGED_MEMBER = 64 * 1024 * 1024;

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
  /**
   * Told when a gzip source holds garbage or a corrupt member after complete ones: the stream then
   * ends after the records of the complete members. Without it, that is an error of the stream,
   * which can overtake the data the stream still buffers.
   */
  onError?: (message: string) => void;
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

async function openRaw(source: string, opts: OpenSourceOptions): Promise<{ raw: Readable; size: number | null }> {
  return isUrl(source) ? openUrl(source, opts.guard, opts.signal) : openFile(source, opts.signal);
}

function isZlibError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('Z_');
}

/** Length of the gzip member header at the start of `buf`; 'short' when more bytes are needed to tell, 'bad' when it is not one. */
function gzipHeaderLength(buf: Buffer): number | 'short' | 'bad' {
  const magic = [0x1f, 0x8b, 0x08];
  for (let i = 0; i < Math.min(3, buf.length); i++) if (buf[i] !== magic[i]) return 'bad';
  if (buf.length < 10) return 'short';
  const flags = buf[3]!;
  if (flags & 0xe0) return 'bad';
  let at = 10;
  if (flags & 0x04) {
    if (buf.length < at + 2) return 'short';
    at += 2 + buf.readUInt16LE(at);
  }
  for (const flag of [0x08, 0x10]) {
    if (!(flags & flag)) continue;
    const end = buf.indexOf(0, at);
    if (end < 0) return buf.length > MAX_SALVAGED_MEMBER ? 'bad' : 'short';
    at = end + 1;
  }
  if (flags & 0x02) at += 2;
  return buf.length < at ? 'short' : at;
}

/**
 * Inflates `raw` (gzip) member by member, dropping the first `skip` inflated bytes (already
 * delivered), up to the first member that is garbage or corrupt, which `report` is told of by byte
 * offset. A truncated last member is an error, as it is from zlib's stream. Memory: one member; time:
 * linear (a member cut by a chunk boundary is retried only once the buffer has doubled).
 */
async function* salvageMembers(raw: Readable, skip: number, report: (message: string) => void): AsyncGenerator<Buffer> {
  const chunks = raw[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let buf: Buffer = Buffer.alloc(0);
  /** File offset of buf[0]. */
  let offset = 0;
  let eof = false;
  let members = 0;
  /** Reads until `buf` holds `n` bytes or the input ends; false when it ended short. */
  const need = async (n: number): Promise<boolean> => {
    const parts = [buf];
    let have = buf.length;
    while (have < n && !eof) {
      const next = await chunks.next();
      if (next.done) eof = true;
      else {
        parts.push(next.value);
        have += next.value.length;
      }
    }
    if (parts.length > 1) buf = Buffer.concat(parts, have);
    return have >= n;
  };
  const consume = (n: number): void => {
    buf = buf.subarray(n);
    offset += n;
  };
  const truncated = (): Error => new Error(`unexpected end of file: the gzip member at byte offset ${offset} is truncated (after ${members} complete members)`);
  const stop = (what: string): void =>
    report(`${what} at byte offset ${offset} of the compressed file: the records of the ${members} complete gzip members before it were read, the rest of the file was skipped`);
  try {
    for (;;) {
      if (!(await need(1))) return;
      // Zero bytes between members are padding (zlib's gunzip stops at them silently).
      let zeros = 0;
      while (zeros < buf.length && buf[zeros] === 0) zeros++;
      if (zeros > 0) {
        consume(zeros);
        continue;
      }
      let header = gzipHeaderLength(buf);
      while (header === 'short') {
        if (eof) throw truncated();
        // Doubling: a long file name field costs linear time, not a concat per chunk.
        await need(Math.max(64, buf.length * 2));
        header = gzipHeaderLength(buf);
      }
      if (header === 'bad') return stop('garbage (not a gzip member)');
      let inflated: { buffer: Buffer; engine: { bytesWritten: number } };
      for (;;) {
        try {
          inflated = inflateRawSync(buf.subarray(header), { info: true, maxOutputLength: MAX_SALVAGED_MEMBER }) as unknown as typeof inflated;
          break;
        } catch (err) {
          const e = err as { code?: string; message: string };
          if (e.code !== 'Z_BUF_ERROR') return stop(e.code === 'ERR_BUFFER_TOO_LARGE' ? 'a gzip member too large to salvage' : `a corrupt gzip member (${e.message})`);
          // The member goes on past what is buffered: all of the input is, so it is cut short.
          if (eof) throw truncated();
          if (buf.length > MAX_SALVAGED_MEMBER) return stop('a gzip member too large to salvage');
          await need(buf.length * 2);
        }
      }
      const end = header + inflated.engine.bytesWritten;
      if (!(await need(end + 8))) throw truncated();
      const out = inflated.buffer;
      if (buf.readUInt32LE(end) !== crc32(out) || buf.readUInt32LE(end + 4) !== out.length % 2 ** 32) return stop('a corrupt gzip member (CRC or length mismatch)');
      consume(end + 8);
      members++;
      if (skip >= out.length) skip -= out.length;
      else {
        yield skip > 0 ? out.subarray(skip) : out;
        skip = 0;
      }
    }
  } finally {
    await chunks.return?.();
  }
}

/**
 * zlib's gunzip over `raw`, streaming. zlib drops the output of its last step and ends with an
 * error on garbage after a member (and stops silently at a zero byte): then the source is opened
 * again and inflated member by member, the bytes already delivered skipped, so that every complete
 * member before the garbage comes through. The happy path pays nothing for this.
 */
function gunzipSalvaging(raw: Readable, reopen: () => Promise<Readable>, onError: ((message: string) => void) | undefined): Readable {
  // highWaterMark is a Transform option zlib streams pass on; @types/node's ZlibOptions omits it.
  const options: ZlibOptions & { highWaterMark: number } = { chunkSize: CHUNK, highWaterMark: BUFFER_AHEAD };
  const gunzip = createGunzip(options);
  const inflated = pipeline(raw, gunzip, () => {
    // Errors reach the consumer through the returned stream; nothing more to do here.
  });
  let rawBytes = 0;
  raw.on('data', (chunk: Buffer) => (rawBytes += chunk.length));
  async function* run(): AsyncGenerator<Buffer> {
    let delivered = 0;
    let failure: unknown = null;
    try {
      for await (const chunk of inflated as AsyncIterable<Buffer>) {
        delivered += chunk.length;
        yield chunk;
      }
      // A clean end having read every byte: the usual case.
      if (gunzip.bytesWritten >= rawBytes) return;
    } catch (err) {
      // A truncated last member (zlib's 'unexpected end of file') loses nothing: zlib delivered all it could.
      if (!isZlibError(err) || (err as { code?: string }).code === 'Z_BUF_ERROR') throw err;
      failure = err;
    } finally {
      inflated.destroy();
    }
    const again = await reopen();
    const messages: string[] = [];
    try {
      yield* salvageMembers(again, delivered, (message) => messages.push(message));
    } finally {
      again.destroy();
    }
    const message = messages[0] ?? (failure ? `${(failure as Error).message} (zlib), though every member read back whole` : null);
    if (message === null) return;
    if (!onError) throw new Error(message);
    onError(message);
  }
  return Readable.from(run(), { objectMode: false, highWaterMark: BUFFER_AHEAD });
}

/**
 * Opens a shard for reading: a local path or an http(s) URL (streamed, through `guard`, redirects
 * followed and checked, a non-2xx status is an error naming it). Decompressed when the bytes start with the gzip magic,
 * whatever the name says; multi-member gzip (one member per record, as Common Crawl writes) is read
 * through to the end. Garbage or a corrupt member after complete ones goes to `onError` (see
 * gunzipSalvaging). Other errors of the underlying stream (network, a truncated gzip member) surface
 * on the returned stream.
 */
export async function openSource(source: string, opts: OpenSourceOptions = {}): Promise<Readable> {
  const opened = await openRaw(source, opts);
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
  const reopen = async (): Promise<Readable> => (await openRaw(source, { ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.guard ? { guard: opts.guard } : {}) })).raw;
  return gunzipSalvaging(raw, reopen, opts.onError);
}
