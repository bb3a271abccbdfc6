import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import * as grpc from '@grpc/grpc-js';
import { Coordinator } from '../../src/coordinator/head.js';
import { DEFAULT_COORDINATOR_SETTINGS, type CoordinatorSettings } from '../../src/coordinator/settings.js';
import { PassThroughFilter, type PairFilter } from '../../src/filter/pair-filter.js';
import { FilterStage } from '../../src/filter/stage.js';
import type { OutputMode } from '../../src/output/ownership.js';
import { Store } from '../../src/store/state-file.js';
import type { CoordinatorClient } from '../../src/worker/rpc.js';
import type { CompleteShardResponse, WireSample } from '../../src/wire/contract.js';

export const TEST_TOKEN = 'a'.repeat(64);

export const registerRequest = (actorId = ''): Parameters<CoordinatorClient['register']>[0] => ({
  version: 't',
  host: 'test',
  pid: 1,
  actorId,
});

export interface TestCoordinator {
  dir: string;
  outDir: string;
  store: Store;
  coordinator: Coordinator;
  /** The filter stage the coordinator submits to (its queue depth: samples received and not yet filtered). */
  stage: FilterStage;
  address: string;
  /** Every log line the coordinator wrote (pino JSON, parsed). */
  logs: { level: number; msg: string; [k: string]: unknown }[];
  /** Stops this coordinator; the state and output stay (for a restart) unless `remove`. */
  close(remove?: boolean): Promise<void>;
}

/** A coordinator with a pass-through filter on loopback, real SQLite and a real output directory. */
export async function startTestCoordinator(
  opts: { settings?: Partial<CoordinatorSettings>; dir?: string; superviseIntervalMs?: number; outputMode?: OutputMode; filter?: PairFilter } = {},
): Promise<TestCoordinator> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'cah-faults-'));
  const outDir = join(dir, 'out');
  const store = Store.open(join(dir, 'cah.sqlite'));
  const stage = new FilterStage(opts.filter ?? new PassThroughFilter(), { batchSize: 4, maxWaitMs: 5, capacity: 64 });
  const logs: TestCoordinator['logs'] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) logs.push(JSON.parse(line));
      done();
    },
  });
  const coordinator = new Coordinator({
    store,
    outDir,
    workerToken: TEST_TOKEN,
    filter: stage,
    settings: { ...DEFAULT_COORDINATOR_SETTINGS, ...opts.settings },
    logger: pino({ level: 'info' }, sink),
    superviseIntervalMs: opts.superviseIntervalMs ?? 100,
    ...(opts.outputMode ? { outputMode: opts.outputMode } : {}),
  });
  let port: number;
  try {
    port = await coordinator.start('127.0.0.1:0');
  } catch (err) {
    await stage.close();
    store.close();
    throw err;
  }
  return {
    dir,
    outDir,
    store,
    coordinator,
    stage,
    address: `127.0.0.1:${port}`,
    logs,
    async close(remove = true) {
      await coordinator.stop('test done');
      await stage.close();
      store.close();
      if (remove) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A sample key in the key format (16 hex digits) for a short readable name; real keys pass as they are. */
export function testKey(name: string): string {
  return /^[0-9a-f]{16}$/.test(name) ? name : Buffer.from(name).toString('hex').padStart(16, '0').slice(-16);
}

/** A successful sample named `name` with a tiny image: JPEG magic, not decoded by the pass-through filter. */
export function wireSample(name: string, over: Partial<WireSample> = {}): WireSample {
  return {
    key: testKey(name),
    url: `http://example.test/${name}.jpg`,
    caption: `caption of ${name}`,
    pageUrl: 'http://example.test/',
    license: '',
    status: 'success',
    errorMessage: '',
    width: 8,
    height: 8,
    originalWidth: 8,
    originalHeight: 8,
    exif: '',
    sha256: '',
    jpeg: Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from(`jpeg bytes of ${name}`)]),
    downloadMs: 1,
    resizeMs: 1,
    downloadAttempts: 1,
    ...over,
  };
}

