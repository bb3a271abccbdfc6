import ipaddr from 'ipaddr.js';

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
export function refusalReason(address: string, opts: { allowLoopback: boolean }): string | null {
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
  if (address === '169.254.169.254') return `refused: ${address} is the cloud metadata address`;
  return `refused: ${address} is ${REFUSED[range] ?? `a ${range}`} address`;
}
