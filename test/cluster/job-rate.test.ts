/** A finished cluster re-index's items/s on the router (router-models.ts finishedEncodeRate) from its replicas' final reports. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { finishedEncodeRate } from '../../src/cluster/router-models.ts';
import type { ReplicaProgress } from '../../src/cluster/registry.ts';

const replica = (shard: number, name: string, processed: number, itemsPerSecond: number | null, phase = 'done'): ReplicaProgress => ({
  job: 'j', shard, replica: name, status: 'succeeded', phase, processed, total: processed, itemsPerSecond, etaSeconds: null,
  stability: null, error: null, ready: true, swapped: true, updatedAt: new Date().toISOString(),
});

test('a finished job\'s rate: its items over the slowest replica\'s encode time, null until every replica reported one', () => {
  // Balanced shards: the sum of their rates.
  assert.equal(finishedEncodeRate([replica(0, 'a', 600, 200), replica(1, 'a', 600, 200)], 1200), 400);
  // Shard 1 took 6 s, shard 0 2 s: 1200 items in 6 s, not 300 + 100 items/s.
  assert.equal(finishedEncodeRate([replica(0, 'a', 600, 300), replica(1, 'a', 600, 100)], 1200), 200);
  // A second replica of shard 0 that was slower (4 s) does not add items, but it is part of the phase.
  assert.equal(finishedEncodeRate([replica(0, 'a', 600, 300), replica(0, 'b', 600, 150), replica(1, 'a', 600, 300)], 1200), 300);
  // An empty shard encodes nothing and takes no time.
  assert.equal(finishedEncodeRate([replica(0, 'a', 0, null), replica(1, 'a', 600, 200)], 600), 200);
  assert.equal(finishedEncodeRate([replica(0, 'a', 600, 200), replica(1, 'a', 600, 200, 'drop')], 1200), null, 'a replica still dropping');
  assert.equal(finishedEncodeRate([replica(0, 'a', 600, 200), replica(1, 'a', 600, null)], 1200), null, 'cancelled during its encode');
  assert.equal(finishedEncodeRate([], 0), null);
});
