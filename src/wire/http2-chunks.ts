import { constants as h2, type ServerHttp2Stream } from 'node:http2';

/**
 * What the DATA chunks of one HTTP/2 stream may make the coordinator hold. Node hands JavaScript
 * the part of a DATA frame that one socket read brought as a Buffer of its own (~120 bytes of heap
 * however small) viewing that read's whole buffer (up to 64 KB), and keeps them while the stream
 * is paused; grpc-js keeps every chunk of a message until the message is whole. The windows count
 * bytes only: a peer holding the worker token and sending one-byte DATA frames made the
 * coordinator hold ~120 times the bytes (2 million: +246 MB of heap), and one-byte frames each
 * read beside 48 KB of frames nghttp2 ignores pinned 48 KB apiece.
 *
 * So a chunk small beside the buffer it views is copied before it is held unread (once read, the
 * sample stream's decoder sees to what it keeps: src/wire/bulk.ts), and small chunks are counted:
 * past the bound the stream is reset with ENHANCE_YOUR_CALM. A worker's DATA frames are 16 KB; a
 * link's segments (~1,200–1,500 bytes) split them into pieces of that size, and only a frame's two
 * ends can come out smaller, so honest streams hold a few small chunks per frame. (A path whose
 * segments are under 1 KiB would make every chunk small, and a paused stream holding its whole
 * window would pass the bound. No path a swarm uses has them.)
 */
export const SMALL_CHUNK_BYTES = 1024;
/** A chunk under a quarter of the buffer it views keeps the rest of that buffer alive for nothing. */
export const PIN_FACTOR = 4;

export function pinsFarMore(chunk: Buffer): boolean {
  return chunk.length * PIN_FACTOR < chunk.buffer.byteLength;
}
/** Small chunks a bulk stream may hold unread: a full 16 MiB window of honest 16 KB frames has ~2,000. */
export const MAX_HELD_CHUNKS = 16 * 1024;
/** Small chunks a unary call may send: its message is at most 1 MiB (MAX_UNARY_MESSAGE_BYTES), 64 frames. */
export const MAX_UNARY_CHUNKS = 1024;

/**
 * Bounds what `stream`'s chunks hold: in `held` mode (a stream its handler reads as it goes,
 * pausing at times) the small chunks received and not yet read, in `total` mode (a unary call,
 * whose handler holds its chunks until the message is whole) all small chunks received. Counts in
 * `push`, which Node's HTTP/2 core calls for every chunk, read or paused alike (tests pin this:
 * tests/hostile-peers.test.ts). `onLimit` hears of each reset.
 */
export function limitChunks(stream: ServerHttp2Stream, mode: 'held' | 'total', max: number, onLimit?: () => void): void {
  let small = 0;
  /** Chunks pushed and not yet read ('held' mode): while any wait, a chunk pushed now waits too. */
  let waiting = 0;
  const push = stream.push.bind(stream);
  stream.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
    if (!Buffer.isBuffer(chunk)) return push(chunk, encoding);
    let held = chunk;
    if ((mode === 'total' || waiting > 0) && pinsFarMore(chunk)) held = Buffer.from(chunk);
    if (chunk.length < SMALL_CHUNK_BYTES && ++small > max) {
      if (!stream.closed && !stream.destroyed) {
        stream.close(h2.NGHTTP2_ENHANCE_YOUR_CALM);
        onLimit?.();
      }
      return false;
    }
    if (mode === 'held') waiting++;
    return push(held, encoding);
  };
  // A 'data' listener would set a gRPC call flowing before grpc-js listens: 'total' mode adds none.
  if (mode === 'held') {
    stream.on('data', (chunk: Buffer) => {
      waiting--;
      if (chunk.length < SMALL_CHUNK_BYTES) small--;
    });
  }
}
