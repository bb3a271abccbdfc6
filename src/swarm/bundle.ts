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
export const WORKER_DEPENDENCIES = ['@grpc/grpc-js', '@grpc/proto-loader', 'undici', 'sharp', 'htmlparser2', 'ipaddr.js', 'commander', 'pino'];

/** The worker bundle: an `npm pack` of cah (dependencies cut to the worker's) plus, separately, its production node_modules. */
export interface WorkerBundle {
  /** Content id: the same sources and modules give the same id, so hosts that have it are not sent it again. */
  id: string;
  packPath: string;
  modulesPath: string;
  /** The platform the modules were installed for (`linux-x64-glibc`); other hosts run `npm install`. */
  platform: string;
}

/** `platform-arch-libc`, found as the host probe finds it (musl systems have /lib/ld-musl-*). */
export function localPlatform(): string {
  const musl = existsSync('/lib') && readdirSync('/lib').some((name) => name.startsWith('ld-musl-'));
  return `${process.platform}-${process.arch}-${musl ? 'musl' : 'glibc'}`;
}

interface PackageJson {
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

/** The installed package directories the worker needs: WORKER_DEPENDENCIES and everything they depend on. */
export function workerModuleDirs(root: string, names: string[] = WORKER_DEPENDENCIES): string[] {
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
function bundleId(root: string, moduleDirs: string[], platform: string): string {
  const hash = createHash('sha256').update(platform).update(WORKER_DEPENDENCIES.join(','));
  for (const file of [join(root, 'package.json'), ...['dist/src', 'proto', 'swarm'].flatMap((d) => filesUnder(join(root, d)))]) {
    hash.update(`${relative(root, file)}\n`).update(readFileSync(file));
  }
  for (const dir of moduleDirs) {
    const pkg = readPackageJson(dir);
    hash.update(`${relative(root, dir)}@${pkg.version}\n`);
  }
  return hash.digest('hex').slice(0, 16);
}

/** The package as workers get it: only the worker's dependencies, no scripts (a host's `npm install` must not build cah). */
function workerPackageJson(pkg: PackageJson): PackageJson {
  const dependencies = Object.fromEntries(Object.entries(pkg.dependencies ?? {}).filter(([name]) => WORKER_DEPENDENCIES.includes(name)));
  const { devDependencies: _dev, scripts: _scripts, ...rest } = pkg;
  return { ...rest, dependencies };
}

/**
 * Builds (or reuses from `cacheDir`) the worker bundle from the compiled project in `root`
 * (`npx tsc -p tsconfig.json` first). Only the newest bundle is kept in the cache.
 */
export async function buildWorkerBundle(cacheDir: string, root: string = packageRoot()): Promise<WorkerBundle> {
  if (!existsSync(join(root, 'dist', 'src', 'cli', 'main.js'))) {
    throw new Error(`worker bundle: ${join(root, 'dist')} is missing; build cah first (npm run build)`);
  }
  const platform = localPlatform();
  const moduleDirs = workerModuleDirs(root);
  const id = bundleId(root, moduleDirs, platform);
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
  // gzip -1: three times faster than the default level for a tenth more bytes.
  await run('tar', ['-I', 'gzip -1', '-cf', join(work, 'node_modules.tgz'), '-C', root, ...moduleDirs.map((d) => relative(root, d))], { maxBuffer: 64 << 20 });
  rmSync(staging, { recursive: true, force: true });
  rmSync(join(work, packed.filename), { force: true });
  renameSync(work, dir);
  return bundle;
}
