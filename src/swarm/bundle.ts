import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import { packageRoot } from './package-root.js';

const run = promisify(execFile);

/**
 * What a worker loads: the worker needs neither SQLite (better-sqlite3) nor ONNX Runtime, which are
 * most of the install's size and need native builds. Their own dependencies come along.
 */
export const WORKER_DEPENDENCIES = ['@grpc/grpc-js', '@grpc/proto-loader', 'undici', 'sharp', 'htmlparser2', 'ipaddr.js', 'commander', 'pino', 'exif-reader', 'entities'];

interface LockEntry extends PlatformFields {
  version: string;
  integrity?: string;
  optionalDependencies?: Record<string, string>;
}

/**
 * The platform packages `platform` needs that this machine has not installed (sharp's binaries for
 * linux-arm64 on an x64 machine, or the other way round), as package-lock.json pins them: name,
 * version and integrity. Found from the optional dependencies of the packages already chosen.
 */
export function missingPlatformPackages(root: string, moduleDirs: string[], platform: string): { name: string; version: string; integrity: string }[] {
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const have = new Set(moduleDirs.map((d) => relative(root, d).replace(/^node_modules\//, '')));
  const out = new Map<string, { name: string; version: string; integrity: string }>();
  const queue = moduleDirs.flatMap((d) => Object.keys(readPackageJson(d).optionalDependencies ?? {}));
  while (queue.length > 0) {
    const name = queue.shift()!;
    const entry = lock.packages[`node_modules/${name}`];
    if (!entry || have.has(name) || out.has(name) || !fitsPlatform(entry, platform)) continue;
    if (!entry.integrity) throw new Error(`worker bundle: package-lock.json has no integrity for ${name}`);
    out.set(name, { name, version: entry.version, integrity: entry.integrity });
    queue.push(...Object.keys(entry.optionalDependencies ?? {}));
  }
  return [...out.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** Fetches one pinned package through npm (its registry and cache) into `modulesDir`, refusing a tarball whose integrity is not the lockfile's. */
async function fetchLockedPackage(pkg: { name: string; version: string; integrity: string }, downloads: string, modulesDir: string): Promise<void> {
  mkdirSync(downloads, { recursive: true });
  const { stdout } = await run('npm', ['pack', `${pkg.name}@${pkg.version}`, '--json', '--pack-destination', downloads], { cwd: downloads, maxBuffer: 16 << 20 });
  const packed = (JSON.parse(stdout) as { filename: string; integrity: string }[])[0];
  if (!packed) throw new Error(`worker bundle: npm pack ${pkg.name}@${pkg.version} produced nothing`);
  const file = join(downloads, packed.filename);
  const integrity = 'sha512-' + createHash('sha512').update(readFileSync(file)).digest('base64');
  if (integrity !== pkg.integrity) throw new Error(`worker bundle: ${pkg.name}@${pkg.version} does not match the integrity in package-lock.json: refused`);
  const dest = join(modulesDir, pkg.name);
  mkdirSync(dest, { recursive: true });
  await run('tar', ['-xzf', file, '-C', dest, '--strip-components=1', '--no-same-owner']);
}

/** The worker bundle: an `npm pack` of cah (dependencies cut to the worker's) plus, separately, its production node_modules. */
export interface WorkerBundle {
  /** Content id: the same sources and modules give the same id, so hosts that have it are not sent it again. */
  id: string;
  packPath: string;
  modulesPath: string;
  /** The platform the modules are for (`linux-x64-glibc`): hosts of another one cannot run them. */
  platform: string;
}

/** `platform-arch-libc`, found as the host probe finds it (musl systems have /lib/ld-musl-*). */
export function localPlatform(): string {
  const musl = existsSync('/lib') && readdirSync('/lib').some((name) => name.startsWith('ld-musl-'));
  return `${process.platform}-${process.arch}-${musl ? 'musl' : 'glibc'}`;
}

/** The platform of Hetzner servers of an architecture (Ubuntu and Debian images: glibc). */
export function serverPlatform(arch: 'x86' | 'arm'): string {
  return `linux-${arch === 'arm' ? 'arm64' : 'x64'}-glibc`;
}

interface PlatformFields {
  os?: string[];
  cpu?: string[];
  libc?: string[];
}

/** npm's rule for `os`/`cpu`/`libc`: absent or empty allows all; `!x` excludes x; else the value must be listed. */
function allows(list: string[] | undefined, value: string): boolean {
  if (!list || list.length === 0) return true;
  if (list.includes(`!${value}`)) return false;
  const positive = list.filter((v) => !v.startsWith('!'));
  return positive.length === 0 || positive.includes(value);
}

/** Whether a package may be installed on `platform` (`linux-arm64-glibc`). */
export function fitsPlatform(pkg: PlatformFields, platform: string): boolean {
  const [os = '', cpu = '', libc = ''] = platform.split('-');
  return allows(pkg.os, os) && allows(pkg.cpu, cpu) && (os !== 'linux' || allows(pkg.libc, libc));
}

interface PackageJson extends PlatformFields {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  [key: string]: unknown;
}

function readPackageJson(dir: string): PackageJson {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson;
}

/** Node's lookup: `node_modules/<name>` in `fromDir` and each parent, up to `root`. */
function resolvePackageDir(name: string, fromDir: string, root: string): string | null {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dir === root || dirname(dir) === dir) return null;
  }
}

/**
 * The installed package directories the worker needs on `platform`: WORKER_DEPENDENCIES and
 * everything they depend on, without packages built for other platforms (this machine's own
 * sharp binaries when the servers are of another architecture).
 */
export function workerModuleDirs(root: string, names: string[] = WORKER_DEPENDENCIES, platform: string = localPlatform()): string[] {
  const found = new Map<string, PackageJson>();
  const visit = (name: string, fromDir: string, optional: boolean): void => {
    // Type declarations are not needed at run time.
    if (name.startsWith('@types/')) return;
    const dir = resolvePackageDir(name, fromDir, root);
    if (dir === null) {
      if (optional) return;
      throw new Error(`worker bundle: ${name} is not installed (needed from ${relative(root, fromDir) || 'cah'})`);
    }
    if (found.has(dir)) return;
    const pkg = readPackageJson(dir);
    if (optional && !fitsPlatform(pkg, platform)) return;
    found.set(dir, pkg);
    for (const dep of Object.keys(pkg.dependencies ?? {})) visit(dep, dir, false);
    for (const dep of Object.keys(pkg.optionalDependencies ?? {})) visit(dep, dir, true);
    for (const dep of Object.keys(pkg.peerDependencies ?? {})) visit(dep, dir, true);
  };
  for (const name of names) visit(name, root, false);
  // A package inside another's node_modules travels with its parent directory.
  const dirs = [...found.keys()].sort();
  return dirs.filter((dir) => !dirs.some((other) => other !== dir && dir.startsWith(other + '/')));
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name))
    .sort();
}

/**
 * The bundle id: a hash over the packed sources' contents (a rebuild that changes nothing keeps the
 * id, so hosts keep their worker) and the modules' names and versions.
 */
function bundleId(root: string, moduleDirs: string[], platform: string, fetched: { name: string; version: string }[]): string {
  const hash = createHash('sha256').update(platform).update(WORKER_DEPENDENCIES.join(','));
  for (const file of [join(root, 'package.json'), ...['dist/src', 'proto', 'swarm'].flatMap((d) => filesUnder(join(root, d)))]) {
    hash.update(`${relative(root, file)}\n`).update(readFileSync(file));
  }
  for (const dir of moduleDirs) {
    const pkg = readPackageJson(dir);
    hash.update(`${relative(root, dir)}@${pkg.version}\n`);
  }
  for (const pkg of fetched) hash.update(`fetched ${pkg.name}@${pkg.version}\n`);
  return hash.digest('hex').slice(0, 16);
}

/** The package as workers get it: only the worker's dependencies, no scripts (a host's `npm install` must not build cah). */
function workerPackageJson(pkg: PackageJson): PackageJson {
  const dependencies = Object.fromEntries(Object.entries(pkg.dependencies ?? {}).filter(([name]) => WORKER_DEPENDENCIES.includes(name)));
  const { devDependencies: _dev, scripts: _scripts, ...rest } = pkg;
  return { ...rest, dependencies };
}

/**
 * Builds (or reuses from `cacheDir`) the worker bundle for `platform` from the compiled project in
 * `root` (`npx tsc -p tsconfig.json` first): this machine's modules, with the platform packages of
 * another platform fetched as package-lock.json pins them. Only the newest bundle is kept in the cache.
 */
export async function buildWorkerBundle(cacheDir: string, root: string = packageRoot(), platform: string = localPlatform()): Promise<WorkerBundle> {
  if (!existsSync(join(root, 'dist', 'src', 'cli', 'main.js'))) {
    throw new Error(`worker bundle: ${join(root, 'dist')} is missing; build cah first (npm run build)`);
  }
  const moduleDirs = workerModuleDirs(root, WORKER_DEPENDENCIES, platform);
  const fetched = missingPlatformPackages(root, moduleDirs, platform);
  const id = bundleId(root, moduleDirs, platform, fetched);
  const dir = join(cacheDir, id);
  const bundle: WorkerBundle = { id, packPath: join(dir, 'cah-worker.tgz'), modulesPath: join(dir, 'node_modules.tgz'), platform };
  if (existsSync(bundle.packPath) && existsSync(bundle.modulesPath)) return bundle;

  rmSync(cacheDir, { recursive: true, force: true });
  const work = `${dir}.partial`;
  const staging = join(work, 'staging');
  mkdirSync(staging, { recursive: true });
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: root, maxBuffer: 64 << 20 });
  const packed = (JSON.parse(stdout) as { filename: string }[])[0];
  if (!packed) throw new Error('worker bundle: npm pack produced nothing');
  await run('tar', ['-xzf', join(work, packed.filename), '-C', staging]);
  const manifest = join(staging, 'package', 'package.json');
  writeFileSync(manifest, JSON.stringify(workerPackageJson(JSON.parse(readFileSync(manifest, 'utf8')) as PackageJson), null, 2) + '\n');
  await run('tar', ['-czf', join(work, 'cah-worker.tgz'), '-C', staging, 'package']);
  const fetchedRoot = join(work, 'fetched');
  for (const pkg of fetched) await fetchLockedPackage(pkg, join(dirname(cacheDir), 'downloads'), join(fetchedRoot, 'node_modules'));
  // gzip -1: three times faster than the default level for a tenth more bytes.
  const tarArgs = ['-I', 'gzip -1', '-cf', join(work, 'node_modules.tgz'), '-C', root, ...moduleDirs.map((d) => relative(root, d))];
  if (fetched.length) tarArgs.push('-C', fetchedRoot, ...fetched.map((p) => `node_modules/${p.name}`));
  await run('tar', tarArgs, { maxBuffer: 64 << 20 });
  rmSync(fetchedRoot, { recursive: true, force: true });
  rmSync(staging, { recursive: true, force: true });
  rmSync(join(work, packed.filename), { force: true });
  renameSync(work, dir);
  return bundle;
}
