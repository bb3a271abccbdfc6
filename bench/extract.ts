import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { extractCandidates, newExtractionCounts, DEFAULT_EXTRACT_OPTIONS } from '../src/warc/extract.js';
import { openSource } from '../src/warc/open-source.js';
import { syntheticPages } from '../src/warc/synthetic.js';
import { writeWatFile, type WatPage } from '../src/warc/wat-writer.js';
import type { BenchResult } from './result.js';

/** Synthetic pages average ~2.4 KB of gzip each (~6.4 KB of JSON). */
const COMPRESSED_BYTES_PER_PAGE = 2400;
/** Dense pages average ~2.8 KB of gzip each (~11 KB of JSON). */
const DENSE_COMPRESSED_BYTES_PER_PAGE = 2800;

/**
 * Pages as dense as many real ones: ~7 images with alt text and 20–120 anchors each (the synthetic
 * pages, every one with images, topped up with more of the same kind).
 */
export function* densePages(count: number): Generator<WatPage> {
  let n = 0;
  for (const page of syntheticPages(count, { seed: 3, imagePageShare: 1 })) {
    n++;
    const withAlt = page.images.filter((i) => i.alt && i.alt.includes(' '));
    const images = [...page.images];
    for (let k = 0; images.filter((i) => i.alt).length < 6 + (n % 3) && withAlt.length > 0; k++) {
      const like = withAlt[k % withAlt.length]!;
      images.push({ src: `${like.src.replace(/\.(\w+)$/, `-${k}.$1`)}`, alt: `${like.alt} ${k}` });
    }
    const links = [...(page.links ?? [])];
    const anchors = 20 + ((n * 37) % 101);
    for (let k = 0; links.length < anchors; k++) links.push({ ...links[2 + (k % Math.max(1, links.length - 2))]!, url: `${links[k % links.length]!.url}#${k}` });
    yield { ...page, images, links };
  }
}
/** Best of this many alternating runs of each side: the machine is shared, the best run is the least disturbed. */
const ROUNDS = 5;

async function gzipSeconds(file: string): Promise<number> {
  const start = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) => {
    const child = spawn('gzip', ['-dc', file], { stdio: ['ignore', 'ignore', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`gzip -dc exited with ${code}`))));
  });
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** CPU seconds (user + system) of `gzip -dc FILE > /dev/null`, from bash's `time`. */
function gzipCpuSeconds(file: string): number {
  const res = spawnSync('bash', ['-c', 'TIMEFORMAT="%U %S"; time gzip -dc "$0" > /dev/null', file], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`gzip -dc failed: ${res.stderr}`);
  const [user, sys] = res.stderr.trim().split(/\s+/).slice(-2).map(Number);
  return user! + sys!;
}

async function extractSeconds(file: string): Promise<{ seconds: number; cpuSeconds: number; candidates: number; pages: number }> {
  const start = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  const counts = newExtractionCounts();
  let errors = 0;
  for await (const candidate of extractCandidates(await openSource(file), DEFAULT_EXTRACT_OPTIONS, counts, () => errors++)) {
    if (!candidate.key) throw new Error('candidate without key');
  }
  if (errors > 0) throw new Error(`${errors} extraction errors on a well-formed file`);
  const used = process.cpuUsage(cpu);
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, cpuSeconds: (used.user + used.system) / 1e6, candidates: counts.candidates, pages: counts.pages };
}

/**
 * The dense WAT: CPU time of our extraction (inflation on the libuv pool included: process CPU)
 * against gzip -dc's, best of ROUNDS alternating runs each. Smaller is better: ratio = ours / gzip.
 */
async function benchDenseExtract(sizeMb: number, dir: string): Promise<BenchResult> {
  const file = join(dir, 'dense.warc.wat.gz');
  await writeWatFile(file, densePages(Math.ceil((sizeMb * 1e6) / DENSE_COMPRESSED_BYTES_PER_PAGE)), { gzip: true });
  const megabytes = statSync(file).size / 1e6;
  let gzipBest = Infinity;
  let oursBest = Infinity;
  let last = { candidates: 0, pages: 0 };
  for (let round = 0; round < ROUNDS; round++) {
    gzipBest = Math.min(gzipBest, gzipCpuSeconds(file));
    const ours = await extractSeconds(file);
    oursBest = Math.min(oursBest, ours.cpuSeconds);
    last = ours;
  }
  const ratio = oursBest / gzipBest;
  return {
    name: 'WAT candidate extraction, dense pages (CPU time)',
    value: oursBest,
    unit: 'CPU s',
    baseline: 'gzip -dc of the same file, CPU s',
    baselineValue: gzipBest,
    ratio,
    target: '<= 1.5x (ours / gzip)',
    met: ratio <= 1.5,
    notes: `${megabytes.toFixed(0)} MB WAT.gz, ${last.pages} pages (~7 alt images, 20–120 anchors each), ${last.candidates} candidates; best of ${ROUNDS}`,
  };
}

/**
 * Candidate extraction from a synthetic Common Crawl-shaped WAT.gz (written by writeWatFile, one
 * gzip member per record) against `gzip -dc FILE > /dev/null` of the same file: MB/s of compressed input.
 */
export async function benchExtract(opts: { sizeMb?: number; denseMb?: number } = {}): Promise<BenchResult[]> {
  const sizeMb = opts.sizeMb ?? 200;
  const dir = mkdtempSync(join(tmpdir(), 'cah-bench-extract-'));
  try {
    const file = join(dir, 'synthetic.warc.wat.gz');
    await writeWatFile(file, syntheticPages(Math.ceil((sizeMb * 1e6) / COMPRESSED_BYTES_PER_PAGE)), { gzip: true });
    const megabytes = statSync(file).size / 1e6;
    let gzipBest = Infinity;
    let oursBest = Infinity;
    let last = { candidates: 0, pages: 0 };
    for (let round = 0; round < ROUNDS; round++) {
      gzipBest = Math.min(gzipBest, await gzipSeconds(file));
      const ours = await extractSeconds(file);
      oursBest = Math.min(oursBest, ours.seconds);
      last = ours;
    }
    const value = megabytes / oursBest;
    const baselineValue = megabytes / gzipBest;
    const ratio = value / baselineValue;
    const dense = await benchDenseExtract(opts.denseMb ?? 100, dir);
    const synthetic: BenchResult = {
      name: 'WAT candidate extraction',
      value,
      unit: 'MB/s compressed',
      baseline: 'gzip -dc of the same file',
      baselineValue,
      ratio,
      target: '>= 1.0x',
      met: ratio >= 1,
      notes: `${megabytes.toFixed(0)} MB WAT.gz, ${last.pages} pages, ${last.candidates} candidates; best of ${ROUNDS}`,
    };
    return [synthetic, dense];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const sizeMb = Number(process.env['BENCH_EXTRACT_MB'] ?? 200);
  const denseMb = Number(process.env['BENCH_DENSE_MB'] ?? 100);
  process.stdout.write(JSON.stringify(await benchExtract({ sizeMb, denseMb }), null, 2) + '\n');
}
