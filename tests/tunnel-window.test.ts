import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { KnownHosts } from '../src/swarm/ssh.js';
import { generateEd25519KeyPair } from '../src/swarm/state.js';
import { HostLink, TUNNEL_WINDOW_BYTES } from '../src/swarm/tunnel.js';
import { freePort } from './support/free-port.js';
import { SSHD, SshdHost } from './support/sshd-host.js';

/** What sshd may hold read ahead in a channel's buffer before each of its reads costs milliseconds. */
const SSHD_READ_AHEAD_LIMIT = 4 * 1024 * 1024;

/** ssh2's channel state, read to check what the coordinator lets the host's sshd send. */
interface ChannelWindow {
  incoming: { window: number };
}

/** Waits until `value()` has not changed for `quietMs` (at most `limitMs`); returns the last value. */
async function settled(value: () => number, quietMs: number, limitMs: number): Promise<number> {
  let last = value();
  let since = Date.now();
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    await sleep(50);
    const now = value();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) break;
  }
  return last;
}

test(
  "the SSH tunnel window: a host's sshd sends at most 4 MiB that the coordinator has not read, however slowly it reads, and the window stays nearly whole while it reads",
  { skip: existsSync(SSHD) ? false : `no sshd at ${SSHD} (install openssh-server); the tunnel's data path is still run by the link and swarm tests` },
  async () => {
    const root = mkdtempSync(join(tmpdir(), 'cah-tunnel-window-'));
    const keys = generateEd25519KeyPair();
    const address = '127.0.0.62';
    const host = await SshdHost.start({ root: join(root, 'host'), configDir: join(root, 'sshd'), address, port: await freePort(), authorizedKeys: [keys.public] });
    const tunnelPort = await freePort();
    let channel: Duplex | null = null;
    const link = new HostLink({
      target: { name: 'window-test', host: address, port: host.opts.port },
      privateKey: keys.private,
      knownHosts: new KnownHosts(join(root, 'known_hosts')),
      // The coordinator's side consumes nothing until the test reads.
      tunnel: { bind: address, port: tunnelPort, serve: (connection) => void (channel = connection.pause()) },
      log: () => undefined,
    });
    link.start();
    // 8 windows of data from the worker's side, sent as fast as the tunnel takes it.
    const payload = randomBytes(8 * TUNNEL_WINDOW_BYTES);
    let worker: Socket | null = null;
    try {
      for (let i = 0; i < 200 && !link.isOpen; i++) await sleep(50);
      assert.ok(link.isOpen, 'the tunnel opened');
      worker = connect({ host: address, port: tunnelPort });
      worker.on('error', () => undefined);
      worker.end(payload);
      for (let i = 0; i < 200 && !channel; i++) await sleep(50);
      assert.ok(channel, 'the connection came through the tunnel');
      const ch = channel as Duplex;

      // Nothing consumed: sshd stops once the window is spent. Past a few MB of read-ahead sshd
      // degenerates (src/swarm/tunnel.ts), so the bound is checked as such, not only as the constant.
      const buffered = await settled(() => ch.readableLength, 1500, 20_000);
      assert.ok(buffered <= Math.min(TUNNEL_WINDOW_BYTES, SSHD_READ_AHEAD_LIMIT), `sshd sent ${buffered} bytes the coordinator had not consumed (window ${TUNNEL_WINDOW_BYTES})`);
      assert.ok(buffered > TUNNEL_WINDOW_BYTES - 64 * 1024, `the window was opened to ${TUNNEL_WINDOW_BYTES} (sshd sent ${buffered})`);

      const state = ch as unknown as ChannelWindow;
      const outstanding = (): number => state.incoming.window + ch.readableLength;
      const hash = createHash('sha256');
      let received = 0;
      let lowest = Infinity;
      ch.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        received += chunk.length;
      });

      // A slow reader, 32 KB at a time: what sshd may send plus what waits unread stays within the window.
      let highest = 0;
      for (let i = 0; i < 64; i++) {
        ch.read(32 * 1024);
        await sleep(20);
        highest = Math.max(highest, outstanding());
      }
      assert.ok(highest <= TUNNEL_WINDOW_BYTES, `sshd could send ${highest} bytes beyond what the coordinator had read (window ${TUNNEL_WINDOW_BYTES})`);

      // A fast reader: the window stays nearly whole, and every byte arrives in order.
      await new Promise<void>((resolve, reject) => {
        ch.on('data', () => {
          if (received < payload.length - TUNNEL_WINDOW_BYTES) lowest = Math.min(lowest, outstanding());
        });
        ch.once('end', resolve);
        ch.once('error', reject);
        ch.resume();
      });
      assert.equal(received, payload.length);
      assert.equal(hash.digest('hex'), createHash('sha256').update(payload).digest('hex'), 'the bytes arrived intact and in order');
      // Topped up each time an eighth is read; another eighth of slack for packets that arrive between two 'data' events.
      assert.ok(lowest >= TUNNEL_WINDOW_BYTES - TUNNEL_WINDOW_BYTES / 4, `the window fell to ${lowest} of ${TUNNEL_WINDOW_BYTES} while the coordinator read`);
    } finally {
      worker?.destroy();
      await link.close();
      await host.stop();
      rmSync(root, { recursive: true, force: true });
    }
  },
);
