import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import type { UrlGuard } from '../warc/open-source.js';

/** Which addresses may be fetched beyond public unicast: loopback (tests, the demo), private ranges (a private mirror). */
export interface AddressPolicy {
  allowLoopback: boolean;
  /** RFC 1918 and IPv6 unique-local addresses; never link-local or the metadata address. */
  allowPrivate?: boolean;
}

/** ipaddr.js range names we refuse; loopback only when the flag allows it. */
const REFUSED: Record<string, string> = {
  unspecified: 'an unspecified',
  broadcast: 'a broadcast',
  multicast: 'a multicast',
  linkLocal: 'a link-local',
  loopback: 'a loopback',
  private: 'a private',
  uniqueLocal: 'a private',
  carrierGradeNat: 'a CGNAT',
  reserved: 'a reserved',
  ipv4Mapped: 'an IPv4-mapped',
  rfc6145: 'a translated',
  rfc6052: 'a translated',
  '6to4': 'a 6to4',
  teredo: 'a Teredo',
  benchmarking: 'a benchmarking',
  amt: 'an AMT',
  as112: 'an AS112',
  deprecated: 'a deprecated',
  orchid2: 'an ORCHID',
  droneRemoteIdProtocolEntityTags: 'a reserved',
};

/**
 * Why an address must not be fetched, or null when it may. Checked on the resolved IP the
 * connection uses. The cloud metadata address 169.254.169.254 is link-local.
 */
export function refusalReason(address: string, opts: AddressPolicy): string | null {
  let ip: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    // IPv6 in the WHATWG URL's canonical form first: ipaddr.js reads "::a.b.c.d" as IPv4-mapped, the OS does not.
    ip = ipaddr.parse(address.includes(':') ? new URL(`http://[${address}]/`).hostname.slice(1, -1) : address);
  } catch {
    return `refused: ${address} is not an IP address`;
  }
  if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) ip = (ip as ipaddr.IPv6).toIPv4Address();
  const range = ip.range();
  // ::a.b.c.d (IPv4-compatible, deprecated by RFC 4291): ipaddr.js calls it unicast, yet some stacks route it to a.b.c.d.
  if (range === 'unicast' && ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).parts.slice(0, 6).every((p) => p === 0)) {
    return `refused: ${address} is an IPv4-compatible address`;
  }
  if (range === 'unicast') return null;
  if (range === 'loopback' && opts.allowLoopback) return null;
  if ((range === 'private' || range === 'uniqueLocal') && opts.allowPrivate) return null;
  if (address === '169.254.169.254') return `refused: ${address} is the cloud metadata address`;
  return `refused: ${address} is ${REFUSED[range] ?? `a ${range}`} address`;
}

/** Why a URL must not be requested before any lookup (scheme, an IP literal the policy forbids), or null. */
export function urlRefusal(url: URL, policy: AddressPolicy): string | null {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `refused: ${url.protocol} URL`;
  const literal = url.hostname.replace(/^\[|\]$/g, '');
  return isIP(literal) ? refusalReason(literal, policy) : null;
}

export type Resolver = (hostname: string, callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;

const systemResolver: Resolver = (hostname, callback) => dnsLookup(hostname, { all: true }, callback);

class RefusedError extends Error {}

export function isRefusal(err: unknown): boolean {
  return err instanceof RefusedError;
}

/**
 * A `lookup` for sockets that only ever hands out addresses the policy allows: the check happens on
 * the address the connection will use, so DNS rebinding cannot slip a forbidden one through.
 */
export function guardedLookup(policy: AddressPolicy, resolve: Resolver = systemResolver): LookupFunction {
  return ((hostname: string, options: { all?: boolean }, callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void) => {
    resolve(hostname, (err, addresses) => {
      if (err) {
        callback(err, '', 0);
        return;
      }
      const allowed = addresses.filter((a) => refusalReason(a.address, policy) === null);
      if (allowed.length === 0) {
        callback(new RefusedError(addresses[0] ? (refusalReason(addresses[0].address, policy) ?? `refused: ${hostname}`) : `refused: ${hostname}`), '', 0);
        return;
      }
      if (options.all) callback(null, allowed);
      else callback(null, allowed[0]!.address, allowed[0]!.family);
    });
  }) as unknown as LookupFunction;
}

/** The guard shard sources are opened through: the same rules as images. */
export function sourceGuard(policy: AddressPolicy): UrlGuard {
  return { lookup: guardedLookup(policy), check: (url) => urlRefusal(url, policy) };
}
