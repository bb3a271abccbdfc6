import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ssh2 from 'ssh2';

/** A server cah created, as recorded in the state directory (never a secret in here). */
export interface SwarmServerRecord {
  name: string;
  id: number;
  ip: string;
  /** The project (token id, see projectIdOf) the server lives in. */
  project: string;
  location: string;
  type: string;
  created: string;
  /** Gross € per hour of its type in its location, from the API's prices when it was recorded. */
  hourlyGross?: number;
  /** Gross € per hour of its Primary IPv4 (billed with the server), from `GET /pricing`. */
  ipv4HourlyGross?: number;
  /** The host's loopback address its worker dials; the coordinator's reverse tunnel binds there. */
  tunnelBind?: string;
  /** The worker bundle installed on the host. */
  bundle?: string;
}

/** How swarm workers reach the coordinator: a reverse SSH tunnel, or dialling it directly over TLS. */
export type CoordinatorRoute = { mode: 'tunnel'; port: number } | { mode: 'direct'; address: string };

export interface SwarmRecord {
  swarm: string;
  location: string;
  image: string;
  type: string;
  /** The architecture `--type auto` picks from (x86 when absent). */
  arch?: 'x86' | 'arm';
  /** `--max-price` (gross €/h) for `--type auto`. */
  maxPrice?: number;
  sshPort: number;
  route: CoordinatorRoute;
  servers: SwarmServerRecord[];
}

export interface SshKeyPair {
  privateKey: string;
  publicKey: string;
  /** Hetzner's fingerprint: MD5 of the key blob, colon-separated hex. */
  fingerprint: string;
}

export const SWARM_LABEL = 'cah-swarm';
export const SWARM_NAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/;

export function swarmDir(stateDir: string): string {
  return join(stateDir, 'swarm');
}

export function serverName(swarm: string, index: number): string {
  return `cah-${swarm}-${index}`;
}

function ensureDir(stateDir: string): string {
  const dir = swarmDir(stateDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** Writes via a temporary file and rename, so a reader never sees half a file; mode 0600. */
export function writePrivateFile(path: string, content: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/** Hetzner's SSH key fingerprint: MD5 over the base64-decoded key blob, as colon-separated hex. */
export function sshFingerprint(publicKey: string): string {
  const blob = publicKey.trim().split(/\s+/)[1];
  if (!blob) throw new Error('not an OpenSSH public key');
  return createHash('md5').update(Buffer.from(blob, 'base64')).digest('hex').match(/../g)!.join(':');
}

function keyPaths(stateDir: string): { privatePath: string; publicPath: string } {
  return { privatePath: join(swarmDir(stateDir), 'id_ed25519'), publicPath: join(swarmDir(stateDir), 'id_ed25519.pub') };
}

/** The swarm's key pair, or null before the first `swarm up`. */
export function readSshKeyPair(stateDir: string): SshKeyPair | null {
  const { privatePath, publicPath } = keyPaths(stateDir);
  if (!existsSync(privatePath) || !existsSync(publicPath)) return null;
  const publicKey = readFileSync(publicPath, 'utf8').trim();
  return { privateKey: readFileSync(privatePath, 'utf8'), publicKey, fingerprint: sshFingerprint(publicKey) };
}

/** The swarm's ed25519 key pair, generated once (0600) in the state directory. */
export function ensureSshKeyPair(stateDir: string): SshKeyPair {
  const existing = readSshKeyPair(stateDir);
  if (existing) return existing;
  ensureDir(stateDir);
  const { privatePath, publicPath } = keyPaths(stateDir);
  const pair = generateEd25519KeyPair();
  writePrivateFile(privatePath, pair.private);
  writePrivateFile(publicPath, pair.public.trim() + '\n');
  return readSshKeyPair(stateDir)!;
}

/**
 * ssh2 drops a leading zero byte of an ed25519 public key (about one key in 256), leaving a
 * 31-byte key that OpenSSH and Hetzner reject; such a pair is drawn again.
 */
export function generateEd25519KeyPair(): { private: string; public: string } {
  for (;;) {
    const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'cah-swarm' });
    if (isWellFormedEd25519(pair.public)) return pair;
  }
}

/** `ssh-ed25519 <base64 of string "ssh-ed25519", string key[32]>`. */
export function isWellFormedEd25519(publicKey: string): boolean {
  const blob = Buffer.from(publicKey.trim().split(/\s+/)[1] ?? '', 'base64');
  const typeLength = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  if (typeLength !== 11 || blob.subarray(4, 15).toString('latin1') !== 'ssh-ed25519') return false;
  return blob.length === 4 + 11 + 4 + 32 && blob.readUInt32BE(15) === 32;
}

function recordPath(stateDir: string, swarm: string): string {
  return join(swarmDir(stateDir), `${swarm}.json`);
}

export function readSwarm(stateDir: string, swarm: string): SwarmRecord | null {
  const path = recordPath(stateDir, swarm);
  if (!existsSync(path)) return null;
  return JSON.parse(readFileSync(path, 'utf8')) as SwarmRecord;
}

export function writeSwarm(stateDir: string, record: SwarmRecord): void {
  ensureDir(stateDir);
  const servers = [...record.servers].sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
  writePrivateFile(recordPath(stateDir, record.swarm), JSON.stringify({ ...record, servers }, null, 2) + '\n');
}

export function removeSwarm(stateDir: string, swarm: string): void {
  rmSync(recordPath(stateDir, swarm), { force: true });
}

/** Every swarm recorded in the state directory. */
export function listSwarms(stateDir: string): SwarmRecord[] {
  const dir = swarmDir(stateDir);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name.endsWith('.json'))
    .map((name) => readSwarm(stateDir, name.slice(0, -'.json'.length)))
    .filter((record): record is SwarmRecord => record !== null);
}

/** Finds a server by name or IP across every recorded swarm. */
export function findServer(stateDir: string, nameOrIp: string): { swarm: SwarmRecord; server: SwarmServerRecord } | null {
  for (const swarm of listSwarms(stateDir)) {
    const server = swarm.servers.find((s) => s.name === nameOrIp || s.ip === nameOrIp);
    if (server) return { swarm, server };
  }
  return null;
}

/** Adds or replaces one server of a swarm record, re-reading the file first (another process may have written it). */
export function upsertServer(stateDir: string, base: Omit<SwarmRecord, 'servers'>, server: SwarmServerRecord): void {
  const current = readSwarm(stateDir, base.swarm) ?? { ...base, servers: [] };
  writeSwarm(stateDir, { ...current, servers: [...current.servers.filter((s) => s.name !== server.name), server] });
}

export function dropServer(stateDir: string, swarm: string, name: string): void {
  const current = readSwarm(stateDir, swarm);
  if (current) writeSwarm(stateDir, { ...current, servers: current.servers.filter((s) => s.name !== name) });
}
