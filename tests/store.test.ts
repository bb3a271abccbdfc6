import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Store } from '../src/store/state-file.js';
import type { ShardResultCounts } from '../src/store/shards.js';
import { SCHEMA_VERSION, WalFlusher } from '../src/store/db.js';
import { MAX_ERROR_KINDS, OTHER_ERRORS } from '../src/store/runs.js';

/** A done shard's result with every counter `n` (what the counts are does not matter to these tests). */
function doneResult(outputShard: string, n = 0): ShardResultCounts {
  return { candidates: n, duplicates: 0, downloaded: n, failed: 0, kept: n, filteredOut: 0, bytesIn: n, outputBytes: n, outputShard };
}

function tempStore(): { store: Store; dir: string; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'cah-store-'));
  const path = join(dir, 'cah.sqlite');
  return { store: Store.open(path), dir, path };
}

test('schema: WAL, user_version, and a newer file is refused', () => {
  const { store, dir, path } = tempStore();
  assert.equal(store.db.pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(store.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  store.close();
  const raw = new Database(path);
  raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  raw.close();
  assert.throws(() => Store.open(path), /newer than this cah/);
  rmSync(dir, { recursive: true });
});

test('shards: queued → leased → done with fencing tokens; done is never leased again', () => {
  const { store, dir } = tempStore();
  assert.deepEqual(store.shards.add(['a.wat.gz', 'b.wat.gz', 'a.wat.gz']), { added: 2, existing: 1 });
  const l1 = store.shards.lease('w1', 60_000, 1000)!;
  const l2 = store.shards.lease('w2', 60_000, 1000)!;
  assert.equal(l1.source, 'a.wat.gz');
  assert.equal(l2.source, 'b.wat.gz');
  assert.notEqual(l1.fencingToken, l2.fencingToken);
  assert.equal(store.shards.lease('w3', 60_000), null);
  const result = { candidates: 5, duplicates: 1, downloaded: 4, failed: 1, kept: 3, filteredOut: 1, bytesIn: 100, outputBytes: 200, outputShard: '00001' };
  assert.equal(store.shards.complete(l1.shardId, l1.fencingToken + 999, result), false, 'a wrong token cannot complete');
  assert.equal(store.shards.complete(l1.shardId, l1.fencingToken, result), true);
  assert.equal(store.shards.complete(l1.shardId, l1.fencingToken, result), false, 'completing twice does nothing');
  assert.deepEqual(store.shards.counts(), { queued: 0, leased: 1, done: 1, failed: 0 });
  assert.equal(store.shards.doneTotals().kept, 3);
  store.close();
  rmSync(dir, { recursive: true });
});

test('shards: expired leases return to the queue, failures count to max retries, then failed', () => {
  const { store, dir } = tempStore();
  store.shards.add(['x']);
  let lease = store.shards.lease('w1', 1000, 0)!;
  assert.deepEqual(store.shards.renew('w1', [lease], 1000, 500), [lease.shardId]);
  assert.deepEqual(store.shards.renew('w2', [lease], 1000, 500), [], 'only the owner renews');
  assert.equal(store.shards.overdue(3_600_000, 1400).length, 0, 'renewed lease not expired');
  const [expired] = store.shards.overdue(3_600_000, 1600);
  assert.equal(expired!.reason, 'lease expired');
  assert.equal(store.shards.returnLease(expired!.shardId, expired!.fencingToken, expired!.reason, { countsAsFailure: true, maxRetries: 3 }, 1600)!.nowState, 'queued');
  assert.equal(store.shards.holds(lease.shardId, lease.fencingToken), false);
  lease = store.shards.lease('w2', 1000, 2000)!;
  assert.equal(lease.attempt, 2);
  assert.equal(store.shards.returnLease(lease.shardId, lease.fencingToken, 'boom', { countsAsFailure: true, maxRetries: 3 })!.nowState, 'queued');
  lease = store.shards.lease('w3', 1000, 3000)!;
  const last = store.shards.returnLease(lease.shardId, lease.fencingToken, 'final error', { countsAsFailure: true, maxRetries: 3 })!;
  assert.equal(last.nowState, 'failed');
  const row = store.shards.get(lease.shardId)!;
  assert.equal(row.error, 'final error');
  assert.equal(row.failures, 3);
  assert.equal(store.shards.retryFailed(), 1);
  assert.equal(store.shards.counts().queued, 1);
  store.close();
  rmSync(dir, { recursive: true });
});

test('restart: a reopened store requeues leased shards and keeps done ones done', () => {
  const { store, dir, path } = tempStore();
  store.shards.add(['a', 'b']);
  const a = store.shards.lease('w1', 60_000)!;
  store.shards.complete(a.shardId, a.fencingToken, doneResult('00001'));
  const b = store.shards.lease('w1', 60_000)!;
  store.close();
  const reopened = Store.open(path);
  assert.equal(reopened.shards.requeueAllLeased(), 1);
  assert.equal(reopened.shards.holds(b.shardId, b.fencingToken), false, 'the old lease is void');
  const again = reopened.shards.lease('w2', 60_000)!;
  assert.equal(again.shardId, b.shardId);
  assert.notEqual(again.fencingToken, b.fencingToken);
  assert.equal(reopened.shards.lease('w3', 60_000), null, 'the done shard is not redone');
  reopened.close();
  rmSync(dir, { recursive: true });
});

test('dedup: first shard owns a key, its retry gets it again, others get duplicates; release on failure', () => {
  const { store, dir, path } = tempStore();
  assert.deepEqual(store.dedup.claim(1, ['k1', 'k2', 'k2']), ['k1', 'k2']);
  assert.deepEqual(store.dedup.claim(2, ['k2', 'k3']), ['k3']);
  store.close();
  const reopened = Store.open(path);
  assert.deepEqual(reopened.dedup.claim(1, ['k1', 'k2', 'k3']), ['k1', 'k2'], 'survives a restart; retry of shard 1 keeps its keys');
  assert.equal(reopened.dedup.release(2), 1);
  assert.deepEqual(reopened.dedup.claim(3, ['k3']), ['k3']);
  reopened.close();
  rmSync(dir, { recursive: true });
});

test('actors: PENDING_CREATION → ALIVE → DEAD → ALIVE counts a restart; silence is detected', () => {
  const { store, dir } = tempStore();
  store.actors.expect('local-1', 'local', 'localhost', 0);
  assert.equal(store.actors.get('local-1')!.state, 'PENDING_CREATION');
  store.actors.register('local-1', { kind: 'local', host: 'h', pid: 10, version: '0.1.0' }, 1000);
  assert.equal(store.actors.get('local-1')!.state, 'ALIVE');
  assert.equal(store.actors.heartbeat('local-1', { currentShardId: 7, candidates: 3, downloaded: 2 }, 2000), true);
  assert.deepEqual(store.actors.silentSince(1500).map((a) => a.id), []);
  assert.deepEqual(store.actors.silentSince(2500).map((a) => a.id), ['local-1']);
  store.actors.markDead('local-1', 'missed heartbeats');
  const dead = store.actors.get('local-1')!;
  assert.equal(dead.state, 'DEAD');
  assert.equal(dead.deathCause, 'missed heartbeats');
  assert.equal(store.actors.heartbeat('local-1', { currentShardId: null, candidates: 0, downloaded: 0 }), false, 'a dead actor cannot heartbeat');
  store.actors.register('local-1', { kind: 'local', host: 'h', pid: 11, version: '0.1.0' }, 3000);
  const back = store.actors.get('local-1')!;
  assert.equal(back.state, 'ALIVE');
  assert.equal(back.restarts, 1);
  assert.equal(back.pid, 11);
  store.actors.expect('local-1', 'local', 'localhost');
  assert.equal(store.actors.get('local-1')!.state, 'ALIVE', 'an ALIVE actor stays ALIVE when expected again');
  store.actors.markDead('local-1', 'server deleted');
  store.actors.expect('local-1', 'swarm', '203.0.113.9');
  const again = store.actors.get('local-1')!;
  assert.deepEqual([again.state, again.deathCause, again.host], ['PENDING_CREATION', null, '203.0.113.9'], 'a dead actor being created again is pending');
  store.close();
  rmSync(dir, { recursive: true });
});

test('fencing tokens are random 53-bit integers (exact in JS, SQLite and uint64), bound to their owner', () => {
  const { store, dir } = tempStore();
  store.shards.add(Array.from({ length: 40 }, (_, i) => `s${i}`));
  const tokens = Array.from({ length: 40 }, () => store.shards.lease('w1', 60_000)!);
  for (const { fencingToken } of tokens) assert.ok(Number.isSafeInteger(fencingToken) && fencingToken > 0, String(fencingToken));
  assert.equal(new Set(tokens.map((t) => t.fencingToken)).size, 40);
  assert.ok(tokens.some((t) => t.fencingToken > 2 ** 40), 'tokens use the high bits: not a sequence');
  const sorted = [...tokens].map((t) => t.fencingToken);
  assert.notDeepEqual(sorted, [...sorted].sort((a, b) => a - b), 'not increasing');
  const first = tokens[0]!;
  assert.equal(store.shards.get(first.shardId)!.fencingToken, first.fencingToken, 'stored exactly');
  assert.equal(store.shards.holds(first.shardId, first.fencingToken, 'w1'), true);
  assert.equal(store.shards.holds(first.shardId, first.fencingToken, 'w2'), false, 'another actor cannot use the lease');
  store.close();
  rmSync(dir, { recursive: true });
});

test('a lease past the maximum lease age is overdue even while renewed; failed attempts back off', () => {
  const { store, dir } = tempStore();
  store.shards.add(['x']);
  const lease = store.shards.lease('w1', 1000, 0)!;
  for (let t = 500; t <= 5000; t += 500) store.shards.renew('w1', [lease], 1000, t);
  assert.deepEqual(store.shards.overdue(10_000, 5000), [], 'younger than the maximum age');
  const [old] = store.shards.overdue(4000, 5000);
  assert.match(old!.reason, /older than the maximum lease age \(4 s\)/);
  store.shards.returnLease(old!.shardId, old!.fencingToken, old!.reason, { countsAsFailure: true, maxRetries: 5, retryBackoffMs: 2000 }, 5000);
  assert.equal(store.shards.lease('w2', 1000, 6999), null, 'waits out the backoff');
  const again = store.shards.lease('w2', 1000, 7000)!;
  store.shards.returnLease(again.shardId, again.fencingToken, 'boom', { countsAsFailure: true, maxRetries: 5, retryBackoffMs: 2000 }, 7000);
  assert.equal(store.shards.lease('w2', 1000, 10_999), null, 'the second failure waits twice as long');
  assert.ok(store.shards.lease('w2', 1000, 11_000));
  store.close();
  rmSync(dir, { recursive: true });
});

test('dead actors are pruned: 10,000 registrations do not leave 10,000 rows', () => {
  const { store, dir } = tempStore();
  store.db.transaction(() => {
    for (let i = 0; i < 10_000; i++) {
      store.actors.register(`w-${i}`, { kind: 'remote', host: 'h', pid: i, version: 't' }, i);
      store.actors.markDead(`w-${i}`, 'missed heartbeats');
    }
  })();
  store.actors.register('alive', { kind: 'remote', host: 'h', pid: 1, version: 't' });
  assert.equal(store.actors.pruneDead(200), 9800);
  assert.equal(store.actors.count(), 201);
  assert.equal(store.actors.get('alive')!.state, 'ALIVE', 'live actors are kept');
  assert.ok(store.actors.get('w-9999'), 'the most recent dead are kept');
  store.close();
  rmSync(dir, { recursive: true });
});

test('hot writes skip the fsync, the durable ones keep it: synchronous is FULL outside them, also when nested in a transaction', () => {
  const { store, dir } = tempStore();
  try {
    const level = (): number => store.db.pragma('synchronous', { simple: true }) as number;
    assert.equal(level(), 2, 'FULL');
    store.shards.add(['/data/a.wat.gz']);
    store.actors.register('w1', { kind: 'remote', host: 'h', pid: 1, version: 'v' });
    const lease = store.shards.lease('w1', 60_000)!;
    store.actors.setCurrentShard('w1', lease.shardId);
    store.shards.renew('w1', [lease], 60_000);
    assert.deepEqual(store.dedup.claim(lease.shardId, ['k1', 'k2']), ['k1', 'k2']);
    assert.equal(level(), 2, 'back to FULL after the relaxed writes');
    // Inside a transaction SQLite refuses to change the level: the relaxed writes run under the outer one.
    store.db.transaction(() => store.actors.heartbeat('w1', { currentShardId: lease.shardId, candidates: 1, downloaded: 1 }))();
    assert.equal(level(), 2);
    assert.ok(store.shards.complete(lease.shardId, lease.fencingToken, doneResult('00001', 2)));
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('durable commits: one fsync of the WAL covers every commit made before it started (group commit, off the event loop)', async () => {
  const { store, dir, path } = tempStore();
  try {
    const syncs: { path: string; done: () => void; failed: (err: Error) => void }[] = [];
    const flusher = new WalFlusher(store.db, `${path}-wal`, (p) => new Promise((resolve, reject) => syncs.push({ path: p, done: resolve, failed: reject })));
    store.shards.add(['/data/a.wat.gz']);
    const level = (): number => store.db.pragma('synchronous', { simple: true }) as number;
    const first = flusher.commit(() => store.shards.lease('w1', 60_000));
    assert.ok(first);
    assert.equal(level(), 2, 'FULL again after the relaxed commit');
    const a = flusher.flush();
    assert.equal(syncs.length, 1);
    assert.equal(syncs[0]!.path, `${path}-wal`);
    // Commits made while that fsync runs may have missed it: they wait for one more, all of them together.
    let laterDone = 0;
    const later = Array.from({ length: 10 }, () => flusher.flush().then(() => laterDone++));
    let aDone = false;
    void a.then(() => (aDone = true));
    syncs[0]!.done();
    await a;
    assert.ok(aDone);
    await new Promise((r) => setImmediate(r));
    assert.equal(laterDone, 0, 'the first fsync does not cover commits made while it ran');
    assert.equal(syncs.length, 2, 'ten flushes behind a running fsync share the next one');
    syncs[1]!.done();
    await Promise.all(later);
    assert.equal(laterDone, 10);
    // A failed fsync reaches the callers waiting on it and every later one: after an EIO the kernel
    // may have dropped the dirty pages, so a later fsync that succeeds proves nothing.
    const failing = flusher.flush();
    const queued = flusher.flush();
    syncs[2]!.failed(new Error('EIO: i/o error, fsync'));
    await assert.rejects(failing, /EIO/);
    await assert.rejects(queued, /EIO/, 'a flush queued behind the failed fsync fails too');
    await assert.rejects(flusher.flush(), /EIO/);
    assert.equal(syncs.length, 3, 'no fsync is tried after one failed');
    assert.throws(() => store.db.transaction(() => flusher.commit(() => 1))(), /inside another transaction/);
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('durable commits with the real fsync: the write is visible at once and durable once awaited; a missing WAL is an error; a symlinked state file works', async () => {
  const { store, dir } = tempStore();
  try {
    store.shards.add(['/data/a.wat.gz']);
    const lease = store.shards.lease('w1', 60_000)!;
    const result = store.commitUnsynced(() =>
      store.shards.complete(lease.shardId, lease.fencingToken, doneResult('00001', 2)),
    );
    assert.equal(result, true);
    assert.equal(store.shards.get(lease.shardId)?.state, 'done', 'visible before the fsync ends');
    await store.synced();
    await assert.rejects(new WalFlusher(store.db, join(dir, 'gone-wal')).flush(), /ENOENT/);
    // SQLite keeps the WAL next to the file a symlinked state file points at: that is the one synced.
    mkdirSync(join(dir, 'real'));
    mkdirSync(join(dir, 'state'));
    const linked = Store.open(join(dir, 'real', 'cah.sqlite'));
    linked.close();
    symlinkSync(join(dir, 'real', 'cah.sqlite'), join(dir, 'state', 'cah.sqlite'));
    const viaLink = Store.open(join(dir, 'state', 'cah.sqlite'));
    try {
      viaLink.shards.add(['/data/b.wat.gz']);
      viaLink.commitUnsynced(() => viaLink.shards.lease('w2', 60_000));
      await viaLink.synced();
    } finally {
      viaLink.close();
    }
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('compiled statements are reused per SQL text, and a call site that plucks does not change what the next one gets', () => {
  const { store, dir } = tempStore();
  try {
    const sql = `SELECT COUNT(*) AS n FROM shards`;
    const first = store.db.prepare(sql);
    assert.equal(store.db.prepare(sql), first, 'compiled once');
    assert.equal(first.pluck().get(), 0);
    assert.deepEqual(store.db.prepare(sql).get(), { n: 0 }, 'rows as objects again');
    assert.deepEqual(store.db.prepare(sql).raw(true).get(), [0]);
    assert.deepEqual(store.db.prepare(sql).get(), { n: 0 }, 'not raw either');
    assert.equal(store.db.prepare(`UPDATE shards SET attempts = 0`).run().changes, 0, 'writers are cached too');
    // The cache is bounded: past its size a text is compiled afresh each time instead of kept.
    for (let i = 0; i < 300; i++) store.db.prepare(`SELECT ${i} AS n`);
    const late = `SELECT 299 AS n`;
    assert.notEqual(store.db.prepare(late), store.db.prepare(late));
    assert.equal(store.db.prepare(sql), first, 'what was cached stays cached');
  } finally {
    store.close();
    rmSync(dir, { recursive: true });
  }
});

test('the hot counts (any open work, how many leased) agree with counts() and read the state index, not every shard', () => {
  const { store, dir } = tempStore();
  try {
    const agree = (): void => {
      const c = store.shards.counts();
      assert.equal(store.shards.hasOpenWork(), c.queued + c.leased > 0);
      assert.equal(store.shards.leasedCount(), c.leased);
    };
    agree();
    store.shards.add(['/a', '/b', '/c']);
    agree();
    const a = store.shards.lease('w1', 60_000)!;
    const b = store.shards.lease('w1', 60_000)!;
    agree();
    store.shards.complete(a.shardId, a.fencingToken, doneResult('00001'));
    store.shards.returnLease(b.shardId, b.fencingToken, 'boom', { countsAsFailure: true, maxRetries: 1 });
    agree();
    const c = store.shards.lease('w1', 60_000)!;
    store.shards.complete(c.shardId, c.fencingToken, doneResult('00002'));
    agree();
    assert.equal(store.shards.hasOpenWork(), false, 'one done, one failed: nothing open');
    // A crawl queues ~80,000 shards: these run on every lease and state change, so they must not scan the table.
    const used: string[] = [];
    const prepare = store.db.prepare;
    store.db.prepare = ((sql: string) => (used.push(sql), prepare(sql))) as typeof prepare;
    store.shards.hasOpenWork();
    store.shards.leasedCount();
    store.db.prepare = prepare;
    assert.equal(used.length, 2);
    for (const sql of used) {
      const plan = (store.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((r) => r.detail).join('; ');
      assert.match(plan, /SEARCH shards USING (COVERING )?INDEX shards_state \(state=\?\)/, plan);
      assert.doesNotMatch(plan, /SCAN shards/, `a scan, of the table or of a whole index: ${plan}`);
    }
  } finally {
    store.close();
    rmSync(dir, { recursive: true });
  }
});

/** Shards per state and the done shards' counters, summed the slow way from every row. */
function slowTotals(store: Store): { counts: Record<string, number>; done: Record<string, number> } {
  const counts: Record<string, number> = { queued: 0, leased: 0, done: 0, failed: 0 };
  const done: Record<string, number> = Object.fromEntries(Object.keys(store.shards.doneTotals()).map((k) => [k, 0]));
  for (const id of store.db.prepare(`SELECT id FROM shards`).pluck().all() as number[]) {
    const row = store.shards.get(id)!;
    counts[row.state]!++;
    if (row.state === 'done') for (const k of Object.keys(done)) done[k]! += row[k as keyof typeof row] as number;
  }
  return { counts, done };
}

function assertTotalsAgree(store: Store, when: string): void {
  const slow = slowTotals(store);
  assert.deepEqual(store.shards.counts(), slow.counts, `${when}: counts`);
  assert.deepEqual({ ...store.shards.doneTotals() }, slow.done, `${when}: done totals`);
}

test('shard totals are kept by the store itself through every change of state, and reading them does not read the shards', () => {
  const { store, dir } = tempStore();
  try {
    assertTotalsAgree(store, 'empty');
    store.shards.add(['/a', '/b', '/c', '/d', '/e']);
    assertTotalsAgree(store, 'added');
    const [a, b, c, d] = [0, 1, 2, 3].map(() => store.shards.lease('w1', 60_000, 1000)!);
    assert.deepEqual(store.shards.renew('w1', [a!], 60_000, 2000), [a!.shardId]);
    assertTotalsAgree(store, 'leased');
    store.shards.complete(a!.shardId, a!.fencingToken, doneResult('00001', 7));
    store.shards.complete(b!.shardId, b!.fencingToken, doneResult('00002', 11));
    assert.equal(store.shards.complete(b!.shardId, b!.fencingToken, doneResult('00002', 99)), false);
    assertTotalsAgree(store, 'completed');
    store.shards.returnLease(c!.shardId, c!.fencingToken, 'boom', { countsAsFailure: true, maxRetries: 0 });
    store.shards.returnLease(d!.shardId, d!.fencingToken, 'retry', { countsAsFailure: true, maxRetries: 5 });
    assertTotalsAgree(store, 'failed and requeued');
    store.shards.lease('w2', 60_000, 10_000_000);
    assert.equal(store.shards.requeueAllLeased(), 1);
    assert.equal(store.shards.retryFailed(), 1);
    assertTotalsAgree(store, 'requeued and retried');
    store.db.prepare(`DELETE FROM shards WHERE id = ?`).run(a!.shardId);
    assertTotalsAgree(store, 'a done shard deleted');
    assert.equal(store.shards.doneTotals().kept, 11);
    // The dashboard reads these every second; a crawl or several queue hundreds of thousands of shards.
    const used: string[] = [];
    const prepare = store.db.prepare;
    store.db.prepare = ((sql: string) => (used.push(sql), prepare(sql))) as typeof prepare;
    store.shards.counts();
    store.shards.doneTotals();
    store.db.prepare = prepare;
    assert.equal(used.length, 2);
    for (const sql of used) assert.match(sql, /FROM shard_totals\b/, `${sql} reads shard_totals only`);
  } finally {
    store.close();
    rmSync(dir, { recursive: true });
  }
});

test('a state file from before the shard totals gets them counted from its shards when opened, and read-only opens count them as before', () => {
  const { store, dir, path } = tempStore();
  store.shards.add(['/a', '/b', '/c']);
  const a = store.shards.lease('w1', 60_000)!;
  store.shards.complete(a.shardId, a.fencingToken, doneResult('00001', 5));
  store.shards.lease('w1', 60_000);
  store.close();
  // As schema version 2 left it: no totals table, no triggers.
  const raw = new Database(path);
  raw.exec(`DROP TRIGGER shard_totals_insert; DROP TRIGGER shard_totals_delete; DROP TRIGGER shard_totals_update; DROP TABLE shard_totals;`);
  raw.pragma(`user_version = ${SCHEMA_VERSION - 1}`);
  raw.close();
  // `cah status` beside an older coordinator opens it read-only, unmigrated: the same figures, counted.
  const reader = Store.open(path, { readonly: true });
  try {
    assertTotalsAgree(reader, 'read-only, unmigrated');
    assert.equal(reader.shards.doneTotals().kept, 5);
  } finally {
    reader.close();
  }
  const reopened = Store.open(path);
  try {
    assert.equal(reopened.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    assertTotalsAgree(reopened, 'migrated');
    assert.equal(reopened.shards.doneTotals().kept, 5);
    assert.equal(reopened.shards.counts().done, 1);
  } finally {
    reopened.close();
    rmSync(dir, { recursive: true });
  }
});

test('error counts keep at most 1,000 messages: past them new ones count together, the known ones keep counting', () => {
  const { store, dir } = tempStore();
  try {
    store.runs.addErrors(new Map(Array.from({ length: 990 }, (_, i) => [`kind ${i}`, 1])));
    store.runs.addErrors(new Map([...Array.from({ length: 30 }, (_, i): [string, number] => [`late ${i}`, 2]), ['kind 0', 5]]));
    store.runs.addErrors(new Map([['late 0', 1], ['late 29', 1], ['kind 1', 1]]));
    const kinds = new Map(store.runs.topErrors(1_000_000).map((k) => [k.message, k.count]));
    assert.equal(kinds.size, MAX_ERROR_KINDS + 1);
    assert.equal(kinds.get('kind 0'), 6);
    assert.equal(kinds.get('kind 1'), 2);
    assert.equal(kinds.get('late 0'), 3, 'one of the first thousand');
    assert.equal(kinds.get('late 29'), undefined);
    assert.equal(kinds.get(OTHER_ERRORS), 20 * 2 + 1, 'the twenty past the thousand, and later counts of them');
    assert.equal([...kinds.values()].reduce((a, b) => a + b, 0), 990 + 60 + 5 + 3);
  } finally {
    store.close();
    rmSync(dir, { recursive: true });
  }
});
