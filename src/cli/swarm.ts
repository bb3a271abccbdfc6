import type { Command } from 'commander';
import { CliError, reportOutcome } from './errors.js';
import { intFlag, resolveStateDir } from './state.js';

/** Progress lines on stderr: `cah swarm: server created server=cah-a-1 id=4`. */
function progressLog(obj: object, msg: string): void {
  const fields = Object.entries(obj)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}`)
    .join(' ');
  process.stderr.write(`cah swarm: ${msg}${fields ? ' ' + fields : ''}\n`);
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

function age(seconds: number): string {
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h${Math.floor((seconds % 3600) / 60)}m`;
  return `${Math.floor(seconds / 86_400)}d${Math.floor((seconds % 86_400) / 3600)}h`;
}

function sshPortFlag(flag: number | undefined): number {
  if (flag !== undefined) return flag;
  const env = process.env['CAH_SWARM_SSH_PORT'];
  if (!env) return 22;
  const port = Number(env);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new CliError(`CAH_SWARM_SSH_PORT must be a port number, got "${env}"`);
  return port;
}

/** Runs a swarm operation, turning its configuration and API errors into one-line CLI errors. */
async function guarded<T>(fn: () => Promise<T>): Promise<T> {
  const [{ SwarmConfigError }, { HetznerApiError, describeApiError }, { HostKeyChangedError }] = await Promise.all([
    import('../swarm/errors.js'),
    import('../swarm/hetzner/errors.js'),
    import('../swarm/ssh.js'),
  ]);
  try {
    return await fn();
  } catch (err) {
    if (err instanceof SwarmConfigError) throw new CliError(err.message, 'CAH_USAGE');
    if (err instanceof HostKeyChangedError) throw new CliError(err.message, 'CAH_PARTIAL');
    if (err instanceof HetznerApiError) throw new CliError(`Hetzner API: ${describeApiError(err)}`, err.code === 'unauthorized' ? 'CAH_USAGE' : 'CAH_PARTIAL');
    throw err;
  }
}

/** The human summary of `swarm up`: per server, what runs, what it all costs per location, what to do. */
async function formatUpReport(report: import('../swarm/up.js').UpReport): Promise<string> {
  const { formatLocationCost } = await import('../swarm/cost.js');
  const lines = [
    table([
      ['NAME', 'STATUS', 'IP', 'TYPE', '€/H', 'PROJECT', 'DETAIL'],
      // The first clause of a detail; the whole of it once, under "what to do".
      ...report.servers.map((s) => [s.name, s.status, s.ip ?? '-', s.type ?? '-', s.hourlyGross?.toFixed(4) ?? '-', s.project ?? '-', (s.detail ?? '').split('; ')[0]!]),
    ]).trimEnd(),
    `${report.running}/${report.servers.length} servers of swarm ${report.swarm} run a worker${report.ok ? '' : ' (see the failures above)'}`,
  ];
  const exist = report.cost.reduce((n, c) => n + c.servers, 0);
  if (exist > 0) {
    lines.push(`cost of the ${exist} server(s) that exist (each bills until deleted, worker or not):`);
    for (const c of report.cost) lines.push(`  ${formatLocationCost(c)}`);
    lines.push(`  total ${report.hourlyGross.toFixed(4)} €/h gross (${(report.hourlyGross * 24).toFixed(2)} €/day) until \`cah swarm down --name ${report.swarm}\``);
  }
  if (report.problems.length) lines.push('what to do:', ...report.problems.map((p) => `  ${p}`));
  return lines.join('\n') + '\n';
}

/** Ctrl-C during `up`: the servers created so far bill, so say which and how to delete them, then stop. */
async function reportInterrupted(stateDir: string, swarm: string): Promise<void> {
  const { readSwarm } = await import('../swarm/state.js');
  const servers = readSwarm(stateDir, swarm)?.servers ?? [];
  const lines = [`cah swarm up interrupted. Swarm ${swarm} has ${servers.length} server(s) recorded, billed until deleted:`];
  for (const s of servers) lines.push(`  ${s.name}  ${s.ip || 'no IPv4 yet'}  id ${s.id}  ${s.type}  ${s.location}`);
  lines.push(
    'A create sent just before the interrupt may have made one more: `cah swarm ls` lists what Hetzner has.',
    `Delete them all: cah swarm down --name ${swarm} --yes   (or run \`cah swarm up\` again to finish)`,
  );
  process.stderr.write(lines.join('\n') + '\n');
  process.exit(130);
}

/** The Hetzner tokens and endpoint from the environment / .env. */
async function hetzner(): Promise<{ accounts: import('../swarm/hetzner/tokens.js').HetznerAccount[]; endpoint?: string }> {
  const { loadHetznerAccounts, hetznerEndpoint } = await import('../swarm/hetzner/tokens.js');
  const endpoint = hetznerEndpoint();
  return { accounts: loadHetznerAccounts(), ...(endpoint ? { endpoint } : {}) };
}

