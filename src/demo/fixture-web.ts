import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import type { SampleStatus } from '../output/sample.js';
import { candidateKey } from '../warc/candidate.js';
import { seededRandom } from '../warc/synthetic.js';
import { writeWatFile, type WatPage } from '../warc/wat-writer.js';
import { DEMO_PALETTE, DEMO_SHAPES } from '../model/palette.js';

export interface FixtureWebOptions {
  /** Same seed → same pages, same ground truth. */
  seed: number;
  shards: number;
  pagesPerShard: number;
  /** Loopback addresses the pages and images are served from (politeness spreads across them). */
  hosts?: string[];
  /** Delay of "slow" responses. */
  slowMs?: number;
  /** How long a "timeout" response hangs (longer than the download timeout used with it). */
  hangMs?: number;
  /** The download size cap used with this web: oversized bodies exceed it. */
  maxImageBytes?: number;
}


export type Fault = 'slow' | 'png' | 'webp' | 'redirect' | '404' | 'timeout' | 'oversized' | 'corrupt' | 'not_image' | 'redirect_loop' | 'opt_out';

export interface GroundTruthEntry {
  key: string;
  url: string;
  caption: string;
  pageUrl: string;
  license: string | null;
  fault: Fault | null;
  /** Final status with the pass-through filter. */
  status: SampleStatus;
  /** A substring of the expected error message, when it is stable. */
  errorContains: string | null;
  /** Whether the caption names the image's colour. */
  matched: boolean;
}

export interface FixtureWeb {
  readonly baseUrls: string[];
  readonly shardPaths: string[];
  /** One entry per unique candidate the crawl yields with default extraction options. */
  readonly groundTruth: GroundTruthEntry[];
  readonly extraction: { captionTooShort: number; duplicates: number; nonHttp: number };
  requestsByHost(): Map<string, number>;
  close(): Promise<void>;
}

/** The faults and how often they occur among images; the rest are plain JPEGs. */
const FAULTS: readonly [Fault, number, SampleStatus, string | null][] = [
  ['slow', 0.05, 'success', null],
  ['png', 0.05, 'success', null],
  ['webp', 0.05, 'success', null],
  ['redirect', 0.05, 'success', null],
  ['404', 0.05, 'failed_to_download', 'HTTP 404'],
  ['timeout', 0.03, 'failed_to_download', 'timeout'],
  ['oversized', 0.03, 'failed_to_download', 'too large'],
  ['corrupt', 0.04, 'failed_to_resize', null],
  ['not_image', 0.04, 'failed_to_resize', null],
  ['redirect_loop', 0.03, 'failed_to_download', 'too many redirects'],
  ['opt_out', 0.03, 'failed_to_download', 'opted out'],
];

const LICENSE = 'https://creativecommons.org/licenses/by/4.0/';

interface ImageSpec {
  id: number;
  host: number;
  colour: number;
  shape: number;
  width: number;
  height: number;
  fault: Fault | null;
}

function shapeSvg(spec: ImageSpec): string {
  const { width: w, height: h } = spec;
  const [r, g, b] = DEMO_PALETTE[spec.colour]!.rgb;
  const fill = `rgb(${r},${g},${b})`;
  const s = Math.min(w, h) * 0.7;
  const cx = w / 2;
  const cy = h / 2;
  const shape = DEMO_SHAPES[spec.shape];
  const body =
    shape === 'circle'
      ? `<circle cx="${cx}" cy="${cy}" r="${s / 2}" fill="${fill}"/>`
      : shape === 'triangle'
        ? `<polygon points="${cx},${cy - s / 2} ${cx - s / 2},${cy + s / 2} ${cx + s / 2},${cy + s / 2}" fill="${fill}"/>`
        : `<rect x="${cx - s / 2}" y="${cy - s / 2}" width="${s}" height="${s}" fill="${fill}"/>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}"><rect width="100%" height="100%" fill="rgb(200,200,200)"/>${body}</svg>`;
}

async function renderImage(spec: ImageSpec): Promise<{ bytes: Buffer; type: string }> {
  const img = sharp(Buffer.from(shapeSvg(spec)));
  if (spec.fault === 'png') return { bytes: await img.png().toBuffer(), type: 'image/png' };
  if (spec.fault === 'webp') return { bytes: await img.webp().toBuffer(), type: 'image/webp' };
  return { bytes: await img.jpeg({ quality: 85 }).toBuffer(), type: 'image/jpeg' };
}

