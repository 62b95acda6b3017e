import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { listNpz, readNpz } from '../../src/io/npz.ts';
import { SidxError } from '../../src/errors.ts';
import { tempDir } from '../helpers/paths.ts';
import { npyBytes, npyHalf, npyOf, npyPickledDict, zipBytes, type ZipMember } from './npz-fixture.ts';

const hasNumpy = spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;

function withFile(bytes: Uint8Array, fn: (path: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const { dir, cleanup } = tempDir();
    try {
      const path = join(dir, 'data.npz');
      writeFileSync(path, bytes);
      await fn(path);
    } finally {
      cleanup();
    }
  };
}

async function rejectsNaming(p: Promise<unknown>, path: string, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof SidxError, String(err));
    assert.equal(err.code, 'SIDX_ERR_INVALID_INPUT');
    assert.ok(err.message.startsWith(path), `message names the file: ${err.message}`);
    assert.match(err.message, pattern);
    return true;
  });
}

const f32 = Float32Array.from({ length: 3 * 4 }, (_, i) => i / 7 - 0.5);
const f64 = Float64Array.from([1.5, -2.25, 1e-3]);
const i64 = BigInt64Array.from([0n, -1n, 9007199254740993n]);
const i32 = Int32Array.from([7, -8, 2147483647]);
const half = Uint16Array.from([0x3c00, 0xc000, 0x3555, 0x7c00]); // 1, -2, ~1/3, +Inf

function members(deflate: boolean): ZipMember[] {
  return [
    { name: 'embeds.npy', data: npyOf(f32, [3, 4]), deflate },
    { name: 'd.npy', data: npyOf(f64, [3]), deflate },
    { name: 'ids.npy', data: npyOf(i64, [3]), deflate },
    { name: 'i.npy', data: npyOf(i32, [3, 1]), deflate },
    { name: 'h.npy', data: npyHalf(half, [2, 2]), deflate },
    { name: 'notes.txt', data: new Uint8Array([1, 2, 3]), deflate },
  ];
}

function checkAll(m: Map<string, unknown>): void {
  assert.deepEqual([...m.keys()], ['embeds', 'd', 'ids', 'i', 'h']);
  assert.deepEqual(m.get('embeds'), { dtype: 'float32', shape: [3, 4], data: f32 });
  assert.deepEqual(m.get('d'), { dtype: 'float64', shape: [3], data: Float32Array.from(f64) });
  assert.deepEqual(m.get('ids'), { dtype: 'int64', shape: [3], data: i64 });
  assert.deepEqual(m.get('i'), { dtype: 'int32', shape: [3, 1], data: i32 });
  assert.deepEqual(m.get('h'), { dtype: 'float16', shape: [2, 2], data: Float32Array.from([1, -2, 0.333251953125, Infinity]) });
}

for (const [label, deflate, zip64] of [['stored', false, false], ['deflated', true, false], ['zip64 deflated', true, true]] as const) {
  test(`reads ${label} members of every dtype`, withFile(zipBytes(members(deflate), { zip64 }), async (path) => {
    checkAll(await readNpz(path));
    const list = await listNpz(path);
    assert.deepEqual(list.map((m) => [m.name, m.dtype, m.shape, m.compressed]), [
      ['embeds', 'float32', [3, 4], deflate], ['d', 'float64', [3], deflate], ['ids', 'int64', [3], deflate],
      ['i', 'int32', [3, 1], deflate], ['h', 'float16', [2, 2], deflate],
    ]);
    const only = await readNpz(path, { only: ['ids'] });
    assert.deepEqual([...only.keys()], ['ids']);
  }));
}

test('float32 data owns exactly its buffer', withFile(zipBytes(members(true)), async (path) => {
  const a = (await readNpz(path, { only: ['embeds'] })).get('embeds')!;
  assert.equal(a.data.byteOffset, 0);
  assert.equal(a.data.buffer.byteLength, a.data.byteLength);
}));

test('a large deflated member spanning many chunks', async () => {
  const big = Float32Array.from({ length: 700_000 }, (_, i) => Math.sin(i));
  await withFile(zipBytes([{ name: 'embeds.npy', data: npyOf(big, [700_000 / 70, 70]), deflate: true }]), async (path) => {
    const a = (await readNpz(path)).get('embeds')!;
    assert.deepEqual(a.shape, [10_000, 70]);
    assert.deepEqual(a.data, big);
  })();
});

test('pickled (object) members are listed, and reading one says why it cannot be read',
  withFile(zipBytes([{ name: 'itemEncID.npy', data: npyPickledDict(), deflate: true }]), async (path) => {
    assert.deepEqual(await listNpz(path), [{ name: 'itemEncID', dtype: 'object', shape: [], compressed: true }]);
    await rejectsNaming(readNpz(path), path, /array 'itemEncID': has dtype object, i\.e\. a pickled Python object.*cannot read Python pickles/);
  }));

test('not a zip', withFile(new TextEncoder().encode('just some text, not an archive at all'), async (path) => {
  await rejectsNaming(readNpz(path), path, /not a zip archive/);
}));

test('an empty file is not a zip', withFile(new Uint8Array(0), async (path) => {
  await rejectsNaming(listNpz(path), path, /not a zip archive/);
}));