/** Streams `samples` for a lease under credits, to the end of the stream. */
export async function streamAll(
  client: CoordinatorClient,
  header: { actorId: string; shardId: number; fencingToken: number },
  samples: WireSample[],
): Promise<void> {
  const stream = client.streamSamples();
  let credits = 0;
  const waiters: (() => void)[] = [];
  stream.on('data', (g: { credits: number }) => {
    credits += g.credits;
    waiters.splice(0).forEach((w) => w());
  });
  const ended = new Promise<void>((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('error', (err: grpc.ServiceError) => reject(err));
  });
  stream.write({ ...header, samples: [] });
  for (const sample of samples) {
    while (credits === 0) await new Promise<void>((r) => waiters.push(r));
    credits--;
    stream.write({ ...header, samples: [sample] });
  }
  stream.end();
  await ended;
}

export async function waitFor(what: string, predicate: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A well-formed download failure numbered `i` (as a success it needs `jpeg` too). */
export function downloadFailure(i: number, over: Partial<WireSample> = {}): WireSample {
  return {
    key: i.toString(16).padStart(16, '0'),
    url: `http://example.test/${i}.jpg`,
    exif: '',
    caption: `a caption ${i}`,
    pageUrl: 'http://example.test/',
    license: '',
    status: 'failed_to_download',
    errorMessage: 'HTTP 404',
    width: 0,
    height: 0,
    originalWidth: 0,
    originalHeight: 0,
    sha256: '',
    jpeg: Buffer.alloc(0),
    downloadMs: 1,
    resizeMs: 0,
    downloadAttempts: 1,
    ...over,
  };
}

/**
 * One worker's whole shard: register, lease, stream `samples` (one per credit unless `ignoreCredits`),
 * complete. Resolves with the completion, or rejects with the first error of the stream or the call.
 */
export async function runShard(
  client: CoordinatorClient,
  samples: WireSample[],
  opts: { ignoreCredits?: boolean; perMessage?: number } = {},
): Promise<{ complete: CompleteShardResponse; shardId: number; leaseMs: number }> {
  const { actorId } = await client.register(registerRequest());
  const leaseStart = performance.now();
  let lease = await client.leaseShard({ actorId });
  while (!lease.hasShard) {
    await new Promise((r) => setTimeout(r, Math.max(5, lease.retryAfterMs)));
    lease = await client.leaseShard({ actorId });
  }
  const leaseMs = performance.now() - leaseStart;
  const { shardId, fencingToken } = lease.shard!;
  const stream = client.streamSamples();
  let credits = 0;
  let waiter: (() => void) | null = null;
  let failed: Error | null = null;
  stream.on('data', (g: { credits: number }) => {
    credits += g.credits;
    waiter?.();
  });
  const ended = new Promise<void>((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('error', (err: Error) => {
      failed = err;
      waiter?.();
      reject(err);
    });
  });
  ended.catch(() => undefined);
  stream.write({ actorId, shardId, fencingToken, samples: [] });
  // The first grant (the window) says the coordinator has opened the attempt; even a greedy worker waits for it.
  while (credits === 0 && !failed) await new Promise<void>((r) => (waiter = r));
  const per = opts.perMessage ?? 1;
  for (let i = 0; i < samples.length && !failed; i += per) {
    const batch = samples.slice(i, i + per);
    if (!opts.ignoreCredits) {
      while (credits < batch.length && !failed) await new Promise<void>((r) => (waiter = r));
      credits -= batch.length;
    }
    if (!failed) stream.write({ actorId, shardId, fencingToken, samples: batch });
  }
  stream.end();
  await ended;
  const complete = await client.completeShard({ actorId, shardId, fencingToken, samplesSent: samples.length, extraction: null, sourceErrors: [] });
  return { complete, shardId, leaseMs };
}
