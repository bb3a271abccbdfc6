import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { GRPC_SAMPLE_STREAM_REFUSED, MAX_UNARY_MESSAGE_BYTES, bindServer, createGrpcServer, type CoordinatorHandlers } from '../src/coordinator/service.js';
import { MAX_MESSAGE_BYTES, TOKEN_METADATA_KEY, coordinatorService, type WireSample } from '../src/wire/contract.js';
import { CONNECTION_WINDOW_BYTES, MAX_CONCURRENT_STREAMS, STREAM_WINDOW_BYTES } from '../src/wire/http2-windows.js';
import { CoordinatorClient, isStatus } from '../src/worker/rpc.js';

const TOKEN = 't'.repeat(64);
const calls = { register: 0, claimKeys: 0, streams: 0 };
let server: grpc.Server;
let port: number;

const handlers: CoordinatorHandlers = {
  register: () => (calls.register++, { actorId: 'a1', settings: null as never }),
  leaseShard: () => ({ hasShard: false, shard: null, retryAfterMs: 10, drained: true }),
  heartbeat: () => ({ revokedShardIds: [], drain: false }),
  claimKeys: (req) => (calls.claimKeys++, { newKeys: req.keys }),
  completeShard: async () => ({ kept: 0, outputShard: '' }),
  failShard: async () => ({ willRetry: false }),
  streamSamples: (stream) => {
    calls.streams++;
    stream.on('data', () => undefined);
    stream.on('end', () => stream.end());
  },
};

before(async () => {
  server = createGrpcServer(handlers, TOKEN, MAX_MESSAGE_BYTES);
  port = await bindServer(server, '127.0.0.1:0');
});

after(async () => {
  await new Promise<void>((r) => server.tryShutdown(() => r()));
});

function connectH2(): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  return new Promise((resolve, reject) => {
    session.once('remoteSettings', () => resolve(session));
    session.once('error', reject);
  });
}

/**
 * A hostile peer without the token: one gRPC call whose single message announces `bytes` and then
 * streams them (one reused buffer, so the attacker itself stays small). Resolves to the grpc-status
 * the server answered with.
 */
function hugeUnauthenticatedCall(session: http2.ClientHttp2Session, path: string, bytes: number): Promise<string> {
  const stream = session.request({
    ':method': 'POST',
    ':path': path,
    'content-type': 'application/grpc',
    te: 'trailers',
    [TOKEN_METADATA_KEY]: 'wrong',
  });
  let status = '';
  stream.on('response', (headers) => (status ||= String(headers['grpc-status'] ?? '')));
  stream.on('trailers', (headers) => (status ||= String(headers['grpc-status'] ?? '')));
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(bytes, 1);
  const chunk = Buffer.alloc(256 * 1024, 0x41);
  return new Promise((resolve) => {
    let sent = 0;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      resolve(status);
    };
    stream.on('close', finish);
    stream.on('error', finish);
    stream.resume();
    const pump = (): void => {
      while (sent < bytes && !stream.destroyed) {
        sent += chunk.length;
        if (!stream.write(sent > bytes ? chunk.subarray(0, chunk.length - (sent - bytes)) : chunk)) {
          stream.once('drain', pump);
          return;
        }
      }
      if (!stream.destroyed) stream.end();
    };
    stream.write(prefix);
    pump();
  });
}

test('unauthenticated 40 MB calls are refused on their headers: the coordinator never buffers their bodies', async () => {
  const sessions = await Promise.all([connectH2(), connectH2()]);
  global.gc?.();
  const baseline = process.memoryUsage().arrayBuffers;
  let peak = baseline;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers)), 5);
  let statuses: string[];
  try {
    const paths = ['Register', 'ClaimKeys', 'StreamSamples'].map((m) => `/cah.v1.Coordinator/${m}`);
    statuses = await Promise.all(
      Array.from({ length: 6 }, (_, i) => hugeUnauthenticatedCall(sessions[i % 2]!, paths[i % paths.length]!, 40 * 1024 * 1024)),
    );
  } finally {
    clearInterval(sampler);
    for (const s of sessions) s.destroy();
  }
  const grownMb = (peak - baseline) / 2 ** 20;
  // 6 × 40 MB were sent; without the header check the server decodes each message in full first
  // (~480 MB measured). What remains (~33 MB) is the attacker's own client in this process and
  // refused chunks waiting for the garbage collector.
  assert.ok(grownMb < 120, `server buffers grew by ${grownMb.toFixed(0)} MB while refusing 240 MB of unauthenticated calls`);
  assert.deepEqual(statuses, Array(6).fill(String(grpc.status.UNAUTHENTICATED)));
  assert.equal(calls.register, 0);
});

test('authenticated unary calls are capped at a small size; the sample stream is not', async () => {
  const client = new CoordinatorClient(`127.0.0.1:${port}`, TOKEN);
  try {
    const small = await client.claimKeys({ actorId: 'a1', shardId: 1, fencingToken: 1, keys: ['k1', 'k2'] });
    assert.deepEqual(small.newKeys, ['k1', 'k2']);
    const before = calls.claimKeys;
    const keys = Array.from({ length: 2 * (MAX_UNARY_MESSAGE_BYTES >> 10) }, (_, i) => `${i}`.padEnd(1000, 'k'));
    await assert.rejects(client.claimKeys({ actorId: 'a1', shardId: 1, fencingToken: 1, keys }), (err) => isStatus(err, grpc.status.RESOURCE_EXHAUSTED));
    assert.equal(calls.claimKeys, before, 'the oversized call never reached the handler');

    const stream = client.streamSamples();
    const ended = new Promise<void>((resolve, reject) => stream.on('end', resolve).on('error', reject).on('data', () => undefined));
    const jpeg = Buffer.alloc(4 * MAX_UNARY_MESSAGE_BYTES, 1);
    stream.write({ actorId: 'a1', shardId: 1, fencingToken: 1, samples: [{ key: 'k', jpeg } as unknown as WireSample] });
    stream.end();
    await ended;
    assert.ok(calls.streams >= 1);
  } finally {
    client.close();
  }
});

test('the gRPC sample stream is refused UNIMPLEMENTED with what to do (samples go on the bulk stream); its handler never runs', async () => {
  const Service = coordinatorService();
  const raw = new Service(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set(TOKEN_METADATA_KEY, TOKEN);
  try {
    const before = calls.streams;
    const stream = raw.streamSamples(metadata);
    const status = await new Promise<grpc.StatusObject>((resolve) => {
      stream.on('status', resolve);
      stream.on('error', () => undefined);
      stream.on('data', () => undefined);
    });
    stream.end();
    assert.equal(status.code, grpc.status.UNIMPLEMENTED);
    assert.equal(status.details, GRPC_SAMPLE_STREAM_REFUSED);
    assert.match(status.details, /bulk sample stream/);
    assert.equal(calls.streams, before, 'the sample handler never ran');
  } finally {
    raw.close();
  }
});

test('the server announces wide HTTP/2 receive windows and caps concurrent streams per connection', async () => {
  const session = await connectH2();
  try {
    assert.equal(session.remoteSettings.maxConcurrentStreams, MAX_CONCURRENT_STREAMS);
    assert.equal(session.remoteSettings.initialWindowSize, STREAM_WINDOW_BYTES);
    // The connection window arrives as a WINDOW_UPDATE right after the settings.
    for (let i = 0; i < 100 && (session.state.remoteWindowSize ?? 0) < CONNECTION_WINDOW_BYTES; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(session.state.remoteWindowSize, CONNECTION_WINDOW_BYTES);
  } finally {
    session.destroy();
  }
});
