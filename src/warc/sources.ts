import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { CliError } from '../cli/errors.js';
import { openSource } from './source.js';

const COMMONCRAWL_BASE = 'https://data.commoncrawl.org';
const SHARD_NAME = /\.(wat|warc)(\.gz)?$/i;
const CRAWL_ID = /^CC-MAIN-\d{4}-\d{2}$/;

function commoncrawlBase(): string {
  return (process.env['CAH_COMMONCRAWL_BASE'] ?? COMMONCRAWL_BASE).replace(/\/+$/, '');
}

/**
 * What `cah shards add` accepts, expanded to shard sources: a local WAT/WARC file (absolute path),
 * an http(s) URL of one, a *.paths.gz listing (local or URL), or a crawl id CC-MAIN-YYYY-WW.
 */
export async function expandShardSources(source: string, opts: { limit?: number; signal?: AbortSignal } = {}): Promise<string[]> {
  const limit = opts.limit ?? Infinity;
  if (CRAWL_ID.test(source)) {
    return expandShardSources(`${commoncrawlBase()}/crawl-data/${source}/wat.paths.gz`, opts);
  }
  const isUrl = /^https?:\/\//i.test(source);
  if (/\.paths(\.gz)?$/i.test(source)) {
    if (!isUrl && !existsSync(source)) throw new CliError(`no such listing: ${source}`);
    let input;
    try {
      input = await openSource(isUrl ? source : resolve(source), opts.signal ? { signal: opts.signal } : {});
    } catch (err) {
      throw new CliError(`cannot read listing ${source}: ${(err as Error).message}`);
    }
    const out: string[] = [];
    let rest = '';
    for await (const chunk of input) {
      const lines = (rest + (chunk as Buffer).toString('utf8')).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        const path = line.trim();
        if (path && out.length < limit) out.push(/^https?:\/\//.test(path) ? path : `${commoncrawlBase()}/${path.replace(/^\/+/, '')}`);
      }
      if (out.length >= limit) break;
    }
    const last = rest.trim();
    if (last && out.length < limit) out.push(/^https?:\/\//.test(last) ? last : `${commoncrawlBase()}/${last.replace(/^\/+/, '')}`);
    input.destroy();
    return out;
  }
  if (isUrl) {
    if (!SHARD_NAME.test(new URL(source).pathname)) throw new CliError(`${source}: expected a .wat, .wat.gz, .warc or .warc.gz URL`);
    return [source];
  }
  if (!SHARD_NAME.test(source)) {
    throw new CliError(`${source}: expected a .wat[.gz]/.warc[.gz] file or URL, a *.paths.gz listing, or a crawl id like CC-MAIN-2024-22`);
  }
  const path = resolve(source);
  if (!existsSync(path)) throw new CliError(`no such file: ${source}`);
  return [path];
}
