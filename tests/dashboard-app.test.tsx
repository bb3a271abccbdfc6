import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { stripVTControlCharacters } from 'node:util';
import { render } from 'ink-testing-library';
import { Dashboard } from '../src/dashboard/app.js';
import { startDashboard } from '../src/dashboard/render.js';
import { HeldSnapshotSource, sampleSnapshot } from './support/sample-snapshot.js';
import type { DashboardControls } from '../src/coordinator/snapshot-source.js';

function recordingControls(): DashboardControls & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    pauseLeasing: (paused) => calls.push(`pause:${paused}`),
    drainAndQuit: () => calls.push('drain'),
  };
}

const plain = (frame: string | undefined): string[] => stripVTControlCharacters(frame ?? '').split('\n');

/** Waits until the frame satisfies `ok` (ink handles input and updates asynchronously). */
async function frameWhere(lastFrame: () => string | undefined, ok: (lines: string[]) => boolean): Promise<string[]> {
  for (let i = 0; i < 100; i++) {
    const lines = plain(lastFrame());
    if (ok(lines)) return lines;
    await sleep(10);
  }
  assert.fail(`frame never matched:\n${plain(lastFrame()).join('\n')}`);
}

test('the full dashboard fits 80×24: no line over 80 columns, every panel and the keys present', () => {
  const snapshot = sampleSnapshot({ actors: 100 });
  const app = render(<Dashboard source={new HeldSnapshotSource(snapshot)} controls={recordingControls()} size={{ columns: 80, rows: 24 }} />);
  try {
    const lines = plain(app.lastFrame());
    assert.ok(lines.length <= 23, `${lines.length} lines: ink would clear the screen each frame`);
    for (const line of lines) assert.ok([...line].length <= 80, `wider than 80: ${line}`);
    const text = lines.join('\n');
    for (const panel of ['Shards', 'Filter', 'Throughput', 'Actors', 'Errors', 'Output']) {
      assert.ok(lines.some((l) => l.includes(panel)), `no ${panel} panel`);
    }
    assert.match(lines[0]!, new RegExp(`cah gpu · run ${snapshot.runId} · up 1h23m`));
    assert.match(lines.at(-1)!, /q drain & quit +p pause leasing +\? help/);
    assert.match(text, /Actors 100 \(98 alive, 1 restarting, 1 dead\)/);
    assert.match(text, /\+\d+ more/);
    assert.match(text, /DEAD +missed heartbeats/);
    assert.match(text, /filter-bound/);
    assert.match(text, new RegExp(snapshot.output.path));
  } finally {
    app.unmount();
  }
});

test('narrow and tall terminals get a layout that fits them', () => {
  const source = new HeldSnapshotSource(sampleSnapshot({ actors: 100 }));
  for (const [columns, rows] of [[60, 24], [50, 16], [160, 50]] as const) {
    const app = render(<Dashboard source={source} controls={recordingControls()} size={{ columns, rows }} />);
    const lines = plain(app.lastFrame());
    app.unmount();
    assert.ok(lines.length <= rows - 1, `${columns}×${rows}: ${lines.length} lines`);
    for (const line of lines) assert.ok([...line].length <= columns, `${columns}×${rows}: too wide: ${line}`);
    assert.ok(lines.some((l) => l.startsWith('Actors')), `${columns}×${rows}: no actors panel`);
    assert.match(lines.at(-1)!, /q drain/);
  }
});

test('keys: p pauses then resumes leasing, q drains once, ? toggles the help', async () => {
  const controls = recordingControls();
  const app = render(<Dashboard source={new HeldSnapshotSource(sampleSnapshot())} controls={controls} size={{ columns: 80, rows: 24 }} />);
  try {
    await sleep(20);
    app.stdin.write('p');
    await frameWhere(app.lastFrame, (l) => l[0]!.includes('PAUSED') && l.at(-1)!.includes('p resume leasing'));
    assert.deepEqual(controls.calls, ['pause:true']);
    app.stdin.write('p');
    await frameWhere(app.lastFrame, (l) => !l[0]!.includes('PAUSED'));
    assert.deepEqual(controls.calls, ['pause:true', 'pause:false']);

    app.stdin.write('?');
    const help = await frameWhere(app.lastFrame, (l) => l.some((x) => x.startsWith('Help')));
    assert.ok(!help.some((l) => /^Actors \d/.test(l)), 'help takes the place of the actors panel');
    assert.ok(help.some((l) => /^q +stop leasing/.test(l)));
    app.stdin.write('?');
    await frameWhere(app.lastFrame, (l) => l.some((x) => /^Actors \d/.test(x)));

    app.stdin.write('q');
    await frameWhere(app.lastFrame, (l) => l[0]!.includes('DRAINING'));
    app.stdin.write('q');
    await sleep(30);
    assert.deepEqual(controls.calls, ['pause:true', 'pause:false', 'drain']);
  } finally {
    app.unmount();
  }
});

