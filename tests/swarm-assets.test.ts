import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { WORKER_DEPENDENCIES, buildWorkerBundle, fitsPlatform, localPlatform, workerModuleDirs } from '../src/swarm/bundle.js';
import { nodeRelease, nodeReleaseEnv } from '../src/swarm/node-release.js';
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

test('cloud-init: no secret, a non-root user, sshd hardening, open-file limits and a caching resolver; no Node.js from a curl | bash', () => {
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
  assert.doesNotMatch(userData, /nodesource|\| *(ba)?sh|setup_\d+\.x/, 'no script piped into a shell');
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

/** ELF e_machine of a file: 0x3e x86-64, 0xb7 AArch64. */
function elfMachine(bytes: Buffer): number {
  assert.equal(bytes.subarray(0, 4).toString('latin1'), '\x7fELF');
  return bytes.readUInt16LE(18);
}

test('an arm64 worker bundle is built from the lockfile and holds arm64 binaries only (npm registry needed)', async (t) => {
  const arm = 'linux-arm64-glibc';
  let bundle;
  try {
    bundle = await buildWorkerBundle(join(dir, 'arm', 'bundles'), packageRoot(), arm);
  } catch (err) {
    if (!/ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ENETUNREACH|network/i.test((err as Error).message)) throw err;
    t.skip('the npm registry cannot be reached: the arm64 bundle is not built');
    return;
  }
  assert.equal(bundle.platform, arm);
  const unpacked = join(dir, 'arm-unpacked');
  mkdirSync(unpacked, { recursive: true });
  execFileSync('tar', ['-xzf', bundle.modulesPath, '-C', unpacked]);
  const listing = execFileSync('find', [join(unpacked, 'node_modules'), '-name', '*.node', '-o', '-name', '*.so*'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  assert.ok(listing.some((f) => f.includes('@img/sharp-linux-arm64/')), 'sharp for linux-arm64');
  assert.ok(listing.some((f) => f.includes('@img/sharp-libvips-linux-arm64/')), 'libvips for linux-arm64');
  assert.ok(!listing.some((f) => /linux-x64|linuxmusl/.test(f)), 'no binary of another platform');
  for (const file of listing.filter((f) => statSync(f).isFile())) assert.equal(elfMachine(readFileSync(file)), 0xb7, `${relative(unpacked, file)} is AArch64`);
});

test('npm platform fields: os, cpu and libc as npm reads them', () => {
  assert.ok(fitsPlatform({ os: ['linux'], cpu: ['arm64'], libc: ['glibc'] }, 'linux-arm64-glibc'));
  assert.ok(!fitsPlatform({ os: ['linux'], cpu: ['x64'], libc: ['glibc'] }, 'linux-arm64-glibc'));
  assert.ok(!fitsPlatform({ os: ['linux'], cpu: ['arm64'], libc: ['musl'] }, 'linux-arm64-glibc'));
  assert.ok(!fitsPlatform({ cpu: ['wasm32'] }, 'linux-x64-glibc'));
  assert.ok(fitsPlatform({ os: ['!win32'] }, 'linux-x64-glibc'));
  assert.ok(fitsPlatform({}, 'linux-x64-glibc'));
});

test('workers run a pinned Node LTS: fetched to a file, checked against its SHA-256, a tampered download refused', () => {
  const release = nodeRelease();
  assert.match(release.version, /^(22|24)\.\d+\.\d+$/, 'an LTS line after Node 20');
  for (const build of Object.values(release.builds)) {
    assert.match(build.sha256, /^[0-9a-f]{64}$/);
    assert.match(build.url, new RegExp(`^https://registry\\.npmjs\\.org/node-linux-(x64|arm64)/-/node-linux-(x64|arm64)-${release.version.replace(/\./g, '\\.')}\\.tgz$`));
  }
  // A stand-in release: an archive laid out as the real one, whose node prints the pinned version.
  const root = join(dir, 'node-host');
  const src = join(dir, 'node-src', 'package', 'bin');
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, 'node'), `#!/bin/sh\necho v${release.version}\n`);
  chmodSync(join(src, 'node'), 0o755);
  writeFileSync(join(dir, 'node-src', 'package', 'LICENSE'), 'MIT\n');
  const archive = join(dir, 'node.tgz');
  execFileSync('tar', ['-czf', archive, '-C', join(dir, 'node-src'), 'package']);
  const sha256 = createHash('sha256').update(readFileSync(archive)).digest('hex');
  const pin = (sum: string): void => {
    mkdirSync(join(root, 'opt', 'cah', 'bin'), { recursive: true });
    const build = { url: `file://${archive}`, sha256: sum, integrity: '' };
    writeFileSync(join(root, 'opt', 'cah', 'bin', 'node-release.env'), nodeReleaseEnv({ version: release.version, builds: { x64: build, arm64: build } }));
  };
  const install = () => spawnSync('sh', [swarmAsset('bootstrap.sh'), 'node'], { env: { ...process.env, CAH_HOST_ROOT: root }, encoding: 'utf8' });

  pin('0'.repeat(64));
  const refused = install();
  assert.equal(refused.status, 1);
  assert.match(refused.stdout, /^error=the Node\.js download .* does not match the SHA-256 pinned in swarm\/node-release\.json: refused$/m);
  assert.ok(!existsSync(join(root, 'opt', 'cah', 'node', 'bin', 'node')), 'nothing installed');

  pin(sha256);
  const ok = install();
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, new RegExp(`^node=v${release.version.replace(/\./g, '\\.')}$`, 'm'), 'and the pinned node comes first on PATH');
  assert.ok(existsSync(join(root, 'opt', 'cah', 'node', 'LICENSE')));
  assert.equal(install().status, 0, 'installed once: the second run finds it');
});

test('the systemd unit passes systemd-analyze verify, runs as cah with the pinned node and the 0600 environment file', (t) => {
  const unitText = readFileSync(swarmAsset('cah-worker.service'), 'utf8');
  assert.match(unitText, /^ExecStart=@NODE@ @ROOT@\/opt\/cah\/current\/dist\/src\/cli\/main\.js worker /m);
  assert.match(unitText, /^Restart=always$/m);
  assert.match(unitText, /^NoNewPrivileges=true$/m);
  assert.match(unitText, /^ProtectSystem=strict$/m);
  assert.match(unitText, /^WantedBy=multi-user\.target$/m);
  const verify = spawnSync('sh', ['-c', 'command -v systemd-analyze'], { encoding: 'utf8' });
  if (verify.status !== 0) {
    t.skip('systemd-analyze is not installed (apt-get install systemd): only the contents were checked');
    return;
  }
  const unitDir = join(dir, 'unit');
  mkdirSync(unitDir, { recursive: true });
  const unit = join(unitDir, 'cah-worker.service');
  // As cah-bootstrap installs it on a real server (@ROOT@ empty), with this machine's node.
  writeFileSync(unit, unitText.replace(/@NODE@/g, process.execPath).replace(/@ROOT@/g, ''));
  const res = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
  const complaints = (res.stdout + res.stderr).split('\n').filter((l) => l.includes('cah-worker.service'));
  assert.equal(res.status, 0, res.stderr);
  assert.deepEqual(complaints, []);
});

test('Debian (no systemd-resolved): the resolver runcmd names unbound first and keeps the provider resolvers after it', () => {
  const userData = cloudInitUserData();
  const line = userData.split('\n').find((l) => l.includes('systemd-resolved; then'))!;
  const command = JSON.parse(line.trim().replace(/^- \[sh, -c, /, '[').replace(/\]$/, ']'))[0] as string;
  const fake = join(dir, 'debian');
  mkdirSync(join(fake, 'bin'), { recursive: true });
  writeFileSync(join(fake, 'bin', 'systemctl'), '#!/bin/sh\nexit 3\n');
  chmodSync(join(fake, 'bin', 'systemctl'), 0o755);
  const resolv = join(fake, 'resolv.conf');
  writeFileSync(resolv, 'nameserver 185.12.64.1\nnameserver 185.12.64.2\n');
  const res = spawnSync('sh', ['-c', command.replaceAll('/etc/resolv.conf', resolv)], { env: { ...process.env, PATH: `${join(fake, 'bin')}:${process.env['PATH']}` }, encoding: 'utf8' });
  assert.equal(res.status, 0, res.stderr);
  assert.equal(readFileSync(resolv, 'utf8'), 'nameserver 127.0.0.1\nnameserver 185.12.64.1\nnameserver 185.12.64.2\n');
});
