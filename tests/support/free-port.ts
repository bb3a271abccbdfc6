import { createServer, type AddressInfo } from 'node:net';

/** A loopback port free right now, for a child process that must be told its --listen address up front. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}
