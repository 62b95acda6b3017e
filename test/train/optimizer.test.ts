import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdamW } from '../../src/train/optimizer.ts';

const close = (got: Float32Array, want: number[]) => got.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-6, `[${i}] ${v} vs ${want[i]}`));

test('a segment with an identity pull moves towards the identity by lr x lambda per step; others only by their gradient', () => {
  // [2x2 pulled matrix | 2 plain values]; zero gradients, so Adam's own update is zero and no decay is set
  const params = Float32Array.of(3, 1, 1, 3, 5, -5);
  const opt = new AdamW(params, [
    { offset: 0, size: 4, decay: false, identityPull: { lambda: 2, side: 2 } },
    { offset: 4, size: 2, decay: false },
  ], { weightDecay: 0 });
  opt.stepSegment(0, new Float32Array(4), 0.1);
  opt.stepSegment(1, new Float32Array(2), 0.1);
  close(params, [2.6, 0.8, 0.8, 2.6, 5, -5]); // p - 0.2 (p - I)
  for (let i = 0; i < 200; i++) opt.stepSegment(0, new Float32Array(4), 0.1);
  close(params.subarray(0, 4), [1, 0, 0, 1]);
});

test('an identity pull needs a square segment', () => {
  assert.throws(() => new AdamW(new Float32Array(6), [{ offset: 0, size: 6, decay: true, identityPull: { lambda: 1, side: 2 } }]), /square segment/);
});
