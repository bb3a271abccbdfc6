import { constants as h2, type ServerHttp2Stream } from 'node:http2';

/**
 * How many DATA chunks one HTTP/2 stream may make the coordinator hold. Node hands each DATA
 * frame's payload to JavaScript as a Buffer of its own, ~120 bytes of heap however small the
 * payload, and keeps them while the stream is paused; grpc-js keeps every chunk of a message until
 * the message is whole. The windows bound bytes, not chunks: a peer holding the worker token and
 * sending one-byte DATA frames made the coordinator hold ~120 times what the windows admit (2
 * million of them: +246 MB of heap, on a paused sample stream and in a gRPC message alike; the
 * 16 MiB stream window would admit 16 million). A worker's frames are up to 16 KB, so these bounds
 * sit far above anything it sends, and past them the stream is reset with ENHANCE_YOUR_CALM.
 */
export const MAX_HELD_CHUNKS = 16 * 1024;
/** A unary call's message is at most 1 MiB (MAX_UNARY_MESSAGE_BYTES): 64 full frames. */
export const MAX_UNARY_CHUNKS = 1024;

/**
 * Resets `stream` once it has received more than `max` DATA chunks that are still held: not yet
 * read (`held`: a stream its handler reads as it goes, possibly pausing), or received at all
 * (`total`: a unary call, whose handler holds its chunks until the message is whole).
 * Counts in `push`, which Node's HTTP/2 core calls for every chunk, read or paused alike (a test
 * pins this: tests/hostile-peers.test.ts).
 */
export function limitChunks(stream: ServerHttp2Stream, mode: 'held' | 'total', max: number): void {
  let received = 0;
  let read = 0;
  const push = stream.push.bind(stream);
  stream.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
    if (chunk === null || chunk === undefined) return push(chunk, encoding);
    received++;
    if (received - read <= max) return push(chunk, encoding);
    if (!stream.closed && !stream.destroyed) stream.close(h2.NGHTTP2_ENHANCE_YOUR_CALM);
    return false;
  };
  if (mode === 'held') stream.on('data', () => read++);
}
