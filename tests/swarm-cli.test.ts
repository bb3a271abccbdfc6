import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './support/cli.js';
import { HetznerStandin, IPV4_HOURLY, money } from './support/hetzner-standin.js';

let dir: string;
let standin: HetznerStandin;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cah-swarm-cli-'));
  standin = await HetznerStandin.start({ dir: join(dir, 'standin'), realHosts: false, actionDelayMs: 20 });
  standin.addProject('tok-cli');
  await standin.seedServer('tok-cli', { name: 'db-prod' });
  await standin.seedServer('tok-cli', { name: 'cah-other-1', labels: { 'cah-swarm': 'other' } });
});

after(async () => {
  await standin.close();
  rmSync(dir, { recursive: true, force: true });
});

/** `cah --state … swarm ARGS`, in an empty working directory (no .env), against the stand-in. */
function swarm(args: string[], env: NodeJS.ProcessEnv = { HCLOUD_TOKEN: 'tok-cli' }) {
  return runCli(['--state', join(dir, 'state'), 'swarm', ...args], {
    cwd: dir,
    env: { HCLOUD_TOKEN: '', HCLOUD_ENDPOINT: standin.url, ...env },
    timeoutMs: 60_000,
  });
}

test('configuration errors are one line with exit code 2, before anything is created', async () => {
  const noToken = await swarm(['up', '2', 'fsn1'], { HCLOUD_TOKEN: '' });
  assert.equal(noToken.code, 2);
  assert.match(noToken.stderr, /^cah: no Hetzner Cloud token: set HCLOUD_TOKEN/m);
  assert.equal(noToken.stderr.trim().split('\n').length, 1);

  const badToken = await swarm(['up', '2', 'fsn1'], { HCLOUD_TOKEN: 'wrong' });
  assert.equal(badToken.code, 2);
  assert.match(badToken.stderr, /refused the token: unauthorized/);

  const location = await swarm(['up', '2', 'mars1']);
  assert.equal(location.code, 2);
  assert.match(location.stderr, /unknown location "mars1"; locations: fsn1, nbg1, hel1, ash/);

  const deprecated = await swarm(['up', '2', 'fsn1', '--type', 'cx22']);
  assert.equal(deprecated.code, 2);
  assert.match(deprecated.stderr, /server type cx22 is deprecated; orderable there: .*cx23/);

  for (const endpoint of ['not-a-url', 'ftp://api.example/v1']) {
    for (const cmd of [['up', '2', 'fsn1'], ['ls'], ['down', '--yes']]) {
      const bad = await swarm(cmd, { HCLOUD_TOKEN: 'tok-cli', HCLOUD_ENDPOINT: endpoint });
      assert.equal(bad.code, 2, `${cmd[0]}: ${bad.stderr}`);
      assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
      assert.match(bad.stderr, /^cah: HCLOUD_ENDPOINT must be an http\(s\) URL/);
    }
  }

  const arch = await swarm(['up', '2', 'fsn1', '--arch', 'sparc']);
  assert.equal(arch.code, 2);
  assert.match(arch.stderr, /--arch must be x86 or arm64/);

  const count = await swarm(['up', '0', 'fsn1']);
  assert.equal(count.code, 2);

  const name = await swarm(['up', '1', 'fsn1', '--name', 'Bad_Name']);
  assert.equal(name.code, 2);
  assert.match(name.stderr, /swarm name "Bad_Name"/);

  const noTty = await swarm(['down', '--name', 'other']);
  assert.equal(noTty.code, 2);
  assert.match(noTty.stderr, /pass --yes/);

  const logs = await swarm(['logs', 'cah-nope-1']);
  assert.equal(logs.code, 2);
  assert.match(logs.stderr, /no swarm server "cah-nope-1"/);

  assert.equal(standin.project('tok-cli').servers.size, 2, 'nothing was created or deleted');
  assert.equal(standin.project('tok-cli').sshKeys.size, 0);
});

test('ls shows cah servers only; down --dry-run lists without deleting', async () => {
  const ls = await swarm(['ls', '--json']);
  assert.equal(ls.code, 0, ls.stderr);
  const rows = JSON.parse(ls.stdout) as { name: string; swarm: string; hourlyGross: number | null; ipv4HourlyGross: number | null }[];
  assert.deepEqual(rows.map((r) => [r.name, r.swarm]), [['cah-other-1', 'other']]);
  assert.ok(rows[0]!.hourlyGross! > 0);
  const ipv4Gross = Number(money(IPV4_HOURLY).gross);
  assert.equal(rows[0]!.ipv4HourlyGross, ipv4Gross, 'the Primary IPv4 priced (gross) from GET /pricing');
  const table = await swarm(['ls']);
  assert.match(table.stdout, /^NAME\s+IP\s+LOCATION\s+TYPE\s+STATUS\s+AGE\s+€\/H\s+ACTOR$/m);
  assert.match(table.stdout, /cah-other-1 .* fsn1 .* cpx22 .* running/);
  const total = rows[0]!.hourlyGross! + ipv4Gross;
  assert.match(table.stdout, new RegExp(`^fsn1: 1 server\\(s\\) .* \\+ 1 Primary IPv4 ${ipv4Gross.toFixed(4)} €/h = ${total.toFixed(4)} €/h`, 'm'));
  assert.match(table.stdout, new RegExp(`^1 server\\(s\\), ${total.toFixed(4)} €/h gross with their Primary IPv4s`, 'm'));

  const dry = await swarm(['down', '--name', 'other', '--dry-run']);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /would delete cah-other-1 /);
  assert.equal(standin.project('tok-cli').servers.size, 2);
});

test('--help has real examples', async () => {
  const help = await swarm(['up', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /cah swarm up 20 fsn1/);
  assert.match(help.stdout, /Exit codes: 0 .* 1 .* 2/);
  const top = await swarm(['--help']);
  assert.match(top.stdout, /HCLOUD_TOKEN/);
  for (const sub of ['up', 'down', 'ls', 'logs']) assert.match(top.stdout, new RegExp(`\\b${sub}\\b`));
});
