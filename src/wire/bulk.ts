import * as grpc from '@grpc/grpc-js';
import type { IncomingHttpHeaders } from 'node:http2';
import { CahError } from '../errors.js';
import { MAX_MESSAGE_BYTES, coordinatorService, type SampleMessage, type WireSample } from './contract.js';
import { PIN_FACTOR, SMALL_CHUNK_BYTES, pinsFarMore } from './http2-chunks.js';
import { REASON_METADATA_KEY } from './reasons.js';

/**
 * The bulk sample stream: how a worker's images reach the coordinator. A plain HTTP/2 request on
 * the coordinator's gRPC port (same connection rules, TLS, tunnel and receive windows), beside the
 * gRPC calls rather than one of them: grpc-js copies every message twice on the way out (protobuf,
 * then its length prefix) and reassembles it into one fresh buffer on the way in, which cost more
 * CPU per pair than everything else the coordinator does with it (bench/RESULTS.md). Here the
 * image bytes are written straight from the worker's buffers and read into one buffer each.
 *
 * Request: POST BULK_PATH, the worker token and session in the headers (checked before a byte of
 * the body is read), the lease in BULK_ACTOR/BULK_SHARD/BULK_FENCING. Body: one frame per batch of
 * samples, each
 *
 *   u32 metadata length | u32 sample count | metadata | sample count × (u32 length | image bytes)
 *
 * where the metadata is a SampleMessage (the contract's own encoding) whose samples carry every
 * field but the image. Response body: credit grants, a u32 each; trailers: BULK_STATUS (a gRPC
 * status code), BULK_DETAILS and the refusal reason (src/wire/reasons.ts), as a gRPC call ends.
 */
export const BULK_PATH = '/cah.v1.Bulk/StreamSamples';
export const BULK_CONTENT_TYPE = 'application/x-cah-samples';
export const BULK_ACTOR = 'x-cah-actor';
export const BULK_SHARD = 'x-cah-shard';
export const BULK_FENCING = 'x-cah-fencing';
export const BULK_STATUS = 'x-cah-status';
export const BULK_DETAILS = 'x-cah-details';

/**
 * A frame's metadata is a few hundred bytes per sample; this bounds what a peer can make the reader
 * hold before any image. A frame's images are bounded as a gRPC message is (MAX_MESSAGE_BYTES).
 */
export const MAX_BULK_METADATA_BYTES = 1024 * 1024;
/** A frame carries at most this many samples (a worker sends 16). */
export const MAX_BULK_SAMPLES = 256;

/** The peer broke the framing: the stream ends with INVALID_ARGUMENT or RESOURCE_EXHAUSTED. */
export class BulkFrameError extends CahError {
  constructor(
    message: string,
    readonly status: grpc.status = grpc.status.INVALID_ARGUMENT,
  ) {
    super('CAH_BULK_FRAME', message);
  }
}

function sampleCodec(): { encode: (m: SampleMessage) => Buffer; decode: (b: Buffer) => SampleMessage } {
  const method = coordinatorService().service.StreamSamples;
  return { encode: (m) => method.requestSerialize(m), decode: (b) => method.requestDeserialize(b) };
}

const EMPTY = Buffer.alloc(0);
/** Small chunks (SMALL_CHUNK_BYTES, src/wire/http2-chunks.ts) are copied into a shared block of this size. */
const SMALL_BLOCK_BYTES = 64 * 1024;
/**
 * A chunk is a view of the socket read that brought it (up to 64 KB), and the decoder keeps chunks
 * until the image they carry is whole. Once their buffers outweigh the bytes it holds PIN_FACTOR
 * times over (plus this slack), it copies the chunks that view far larger buffers: 1 KiB DATA
 * frames each read beside 48 KB of frames HTTP/2 ignores pinned 49–62 times their bytes. Honest
 * streams stay far below, and copy nothing.
 */
const PINNED_SLACK_BYTES = 1024 * 1024;

/**
 * The buffers of one frame, in order, for a writev: the images are the caller's own buffers, not
 * copies. The lease is not repeated per frame (it is in the request headers).
 */
export function encodeBulkFrame(samples: WireSample[]): Buffer[] {
  const metadata = sampleCodec().encode({ actorId: '', shardId: 0, fencingToken: 0, samples: samples.map((s) => ({ ...s, jpeg: EMPTY })) });
  const head = Buffer.allocUnsafe(8);
  head.writeUInt32BE(metadata.length, 0);
  head.writeUInt32BE(samples.length, 4);
  const out: Buffer[] = [head, metadata];
  for (const sample of samples) {
    const length = Buffer.allocUnsafe(4);
    length.writeUInt32BE(sample.jpeg.length, 0);
    out.push(length);
    if (sample.jpeg.length > 0) out.push(sample.jpeg);
  }
  return out;
}

