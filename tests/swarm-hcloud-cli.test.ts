import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { HetznerStandin } from './support/hetzner-standin.js';

/**
 * The stand-in driven by a client nobody here wrote: Hetzner's official `hcloud` CLI (Debian package
 * `hcloud-cli`; .ci/run installs it). What it sends and expects must work, or the stand-in is wrong.
 */

const run = promisify(execFile);

function hcloudPath(): string | null {
  try {
    return execFileSync('sh', ['-c', 'command -v hcloud'], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

const hcloud = hcloudPath();
const skip = hcloud ? false : 'the official hcloud CLI is not installed (apt-get install hcloud-cli)';

let dir: string;
let standin: HetznerStandin;
// The CLI insists on a 64-character token.
const token = 'h'.repeat(64);

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'cah-hcloud-cli-'));
  standin = await HetznerStandin.start({ dir: join(dir, 'standin'), actionDelayMs: 100 });
  standin.addProject(token);
});

after(async () => {
  if (skip) return;
  await standin.close();
  rmSync(dir, { recursive: true, force: true });
});

async function cli(...args: string[]): Promise<string> {
  const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: dir, HCLOUD_CONFIG: join(dir, 'cli.toml'), HCLOUD_TOKEN: token, HCLOUD_ENDPOINT: standin.url };
  try {
    return (await run(hcloud!, args, { env, timeout: 60_000 })).stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`hcloud ${args.join(' ')} failed: ${e.stderr || e.stdout || e.message}`);
  }
}

test('the official hcloud CLI works against the stand-in: types, locations, images, SSH keys, a server from create to delete', { skip }, async () => {
  const type = await cli('server-type', 'describe', 'cx23');
  assert.match(type, /^Name:\s+cx23$/m);
  assert.match(type, /Location:\s+fsn1/);
  assert.match(await cli('location', 'describe', 'hel1'), /^City:\s+Helsinki$/m);
  const images = await cli('image', 'list');
  for (const name of ['ubuntu-24.04', 'debian-12', 'debian-13']) assert.match(images, new RegExp(`system\\s+${name.replace('.', '\\.')}\\s`));

  execFileSync('ssh-keygen', ['-t', 'ed25519', '-N', '', '-q', '-C', 'cli-test', '-f', join(dir, 'key')]);
  assert.match(await cli('ssh-key', 'create', '--name', 'me', '--public-key-from-file', join(dir, 'key.pub')), /SSH key \d+ created/);
  assert.match(await cli('ssh-key', 'list'), /^\d+\s+me\s+[0-9a-f:]{47}$/m);

  const created = await cli('server', 'create', '--name', 'web-1', '--type', 'cx23', '--image', 'debian-13', '--location', 'hel1', '--ssh-key', 'me', '--label', 'team=web');
  assert.match(created, /Server \d+ created/);
  assert.match(created, /^IPv4:\s+127\.\d+\.\d+\.\d+$/m);
  assert.match(created, /^IPv6 Network:\s+2001:db8:/m);
  const server = standin.allServers.find((s) => s.name === 'web-1')!;
  assert.deepEqual([server.serverType, server.image, server.location, server.status], ['cx23', 'debian-13', 'hel1', 'running']);
  // What the official client sends for the ID-or-name fields; cah sends ssh_keys the same way.
  const post = standin.requests.find((r) => r.method === 'POST' && r.path === '/v1/servers')!;
  const body = post.body as { ssh_keys: unknown[] };
  assert.ok(body.ssh_keys.every((k) => typeof k === 'number'), `ssh_keys sent as ${JSON.stringify(body.ssh_keys)}`);
  assert.ok(readFileSync(join(dir, 'standin', `sshd-${server.id}`, 'authorized_keys'), 'utf8').includes(readFileSync(join(dir, 'key.pub'), 'utf8').split(' ')[1]!));

  assert.match(await cli('server', 'list', '-l', 'team=web'), /web-1\s+running\s+127\./);
  assert.doesNotMatch(await cli('server', 'list', '-l', 'team=db'), /web-1/);
  const described = await cli('server', 'describe', 'web-1');
  assert.match(described, /^Status:\s+running$/m);
  assert.match(described, /Server Type:\s+cx23/);
  assert.match(await cli('server', 'delete', 'web-1'), /Server web-1 deleted/);
  // This CLI does not wait for the delete action: the server is `deleting` until it has run.
  for (let i = 0; i < 100 && standin.project(token).servers.size > 0; i++) {
    assert.equal([...standin.project(token).servers.values()][0]!.status, 'deleting');
    await sleep(100);
  }
  assert.equal(standin.project(token).servers.size, 0);
  assert.match(await cli('ssh-key', 'delete', 'me'), /SSH Key me deleted/);
  assert.equal(standin.project(token).sshKeys.size, 0);
  assert.deepEqual(standin.violations, []);
});