test('a new snapshot from the source shows up, no faster than refreshMs', async () => {
  const first = sampleSnapshot();
  const source = new HeldSnapshotSource(first);
  const app = render(<Dashboard source={source} controls={recordingControls()} refreshMs={50} size={{ columns: 80, rows: 24 }} />);
  try {
    assert.match(plain(app.lastFrame()).join('\n'), new RegExp(`${first.shards.done + first.shards.failed}/${first.shards.total} finished`));
    source.set({ ...first, shards: { queued: 0, leased: 1, done: 1980, failed: 4, total: 1985 }, paused: true });
    source.set({ ...first, shards: { queued: 0, leased: 0, done: 1980, failed: 5, total: 1985 }, paused: true });
    const lines = await frameWhere(app.lastFrame, (l) => l.join('\n').includes('1985/1985 finished'));
    assert.match(lines.join('\n'), /complete/);
    assert.match(lines[0]!, /PAUSED/, 'the coordinator says leasing is paused');
  } finally {
    app.unmount();
  }
});

test('the dashboard follows terminal resizes', async () => {
  const app = render(<Dashboard source={new HeldSnapshotSource(sampleSnapshot({ actors: 40 }))} controls={recordingControls()} />);
  try {
    let size = { columns: 100, rows: 30 };
    Object.defineProperty(app.stdout, 'columns', { get: () => size.columns });
    Object.defineProperty(app.stdout, 'rows', { get: () => size.rows });
    app.stdout.emit('resize');
    const wide = await frameWhere(app.lastFrame, (l) => l.length === 29);
    assert.ok(wide.some((l) => /Shards.*Filter/.test(l)), 'side by side at 100 columns');
    size = { columns: 60, rows: 20 };
    app.stdout.emit('resize');
    const narrow = await frameWhere(app.lastFrame, (l) => l.length <= 19 && l.every((x) => [...x].length <= 60));
    assert.ok(!narrow.some((l) => /Shards.*Filter/.test(l)), 'stacked at 60 columns');
  } finally {
    app.unmount();
  }
});

/** A terminal stand-in for ink's real render path. */
class FakeTerminal extends Writable {
  readonly columns = 80;
  readonly rows = 24;
  readonly isTTY = true;
  output = '';
  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: () => void): void {
    this.output += chunk.toString();
    done();
  }
}

test('startDashboard draws on a terminal, takes keys from stdin and stops', async () => {
  const terminal = new FakeTerminal();
  const stdin = Object.assign(new PassThrough(), { isTTY: true, setRawMode: () => stdin, ref: () => stdin, unref: () => stdin });
  const controls = recordingControls();
  const dashboard = startDashboard(new HeldSnapshotSource(sampleSnapshot({ actors: 100 })), controls, {
    stdout: terminal as unknown as NodeJS.WriteStream,
    stdin: stdin as unknown as NodeJS.ReadStream,
    refreshMs: 50,
  });
  await sleep(50);
  stdin.write('p');
  for (let i = 0; i < 100 && controls.calls.length === 0; i++) await sleep(10);
  await dashboard.stop();
  await dashboard.stop();
  assert.deepEqual(controls.calls, ['pause:true']);
  const text = stripVTControlCharacters(terminal.output);
  assert.match(text, /Actors 100/);
  assert.match(text, /PAUSED/);
});

test('a snapshot that cannot be read leaves the last frame up instead of crashing', async () => {
  const good = sampleSnapshot();
  let calls = 0;
  const listeners = new Set<() => void>();
  const source = {
    current: () => {
      if (++calls > 1) throw new Error('store is busy');
      return good;
    },
    subscribe: (l: () => void) => (listeners.add(l), () => listeners.delete(l)),
  };
  const app = render(<Dashboard source={source} controls={recordingControls()} refreshMs={10} size={{ columns: 80, rows: 24 }} />);
  try {
    const before = plain(app.lastFrame()).join('\n');
    for (const l of listeners) l();
    for (let i = 0; i < 50 && calls < 2; i++) await sleep(10);
    assert.ok(calls >= 2, 'the dashboard asked again');
    assert.equal(plain(app.lastFrame()).join('\n'), before);
  } finally {
    app.unmount();
  }
});
