import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { CahError } from '../errors.js';
import type { SnapshotSource } from './snapshot-source.js';
import type { HistogramData } from '../filter/histogram.js';
import type { ActorView, CoordinatorSnapshot, FilterSnapshot } from './snapshot.js';

const SHARD_STATES = ['queued', 'leased', 'done', 'failed'] as const;
const ACTOR_STATES: readonly ActorView[] = ['PENDING_CREATION', 'ALIVE', 'RESTARTING', 'DEAD', 'EXITED'];
const VERDICTS: readonly FilterSnapshot['verdict'][] = [
  'filter-bound',
  'workers-bound',
  'balanced',
  'idle',
  'no-workers',
  'paused',
  'draining',
  'done',
];
/** prom-client's default Node.js metrics that are gauges named *_total, which promtool rejects. */
const MISNAMED_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** A histogram whose buckets are kept elsewhere (the snapshot), rendered as Prometheus text. */
function snapshotHistogram(name: string, help: string, read: () => HistogramData) {
  return {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    get() {
      const h = read();
      const values = [
        ...h.bounds.map((le, i) => ({ metricName: `${name}_bucket`, labels: { le }, value: h.cumulative[i] ?? 0 })),
        { metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: h.count },
        { metricName: `${name}_sum`, labels: {}, value: h.sum },
        { metricName: `${name}_count`, labels: {}, value: h.count },
      ];
      return { name, help, type: 'histogram', aggregator: 'sum', values };
    },
  };
}

/**
 * A registry (not prom-client's global one) whose metrics read `snapshot()` when scraped: the
 * coordinator pushes nothing, a scrape costs one snapshot.
 */
