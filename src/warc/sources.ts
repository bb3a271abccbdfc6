import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { CliError, EXIT_REMOTE, EXIT_USAGE } from '../cli/errors.js';
import { openSource, type UrlGuard } from './source.js';

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
    throw new CliError(`cannot read listing ${listing}: ${(err as Error).message}`, isUrl(listing) ? EXIT_REMOTE : EXIT_USAGE);
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
    throw new CliError(`cannot read listing ${listing}: ${(err as Error).message}`, isUrl(listing) ? EXIT_REMOTE : EXIT_USAGE);
  } finally {
    lines.close();
    input.destroy();
  }
  // A listing cut short by garbage would silently drop shards.
  if (sourceError !== null && sources.length < limit) throw new CliError(`cannot read listing ${listing}: ${sourceError}`, isUrl(listing) ? EXIT_REMOTE : EXIT_USAGE);
  if (sources.length === 0) throw new CliError(`listing ${listing} names no files`);
  return sources;
}

/**
 * What `cah shards add` accepts, expanded to shard sources: a local WAT/WARC file (its absolute
 * path), an http(s) URL of one (as is), a *.paths.gz listing, local or remote (one path per line,
 * relative to https://data.commoncrawl.org), or a crawl id CC-MAIN-YYYY-WW (its wat.paths.gz).
 * Anything else, or a missing file, is a CliError.
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
      throw new CliError(`${source} is not a valid URL; expected ${ACCEPTED}`);
    }
    if (LISTING_NAME.test(pathname)) return expandListing(source, limit, opts);
    if (SHARD_NAME.test(pathname)) return [source];
    throw new CliError(`cannot use ${source}: expected ${ACCEPTED}`);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source) || (!LISTING_NAME.test(source) && !SHARD_NAME.test(source))) throw new CliError(`cannot use ${source}: expected ${ACCEPTED}`);
  const path = resolve(source);
  const info = await stat(path).catch(() => null);
  if (!info) throw new CliError(`no such file: ${source}`);
  if (!info.isFile()) throw new CliError(`not a file: ${source}`);
  return LISTING_NAME.test(source) ? expandListing(path, limit, opts) : [path];
}