async function confirmOnTty(question: string): Promise<boolean> {
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

export function registerSwarmCommands(program: Command): void {
  const swarm = program
    .command('swarm')
    .description('scraper servers on Hetzner Cloud: create, bootstrap, list, delete (token: HCLOUD_TOKEN or .env)')
    .addHelpText(
      'after',
      `
Environment:
  HCLOUD_TOKEN        Hetzner Cloud API token; several (one per project, comma-separated) fill N across
                      projects. Limits (servers, cores, Primary IPs) are per ACCOUNT: a second project of
                      the same account adds no capacity; raise them in the Console → project → Limits
  HCLOUD_ENDPOINT     API URL (default https://api.hetzner.cloud/v1)
  CAH_SWARM_SSH_PORT  the hosts' SSH port (default 22)

cah only ever touches servers labelled cah-swarm=<name>; unrelated servers in the projects are left alone.`,
    );
  const stateDir = (): string => resolveStateDir(program.opts()['state']);

  swarm
    .command('up')
    .description('top the swarm up to N servers in LOCATION and start a worker on each (idempotent)')
    .argument('<N>', 'servers wanted', intFlag(1))
    .argument('<LOCATION>', 'Hetzner location, e.g. fsn1, nbg1, hel1, ash')
    .option('--type <type>', 'server type, or auto: the cheapest orderable one of --arch, the next one up to 1.5× its price when sold out', 'auto')
    .option('--name <swarm>', 'swarm name: servers are cah-<name>-<i>, labelled cah-swarm=<name>', 'default')
    .option('--arch <arch>', 'x86 or arm64 (cax): the architecture --type auto picks from; the worker bundle is built for it', 'x86')
    .option('--max-price <eur>', 'with --type auto: the most a type may cost, gross €/h (default 1.5× the cheapest orderable)', parseFloat)
    .option('--image <image>', 'server image (ubuntu-24.04, ubuntu-22.04, debian-12, debian-13)', 'ubuntu-24.04')
    .option('--direct <host:port>', 'workers dial the coordinator here over TLS (pinned certificate) instead of through SSH tunnels')
    .option('--ssh-port <port>', 'the hosts\' SSH port (env CAH_SWARM_SSH_PORT)', intFlag(1))
    .option('--json', 'print the per-server report as JSON', false)
    .addHelpText(
      'after',
      `
Examples:
  HCLOUD_TOKEN=… cah swarm up 20 fsn1                 # 20 workers, tunnelled to the coordinator (cah gpu)
  cah swarm up 40 nbg1 --name big --type cpx32        # a second swarm with a fixed server type
  cah swarm up 10 fsn1 --arch arm64                   # ARM (cax) servers
  HCLOUD_TOKEN=tokA,tokB cah swarm up 50 hel1         # fill project A, then B (another account's) on a limit
  cah swarm up 5 fsn1 --direct gpu.example.org:7443   # workers dial the coordinator over TLS

Exit codes: 0 every server runs a worker, 1 some failed (reported per server), 2 usage or configuration error,
130 interrupted (what exists is printed, with the command that deletes it).`,
    )
    .action(
      async (
        count: number,
        location: string,
        flags: { type: string; arch: string; maxPrice?: number; name: string; image: string; direct?: string; sshPort?: number; json: boolean },
      ) => {
        const [{ swarmUp }, { parseArchitecture }] = await Promise.all([import('../swarm/up.js'), import('../swarm/server-types.js')]);
        const state = stateDir();
        const onInterrupt = (): void => void reportInterrupted(state, flags.name);
        process.once('SIGINT', onInterrupt);
        let report;
        try {
          report = await guarded(async () =>
            swarmUp({
              ...(await hetzner()),
              stateDir: state,
              count,
              location,
              swarm: flags.name,
              type: flags.type,
              arch: parseArchitecture(flags.arch),
              ...(flags.maxPrice !== undefined ? { maxPrice: flags.maxPrice } : {}),
              image: flags.image,
              sshPort: sshPortFlag(flags.sshPort),
              ...(flags.direct ? { direct: flags.direct } : {}),
              log: progressLog,
            }),
          );
        } finally {
          process.off('SIGINT', onInterrupt);
        }
        if (flags.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
        else process.stdout.write(await formatUpReport(report));
        if (!report.ok) reportOutcome('partial');
      },
    );

  swarm
    .command('down')
    .description('delete exactly the servers of one swarm (all projects, all pages) and its SSH key')
    .option('--name <swarm>', 'swarm name', 'default')
    .option('--dry-run', 'only print what would be deleted', false)
    .option('-y, --yes', 'do not ask for confirmation', false)
    .option('--json', 'print the report as JSON', false)
    .addHelpText(
      'after',
      `
Examples:
  cah swarm down --dry-run           # list what would be deleted
  cah swarm down --yes               # delete swarm "default" without asking
  cah swarm down --name big --yes

Only servers labelled cah-swarm=<name> are deleted. Without a terminal, --yes is required.`,
    )
    .action(async (flags: { name: string; dryRun: boolean; yes: boolean; json: boolean }) => {
      const { swarmDown } = await import('../swarm/down.js');
      if (!flags.dryRun && !flags.yes && !process.stdin.isTTY) throw new CliError('not a terminal: pass --yes to delete without confirmation (or --dry-run to look first)');
      const report = await guarded(async () =>
        swarmDown({
          ...(await hetzner()),
          stateDir: stateDir(),
          swarm: flags.name,
          dryRun: flags.dryRun,
          ...(flags.yes ? {} : { confirm: (servers) => confirmOnTty(`Delete ${servers.length} server(s) of swarm ${flags.name} (${servers.map((s) => s.name).join(', ')})? [y/N] `) }),
          log: progressLog,
        }),
      );
      if (flags.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      else if (report.aborted) process.stdout.write('aborted: nothing deleted\n');
      else {
        const verb = report.dryRun ? 'would delete' : 'deleted';
        for (const s of report.servers) process.stdout.write(`${verb} ${s.name} (${s.ip || 'no IPv4'}, id ${s.id}, project ${s.project})\n`);
        for (const f of report.failed) process.stdout.write(`failed to delete ${f.name} (id ${f.id}): ${f.detail}\n`);
        for (const k of report.keysRemoved) process.stdout.write(`removed SSH key ${k}\n`);
        if (report.servers.length === 0 && report.failed.length === 0) process.stdout.write(`swarm ${report.swarm}: no servers${report.dryRun ? '' : ' to delete'}\n`);
      }
      if (report.failed.length > 0 || report.aborted) reportOutcome('partial');
    });

  swarm
    .command('ls')
    .description('the swarm servers with their worker actor state and hourly cost')
    .option('--name <swarm>', 'only this swarm (default: all)')
    .option('--json', 'print JSON', false)
    .addHelpText(
      'after',
      `
Examples:
  cah swarm ls
  cah swarm ls --name big --json | jq '.[] | select(.actor.state != "ALIVE") | .name'`,
    )
    .action(async (flags: { name?: string; json: boolean }) => {
      const { listSwarm, actorStatesFromStore } = await import('../swarm/ls.js');
      const rows = await guarded(async () =>
        listSwarm({ ...(await hetzner()), ...(flags.name ? { swarm: flags.name } : {}), actors: await actorStatesFromStore(stateDir()) }),
      );
      if (flags.json) {
        process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
        return;
      }
      if (rows.length === 0) {
        process.stdout.write('no swarm servers\n');
        return;
      }
      process.stdout.write(
        table([
          ['NAME', 'IP', 'LOCATION', 'TYPE', 'STATUS', 'AGE', '€/H', 'ACTOR'],
          ...rows.map((r) => [r.name, r.ip, r.location, r.type, r.status, age(r.ageSeconds), r.hourlyGross === null ? '-' : r.hourlyGross.toFixed(4), r.actor?.state ?? '-']),
        ]),
      );
      const { costByLocation, formatLocationCost } = await import('../swarm/cost.js');
      const perLocation = costByLocation(rows);
      for (const c of perLocation) process.stdout.write(`${formatLocationCost(c)}\n`);
      const total = perLocation.reduce((sum, c) => sum + c.hourly, 0);
      process.stdout.write(`${rows.length} server(s), ${total.toFixed(4)} €/h gross with their Primary IPv4s (each bills until deleted)\n`);
    });

  swarm
    .command('logs')
    .description("a swarm worker's log (journalctl, or its log file on hosts without systemd), over SSH")
    .argument('<SERVER>', 'server name (cah-<swarm>-<i>) or IP')
    .option('-f, --follow', 'keep following the log', false)
    .addHelpText(
      'after',
      `
Examples:
  cah swarm logs cah-default-3
  cah swarm logs cah-default-3 -f`,
    )
    .action(async (server: string, flags: { follow: boolean }) => {
      const { streamWorkerLogs } = await import('../swarm/logs.js');
      const stop = new AbortController();
      const onSignal = (): void => stop.abort();
      process.once('SIGINT', onSignal);
      try {
        const code = await guarded(() =>
          streamWorkerLogs({ stateDir: stateDir(), server, follow: flags.follow, out: process.stdout, err: process.stderr, signal: stop.signal }),
        ).catch((err: unknown) => {
          // An unreachable host is one line too, not a stack trace.
          throw err instanceof CliError ? err : new CliError(`${server}: ${(err as Error).message}`, 'CAH_PARTIAL');
        });
        if (code !== 0 && !stop.signal.aborted) reportOutcome('partial');
      } finally {
        process.off('SIGINT', onSignal);
      }
    });
}
