import { execFile, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { Coordinator } from '../src/coordinator/head.js';
import { DEFAULT_COORDINATOR_SETTINGS } from '../src/coordinator/settings.js';
import { PassThroughFilter } from '../src/filter/pair-filter.js';
import { FilterStage } from '../src/filter/stage.js';
import { Store } from '../src/store/state-file.js';
import { CreditWallet } from '../src/worker/credits.js';
import { SampleBatcher } from '../src/worker/sample-batcher.js';
import { CoordinatorClient } from '../src/worker/rpc.js';
import { benchSample } from './sample.js';
import type { BenchResult } from './result.js';

export const PAIR_BYTES = 20 * 1024;
const TOKEN = 'b'.repeat(64);
const SELF = fileURLToPath(import.meta.url);
const run = promisify(execFile);

/**
 * Both sides are measured the same way: a sender process (the worker's side) pushes `pairs` 20 KB
 * payloads to a receiver in this process (the coordinator's side) and reports seconds from its
 * first write until the receiver confirmed everything. Only the receiver is what we benchmark.
 */
/**
 * With CAH_BENCH_SYNC set, a stream sender says "ready" once registered with a shard leased, and starts
 * sending when a line arrives on stdin: many senders then start together, whatever their start-up.
 */
async function startSignal(): Promise<void> {
  if (!process.env['CAH_BENCH_SYNC']) return;
  process.stdout.write('ready\n');
  await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
  process.stdin.pause();
}

/** Seconds from the moment every one of the stream senders (args as for `--sender`) was ready until the last finished. */
export async function syncedSendersSeconds(argsList: string[][]): Promise<number> {
  const children = argsList.map((args) =>
    spawn(process.execPath, [SELF, '--sender', ...args], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, CAH_BENCH_SYNC: '1' } }),
  );
  const finished = children.map(
    (child) =>
      new Promise<void>((resolve, reject) => {
        child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`a bench sender exited with ${code}`))));
      }),
  );
  await Promise.race([
    Promise.all(children.map((child) => new Promise<void>((resolve) => createInterface({ input: child.stdout! }).once('line', () => resolve())))),
    Promise.all(finished),
  ]);
  const start = process.hrtime.bigint();
  for (const child of children) child.stdin!.end('go\n');
  await Promise.all(finished);
  return Number(process.hrtime.bigint() - start) / 1e9;
}

export async function senderSeconds(args: string[]): Promise<number> {
  return (await senderRun(args)).secs;
}

/** A sender's seconds and its own CPU seconds while sending (start-up excluded); `execArgv`: e.g. --cpu-prof. */
export async function senderRun(args: string[], execArgv: string[] = []): Promise<{ secs: number; cpuSecs: number }> {
  const { stdout } = await run(process.execPath, [...execArgv, SELF, '--sender', ...args], { maxBuffer: 1 << 20 });
  const [secs, cpuSecs] = stdout.trim().split(' ').map(Number);
  return { secs: secs!, cpuSecs: cpuSecs! };
}

