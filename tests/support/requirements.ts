import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * What some tests need from the machine, as `test(name, { skip }, fn)` options: false when present,
 * else the message the skipped test prints (CI installs all of them, see .ci/run).
 */
function missing(present: boolean, what: string, install: string): string | false {
  return present ? false : `${what} is not installed (${install}; CI installs it)`;
}

function runs(command: string, args: string[]): boolean {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}

/** OpenSSH's server, for the tests that run swarm hosts on loopback. */
export const needsSshd = missing(
  ['/usr/sbin/sshd', '/usr/local/sbin/sshd'].some((p) => existsSync(p)),
  'sshd',
  'apt-get install openssh-server',
);
export const needsTmux = missing(runs('tmux', ['-V']), 'tmux', 'apt-get install tmux');
export const needsPromtool = missing(runs('promtool', ['--version']), 'promtool', 'apt-get install prometheus');
