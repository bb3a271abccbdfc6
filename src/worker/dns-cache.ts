import type { LookupAddress } from 'node:dns';
import type { Resolver } from './ssrf.js';

/**
 * DNS answers kept for `ttlMs`, at most `maxEntries` of them (least recently used go first), so a
 * crawl over millions of hosts holds a bounded cache. Failed lookups are not kept.
 */
export class DnsCache {
  private readonly entries = new Map<string, { at: number; addresses: LookupAddress[] }>();

  constructor(
    private readonly upstream: Resolver,
    private readonly ttlMs = 60_000,
    private readonly maxEntries = 10_000,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  readonly resolve: Resolver = (hostname, callback) => {
    const hit = this.entries.get(hostname);
    if (hit && Date.now() - hit.at < this.ttlMs) {
      // Map order is recency order: move the hit to the end.
      this.entries.delete(hostname);
      this.entries.set(hostname, hit);
      callback(null, hit.addresses);
      return;
    }
    if (hit) this.entries.delete(hostname);
    this.upstream(hostname, (err, addresses) => {
      if (!err) {
        this.entries.set(hostname, { at: Date.now(), addresses });
        for (const oldest of this.entries.keys()) {
          if (this.entries.size <= this.maxEntries) break;
          this.entries.delete(oldest);
        }
      }
      callback(err, addresses);
    });
  };
}
