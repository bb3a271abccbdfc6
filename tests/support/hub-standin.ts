import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StandinFile {
  content: Buffer;
  /** Served like the hub serves LFS files: a redirect to the "CDN" with X-Linked-Size / X-Linked-Etag. */
  lfs?: boolean;
}

export interface StandinRequest {
  method: string;
  path: string;
  range: string | null;
  authorization: string | null;
}

export interface HubStandin {
  /** Use as HF_ENDPOINT. */
  endpoint: string;
  requests: StandinRequest[];
  /** The next CDN GET of this file sends only this many bytes, then drops the connection. */
  cutNextDownload(path: string, afterBytes: number): void;
  /** CDN GETs of this file serve altered bytes (the advertised size and hash stay the true ones). */
  corrupt(path: string): void;
  close(): Promise<void>;
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const gitSha1 = (b: Buffer): string => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

/**
 * A loopback stand-in for the Hugging Face hub's file API: `/<repo>/resolve/<revision>/<path>`
 * (HEAD and GET), LFS files redirected to `/cdn/<sha256>` with Range support, small files served
 * directly with a git-blob ETag, 404 for anything else; optional bearer token.
 */
export async function startHubStandin(opts: {
  repo: string;
  revision?: string;
  files: Record<string, StandinFile>;
  token?: string;
}): Promise<HubStandin> {
  const revision = opts.revision ?? 'main';
  const requests: StandinRequest[] = [];
  const cuts = new Map<string, number>();
  const corrupted = new Set<string>();
  const bySha = new Map<string, string>();
  for (const [path, f] of Object.entries(opts.files)) bySha.set(sha256(f.content), path);
  let endpoint = '';

  const serveBytes = (req: IncomingMessage, res: ServerResponse, path: string, content: Buffer, headers: Record<string, string>): void => {
    let body = content;
    if (corrupted.has(path)) {
      body = Buffer.from(content);
      body[Math.floor(body.length / 2)] ^= 0xff;
    }
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      if (start >= body.length) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
    }
    const slice = body.subarray(start);
    res.writeHead(range ? 206 : 200, {
      ...headers,
      'content-length': String(slice.length),
      'accept-ranges': 'bytes',
      ...(range ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const cut = cuts.get(path);
    if (cut !== undefined) {
      cuts.delete(path);
      res.write(slice.subarray(0, cut), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(slice);
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', endpoint);
    requests.push({ method: req.method ?? '', path: url.pathname, range: req.headers.range ?? null, authorization: req.headers.authorization ?? null });
    const prefix = `/${opts.repo}/resolve/${revision}/`;
    if (url.pathname.startsWith(prefix)) {
      if (opts.token && req.headers.authorization !== `Bearer ${opts.token}`) {
        res.writeHead(401, { 'x-error-code': 'GatedRepo' }).end('unauthorized');
        return;
      }
      const path = decodeURIComponent(url.pathname.slice(prefix.length));
      const file = opts.files[path];
      if (!file) {
        res.writeHead(404, { 'x-error-code': 'EntryNotFound' }).end('Entry not found');
        return;
      }
      const common = { 'x-repo-commit': '0123456789abcdef0123456789abcdef01234567' };
      if (file.lfs) {
        const sha = sha256(file.content);
        res
          .writeHead(302, {
            ...common,
            location: `${endpoint}/cdn/${sha}`,
            'x-linked-size': String(file.content.length),
            'x-linked-etag': `"${sha}"`,
            etag: `"${sha}"`,
          })
          .end();
        return;
      }
      serveBytes(req, res, path, file.content, { ...common, etag: `"${gitSha1(file.content)}"` });
      return;
    }
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
    const path = cdn ? bySha.get(cdn[1]!) : undefined;
    if (path) {
      serveBytes(req, res, path, opts.files[path]!.content, { 'content-type': 'application/octet-stream' });
      return;
    }
    res.writeHead(404).end('not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    endpoint,
    requests,
    cutNextDownload: (path, afterBytes) => cuts.set(path, afterBytes),
    corrupt: (path) => corrupted.add(path),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
