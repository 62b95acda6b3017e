import { test } from 'node:test';
import assert from 'node:assert/strict';
import { beamNormWeight } from '../../src/service/retrieve-steps.ts';

test("the beam's prefix score weight: the bundle's beamNormWeight when it has one, else 0 only for ip RQ-KMeans", () => {
  assert.equal(beamNormWeight('ip', { method: 'rqkmeans' }), 0);
  assert.equal(beamNormWeight('l2', { method: 'rqkmeans' }), 1);
  assert.equal(beamNormWeight('ip', { method: 'rqvae' }), 1);
  assert.equal(beamNormWeight('ip', { method: 'vqvae' }), 1);
  assert.equal(beamNormWeight('ip', { method: 'rqvae', beamNormWeight: 0 }), 0);
  assert.equal(beamNormWeight('l2', { method: 'rqvae', beamNormWeight: 0 }), 0);
  assert.equal(beamNormWeight('ip', { method: 'rqkmeans', beamNormWeight: 1 }), 1);
  assert.equal(beamNormWeight('ip', { method: 'rqvae', beamNormWeight: 0.5 }), 0.5);
});