test('a missing file is an input error naming it', async () => {
  await rejectsNaming(readNpz('/nonexistent/x.npz'), '/nonexistent/x.npz', /cannot read/);
});

test('missing arrays are named along with what the archive has', withFile(zipBytes(members(false)), async (path) => {
  await rejectsNaming(readNpz(path, { only: ['pairs', 'embeds', 'x'] }), path,
    /missing arrays 'pairs', 'x' \(the archive has: embeds, d, ids, i, h\)/);
}));

test('a truncated archive', async () => {
  const bytes = zipBytes(members(true));
  await withFile(bytes.subarray(0, bytes.length - 30), async (path) => {
    await rejectsNaming(readNpz(path), path, /not a zip archive|central directory/);
  })();
});

test('a corrupted member fails its CRC or inflate check, naming the member', async () => {
  const bytes = zipBytes([{ name: 'embeds.npy', data: npyOf(f32, [3, 4]) }]);
  const corrupt = Uint8Array.from(bytes);
  corrupt[30 + 'embeds.npy'.length + 130] ^= 0xff; // a data byte of the stored member
  await withFile(corrupt, async (path) => {
    await rejectsNaming(readNpz(path), path, /zip member 'embeds\.npy': CRC-32 mismatch/);
  })();
  const deflated = Uint8Array.from(zipBytes([{ name: 'embeds.npy', data: npyOf(f32, [3, 4]), deflate: true }]));
  deflated.fill(0xff, 45, 60);
  await withFile(deflated, async (path) => {
    await rejectsNaming(readNpz(path), path, /zip member 'embeds\.npy': (corrupt deflate data|CRC-32 mismatch|truncated|more than)/);
  })();
});

test('array data shorter or longer than its shape, unsupported dtypes, bad magic', async () => {
  const cases: [Uint8Array, RegExp][] = [
    [npyBytes('<f4', [3, 4], new Uint8Array(40)), /array 'a': truncated data: shape \(3, 4\) float32 needs 48 bytes, member has 40/],
    [npyBytes('<f4', [2], new Uint8Array(12)), /array 'a': unexpected bytes after the data/],
    [npyBytes('<u2', [2], new Uint8Array(4)), /array 'a': unsupported dtype '<u2'/],
    [npyBytes('>f4', [2], new Uint8Array(8)), /unsupported dtype '>f4'/],
    [new TextEncoder().encode('PK not npy at all'), /array 'a': member is not a \.npy array/],
  ];
  for (const [data, pattern] of cases) {
    for (const deflate of [false, true]) {
      await withFile(zipBytes([{ name: 'a.npy', data, deflate }]), async (path) => {
        await rejectsNaming(readNpz(path), path, pattern);
      })();
    }
  }
});

test('reads what numpy itself writes (savez and savez_compressed, with a pickled dict)',
  { skip: hasNumpy ? false : 'numpy not installed' }, async () => {
    const { dir, cleanup } = tempDir();
    try {
      const script = [
        'import numpy as np, sys',
        'e = (np.arange(6 * 512, dtype=np.float32).reshape(6, 512) / 1000).astype(np.float32)',
        "np.savez_compressed(sys.argv[1] + '/c.npz', ids=np.arange(6, dtype=np.int64) * 10**12, embeds=e, itemEncID={1: 2}, pairs=np.array([[0, 1], [2, 3]], dtype=np.int64))",
        "np.savez(sys.argv[1] + '/s.npz', embeds=e.astype(np.float16), k=np.array([3, 4], dtype=np.int32))",
      ].join('\n');
      const r = spawnSync('python3', ['-c', script, dir], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const expected = Float32Array.from({ length: 6 * 512 }, (_, i) => Math.fround(i / 1000));
      const c = await readNpz(join(dir, 'c.npz'), { only: ['ids', 'embeds', 'pairs'] });
      assert.deepEqual(c.get('ids')!.data, BigInt64Array.from([0n, 1n, 2n, 3n, 4n, 5n], (v) => v * 10n ** 12n));
      assert.deepEqual(c.get('embeds')!.data, expected);
      assert.deepEqual(c.get('pairs'), { dtype: 'int64', shape: [2, 2], data: BigInt64Array.from([0n, 1n, 2n, 3n]) });
      assert.equal((await listNpz(join(dir, 'c.npz'))).find((m) => m.name === 'itemEncID')!.dtype, 'object');
      await rejectsNaming(readNpz(join(dir, 'c.npz')), join(dir, 'c.npz'), /'itemEncID'.*pickle/);
      const s = await readNpz(join(dir, 's.npz'));
      assert.equal(s.get('embeds')!.dtype, 'float16');
      const h = s.get('embeds')!.data as Float32Array;
      for (let i = 0; i < h.length; i++) assert.ok(Math.abs(h[i]! - expected[i]!) <= Math.abs(expected[i]!) / 1024 + 1e-7);
      assert.deepEqual(s.get('k')!.data, Int32Array.from([3, 4]));
      assert.equal(readFileSync(join(dir, 's.npz')).readUInt32LE(0), 0x04034b50);
    } finally {
      cleanup();
    }
  });
