import type * as grpc from '@grpc/grpc-js';
import type { Http2SecureServer, Http2Server, ServerHttp2Session } from 'node:http2';

/**
 * HTTP/2 receive windows for the coordinator's gRPC server. grpc-js keeps HTTP/2's 64 KB defaults
 * (grpc/grpc-node#3058), so a worker could send one window per round trip: ~2 MB/s at 30 ms. A
 * sender needs a window of at least bandwidth × RTT, and in practice about twice that: the window
 * is handed back only as the coordinator reads, so half of it is often waiting on the event loop.
 * With 4 MiB a single sender stalled at ~50 MB/s at 30 ms (bench/RESULTS.md); 16 MiB per stream
 * leaves it bounded by its credits and CPU. Credits stay the real limit on what a worker may send.
 *
 * Memory: Node hands the connection's window back as data arrives, a stream's only as grpc-js
 * reads the stream, so what one connection can make the server hold unread is bounded by
 * MAX_CONCURRENT_STREAMS × STREAM_WINDOW_BYTES (256 MiB), and what it has read by the sample
 * stream's byte bound (src/coordinator/sample-stream.ts) plus a message being decoded per stream.
 * Unauthenticated streams are refused before their body is read.
 */
export const STREAM_WINDOW_BYTES = 16 * 1024 * 1024;
/** The connection's window covers several streams in flight at once. */
export const CONNECTION_WINDOW_BYTES = 32 * 1024 * 1024;
/** A worker uses one sample stream per shard it works on and a few unary calls. */
export const MAX_CONCURRENT_STREAMS = 16;

export interface ReceiveWindows {
  streamBytes: number;
  connectionBytes: number;
}

export const DEFAULT_RECEIVE_WINDOWS: ReceiveWindows = { streamBytes: STREAM_WINDOW_BYTES, connectionBytes: CONNECTION_WINDOW_BYTES };

const widened = new WeakSet<object>();

/**
 * The HTTP/2 servers grpc-js listens with: one per bound address and one per connection injector.
 * They sit in a private map: if a grpc-js upgrade moves it, this throws at startup rather than
 * letting the windows or the bulk route (src/coordinator/bulk-stream.ts) silently go missing.
 */
export function http2ServersOf(server: grpc.Server): (Http2Server | Http2SecureServer)[] {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map)) throw new Error('grpc-js no longer exposes its HTTP/2 servers (http2Servers): update src/wire/http2-windows.ts');
  return [...(servers.keys() as IterableIterator<Http2Server | Http2SecureServer>)];
}

/**
 * Applies `windows` to every HTTP/2 server `server` listens with (call after each bind): the
 * stream window through the SETTINGS sent to each new client, the connection window through a
 * WINDOW_UPDATE when the session opens.
 */
export function widenReceiveWindows(server: grpc.Server, windows: ReceiveWindows = DEFAULT_RECEIVE_WINDOWS): void {
  for (const h2 of http2ServersOf(server)) {
    if (widened.has(h2)) continue;
    widened.add(h2);
    h2.updateSettings({ initialWindowSize: windows.streamBytes });
    h2.on('session', (session: ServerHttp2Session) => session.setLocalWindowSize(windows.connectionBytes));
  }
}
