/**
 * The SID log's own contract (src/store/sid-log.ts), below the catalog: packed entries per seq and model, appends at
 * one seq joining, trimming whole seqs with the floor moved past them, model floors, and malformed entries refused.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { open, type RootDatabase } from 'lmdb';
import { forEachChange, SidLog } from '../../src/store/sid-log.ts';
import { tempDir } from '../helpers/paths.ts';

/** Runs `fn` on a SidLog in a fresh environment, closed and removed after. */
async function withLog(fn: (log: SidLog, env: RootDatabase<Buffer, Buffer>) => void | Promise<void>): Promise<void> {
  const { dir, cleanup } = tempDir('sidx-sidlog-');
  const env = open<Buffer, Buffer>({ path: dir, maxDbs: 12, encoding: 'binary', keyEncoding: 'binary' });
  try {
    await fn(new SidLog(env, env.openDB<Buffer, Buffer>({ name: 'meta', encoding: 'binary', keyEncoding: 'binary' })), env);
  } finally {
    await env.close();
    cleanup();
  }
}

const change = (delta: number, ...codes: number[]) => ({ codes: Int32Array.from(codes), delta });

/** Every change of `model` after `since` up to `upTo`, as "codes:delta" in log order. */
function changes(log: SidLog, model: number, levels: number, since: bigint, upTo: bigint): string[] {
  const out: string[] = [];
  log.forEachEntry(model, levels, since, upTo, (value) => forEachChange(value, (bytes, at, L, delta) => {
    const codes = Array.from({ length: L }, (_, l) => bytes.readUInt16BE(at + 2 * l));
    out.push(`${codes.join('-')}:${delta}`);
  }));
  return out;
}

test('entries pack a transaction\'s changes per model; a second append at one seq joins the first', async () => {
  await withLog(async (log, env) => {
    env.transactionSync(() => {
      assert.equal(log.append(1n, 1, [change(1, 3, 4, 65535), change(-2, 0, 0, 1)]), 2);
      assert.equal(log.append(1n, 2, [change(1, 7, 7)]), 1);
      assert.equal(log.append(2n, 1, [change(1, 5, 5, 5)]), 1);
      assert.equal(log.append(2n, 1, [change(-1, 3, 4, 65535)]), 1);
    });
    assert.equal(log.count(), 5);
    assert.deepEqual(changes(log, 1, 3, 0n, 2n), ['3-4-65535:1', '0-0-1:-2', '5-5-5:1', '3-4-65535:-1']);
    assert.deepEqual(changes(log, 1, 3, 1n, 2n), ['5-5-5:1', '3-4-65535:-1'], 'since is exclusive');
    assert.deepEqual(changes(log, 1, 3, 0n, 1n), ['3-4-65535:1', '0-0-1:-2'], 'upTo is inclusive');
    assert.deepEqual(changes(log, 2, 2, 0n, 2n), ['7-7:1']);
    assert.throws(() => changes(log, 2, 3, 0n, 2n), /not of 3 levels/);
    assert.throws(() => env.transactionSync(() => log.append(3n, 1, [change(1, 1, 1, 1), change(1, 1, 1)])), /SIDs of 3 and 2 levels/);
    assert.throws(() => env.transactionSync(() => log.append(2n, 1, [change(1, 1, 1)])), /has 3 levels, not 2/);
    assert.equal(log.count(), 5, 'a refused append wrote nothing');
  });
});

test('trim removes whole seqs from the oldest, moves the floor past them and keeps the rest', async () => {
  await withLog(async (log, env) => {
    env.transactionSync(() => {
      log.append(1n, 1, [change(1, 1, 1)]);
      log.append(2n, 1, [change(1, 2, 2), change(1, 2, 3)]);
      log.append(2n, 2, [change(1, 9)]); // seq 2 has three changes over two models
      log.append(3n, 1, [change(1, 3, 3)]);
      log.append(4n, 1, [change(1, 4, 4)]);
    });
    assert.equal(log.floor(1), 0n);
    // 6 changes, keep 3: seq 1 (1) is not enough, seq 2 (3 more) goes whole, seqs 3 and 4 stay.
    assert.equal(env.transactionSync(() => log.trim(6, 3)), 4);
    assert.equal(log.count(), 2);
    assert.equal(log.floor(1), 2n);
    assert.equal(log.floor(2), 2n);
    assert.deepEqual(changes(log, 1, 2, 2n, 4n), ['3-3:1', '4-4:1']);
    assert.equal(env.transactionSync(() => log.trim(2, 3)), 0, 'nothing to trim');
    assert.equal(log.floor(1), 2n);
    // A model floor (a dropped key space) raises that model's floor alone.
    env.transactionSync(() => log.floorModel(2, 7n));
    assert.deepEqual([log.floor(1), log.floor(2)], [2n, 8n]);
    env.transactionSync(() => log.restart(9n));
    assert.deepEqual([log.count(), log.floor(1), log.floor(2)], [0, 9n, 9n]);
  });
});

test('count refuses a malformed entry, naming it', async () => {
  await withLog(async (log, env) => {
    const raw = env.openDB<Buffer, Buffer>({ name: 'sidLog', encoding: 'binary', keyEncoding: 'binary' });
    await raw.put(Buffer.of(0, 0, 0, 0, 0, 0, 0, 5, 0, 1), Buffer.of(3, 0, 1, 0)); // L = 3 needs 10 bytes per change
    assert.throws(() => log.count(), /sidLog entry 00000000000000050001 is malformed/);
    assert.deepEqual([...log.entries()].map((e) => e.problem), ['sidLog entry 00000000000000050001: malformed (4 bytes)']);
  });
});
