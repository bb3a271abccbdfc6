import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { refusalReason } from '../src/worker/ssrf.js';
import { DEFAULT_FETCH_OPTIONS, ImageFetcher } from '../src/worker/fetcher.js';

test('every refused address class, IPv4 and IPv6, loopback only with the flag', () => {
  const refused: [string, RegExp][] = [
    ['127.0.0.1', /loopback/],
    ['::1', /loopback/],
    ['10.1.2.3', /private/],
    ['172.16.0.1', /private/],
    ['192.168.1.1', /private/],
    ['fd00::1', /private/],
    ['169.254.169.254', /metadata/],
    ['169.254.1.1', /link-local/],
    ['fe80::1', /link-local/],
    ['100.64.0.1', /CGNAT/],
    ['224.0.0.1', /multicast/],
    ['ff02::1', /multicast/],
    ['0.0.0.0', /unspecified/],
    ['255.255.255.255', /broadcast/],
    ['::ffff:10.0.0.1', /private/],
    ['::ffff:127.0.0.1', /loopback/],
  ];
  for (const [address, reason] of refused) {
    const r = refusalReason(address, { allowLoopback: false });
    assert.ok(r && reason.test(r), `${address}: ${r}`);
  }
  assert.equal(refusalReason('93.184.216.34', { allowLoopback: false }), null);
  assert.equal(refusalReason('2606:4700::1111', { allowLoopback: false }), null);
  assert.equal(refusalReason('127.0.0.1', { allowLoopback: true }), null);
  assert.equal(refusalReason('::1', { allowLoopback: true }), null);
  assert.match(refusalReason('10.0.0.1', { allowLoopback: true })!, /private/, 'the flag allows loopback only');
  assert.match(refusalReason('169.254.169.254', { allowLoopback: true })!, /metadata/);
});

test('fetches to loopback are refused without the flag (IP literal, a name resolving to it, a redirect to it)', async () => {
  let hits = 0;
  const server: Server = createServer((req, res) => {
    hits++;
    if (req.url === '/to-private') res.writeHead(302, { location: 'http://10.0.0.1/x.jpg' }).end();
    else res.writeHead(200, { 'content-type': 'image/jpeg' }).end('jpeg');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const strict = new ImageFetcher({ ...DEFAULT_FETCH_OPTIONS, perHostRps: 1000 });
  const loose = new ImageFetcher({ ...DEFAULT_FETCH_OPTIONS, perHostRps: 1000, allowLoopback: true });
  try {
    const literal = await strict.fetch(`http://127.0.0.1:${port}/a.jpg`);
    assert.ok(!literal.ok && /loopback/.test(literal.error), JSON.stringify(literal));
    const named = await strict.fetch(`http://localhost:${port}/a.jpg`);
    assert.ok(!named.ok && /refused/.test(named.error), JSON.stringify(named));
    assert.equal(hits, 0, 'no request reached the server');
    const allowed = await loose.fetch(`http://127.0.0.1:${port}/a.jpg`);
    assert.ok(allowed.ok);
    const redirected = await loose.fetch(`http://127.0.0.1:${port}/to-private`);
    assert.ok(!redirected.ok && /10\.0\.0\.1 is a private address/.test(redirected.error), JSON.stringify(redirected));
  } finally {
    await strict.close();
    await loose.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
