import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { CahError } from '../errors.js';
import { openSource, type UrlGuard } from './open-source.js';

const COMMONCRAWL_BASE = 'https://data.commoncrawl.org';
const SHARD_NAME = /\.(wat|warc)(\.gz)?$/i;
const LISTING_NAME = /\.paths(\.gz)?$/i;
const CRAWL_ID = /^CC-MAIN-\d{4}-\d{2}$/i;
const ACCEPTED =
  'a .wat, .wat.gz, .warc or .warc.gz file or http(s) URL, a *.paths.gz listing (file or URL), or a crawl id like CC-MAIN-2024-22';

export interface ExpandOptions {
  /** At most this many sources are returned. */
  limit?: number;
  signal?: AbortSignal;
  /** The address rules remote listings are fetched under (required for URLs). */
  guard?: UrlGuard;
}

/** Common Crawl's data host; CAH_COMMONCRAWL_BASE points it elsewhere (a mirror, a test server). */
function commoncrawlBase(): string {
  return (process.env['CAH_COMMONCRAWL_BASE'] || COMMONCRAWL_BASE).replace(/\/+$/, '');
}

function isUrl(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

/** A shard source that cannot be used as given (INVALID), or a remote listing that cannot be read (UNREACHABLE). */
export class ShardSourceError extends CahError {
  constructor(message: string, code: 'CAH_SOURCE_INVALID' | 'CAH_SOURCE_UNREACHABLE') {
    super(code, message);
  }
}

/** A listing line: a path relative to the Common Crawl host, or already a URL. */
function listedSource(line: string): string {
  return isUrl(line) ? line : `${commoncrawlBase()}/${line.replace(/^\/+/, '')}`;
}

async function expandListing(listing: string, limit: number, opts: ExpandOptions): Promise<string[]> {
  let input;
  let sourceError: string | null = null;
  try {
    input = await openSource(listing, {
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.guard ? { guard: opts.guard } : {}),
      onError: (msg) => (sourceError ??= msg),
    });
  } catch (err) {
    throw new ShardSourceError(`cannot read listing ${listing}: ${(err as Error).message}`, isUrl(listing) ? 'CAH_SOURCE_UNREACHABLE' : 'CAH_SOURCE_INVALID');
  }
  const sources: string[] = [];
  const lines = createInterface({ input, crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      const path = line.trim();
      if (!path) continue;
      sources.push(listedSource(path));
      if (sources.length >= limit) break;
    }
  } catch (err) {
    throw new ShardSourceError(`cannot read listing ${listing}: ${(err as Error).message}`, isUrl(listing) ? 'CAH_SOURCE_UNREACHABLE' : 'CAH_SOURCE_INVALID');
  } finally {
    lines.close();
    input.destroy();
  }
  // A listing cut short by garbage would silently drop shards.
  if (sourceError !== null && sources.length < limit) throw new ShardSourceError(`cannot read listing ${listing}: ${sourceError}`, isUrl(listing) ? 'CAH_SOURCE_UNREACHABLE' : 'CAH_SOURCE_INVALID');
  if (sources.length === 0) throw new ShardSourceError(`listing ${listing} names no files`, 'CAH_SOURCE_INVALID');
  return sources;
}

/**
 * What `cah shards add` accepts, expanded to shard sources: a local WAT/WARC file (its absolute
 * path), an http(s) URL of one (as is), a *.paths.gz listing, local or remote (one path per line,
 * relative to https://data.commoncrawl.org), or a crawl id CC-MAIN-YYYY-WW (its wat.paths.gz).
 * Anything else, or a missing file, is a ShardSourceError.
 */
export async function expandShardSources(source: string, opts: ExpandOptions = {}): Promise<string[]> {
  const limit = opts.limit ?? Infinity;
  if (CRAWL_ID.test(source)) {
    return expandListing(`${commoncrawlBase()}/crawl-data/${source.toUpperCase()}/wat.paths.gz`, limit, opts);
  }
  if (isUrl(source)) {
    let pathname: string;
    try {
      pathname = new URL(source).pathname;
    } catch {
      throw new ShardSourceError(`${source} is not a valid URL; expected ${ACCEPTED}`, 'CAH_SOURCE_INVALID');
    }
    if (LISTING_NAME.test(pathname)) return expandListing(source, limit, opts);
    if (SHARD_NAME.test(pathname)) return [source];
    throw new ShardSourceError(`cannot use ${source}: expected ${ACCEPTED}`, 'CAH_SOURCE_INVALID');
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source) || (!LISTING_NAME.test(source) && !SHARD_NAME.test(source))) throw new ShardSourceError(`cannot use ${source}: expected ${ACCEPTED}`, 'CAH_SOURCE_INVALID');
  const path = resolve(source);
  const info = await stat(path).catch(() => null);
  if (!info) throw new ShardSourceError(`no such file: ${source}`, 'CAH_SOURCE_INVALID');
  if (!info.isFile()) throw new ShardSourceError(`not a file: ${source}`, 'CAH_SOURCE_INVALID');
  return LISTING_NAME.test(source) ? expandListing(path, limit, opts) : [path];
}