/** How a bulk stream ends: a gRPC status code, its details and, for a refusal, its declared reason (src/wire/reasons.ts). */
export interface BulkStatus {
  code: grpc.status;
  details: string;
  reason?: string;
}

/** The response headers or trailers carrying `status` (details URI-encoded: header values cannot hold control characters). */
export function statusHeaders(status: BulkStatus): Record<string, string> {
  const out: Record<string, string> = { [BULK_STATUS]: String(status.code), [BULK_DETAILS]: encodeURIComponent(status.details.slice(0, 1024)) };
  if (status.reason) out[REASON_METADATA_KEY] = status.reason;
  return out;
}

/**
 * The status response headers or trailers carry: the bulk stream's, or grpc-js's own (a coordinator
 * of an earlier version answers this path UNIMPLEMENTED); null when they carry none. A code outside
 * gRPC's is UNKNOWN.
 */
export function statusOf(headers: IncomingHttpHeaders): BulkStatus | null {
  const grpcStatus = headers['grpc-status'];
  if (headers[BULK_STATUS] === undefined && typeof grpcStatus === 'string') {
    return { code: knownCode(grpcStatus), details: `the coordinator answered the bulk sample stream: ${String(headers['grpc-message'] ?? '')}` };
  }
  const code = headers[BULK_STATUS];
  if (typeof code !== 'string' || !/^\d{1,2}$/.test(code)) return null;
  const raw = headers[BULK_DETAILS];
  let details = '';
  try {
    details = typeof raw === 'string' ? decodeURIComponent(raw) : '';
  } catch {
    details = String(raw);
  }
  const reason = headers[REASON_METADATA_KEY];
  return { code: knownCode(code), details, ...(typeof reason === 'string' ? { reason } : {}) };
}

function knownCode(value: string): grpc.status {
  const code = Number(value);
  return Number.isInteger(code) && code >= 0 && code <= grpc.status.UNAUTHENTICATED ? (code as grpc.status) : grpc.status.UNKNOWN;
}

export function encodeCredits(credits: number): Buffer {
  const out = Buffer.allocUnsafe(4);
  out.writeUInt32BE(credits, 0);
  return out;
}

/**
 * Reads frames from the chunks of a request body as they arrive. Bytes are copied once, into the
 * metadata or the image they belong to; nothing larger than one image or one frame's metadata is
 * ever assembled, and every length is checked before it is buffered.
 */
export class BulkFrameDecoder {
  /** Chunks not yet consumed, from `head` on (an index, not shift(): a peer can send 1-byte DATA frames). */
  private chunks: Buffer[] = [];
  private head = 0;
  private buffered = 0;
  /** What the chunks from `head` on keep alive (their buffers' sizes), and up to where they were compacted. */
  private pinned = 0;
  private compactedTo = 0;
  /** The block small chunks are copied into, its bytes used, and its view's index in `chunks`. */
  private block: Buffer | null = null;
  private blockUsed = 0;
  private blockIndex = -1;
  /** The frame being read: its metadata once decoded, the images read so far and their bytes. */
  private frame: { samples: WireSample[]; next: number; bytes: number } | null = null;
  private readonly codec = sampleCodec();

  /** `maxFrameBytes`: what one frame's images may add up to (as a gRPC message's size limit); one image is at most that too. */
  constructor(private readonly maxFrameBytes: number = MAX_MESSAGE_BYTES) {}

  /** Bytes received and not yet part of a finished frame's image. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /** Adds a chunk; returns the frames it completes (each a batch of samples with their images). */
  push(chunk: Buffer): WireSample[][] {
    if (chunk.length > 0) this.append(chunk);
    const done: WireSample[][] = [];
    for (;;) {
      if (!this.frame) {
        if (this.buffered < 8) break;
        const head = this.peek(8);
        const metaLength = head.readUInt32BE(0);
        const count = head.readUInt32BE(4);
        if (metaLength > MAX_BULK_METADATA_BYTES) throw new BulkFrameError(`frame metadata of ${metaLength} bytes (at most ${MAX_BULK_METADATA_BYTES})`, grpc.status.RESOURCE_EXHAUSTED);
        if (count > MAX_BULK_SAMPLES) throw new BulkFrameError(`frame of ${count} samples (at most ${MAX_BULK_SAMPLES})`, grpc.status.RESOURCE_EXHAUSTED);
        // An empty frame would cost a decode and need no credit: a peer could send millions.
        if (count === 0) throw new BulkFrameError('frame of 0 samples');
        if (this.buffered < 8 + metaLength) break;
        this.take(8);
        const samples = this.decodeMetadata(this.take(metaLength));
        if (samples.length !== count) throw new BulkFrameError(`frame declares ${count} samples and its metadata holds ${samples.length}`);
        this.frame = { samples, next: 0, bytes: 0 };
      }
      const frame = this.frame;
      if (frame.next === frame.samples.length) {
        done.push(frame.samples);
        this.frame = null;
        continue;
      }
      if (this.buffered < 4) break;
      const length = this.peek(4).readUInt32BE(0);
      if (frame.bytes + length > this.maxFrameBytes) {
        throw new BulkFrameError(`frame of more than ${this.maxFrameBytes} bytes of images (an image of ${length} after ${frame.bytes})`, grpc.status.RESOURCE_EXHAUSTED);
      }
      if (this.buffered < 4 + length) break;
      this.take(4);
      frame.samples[frame.next]!.jpeg = length === 0 ? EMPTY : this.take(length);
      frame.bytes += length;
      frame.next++;
    }
    return done;
  }

