import { test } from 'node:test';
import assert from 'node:assert/strict';
import { beamNormWeight } from '../../src/service/retrieve-steps.ts';

test("the beam's prefix score: the bundle's beamScore when it has one, else inner product only for ip RQ-KMeans", () => {
  assert.equal(beamNormWeight('ip', { method: 'rqkmeans' }), 0);
  assert.equal(beamNormWeight('l2', { method: 'rqkmeans' }), 1);
  assert.equal(beamNormWeight('ip', { method: 'rqvae' }), 1);
  assert.equal(beamNormWeight('ip', { method: 'vqvae' }), 1);
  assert.equal(beamNormWeight('ip', { method: 'rqvae', beamScore: 'inner-product' }), 0);
  assert.equal(beamNormWeight('l2', { method: 'rqvae', beamScore: 'inner-product' }), 0);
  assert.equal(beamNormWeight('ip', { method: 'rqkmeans', beamScore: 'distance' }), 1);
});