/** Starts the fixture web on loopback and writes its WAT shards into `dir`. */
export async function startFixtureWeb(dir: string, opts: FixtureWebOptions): Promise<FixtureWeb> {
  const hosts = opts.hosts ?? ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];
  const slowMs = opts.slowMs ?? 300;
  const hangMs = opts.hangMs ?? 8000;
  const maxImageBytes = opts.maxImageBytes ?? 2_000_000;
  const random = seededRandom(opts.seed);
  const sockets = new Set<Socket>();
  const hits = new Map<string, number>();
  const images = new Map<number, ImageSpec>();
  const rendered = new Map<number, Promise<{ bytes: Buffer; type: string }>>();
  const timers = new Set<NodeJS.Timeout>();

  const handler = (host: string) => (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    hits.set(host, (hits.get(host) ?? 0) + 1);
    const url = new URL(req.url ?? '/', 'http://x');
    const img = /^\/img\/(\d+)\.\w+$/.exec(url.pathname);
    const loop = /^\/loop\/(\d+)\/(\d+)$/.exec(url.pathname);
    const redir = /^\/redir\/(\d+)$/.exec(url.pathname);
    if (url.pathname.startsWith('/page/')) {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>fixture page</body></html>');
      return;
    }
    if (loop) {
      res.writeHead(302, { location: `/loop/${loop[1]}/${Number(loop[2]) + 1}` }).end();
      return;
    }
    if (redir) {
      res.writeHead(302, { location: `/img/${redir[1]}.jpg` }).end();
      return;
    }
    const spec = img ? images.get(Number(img[1])) : undefined;
    if (!spec || spec.fault === '404') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const send = async (): Promise<void> => {
      switch (spec.fault) {
        case 'timeout': {
          const t = setTimeout(() => {
            timers.delete(t);
            res.destroy();
          }, hangMs);
          timers.add(t);
          return;
        }
        case 'oversized': {
          res.writeHead(200, { 'content-type': 'image/jpeg' });
          const chunk = Buffer.alloc(64 * 1024, 0xab);
          let sent = 0;
          const pump = (): void => {
            while (sent <= maxImageBytes + chunk.length && !res.destroyed) {
              sent += chunk.length;
              if (!res.write(chunk)) {
                res.once('drain', pump);
                return;
              }
            }
            res.end();
          };
          pump();
          return;
        }
        case 'corrupt': {
          const junk = Buffer.alloc(2048);
          for (let i = 0; i < junk.length; i++) junk[i] = (i * 7919 + spec.id) & 0xff;
          junk.set([0xff, 0xd8, 0xff, 0xe0], 0);
          res.writeHead(200, { 'content-type': 'image/jpeg' }).end(junk);
          return;
        }
        case 'not_image':
          res.writeHead(200, { 'content-type': 'image/jpeg' }).end('<html><body>Access denied</body></html>');
          return;
        default: {
          let r = rendered.get(spec.id);
          if (!r) rendered.set(spec.id, (r = renderImage(spec)));
          const { bytes, type } = await r;
          const headers: Record<string, string> = { 'content-type': type, 'content-length': String(bytes.length) };
          if (spec.fault === 'opt_out') headers['x-robots-tag'] = 'noai';
          if (spec.fault === 'slow') await new Promise((resolve) => setTimeout(resolve, slowMs));
          if (!res.destroyed) res.writeHead(200, headers).end(bytes);
        }
      }
    };
    send().catch(() => res.destroy());
  };

  const servers: Server[] = [];
  const baseUrls: string[] = [];
  for (const host of hosts) {
    const server = createServer(handler(host));
    server.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => resolve());
    });
    const addr = server.address() as import('node:net').AddressInfo;
    servers.push(server);
    baseUrls.push(`http://${host}:${addr.port}`);
  }

  const pick = (): Fault | null => {
    let x = random();
    for (const [fault, p] of FAULTS) {
      if (x < p) return fault;
      x -= p;
    }
    return null;
  };
  const faultInfo = new Map(FAULTS.map(([f, , status, err]) => [f, { status, err }]));
  const captionFor = (colour: number, shape: number, n: number): string => {
    const c = DEMO_PALETTE[colour]!.name;
    const s = DEMO_SHAPES[shape]!;
    const forms = [`a photo of a ${c} ${s}`, `${c} ${s} on a grey background`, `A ${c} ${s}, centred`, `picture of one ${c}   ${s}`];
    return forms[n % forms.length]!;
  };

  const truth = new Map<string, GroundTruthEntry>();
  const extraction = { captionTooShort: 0, duplicates: 0, nonHttp: 0 };
  let firstPageImages: { src: string; alt: string; entry: GroundTruthEntry }[] = [];
  let nextImage = 1;
  const shardPaths: string[] = [];
  await mkdir(dir, { recursive: true });
  for (let shard = 0; shard < opts.shards; shard++) {
    const pages: WatPage[] = [];
    for (let p = 0; p < opts.pagesPerShard; p++) {
      const pageHost = Math.floor(random() * hosts.length);
      const pageUrl = `${baseUrls[pageHost]}/page/${shard}-${p}.html`;
      const license = random() < 0.2 ? LICENSE : null;
      const page: WatPage = { url: pageUrl, images: [], links: [{ url: `${baseUrls[pageHost]}/page/about.html`, text: 'About' }], title: `page ${shard}-${p}` };
      if (license) page.links!.push({ url: license, rel: 'license', text: 'CC BY 4.0' });
      const count = 2 + Math.floor(random() * 4);
      for (let i = 0; i < count; i++) {
        const spec: ImageSpec = {
          id: nextImage++,
          host: Math.floor(random() * hosts.length),
          colour: Math.floor(random() * DEMO_PALETTE.length),
          shape: Math.floor(random() * DEMO_SHAPES.length),
          width: 300 + Math.floor(random() * 500),
          height: 250 + Math.floor(random() * 400),
          fault: pick(),
        };
        images.set(spec.id, spec);
        const matched = random() >= 0.25;
        const captionColour = matched ? spec.colour : (spec.colour + 1 + Math.floor(random() * (DEMO_PALETTE.length - 1))) % DEMO_PALETTE.length;
        const caption = captionFor(captionColour, spec.shape, spec.id);
        const base = baseUrls[spec.host]!;
        const path =
          spec.fault === 'redirect' ? `/redir/${spec.id}` : spec.fault === 'redirect_loop' ? `/loop/${spec.id}/0` : `/img/${spec.id}.${spec.fault === 'png' ? 'png' : spec.fault === 'webp' ? 'webp' : 'jpg'}`;
        const absolute = `${base}${path}`;
        const src = spec.host === pageHost ? path : absolute;
        page.images.push({ src, alt: caption });
        const info = spec.fault ? faultInfo.get(spec.fault)! : { status: 'success' as const, err: null };
        const entry: GroundTruthEntry = {
          key: candidateKey(absolute, caption.replace(/\s+/g, ' ').trim()),
          url: absolute,
          caption: caption.replace(/\s+/g, ' ').trim(),
          pageUrl,
          license,
          fault: spec.fault,
          status: info.status,
          errorContains: info.err,
          matched,
        };
        truth.set(entry.key, entry);
        if (shard === 0 && p === 0) firstPageImages.push({ src: absolute, alt: caption, entry });
      }
      page.images.push({ src: `/img/${nextImage + 100000}.jpg`, alt: 'pic' });
      extraction.captionTooShort++;
      page.images.push({ src: `/img/${nextImage + 100001}.jpg` });
      if (p % 5 === 0) {
        page.images.push({ src: 'data:image/png;base64,iVBORw0KGgo=', alt: 'an inline pixel image' });
        extraction.nonHttp++;
      }
      if (shard > 0 && p === 0 && firstPageImages.length > 0) {
        // The same image and caption on another shard's page: run-wide dedup keeps one.
        const dup = firstPageImages[shard % firstPageImages.length]!;
        page.images.push({ src: dup.src, alt: dup.alt });
        extraction.duplicates++;
      }
      pages.push(page);
    }
    const path = join(dir, `fixture-${String(shard).padStart(3, '0')}.warc.wat.gz`);
    await writeWatFile(path, pages, { gzip: true });
    shardPaths.push(path);
  }
  firstPageImages = [];
  // Render every served image up front, so response times measure the pipeline, not sharp here.
  await Promise.all(
    [...images.values()]
      .filter((spec) => spec.fault === null || ['slow', 'png', 'webp', 'redirect', 'opt_out'].includes(spec.fault))
      .map((spec) => {
        const r = renderImage(spec);
        rendered.set(spec.id, r);
        return r;
      }),
  );

  return {
    baseUrls,
    shardPaths,
    groundTruth: [...truth.values()],
    extraction,
    requestsByHost: () => new Map(hits),
    async close() {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  };
}