  /**
   * Buffers a chunk. Small ones (a peer may send 1-byte DATA frames, each its own Buffer object,
   * ~100 bytes of heap) are copied into a shared 64 KiB block, so what is held stays about the
   * bytes received rather than a hundred times that.
   */
  private append(chunk: Buffer): void {
    this.buffered += chunk.length;
    if (chunk.length >= SMALL_CHUNK_BYTES) {
      this.block = null;
      this.chunks.push(chunk);
      this.pinned += chunk.buffer.byteLength;
      if (this.pinned > PIN_FACTOR * this.buffered + PINNED_SLACK_BYTES) this.compact();
      return;
    }
    const last = this.chunks.length - 1;
    if (!this.block || this.blockIndex !== last || last < this.head || this.blockUsed + chunk.length > this.block.length) {
      this.block = Buffer.allocUnsafe(SMALL_BLOCK_BYTES);
      this.blockUsed = 0;
      this.chunks.push(this.block.subarray(0, 0));
      this.blockIndex = this.chunks.length - 1;
      this.pinned += this.block.buffer.byteLength;
    }
    chunk.copy(this.block, this.blockUsed);
    this.blockUsed += chunk.length;
    const view = this.chunks[this.blockIndex]!;
    this.chunks[this.blockIndex] = this.block.subarray(view.byteOffset - this.block.byteOffset, this.blockUsed);
  }

  /**
   * Copies the chunks not yet looked at that view buffers far larger than themselves: each chunk at
   * most once. Called with no block open (a block's view is still being extended in place).
   */
  private compact(): void {
    for (let i = Math.max(this.head, this.compactedTo); i < this.chunks.length; i++) {
      const chunk = this.chunks[i]!;
      if (!pinsFarMore(chunk)) continue;
      const copy = Buffer.allocUnsafeSlow(chunk.length);
      chunk.copy(copy);
      this.chunks[i] = copy;
      this.pinned += copy.buffer.byteLength - chunk.buffer.byteLength;
    }
    this.compactedTo = this.chunks.length;
  }

  /** True when the body ended on a frame boundary. */
  get atBoundary(): boolean {
    return this.frame === null && this.buffered === 0;
  }

  private decodeMetadata(bytes: Buffer): WireSample[] {
    try {
      return this.codec.decode(bytes).samples;
    } catch (err) {
      throw new BulkFrameError(`frame metadata does not decode: ${(err as Error).message}`);
    }
  }

  /** The next `n` buffered bytes (n ≤ 8) without consuming them: only the chunks holding them are read. */
  private peek(n: number): Buffer {
    const first = this.chunks[this.head]!;
    if (first.length >= n) return first;
    const out = Buffer.allocUnsafe(n);
    for (let i = this.head, filled = 0; filled < n; i++) filled += this.chunks[i]!.copy(out, filled, 0, n - filled);
    return out;
  }

  /** Consumes `n` bytes into a buffer of their own. */
  private take(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[this.head]!;
      const used = Math.min(chunk.length, n - filled);
      chunk.copy(out, filled, 0, used);
      filled += used;
      if (used === chunk.length) {
        this.pinned -= chunk.buffer.byteLength;
        this.head++;
      } else this.chunks[this.head] = chunk.subarray(used);
    }
    this.buffered -= n;
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
      this.block = null;
      this.pinned = 0;
      this.compactedTo = 0;
    } else if (this.head > 1024 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.compactedTo = Math.max(0, this.compactedTo - this.head);
      this.head = 0;
      this.block = null;
    }
    return out;
  }
}

/** Reads u32 credit grants from the chunks of the response body. */
export class CreditDecoder {
  private rest: Buffer = EMPTY;

  push(chunk: Buffer): number[] {
    const data = this.rest.length > 0 ? Buffer.concat([this.rest, chunk]) : chunk;
    const grants: number[] = [];
    let at = 0;
    for (; at + 4 <= data.length; at += 4) grants.push(data.readUInt32BE(at));
    this.rest = data.subarray(at);
    return grants;
  }
}