export function snapshotRegistry(snapshot: () => CoordinatorSnapshot): Registry {
  const registry = new Registry();
  const registers = [registry];
  const gauge = (name: string, help: string, value: (s: CoordinatorSnapshot) => number): void => {
    new Gauge({ name, help, registers, collect() { this.set(value(snapshot())); } });
  };
  // Totals live in the snapshot; a counter is re-set to them so Prometheus' rate() applies.
  const counter = (name: string, help: string, value: (s: CoordinatorSnapshot) => number): void => {
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(Math.max(0, value(snapshot())));
      },
    });
  };

  new Gauge({
    name: 'cah_shards',
    help: 'Shards by state',
    labelNames: ['state'],
    registers,
    collect() {
      const s = snapshot();
      for (const state of SHARD_STATES) this.set({ state }, s.shards[state]);
    },
  });
  new Gauge({
    name: 'cah_actors',
    help: 'Worker actors by state',
    labelNames: ['state'],
    registers,
    collect() {
      const counts = new Map<ActorView, number>(ACTOR_STATES.map((st) => [st, 0]));
      for (const a of snapshot().actors) counts.set(a.state, (counts.get(a.state) ?? 0) + 1);
      for (const [state, n] of counts) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'cah_filter_bottleneck',
    help: 'The bottleneck verdict: 1 for the current one',
    labelNames: ['verdict'],
    registers,
    collect() {
      const current = snapshot().filter.verdict;
      for (const verdict of VERDICTS) this.set({ verdict }, verdict === current ? 1 : 0);
    },
  });
  new Gauge({
    name: 'cah_filter_info',
    help: 'The pair filter and its execution provider (value always 1)',
    labelNames: ['name', 'provider'],
    registers,
    collect() {
      const f = snapshot().filter;
      this.reset();
      this.set({ name: f.name, provider: f.provider }, 1);
    },
  });

  counter('cah_candidates_total', 'Image-caption candidates extracted, duplicates included', (s) => s.totals.extracted);
  counter('cah_downloaded_total', 'Images downloaded and resized', (s) => s.totals.downloaded);
  counter('cah_bytes_in_total', 'Image bytes downloaded', (s) => s.totals.bytesIn);
  // Every candidate ends in one of these: a duplicate, a failed download or resize, filtered out, or kept.
  new Counter({
    name: 'cah_samples_total',
    help: 'Candidates by outcome: duplicate, failed (download or resize), filtered_out (by CLIP and the other filters), kept',
    labelNames: ['status'],
    registers,
    collect() {
      const t = snapshot().totals;
      this.reset();
      this.inc({ status: 'duplicate' }, t.duplicates);
      this.inc({ status: 'failed' }, t.failed);
      this.inc({ status: 'filtered_out' }, t.filteredOut);
      this.inc({ status: 'kept' }, t.kept);
    },
  });
  counter('cah_written_total', 'Kept pairs in finished (committed) output shards', (s) => s.output.pairsWritten);
  counter('cah_actor_restarts_total', 'Worker actor restarts, summed over actors', (s) =>
    s.actors.reduce((n, a) => n + a.restarts, 0),
  );

  for (const h of [
    snapshotHistogram('cah_shard_duration_seconds', 'Seconds from a shard attempt opening to its commit', () => snapshot().histograms.shardSeconds),
    snapshotHistogram('cah_filter_batch_duration_seconds', 'Seconds each filter batch spent on the model', () => snapshot().histograms.filterBatchSeconds),
    snapshotHistogram('cah_similarity', 'CLIP cosine similarity of the pairs scored', () => snapshot().histograms.similarity),
  ]) {
    registry.registerMetric(h as unknown as Parameters<Registry['registerMetric']>[0]);
  }
  gauge('cah_filter_queue_depth', 'Images waiting for the filter', (s) => s.filter.queueDepth);
  gauge('cah_filter_queue_capacity', 'Capacity of the filter queue', (s) => s.filter.queueCapacity);
  gauge('cah_filter_idle_ratio', 'Fraction of the last interval the filter waited for input', (s) => s.filter.idleFraction);
  gauge('cah_filter_batch_size', 'Images in the last filter batch', (s) => s.filter.batchSize);
  gauge('cah_output_shards', 'Webdataset shards written', (s) => s.output.shardsWritten);
  gauge('cah_progress_ratio', 'Share of the work done: finished shards plus the read share of running ones', (s) => s.progress);
  gauge('cah_output_bytes', 'Bytes of webdataset output written', (s) => s.output.bytes);
  gauge('cah_eta_seconds', 'Estimated seconds until all shards are done (NaN when unknown)', (s) =>
    s.etaMs === null ? Number.NaN : s.etaMs / 1000,
  );
  gauge('cah_uptime_seconds', 'Seconds since the coordinator started', (s) => (s.nowMs - s.startedAtMs) / 1000);
  gauge('cah_paused', '1 while shard leasing is paused', (s) => (s.paused ? 1 : 0));
  gauge('cah_draining', '1 while the run drains before quitting', (s) => (s.draining ? 1 : 0));
  collectDefaultMetrics({ register: registry });
  for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(name);
  return registry;
}

/** A --metrics address that is malformed (ADDRESS) or cannot be served (LISTEN). */
export class MetricsError extends CahError {
  constructor(code: 'CAH_METRICS_ADDRESS' | 'CAH_METRICS_LISTEN', message: string) {
    super(code, message);
  }
}

/** 'HOST:PORT', '[::1]:PORT' or ':PORT' (all interfaces). */
export function parseListenAddress(addr: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:\s]*)):(\d{1,5})$/.exec(addr.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) throw new MetricsError('CAH_METRICS_ADDRESS', `--metrics expects HOST:PORT (e.g. 127.0.0.1:9464), got "${addr}"`);
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}

/** Serves GET /metrics in the Prometheus text format on `addr`; port 0 picks a free one. */
export async function startMetricsServer(
  source: SnapshotSource,
  addr: string,
): Promise<{ port: number; close(): Promise<void> }> {
  const { host, port } = parseListenAddress(addr);
  let scraped: CoordinatorSnapshot | null = null;
  const registry = snapshotRegistry(() => (scraped ??= source.current()));
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try GET /metrics\n');
      return;
    }
    // One snapshot per scrape: every collect() of this scrape runs before the first await.
    scraped = null;
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${String(err)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new MetricsError('CAH_METRICS_LISTEN', `cannot serve /metrics on ${addr}: ${err.code ?? err.message}`)),
    );
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