/** A raw TCP receiver: drains `pairs` length-prefixed payloads per connection and answers one byte at the end. */
export async function startTcpSink(pairs: number): Promise<{ port: number; close: () => Promise<void> }> {
  const total = pairs * (PAIR_BYTES + 4);
  const server = createServer((socket) => {
    let received = 0;
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received >= total) socket.end(Buffer.from([1]));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** Raw TCP on loopback: length-prefixed payloads drained by the server, which answers one byte at the end. */
async function rawTcpMbPerSec(pairs: number): Promise<number> {
  const sink = await startTcpSink(pairs);
  try {
    const secs = await senderSeconds(['tcp', `127.0.0.1:${sink.port}`, String(pairs)]);
    return (pairs * PAIR_BYTES) / secs / 1e6;
  } finally {
    await sink.close();
  }
}

function hostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
}

async function tcpSender(address: string, pairs: number): Promise<number> {
  const payload = Buffer.alloc(PAIR_BYTES + 4, 7);
  payload.writeUInt32BE(PAIR_BYTES, 0);
  const { host, port } = hostPort(address);
  const socket = connect(port, host);
  await new Promise<void>((r) => socket.once('connect', () => r()));
  const acked = new Promise<void>((r) => socket.once('data', () => r()));
  const start = process.hrtime.bigint();
  for (let i = 0; i < pairs; i++) {
    if (!socket.write(payload)) await new Promise<void>((r) => socket.once('drain', () => r()));
  }
  await acked;
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  socket.destroy();
  return secs;
}

export interface Ingest {
  port: number;
  coordinator: Coordinator;
  store: Store;
  close: () => Promise<void>;
}

/** A coordinator on loopback with `shards` shards queued: pass-through filter, webdataset writer on disk. */
export async function startIngest(shards: number): Promise<Ingest> {
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
  store.shards.add(Array.from({ length: shards }, (_, i) => `bench-${i}.wat.gz`));
  const close = async (): Promise<void> => {
    await coordinator.stop('bench');
    await stage.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { port, coordinator, store, close };
}

/** The real ingest path: the bulk sample stream with credits → pass-through filter → webdataset writer on disk. */
async function grpcIngest(pairs: number): Promise<{ mbPerSec: number; pairsPerSec: number }> {
  const ingest = await startIngest(1);
  try {
    const secs = await senderSeconds(['bulk', `127.0.0.1:${ingest.port}`, String(pairs)]);
    if (ingest.store.shards.counts().done !== 1) throw new Error('the bench shard was not completed');
    return { mbPerSec: (pairs * PAIR_BYTES) / secs / 1e6, pairsPerSec: pairs / secs };
  } finally {
    await ingest.close();
  }
}

/** The worker actor's side: register, lease, stream under credits in batched messages, complete. */
async function streamSender(address: string, pairs: number): Promise<number> {
  const client = new CoordinatorClient(address, TOKEN);
  let heartbeats: NodeJS.Timeout | undefined;
  try {
    const { actorId } = await client.register({ version: 'bench', host: 'bench', pid: process.pid, actorId: '' });
    const { shard } = await client.leaseShard({ actorId });
    const { shardId, fencingToken } = shard!;
    // Heartbeats report the lease, as a worker's do: a lease no heartbeat reports is given back.
    const progress = { shardId, fencingToken, candidates: 0, downloaded: 0, failed: 0, bytesIn: 0, duplicates: 0, sourceBytesRead: 0, sourceBytesTotal: 0 };
    heartbeats = setInterval(() => void client.heartbeat({ actorId, shards: [progress] }).catch(() => undefined), 1000);
    const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(PAIR_BYTES - 3, 9)]); // JPEG magic: the coordinator checks it
    const stream = client.streamSamples();
    const wallet = new CreditWallet();
    const ended = new Promise<void>((resolve, reject) => {
      stream.on('data', (g: { credits: number }) => wallet.add(g.credits));
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    const header = { actorId, shardId, fencingToken };
    const batcher = new SampleBatcher(
      (batch) => stream.write({ ...header, samples: batch }),
      () => new Promise<void>((r) => stream.once('drain', () => r())),
    );
    await startSignal();
    const start = process.hrtime.bigint();
    stream.write({ ...header, samples: [] });
    for (let i = 0; i < pairs; i++) {
      await wallet.take();
      await batcher.push(benchSample(i, 'bench.example', jpeg));
    }
    await batcher.end();
    stream.end();
    await ended;
    await client.completeShard({ ...header, samplesSent: pairs, extraction: null, sourceErrors: [] });
    return Number(process.hrtime.bigint() - start) / 1e9;
  } finally {
    clearInterval(heartbeats);
    client.close();
  }
}

export async function benchGrpc(pairs = Number(process.env['BENCH_GRPC_PAIRS'] ?? 20_000)): Promise<BenchResult> {
  await grpcIngest(500);
  await rawTcpMbPerSec(500);
  const ours = await grpcIngest(pairs);
  const tcp = await rawTcpMbPerSec(pairs);
  const ratio = ours.mbPerSec / tcp;
  return {
    name: 'sample stream ingest (bulk HTTP/2, 20 KB pairs, credits, written to disk)',
    value: ours.mbPerSec,
    unit: 'MB/s',
    baseline: 'raw TCP socket on loopback, same bytes',
    baselineValue: tcp,
    ratio,
    target: '>= 0.3x',
    met: ratio >= 0.3,
    notes: `${ours.pairsPerSec.toFixed(0)} pairs/s over ${pairs} pairs; each sender in its own process, as a worker is`,
  };
}

if (process.argv[2] === '--sender') {
  const [mode, address, pairs] = process.argv.slice(3);
  const cpu = process.cpuUsage();
  const secs = mode === 'tcp' ? await tcpSender(address!, Number(pairs)) : await streamSender(address!, Number(pairs));
  const used = process.cpuUsage(cpu);
  // The CPU counted from start-up's end: sending, connecting and (a worker's) registering and leasing.
  process.stdout.write(`${secs} ${(used.user + used.system) / 1e6}\n`);
} else if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(await benchGrpc());
}
