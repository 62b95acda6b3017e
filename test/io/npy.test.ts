import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readNpy, writeNpy, parseNpy, encodeNpy } from '../../src/io/npy.ts';
import { SidxError } from '../../src/errors.ts';
import { tempDir, sharedFile, skipWithoutShared } from '../helpers/paths.ts';

/** A .npy file with the given header dict text and payload, as numpy lays it out (v1 or v2 prefix). */
function craft(dict: string, payload: Uint8Array, version = 1): Uint8Array {
  const prefix = version === 1 ? 10 : 12;
  const total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  const out = new Uint8Array(total + payload.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, total - prefix, true); else view.setUint32(8, total - prefix, true);
  const text = dict.padEnd(total - prefix - 1, ' ') + '\n';
  for (let i = 0; i < text.length; i++) out[prefix + i] = text.charCodeAt(i);
  out.set(payload, total);
  return out;
}

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

async function rejects(path: string, pattern: RegExp) {
  await assert.rejects(readNpy(path), (err: unknown) => {
    assert.ok(err instanceof SidxError);
    assert.equal(err.code, 'SIDX_ERR_INVALID_INPUT');
    assert.equal(err.field, path);
    assert.ok(err.message.includes(path), `message names the file: ${err.message}`);
    assert.match(err.message, pattern);
    return true;
  });
}

test('reads the shared scientific/text_emb.npy', { skip: skipWithoutShared('scientific', 'text_emb.npy') }, async () => {
  const a = await readNpy(sharedFile('scientific', 'text_emb.npy'));
  assert.deepEqual(a.shape, [1585, 512]);
  assert.equal(a.dtype, 'float32');
  assert.equal(a.data.length, 1585 * 512);
  assert.equal(a.data.buffer.byteLength, a.data.byteLength, 'data owns exactly its buffer');
  assert.deepEqual([...a.data.subarray(0, 3)], [-0.102783203125, -0.168701171875, -0.5009765625]);
  let sum = 0;
  for (const v of a.data) sum += v;
  assert.ok(Math.abs(sum - 1529.0610070228577) < 1e-6, `sum ${sum}`); // numpy: a.astype(float64).sum()
});

test('round-trips writeNpy -> readNpy / parseNpy for 1-D and 2-D, v1 and v2 headers', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const m = Float32Array.from({ length: 12 }, (_, i) => i * 0.5 - 1);
    await writeNpy(join(dir, 'm.npy'), m, [3, 4]);
    await writeNpy(join(dir, 'v.npy'), m, [12]);
    assert.deepEqual(readdirSync(dir).sort(), ['m.npy', 'v.npy'], 'no temporary files left');
    const a = await readNpy(join(dir, 'm.npy'));
    assert.deepEqual(a.shape, [3, 4]);
    assert.deepEqual(a.data, m);
    assert.equal(readFileSync(join(dir, 'm.npy')).length % 64, (12 * 4) % 64, 'header padded to 64 bytes');
    assert.deepEqual((await readNpy(join(dir, 'v.npy'))).shape, [12]);
    assert.deepEqual(parseNpy(encodeNpy(m, [2, 6]), 'mem').shape, [2, 6]);
    writeFileSync(join(dir, 'v2.npy'), craft("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", bytesOf(m.subarray(0, 4)), 2));
    assert.deepEqual((await readNpy(join(dir, 'v2.npy'))).data, m.subarray(0, 4));
  } finally {
    cleanup();
  }
});

test('converts float16 and float64 to float32', async () => {
  const { dir, cleanup } = tempDir();
  try {
    // float16 bit patterns: 1.5, -2, 65504, 2^-14 (smallest normal), 2^-24 (smallest subnormal), +inf
    const half = Uint16Array.from([0x3e00, 0xc000, 0x7bff, 0x0400, 0x0001, 0x7c00]);
    writeFileSync(join(dir, 'h.npy'), craft("{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }", bytesOf(half)));
    const h = await readNpy(join(dir, 'h.npy'));
    assert.equal(h.dtype, 'float16');
    assert.deepEqual([...h.data], [1.5, -2, 65504, 2 ** -14, 2 ** -24, Infinity]);
    const dbl = Float64Array.from([0, 1 / 3, -2.5]);
    writeFileSync(join(dir, 'd.npy'), craft("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", bytesOf(dbl)));
    const d = await readNpy(join(dir, 'd.npy'));
    assert.deepEqual(d.shape, [3]);
    assert.deepEqual(d.data, Float32Array.from(dbl));
  } finally {
    cleanup();
  }
});

test('bad files fail with errors naming the file', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = (name: string, bytes: Uint8Array) => { const p = join(dir, name); writeFileSync(p, bytes); return p; };
    const four = bytesOf(new Float32Array(4));
    await rejects(f('magic.npy', new TextEncoder().encode('PK\x03\x04 not numpy at all')), /bad magic/);
    await rejects(f('short.npy', new Uint8Array([0x93, 0x4e])), /bad magic/);
    await rejects(f('fortran.npy', craft("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", four)), /fortran_order/);
    await rejects(f('int.npy', craft("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", four)), /unsupported dtype '<i8'/);
    await rejects(f('be.npy', craft("{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", four)), /unsupported dtype '>f4'/);
    await rejects(f('3d.npy', craft("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 2), }", four)), /1-D or 2-D/);
    await rejects(f('scalar.npy', craft("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", four)), /1-D or 2-D/);
    await rejects(f('trunc.npy', craft("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", four)), /truncated data: .* needs 24 bytes, file has 16/);
    await rejects(f('extra.npy', craft("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", four)), /4 unexpected bytes/);
    await rejects(f('garbled.npy', craft("{'descr': '<f4', 'shape': (3,) }", four)), /malformed header/);
    const cut = craft("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", four).subarray(0, 30);
    await rejects(f('header-cut.npy', cut), /truncated header/);
    await rejects(join(dir, 'missing.npy'), /cannot open/);
    assert.throws(() => parseNpy(craft("{'descr': '<f4', 'fortran_order': True, 'shape': (4,), }", four), 'x.npz/a.npy'),
      /x\.npz\/a\.npy: fortran_order/);
    await assert.rejects(writeNpy(join(dir, 'bad.npy'), new Float32Array(5), [2, 2]), /does not match 5 values/);
  } finally {
    cleanup();
  }
});
