import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { WORKER_DEPENDENCIES, buildWorkerBundle, localPlatform, workerModuleDirs } from '../src/swarm/bundle.js';
import { packageRoot, swarmAsset } from '../src/swarm/package-root.js';
import { cloudInitUserData } from '../src/swarm/provision.js';
import { ensureSshKeyPair, isWellFormedEd25519, readSshKeyPair, swarmDir } from '../src/swarm/state.js';
import { ensureCoordinatorCertificate } from '../src/swarm/tls.js';

let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'cah-swarm-assets-'));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

test('the swarm key pair is generated once, 0600, with the fingerprint Hetzner computes (MD5)', () => {
  const state = join(dir, 'state');
  const pair = ensureSshKeyPair(state);
  assert.match(pair.publicKey, /^ssh-ed25519 AAAA/);
  assert.equal(statSync(join(swarmDir(state), 'id_ed25519')).mode & 0o777, 0o600);
  assert.equal(statSync(swarmDir(state)).mode & 0o777, 0o700);
  assert.deepEqual(ensureSshKeyPair(state), pair, 'not regenerated');
  assert.deepEqual(readSshKeyPair(state), pair);
  const md5 = execFileSync('ssh-keygen', ['-l', '-E', 'md5', '-f', join(swarmDir(state), 'id_ed25519.pub')], { encoding: 'utf8' });
  assert.ok(md5.includes(`MD5:${pair.fingerprint}`), md5);
});

test('a malformed ed25519 public key (31-byte key, as ssh2 sometimes emits) is told apart from a good one', () => {
  const good = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIF1m6YzFcNUXQEiGPl1TsffptX2p/zmLohWEh1MgiqdU cah-swarm'; // from ssh-keygen
  const short = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAH2ya/RmNkdsDJBUsWIMmls4ZBgrz5/6jv2iiSK8oFc8= cah-swarm';
  assert.equal(isWellFormedEd25519(good), true);
  assert.equal(isWellFormedEd25519(short), false);
  assert.equal(isWellFormedEd25519('ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ'), false);
  for (let i = 0; i < 20; i++) {
    const state = join(dir, `keys-${i}`);
    assert.ok(isWellFormedEd25519(ensureSshKeyPair(state).publicKey));
  }
});

test('cloud-init: no secret, a non-root user, sshd hardening, open-file limits, Node.js and a caching resolver', () => {
  const userData = cloudInitUserData();
  assert.ok(Buffer.byteLength(userData) <= 32 * 1024);
  assert.match(userData, /^#cloud-config\n/);
  assert.match(userData, /- name: cah\n\s+system: true/);
  assert.match(userData, /PasswordAuthentication no/);
  assert.match(userData, /PermitRootLogin prohibit-password/);
  assert.match(userData, /AllowTcpForwarding remote/);
  assert.match(userData, /nofile 1048576/);
  assert.match(userData, /- unbound/);
  assert.match(userData, /DNS=127\.0\.0\.1/);
  assert.match(userData, /nodesource.*setup_20/);
  assert.doesNotMatch(userData, /HCLOUD|CAH_WORKER_TOKEN|token=|password:|BEGIN .*PRIVATE KEY/i);
  const unit = readFileSync(swarmAsset('cah-worker.service'), 'utf8');
  assert.match(unit, /^User=cah$/m);
  assert.match(unit, /^EnvironmentFile=@ROOT@\/etc\/cah\/worker\.env$/m);
  assert.match(unit, /--actor-id \$\{CAH_ACTOR_ID\}/);
  assert.doesNotMatch(unit, /--token/, 'the token stays in the 0600 environment file');
});

test('the worker bundle: npm pack with only the worker dependencies, and their modules without SQLite or ONNX Runtime', async () => {
  const root = packageRoot();
  const dirs = workerModuleDirs(root).map((d) => relative(root, d));
  for (const name of WORKER_DEPENDENCIES) assert.ok(dirs.includes(`node_modules/${name}`), name);
  for (const heavy of ['better-sqlite3', 'onnxruntime-node', 'ink', 'react', 'ssh2']) assert.ok(!dirs.includes(`node_modules/${heavy}`), heavy);
  assert.ok(dirs.some((d) => d.startsWith('node_modules/@img/sharp-')), 'sharp with its platform package');
  assert.ok(!dirs.some((d) => d.startsWith('node_modules/@types/')));

  const cache = join(dir, 'bundles');
  const bundle = await buildWorkerBundle(cache);
  assert.equal(bundle.platform, localPlatform());
  const listing = execFileSync('tar', ['-tzf', bundle.packPath], { encoding: 'utf8', maxBuffer: 64 << 20 }).split('\n');
  for (const file of ['package/package.json', 'package/dist/src/cli/main.js', 'package/proto/cah.proto', 'package/swarm/bootstrap.sh', 'package/swarm/cah-worker-ctl.sh']) {
    assert.ok(listing.includes(file), file);
  }
  const manifest = JSON.parse(execFileSync('tar', ['-xzOf', bundle.packPath, 'package/package.json'], { encoding: 'utf8' })) as Record<string, unknown>;
  assert.deepEqual(Object.keys(manifest['dependencies'] as object).sort(), [...WORKER_DEPENDENCIES].sort());
  assert.equal(manifest['scripts'], undefined, 'no prepare script runs on the host');
  const modules = execFileSync('tar', ['-tzf', bundle.modulesPath], { encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.match(modules, /^node_modules\/sharp\/package\.json$/m);
  assert.doesNotMatch(modules, /better-sqlite3|onnxruntime/);
  const again = await buildWorkerBundle(cache);
  assert.deepEqual(again, bundle, 'unchanged sources: the cached bundle, same id');
});

test('--direct: a self-signed coordinator certificate for the given address, key 0600', async () => {
  const state = join(dir, 'state-tls');
  const cert = await ensureCoordinatorCertificate(state, '203.0.113.7');
  const x509 = new X509Certificate(cert.certPem);
  assert.match(x509.subjectAltName ?? '', /IP Address:203\.0\.113\.7/);
  assert.ok(x509.verify(x509.publicKey), 'self-signed');
  assert.equal(statSync(cert.keyPath).mode & 0o777, 0o600);
  assert.equal((await ensureCoordinatorCertificate(state, '203.0.113.7')).certPem, cert.certPem, 'generated once');
});
