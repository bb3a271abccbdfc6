import { readFileSync } from 'node:fs';
import { swarmAsset } from './package-root.js';

/** One pinned Node.js build: where a server fetches it and the SHA-256 it must have. */
export interface NodeBuild {
  url: string;
  sha256: string;
  integrity: string;
}

/** The Node.js release swarm workers run (swarm/node-release.json). */
export interface NodeRelease {
  version: string;
  builds: Record<'x64' | 'arm64', NodeBuild>;
}

export function nodeRelease(): NodeRelease {
  return JSON.parse(readFileSync(swarmAsset('node-release.json'), 'utf8')) as NodeRelease;
}

/** The pin as the host script reads it (`KEY=value` lines, sourced by sh). */
export function nodeReleaseEnv(release: NodeRelease = nodeRelease()): string {
  const quote = (v: string): string => `'${v.replace(/'/g, `'\\''`)}'`;
  return [
    `NODE_VERSION=${quote(release.version)}`,
    `NODE_X64_URL=${quote(release.builds.x64.url)}`,
    `NODE_X64_SHA256=${quote(release.builds.x64.sha256)}`,
    `NODE_ARM64_URL=${quote(release.builds.arm64.url)}`,
    `NODE_ARM64_SHA256=${quote(release.builds.arm64.sha256)}`,
  ].join('\n') + '\n';
}
