/**
 * sidx serve and sidx index set glibc's arena count and mmap threshold before their threads start (cli/allocator.ts),
 * unless the environment names them; the native call checks its arguments.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocatorSettings, ARENA_MAX, MMAP_THRESHOLD, tuneAllocator } from '../../src/cli/allocator.ts';
import { loadFaissBinding } from '../../src/vector/binding.ts';

test('the settings apply unless MALLOC_ARENA_MAX / MALLOC_MMAP_THRESHOLD_ are set', () => {
  assert.deepEqual(allocatorSettings({}), { arenaMax: ARENA_MAX, mmapThreshold: MMAP_THRESHOLD });
  assert.deepEqual(allocatorSettings({ MALLOC_ARENA_MAX: '8' }), { arenaMax: 0, mmapThreshold: MMAP_THRESHOLD });
  assert.deepEqual(allocatorSettings({ MALLOC_MMAP_THRESHOLD_: '65536' }), { arenaMax: ARENA_MAX, mmapThreshold: 0 });
});

test('glibc takes them; bad arguments are refused with SIDX_ERR_INVALID_INPUT', () => {
  const glibc = (process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header.glibcVersionRuntime !== undefined;
  assert.equal(tuneAllocator({}), glibc);
  const binding = loadFaissBinding();
  for (const bad of [-1, 1.5, Number.NaN, 2 ** 31]) assert.throws(() => binding.tuneAllocator(bad, 0), { code: 'SIDX_ERR_INVALID_INPUT' });
  assert.throws(() => binding.tuneAllocator(0, -5), { code: 'SIDX_ERR_INVALID_INPUT' });
});
