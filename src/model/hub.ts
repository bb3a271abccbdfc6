import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { request } from 'undici';
import { MODEL_FILES, type Precision } from '../filter/model-dir.js';
import { CahError } from '../errors.js';

export const DEFAULT_HF_ENDPOINT = 'https://huggingface.co';

/** `$CAH_CACHE/models`, else `$XDG_CACHE_HOME/cah/models`, else `~/.cache/cah/models`. */
export function defaultModelCache(env: NodeJS.ProcessEnv = process.env): string {
  if (env['CAH_CACHE']) return join(env['CAH_CACHE'], 'models');
  return join(env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'cah', 'models');
}

/** Where a pulled model lives in the cache: `Xenova--clip-vit-base-patch32` (plus `@rev` off main). */
export function modelCacheDir(cache: string, repo: string, revision = 'main'): string {
  return join(cache, repo.replace('/', '--') + (revision === 'main' ? '' : `@${revision.replace(/[^\w.-]/g, '_')}`));
}

/** The files of a CLIP model in the Hugging Face ONNX layout, for the chosen precisions. */
export function clipModelFiles(precisions: readonly Precision[]): { required: string[]; optional: string[] } {
  const onnx = precisions.flatMap((p) => [MODEL_FILES.vision[p], MODEL_FILES.text[p]]);
  return {
    required: [MODEL_FILES.config, MODEL_FILES.preprocessor, MODEL_FILES.tokenizer, ...onnx],
    // Models over 2 GB keep their weights in ONNX external data beside the graph.
    optional: onnx.map((f) => `${f}_data`),
  };
}

export interface PullProgress {
  file: string;
  received: number;
  total: number | null;
  /** 'plan' comes first: `total` is then every file's bytes together (null when a size is unknown). */
  phase: 'plan' | 'start' | 'progress' | 'resume' | 'verify' | 'done' | 'skip' | 'retry';
  message?: string;
}

export interface PullOptions {
  repo: string;
  revision?: string;
  /** Target directory (default: the model's directory in the cache). */
  dir: string;
  files: string[];
  optionalFiles?: string[];
  endpoint?: string;
  token?: string;
  /** Attempts per file; each one resumes from what earlier ones wrote. */
  attempts?: number;
  onProgress?: (p: PullProgress) => void;
}

/** What the hub says about one file before we fetch it. */
interface FileMeta {
  url: string;
  size: number | null;
  /** sha256 (LFS files) or git blob sha1 (small files), lowercase hex, when the hub gave one. */
  sha256: string | null;
  gitSha1: string | null;
}

/** The hub refused or does not have what was asked (a bad id, a missing file, a digest mismatch). */
export class HubError extends CahError {
  constructor(message: string) {
    super('CAH_HUB', message);
  }
}

/** `owner/name`, as the hub spells model ids. */
export function assertHubId(repo: string): void {
  if (!/^[\w.-]+\/[\w.-]+$/.test(repo)) throw new HubError(`"${repo}" is not a hub id like Xenova/clip-vit-base-patch32`);
}

const MAX_REDIRECTS = 5;

/**
 * Downloads model files from a Hugging Face hub (`<endpoint>/<repo>/resolve/<revision>/<path>`)
 * into `dir`: `.incomplete` files resume with HTTP Range, every file is checked against the size and
 * sha256 (`X-Linked-Size` / `X-Linked-Etag` of LFS files) or git blob hash (`ETag`) the hub reports.
 */
