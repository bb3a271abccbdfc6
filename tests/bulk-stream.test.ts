import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { CoordinatorClient, isStatus } from '../src/worker/rpc.js';
import { BULK_ACTOR, BULK_CONTENT_TYPE, BULK_DETAILS, BULK_FENCING, BULK_PATH, BULK_SHARD, BULK_STATUS, encodeBulkFrame } from '../src/wire/bulk.js';
import { SESSION_METADATA_KEY, TOKEN_METADATA_KEY } from '../src/wire/contract.js';
import { refusalReason } from '../src/wire/reasons.js';
import { TEST_TOKEN, registerRequest, startTestCoordinator, wireSample, type TestCoordinator } from './support/coordinator.js';

/**
 * The bulk sample stream (src/wire/bulk.ts, src/coordinator/bulk-stream.ts) as a stranger can use
 * it: raw HTTP/2 requests on the coordinator's port, refused on their headers before the body is
 * read, and framing errors ending the stream with a status instead of reaching the shard.
 */

interface RawAnswer {
  status: string | undefined;
  details: string;
  credits: number;
}

/** One raw request on the bulk path with `headers` and `body`; resolves with the status it ended with. */
async function rawBulk(address: string, headers: http2.OutgoingHttpHeaders, body: Buffer[], endBody = true): Promise<RawAnswer> {
  const session = http2.connect(`http://${address}`);
  session.on('error', () => undefined);
  try {
    const req = session.request({ ':method': 'POST', ':path': BULK_PATH, 'content-type': BULK_CONTENT_TYPE, ...headers });
    req.on('error', () => undefined);
    let status: string | undefined;
    let details = '';
    let credits = 0;
    const take = (h: http2.IncomingHttpHeaders): void => {
      if (typeof h[BULK_STATUS] === 'string') {
        status = h[BULK_STATUS] as string;
        details = decodeURIComponent(String(h[BULK_DETAILS] ?? ''));
      }
    };
    req.on('response', take);
    req.on('trailers', take);
    req.on('data', (chunk: Buffer) => (credits += chunk.length / 4));
    for (const b of body) req.write(b);
    if (endBody) req.end();
    await new Promise<void>((resolve) => req.on('close', resolve));
    return { status, details, credits };
  } finally {
    session.close();
  }
}

async function withLease(fn: (c: TestCoordinator, lease: { actorId: string; shardId: number; fencingToken: number; session: string }, client: CoordinatorClient) => Promise<void>): Promise<void> {
  const c = await startTestCoordinator();
  const client = new CoordinatorClient(c.address, TEST_TOKEN);
  try {
    c.store.shards.add(['/data/bulk.wat.gz']);
    const { actorId } = await client.register(registerRequest());
    const { shardId, fencingToken } = (await client.leaseShard({ actorId })).shard!;
    const session = (client as unknown as { metadata: grpc.Metadata }).metadata.get(SESSION_METADATA_KEY)[0] as string;
    await fn(c, { actorId, shardId, fencingToken, session }, client);
  } finally {
    client.close();
    await c.close();
  }
}

function leaseHeaders(lease: { actorId: string; shardId: number; fencingToken: number; session: string }, token = TEST_TOKEN): http2.OutgoingHttpHeaders {
  return {
    [TOKEN_METADATA_KEY]: token,
    [SESSION_METADATA_KEY]: lease.session,
    [BULK_ACTOR]: lease.actorId,
    [BULK_SHARD]: String(lease.shardId),
    [BULK_FENCING]: String(lease.fencingToken),
  };
}

test('corpus/bulk: a request without the worker token is refused on its headers; the stream handler never runs and its body is not read', async () => {
  await withLease(async (c, lease) => {
    let served = 0;
    const serve = c.coordinator.streamSamples.bind(c.coordinator);
    c.coordinator.streamSamples = (stream) => {
      served++;
      serve(stream);
    };
    const images = encodeBulkFrame(Array.from({ length: 8 }, (_, i) => wireSample(`u${i}`, { jpeg: Buffer.alloc(1024 * 1024, 1) })));
    for (const token of ['', 'b'.repeat(64)]) {
      const answer = await rawBulk(c.address, leaseHeaders(lease, token), images);
      assert.equal(answer.status, String(grpc.status.UNAUTHENTICATED), `token "${token.slice(0, 4)}…"`);
      assert.equal(answer.credits, 0);
    }
    assert.equal(served, 0, 'no unauthenticated stream reached the coordinator');
    assert.equal(c.stage.queueDepth, 0);
  });
});

test('corpus/bulk: a request that is not a POST of the sample type, or names no valid lease, is refused with INVALID_ARGUMENT', async () => {
  await withLease(async (c, lease) => {
    const good = leaseHeaders(lease);
    const cases: [string, http2.OutgoingHttpHeaders][] = [
      ['content type', { ...good, 'content-type': 'application/grpc' }],
      ['no shard', { ...good, [BULK_SHARD]: '' }],
      ['shard not a number', { ...good, [BULK_SHARD]: '1e3' }],
      ['fencing beyond 2^53', { ...good, [BULK_FENCING]: '9007199254740993' }],
      ['no actor', { ...good, [BULK_ACTOR]: '' }],
      ['actor id of 300 characters', { ...good, [BULK_ACTOR]: 'a'.repeat(300) }],
    ];
    for (const [what, headers] of cases) {
      const answer = await rawBulk(c.address, headers, []);
      assert.equal(answer.status, String(grpc.status.INVALID_ARGUMENT), what);
    }
  });
});

