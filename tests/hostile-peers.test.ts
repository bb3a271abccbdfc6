import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { CoordinatorClient, runShard, startCoordinator, TOKEN, wireSample } from './fixtures/hostile/coordinator-harness.js';

async function parquetRows(outDir: string): Promise<Record<string, unknown>[]> {
  const parquet = readdirSync(outDir).find((n) => n.endsWith('.parquet'))!;
  return parquetReadObjects({ file: await asyncBufferFromFile(join(outDir, parquet)) });
}

test('corpus/grpc: hostile keys (NUL, path, dot, too long, upper case) and unknown statuses fail those samples, not the shard', async () => {
  const c = await startCoordinator();
  const client = new CoordinatorClient(c.address, TOKEN);
  try {
    c.store.shards.add(['/data/keys.wat.gz']);
    const hostileKeys = ['00000000\u00000000000', '../../etc/passwd', 'abcdef0123456789.x', '0'.repeat(17), 'ABCDEF0123456789', '', '\u001b[31mred\u001b[0m'];
    const samples = [
      wireSample(1),
      ...hostileKeys.map((key, i) => wireSample(100 + i, { key })),
      wireSample(2, { status: 'exploded' }),
      wireSample(3),
    ];
    const { complete, shardId } = await runShard(client, samples);
    assert.equal(complete.kept, 0);
    const rows = await parquetRows(join(c.dir, 'out'));
    assert.deepEqual(rows.map((r) => r['key']).sort(), [samples[0]!.key, samples.at(-1)!.key].sort());
    const shard = c.store.shards.get(shardId)!;
    assert.equal(shard.state, 'done');
    const names = readdirSync(join(c.dir, 'out'));
    assert.ok(!names.some((n) => n.includes('\u0000') || n.startsWith('nul')), names.join(','));
  } finally {
    client.close();
    await c.close();
  }
});