export async function pullModel(opts: PullOptions): Promise<string[]> {
  const endpoint = (opts.endpoint ?? DEFAULT_HF_ENDPOINT).replace(/\/+$/, '');
  const revision = opts.revision ?? 'main';
  assertHubId(opts.repo);
  const base = `${endpoint}/${opts.repo}/resolve/${encodeURIComponent(revision)}/`;
  const auth: Record<string, string> = opts.token ? { authorization: `Bearer ${opts.token}` } : {};
  const authFor = (url: string): Record<string, string> => (new URL(url).origin === new URL(endpoint).origin ? auth : {});
  const written: string[] = [];
  const wanted = [...opts.files.map((f) => ({ file: f, optional: false })), ...(opts.optionalFiles ?? []).map((f) => ({ file: f, optional: true }))];
  // Every file's size first, so progress can show the whole pull's total and ETA.
  const found: { file: string; meta: FileMeta }[] = [];
  for (const { file, optional } of wanted) {
    const meta = await fileMeta(base + file.split('/').map(encodeURIComponent).join('/'), authFor, optional, opts.repo, revision, file);
    if (meta) found.push({ file, meta });
  }
  const total = found.every((f) => f.meta.size !== null) ? found.reduce((n, f) => n + (f.meta.size ?? 0), 0) : null;
  opts.onProgress?.({ file: `${found.length} files`, received: 0, total, phase: 'plan' });
  for (const { file, meta } of found) {
    await fetchFile(meta, join(opts.dir, file), file, authFor, opts);
    written.push(file);
  }
  return written;
}

async function fileMeta(
  url: string,
  authFor: (url: string) => Record<string, string>,
  optional: boolean,
  repo: string,
  revision: string,
  file: string,
): Promise<FileMeta | null> {
  let current = url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const res = await request(current, { method: 'HEAD', headers: { 'accept-encoding': 'identity', ...authFor(current) } });
    await res.body.dump();
    const header = (name: string): string | null => {
      const v = res.headers[name];
      return Array.isArray(v) ? (v[0] ?? null) : (v ?? null);
    };
    const linkedEtag = header('x-linked-etag');
    const linkedSize = header('x-linked-size');
    const location = header('location');
    if (res.statusCode >= 300 && res.statusCode < 400 && location) {
      const next = new URL(location, current).toString();
      // LFS files: the hub answers with a redirect to its CDN and tells size and sha256 on the way.
      if (linkedEtag || linkedSize) return { url: next, ...hashes(linkedEtag), size: linkedSize ? Number(linkedSize) : null };
      current = next;
      continue;
    }
    if (res.statusCode === 404 && optional) return null;
    if (res.statusCode === 401 || res.statusCode === 403) {
      throw new HubError(`${repo}: access denied (HTTP ${res.statusCode}) for ${file}; for gated or private models set HF_TOKEN`);
    }
    if (res.statusCode === 404) {
      throw new HubError(`${repo}@${revision} has no ${file} (HTTP 404): check the hub id and --revision; it must be a CLIP export in ONNX layout`);
    }
    if (res.statusCode >= 400) throw new HubError(`${current}: HTTP ${res.statusCode}`);
    const size = linkedSize ?? header('content-length');
    return { url: current, ...hashes(linkedEtag ?? header('etag')), size: size ? Number(size) : null };
  }
  throw new HubError(`${url}: more than ${MAX_REDIRECTS} redirects`);
}

