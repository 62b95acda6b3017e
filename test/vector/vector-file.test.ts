/** VectorFile (src/vector/vector-file.ts): rows written in place, synchronously or on the libuv pool, read back bit-exact. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { VectorFile } from '../../src/vector/vector-file.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';

const DIM = 6;

test('writeAsync puts each row at its slot (runs of consecutive slots and lone ones), as write does', async () => {
  const { dir, cleanup } = tempDir('sidx-vector-file-');
  const file = VectorFile.open(join(dir, 'vectors.f32'), DIM);
  try {
    const first = randomMatrix(4, DIM, 1);
    file.write([0, 1, 2, 3], first);
    const slots = [9, 10, 11, 2, 5, 6, 20];
    const rows = randomMatrix(slots.length, DIM, 2);
    await file.writeAsync(slots, rows);
    assert.equal(file.rows, 21, 'the file grew to the highest slot');
    assert.deepEqual(file.read(slots), rows);
    assert.deepEqual(file.read([0, 1, 3]), Float32Array.from([...first.subarray(0, 2 * DIM), ...first.subarray(3 * DIM)]), 'other rows untouched');
    assert.throws(() => file.writeAsync([1, 2], randomMatrix(1, DIM, 3)), /2 slots but 1 vectors/);
    file.close();
    assert.throws(() => file.writeAsync([0], randomMatrix(1, DIM, 4)), /is closed/);
  } finally {
    file.close();
    cleanup();
  }
});
