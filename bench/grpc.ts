import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { Coordinator } from '../src/coordinator/coordinator.js';
import { DEFAULT_COORDINATOR_SETTINGS } from '../src/coordinator/settings.js';
import { PassThroughFilter } from '../src/filter/filter.js';
import { FilterStage } from '../src/filter/stage.js';
import { Store } from '../src/store/store.js';
import { CreditWallet } from '../src/worker/credits.js';
import { SampleBatcher } from '../src/worker/sample-batcher.js';
import { CoordinatorClient } from '../src/worker/rpc.js';
import type { WireSample } from '../src/wire/contract.js';
import type { BenchResult } from './result.js';

const PAIR_BYTES = 20 * 1024;
const TOKEN = 'b'.repeat(64);

/** Raw TCP on loopback: the same number of 20 KB payloads, length-prefixed, drained by the server. */
async function rawTcpMbPerSec(pairs: number): Promise<number> {
  const payload = Buffer.alloc(PAIR_BYTES + 4, 7);
  payload.writeUInt32BE(PAIR_BYTES, 0);
  let received = 0;
  const total = pairs * payload.length;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const server = createServer((socket) => {
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received >= total) resolveDone();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const start = process.hrtime.bigint();
  const socket = connect(port, '127.0.0.1');
  await new Promise<void>((r) => socket.once('connect', () => r()));
  for (let i = 0; i < pairs; i++) {
    if (!socket.write(payload)) await new Promise<void>((r) => socket.once('drain', () => r()));
  }
  await done;
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  socket.destroy();
  await new Promise<void>((r) => server.close(() => r()));
  return total / secs / 1e6;
}

/** The real ingest path: gRPC stream with credits → pass-through filter → webdataset writer on disk. */
async function grpcIngest(pairs: number): Promise<{ mbPerSec: number; pairsPerSec: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'cah-bench-grpc-'));
  const store = Store.open(join(dir, 'cah.sqlite'));
  const stage = new FilterStage(new PassThroughFilter(), { batchSize: 256, maxWaitMs: 5, capacity: 1024 });
  const coordinator = new Coordinator({
    store,
    outDir: join(dir, 'out'),
    workerToken: TOKEN,
    filter: stage,
    settings: DEFAULT_COORDINATOR_SETTINGS,
    logger: pino({ level: 'silent' }),
  });
  const port = await coordinator.start('127.0.0.1:0');
  const client = new CoordinatorClient(`127.0.0.1:${port}`, TOKEN);
  try {
    store.shards.add(['bench.wat.gz']);
    const { actorId } = await client.register({ version: 'bench', host: 'bench', pid: process.pid, capabilities: { maxInFlight: 0, cpus: 1, memoryBytes: 0 }, actorId: '' });
    const { shard } = await client.leaseShard({ actorId });
    const { shardId, fencingToken } = shard!;
    const jpeg = Buffer.alloc(PAIR_BYTES, 9);
    const stream = client.streamSamples();
    const wallet = new CreditWallet();
    const ended = new Promise<void>((resolve, reject) => {
      stream.on('data', (g: { credits: number }) => wallet.add(g.credits));
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    const header = { actorId, shardId, fencingToken };
    // Batched into messages exactly as the worker actor does.
    const batcher = new SampleBatcher(
      (batch) => stream.write({ ...header, samples: batch }),
      () => new Promise<void>((r) => stream.once('drain', () => r())),
    );
    const start = process.hrtime.bigint();
    stream.write({ ...header, samples: [] });
    for (let i = 0; i < pairs; i++) {
      await wallet.take();
      const sample: WireSample = {
        key: `b${i.toString(16).padStart(8, '0')}`,
        url: `http://bench.example/${i}.jpg`,
        caption: `a benchmark caption number ${i}`,
        pageUrl: 'http://bench.example/',
        license: '',
        status: 'success',
        errorMessage: '',
        width: 256,
        height: 256,
        originalWidth: 500,
        originalHeight: 400,
        sha256: '',
        jpeg,
        downloadMs: 10,
        resizeMs: 5,
      };
      await batcher.push(sample);
    }
    await batcher.end();
    stream.end();
    await ended;
    await client.completeShard({ ...header, samplesSent: pairs, extraction: null, sourceErrors: [] });
    const secs = Number(process.hrtime.bigint() - start) / 1e9;
    return { mbPerSec: (pairs * PAIR_BYTES) / secs / 1e6, pairsPerSec: pairs / secs };
  } finally {
    client.close();
    await coordinator.stop('bench');
    await stage.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchGrpc(pairs = Number(process.env['BENCH_GRPC_PAIRS'] ?? 20_000)): Promise<BenchResult> {
  await grpcIngest(500);
  const ours = await grpcIngest(pairs);
  const tcp = await rawTcpMbPerSec(pairs);
  const ratio = ours.mbPerSec / tcp;
  return {
    name: 'gRPC pairs stream ingest (20 KB pairs, credits, written to disk)',
    value: ours.mbPerSec,
    unit: 'MB/s',
    baseline: 'raw TCP socket on loopback, same bytes',
    baselineValue: tcp,
    ratio,
    target: '>= 0.3x',
    met: ratio >= 0.3,
    notes: `${ours.pairsPerSec.toFixed(0)} pairs/s over ${pairs} pairs`,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(await benchGrpc());
}