function hashes(etag: string | null): { sha256: string | null; gitSha1: string | null } {
  const tag = (etag ?? '').replace(/^W\//, '').replace(/"/g, '').toLowerCase();
  return { sha256: /^[0-9a-f]{64}$/.test(tag) ? tag : null, gitSha1: /^[0-9a-f]{40}$/.test(tag) ? tag : null };
}

async function fetchFile(
  meta: FileMeta,
  dest: string,
  file: string,
  authFor: (url: string) => Record<string, string>,
  opts: PullOptions,
): Promise<void> {
  const progress = opts.onProgress ?? (() => {});
  await mkdir(dirname(dest), { recursive: true });
  if (existsSync(dest) && (await verify(dest, meta)) === null) {
    progress({ file, received: meta.size ?? 0, total: meta.size, phase: 'skip' });
    return;
  }
  const partial = `${dest}.incomplete`;
  const attempts = opts.attempts ?? 5;
  for (let attempt = 1; ; attempt++) {
    try {
      await download(meta, partial, file, authFor, progress);
      break;
    } catch (err) {
      if (err instanceof HubError || attempt >= attempts) {
        throw err instanceof HubError ? err : new HubError(`${file}: download failed (${describe(err)}); run the pull again to resume`);
      }
      progress({ file, received: await sizeOf(partial), total: meta.size, phase: 'retry', message: describe(err) });
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
  progress({ file, received: await sizeOf(partial), total: meta.size, phase: 'verify' });
  const problem = await verify(partial, meta);
  if (problem) {
    await rm(partial, { force: true });
    throw new HubError(`${file}: ${problem}; the download was deleted, run the pull again`);
  }
  await rename(partial, dest);
  progress({ file, received: meta.size ?? 0, total: meta.size, phase: 'done' });
}

async function download(
  meta: FileMeta,
  partial: string,
  file: string,
  authFor: (url: string) => Record<string, string>,
  progress: (p: PullProgress) => void,
): Promise<void> {
  let have = await sizeOf(partial);
  if (meta.size !== null && have > meta.size) {
    await rm(partial, { force: true });
    have = 0;
  }
  if (meta.size !== null && have === meta.size) return;
  let url = meta.url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const headers: Record<string, string> = { 'accept-encoding': 'identity', ...authFor(url) };
    if (have > 0) headers['range'] = `bytes=${have}-`;
    const res = await request(url, { method: 'GET', headers });
    const location = res.headers['location'];
    if (res.statusCode >= 300 && res.statusCode < 400 && typeof location === 'string') {
      await res.body.dump();
      url = new URL(location, url).toString();
      continue;
    }
    if (res.statusCode === 416 && have > 0) {
      // The server has nothing past what we hold: start over rather than trust a partial of unknown length.
      await res.body.dump();
      await rm(partial, { force: true });
      have = 0;
      continue;
    }
    if (res.statusCode !== 200 && res.statusCode !== 206) {
      await res.body.dump();
      const message = `${file}: HTTP ${res.statusCode} from ${new URL(url).host}`;
      throw res.statusCode >= 500 ? new Error(message) : new HubError(message);
    }
    const resuming = res.statusCode === 206;
    if (resuming) progress({ file, received: have, total: meta.size, phase: 'resume' });
    else {
      have = 0;
      progress({ file, received: 0, total: meta.size, phase: 'start' });
    }
    const out = await open(partial, resuming ? 'a' : 'w');
    try {
      let received = have;
      let lastReport = 0;
      for await (const chunk of res.body) {
        await out.write(chunk as Buffer);
        received += (chunk as Buffer).length;
        const now = Date.now();
        if (now - lastReport >= 500) {
          lastReport = now;
          progress({ file, received, total: meta.size, phase: 'progress' });
        }
      }
    } finally {
      await out.close();
    }
    const got = await sizeOf(partial);
    if (meta.size !== null && got < meta.size) throw new Error(`connection closed at ${got} of ${meta.size} bytes`);
    return;
  }
  throw new HubError(`${file}: more than ${MAX_REDIRECTS} redirects`);
}

/** Null when the file matches what the hub promised, else what is wrong. */
async function verify(path: string, meta: FileMeta): Promise<string | null> {
  const size = await sizeOf(path);
  if (meta.size !== null && size !== meta.size) return `size ${size} bytes, the hub says ${meta.size}`;
  if (meta.sha256) {
    const got = await digest(path, 'sha256');
    if (got !== meta.sha256) return `sha256 ${got} does not match the hub's ${meta.sha256} (corrupted download)`;
  } else if (meta.gitSha1) {
    const got = await digest(path, 'sha1', `blob ${size}\0`);
    if (got !== meta.gitSha1) return `git hash ${got} does not match the hub's ${meta.gitSha1} (corrupted download)`;
  }
  return null;
}

async function digest(path: string, algorithm: 'sha256' | 'sha1', prefix = ''): Promise<string> {
  const hash = createHash(algorithm);
  hash.update(prefix);
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
