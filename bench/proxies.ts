import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DelayProxy } from '../tests/support/delay-proxy.js';

/**
 * Delay proxies in a process of their own, so that their CPU and buffers count neither against the
 * coordinator measured nor against the sender. `count` proxies, each adding `rttMs`, all forwarding
 * to `targetHost:targetPort` on loopback; they close when the parent closes stdin, and after 10 minutes at most.
 */
export async function startProxies(rttMs: number, targetPort: number, count = 1, targetHost = '127.0.0.1'): Promise<{ ports: number[]; close: () => Promise<void> }> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), String(rttMs), String(targetPort), String(count), targetHost], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`delay proxies exited with ${code}`)));
  });
  const ports = JSON.parse(line) as number[];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    ports,
    close: async () => {
      child.stdin!.end();
      await exited;
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [rtt, target, count] = process.argv.slice(2, 5).map(Number);
  const targetHost = process.argv[5] ?? '127.0.0.1';
  const proxies = await Promise.all(Array.from({ length: count! }, () => DelayProxy.start({ targetPort: target!, targetHost, rttMs: rtt!, lifetimeMs: 10 * 60_000 })));
  process.stdout.write(JSON.stringify(proxies.map((p) => p.port)) + '\n');
  const stop = async (): Promise<void> => {
    await Promise.all(proxies.map((p) => p.close()));
    process.exit(0);
  };
  process.stdin.on('end', () => void stop()).resume();
  setTimeout(() => void stop(), 10 * 60_000).unref();
}
