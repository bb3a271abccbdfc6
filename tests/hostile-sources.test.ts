import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { openSource } from '../src/warc/open-source.js';
import { expandShardSources, ShardSourceError } from '../src/warc/shard-sources.js';
import { guardedLookup, sourceGuard } from '../src/worker/ssrf.js';

async function listen(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; base: string; hits: () => number }> {
  let hits = 0;
  const server = createServer((req, res) => {
    hits++;
    handler!(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits: () => hits };
}

test('corpus/ssrf: shard sources and listings obey the image SSRF rules (loopback refused unless allowed, redirects checked)', async () => {
  const web = await listen((req, res) => {
    if (req.url === '/to-private.paths') res.writeHead(302, { location: 'http://10.0.0.1/wat.paths' }).end();
    else if (req.url === '/to-metadata.wat.gz') res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
    else res.writeHead(200).end('crawl-data/x.warc.wat.gz\n');
  });
  try {
    const strict = sourceGuard({ allowLoopback: false });
    const loopback = sourceGuard({ allowLoopback: true });
    await assert.rejects(openSource(`${web.base}/a.wat.gz`, { guard: strict }), /refused: 127\.0\.0\.1 is a loopback address/);
    await assert.rejects(openSource(`http://localhost:${new URL(web.base).port}/a.wat.gz`, { guard: strict }), /refused/);
    await assert.rejects(openSource(`${web.base}/a.wat.gz`), /refused/, 'no guard, no fetch');
    await assert.rejects(
      expandShardSources(`${web.base}/wat.paths.gz`, { guard: strict }),
      (err: unknown) => err instanceof ShardSourceError && /loopback/.test(err.message),
    );
    assert.equal(web.hits(), 0, 'no refused request reached the server');
    assert.deepEqual(await expandShardSources(`${web.base}/wat.paths.gz`, { guard: loopback }), ['https://data.commoncrawl.org/crawl-data/x.warc.wat.gz']);
    await assert.rejects(openSource(`${web.base}/to-private.paths`, { guard: loopback }), /10\.0\.0\.1 is a private address/);
    await assert.rejects(openSource(`${web.base}/to-metadata.wat.gz`, { guard: loopback }), /metadata/);
    await assert.rejects(openSource('file:///etc/passwd', { guard: loopback }), /no such file|refused/);
  } finally {
    await new Promise<void>((r) => web.server.close(() => r()));
  }
});

test('corpus/ssrf: names resolving to forbidden addresses are refused on the connecting lookup; --allow-private admits a private mirror only', async () => {
  const answers: Record<string, string> = { 'rebind.test': '127.0.0.1', 'meta.test': '169.254.169.254', 'mirror.test': '10.1.2.3', 'cgnat.test': '100.64.0.1', 'compat.test': '::7f00:1' };
  for (const allowPrivate of [false, true]) {
    const lookup = guardedLookup({ allowLoopback: false, allowPrivate }, (host, cb) => cb(null, [{ address: answers[host]!, family: answers[host]!.includes(':') ? 6 : 4 }]));
    for (const host of Object.keys(answers)) {
      const result = await new Promise<string>((resolve) =>
        (lookup as unknown as (h: string, o: object, cb: (e: Error | null, a: string) => void) => void)(host, {}, (err, address) => resolve(err ? err.message : address)),
      );
      if (allowPrivate && host === 'mirror.test') assert.equal(result, '10.1.2.3');
      else assert.match(result, /^refused/, `${host} (allowPrivate ${allowPrivate}): ${result}`);
    }
  }
});