test('corpus/bulk: garbage after a valid lease, or a body cut inside a frame, ends the stream with INVALID_ARGUMENT and nothing reaches the shard', async () => {
  await withLease(async (c, lease) => {
    const garbage = await rawBulk(c.address, leaseHeaders(lease), [Buffer.from([0, 0, 0, 4, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef])]);
    assert.equal(garbage.status, String(grpc.status.INVALID_ARGUMENT));
    assert.match(garbage.details, /does not decode/);
    const frame = Buffer.concat(encodeBulkFrame([wireSample('cut')]));
    const cut = await rawBulk(c.address, leaseHeaders(lease), [frame.subarray(0, frame.length - 3)]);
    assert.equal(cut.status, String(grpc.status.INVALID_ARGUMENT));
    assert.match(cut.details, /ended inside a frame/);
    assert.equal(c.stage.queueDepth, 0);
    assert.equal(c.store.shards.counts().done, 0);
  });
});

test('corpus/bulk: an image length past the bound is refused from its prefix (RESOURCE_EXHAUSTED), without waiting for the bytes', async () => {
  await withLease(async (c, lease) => {
    const [head, meta] = encodeBulkFrame([wireSample('huge')]);
    // The request stays open: the answer cannot depend on the body's end.
    const answer = await rawBulk(c.address, leaseHeaders(lease), [head!, meta!, Buffer.from([0x7f, 0xff, 0xff, 0xff])], false);
    assert.equal(answer.status, String(grpc.status.RESOURCE_EXHAUSTED));
    assert.match(answer.details, /bytes of images/);
  });
});

test('corpus/bulk: a request that ends with its headers (no body) still gets its lease checked: a stale one is not answered OK', async () => {
  await withLease(async (c, lease) => {
    const session = http2.connect(`http://${c.address}`);
    session.on('error', () => undefined);
    try {
      const req = session.request({ ':method': 'POST', ':path': BULK_PATH, 'content-type': BULK_CONTENT_TYPE, ...leaseHeaders({ ...lease, fencingToken: lease.fencingToken + 1 }) }, { endStream: true });
      req.on('error', () => undefined);
      let status: string | undefined;
      const take = (h: http2.IncomingHttpHeaders): void => void (typeof h[BULK_STATUS] === 'string' && (status = h[BULK_STATUS] as string));
      req.on('response', take).on('trailers', take).resume();
      await new Promise<void>((resolve) => req.on('close', resolve));
      assert.equal(status, String(grpc.status.FAILED_PRECONDITION));
      const fresh = await rawBulk(c.address, leaseHeaders(lease), []);
      assert.equal(fresh.status, String(grpc.status.OK), 'the same request with the current lease ends OK');
    } finally {
      session.close();
    }
  });
});

test('corpus/bulk: a stale fencing token gets FAILED_PRECONDITION with the stale-lease reason, through the worker\'s own client', async () => {
  await withLease(async (_c, lease, client) => {
    const stream = client.streamSamples();
    const ended = new Promise<void>((resolve, reject) => stream.on('end', resolve).on('error', reject));
    stream.write({ actorId: lease.actorId, shardId: lease.shardId, fencingToken: lease.fencingToken + 1, samples: [] });
    stream.end();
    await assert.rejects(ended, (err: unknown) => isStatus(err, grpc.status.FAILED_PRECONDITION) && refusalReason(err) === 'stale-lease');
  });
});

test('the worker\'s bulk call: a status outside gRPC\'s codes reads as UNKNOWN, a coordinator without the bulk path as its gRPC status, and an end before any write settles', async () => {
  const answers: http2.OutgoingHttpHeaders[] = [
    { ':status': 200, [BULK_STATUS]: '99', [BULK_DETAILS]: 'odd' },
    // What grpc-js answers for a path it does not serve (a coordinator of an earlier version).
    { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(grpc.status.UNIMPLEMENTED), 'grpc-message': 'Received a request for an unknown method' },
  ];
  let next = 0;
  const server = http2.createServer();
  server.on('stream', (stream) => {
    stream.on('error', () => undefined);
    stream.respond(answers[next++ % answers.length]!, { endStream: true });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = `127.0.0.1:${(server.address() as { port: number }).port}`;
  const client = new CoordinatorClient(address, TEST_TOKEN);
  const outcome = async (write: boolean): Promise<unknown> => {
    const call = client.streamSamples();
    const ended = new Promise<unknown>((resolve) => call.on('end', () => resolve('end')).on('error', resolve));
    if (write) call.write({ actorId: 'a', shardId: 1, fencingToken: 1, samples: [] });
    call.end();
    return ended;
  };
  try {
    assert.ok(isStatus(await outcome(true), grpc.status.UNKNOWN), 'code 99');
    const old = await outcome(true);
    assert.ok(isStatus(old, grpc.status.UNIMPLEMENTED), 'grpc-status of a coordinator without the path');
    assert.match((old as Error).message, /unknown method/);
    assert.equal(await outcome(false), 'end', 'nothing written, nothing to send');
  } finally {
    client.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
