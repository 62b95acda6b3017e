/** WorkerCalls: the pending calls of a worker's owner, answered by id, failed together, none left behind by a failed post. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkerCalls } from '../src/worker-calls.ts';

test('each answer settles its own call; failAll rejects the rest; an answer for a failed call finds nothing', async () => {
  const calls = new WorkerCalls<string>();
  const posted: number[] = [];
  const a = calls.call((id) => posted.push(id));
  const b = calls.call((id) => posted.push(id));
  const c = calls.call((id) => posted.push(id));
  assert.equal(new Set(posted).size, 3, 'one id per call');
  assert.equal(calls.size, 3);
  calls.take(posted[1]!)!.resolve('second');
  assert.equal(await b, 'second');
  calls.take(posted[0]!)!.reject(new Error('first failed'));
  await assert.rejects(a, /first failed/);
  calls.failAll(new Error('the worker exited'));
  await assert.rejects(c, /the worker exited/);
  assert.equal(calls.size, 0);
  assert.equal(calls.take(posted[2]!), undefined, 'a late answer');
});

test('a post that throws rejects its call and leaves nothing pending', async () => {
  const calls = new WorkerCalls<number>();
  await assert.rejects(calls.call(() => { throw new Error('could not be cloned'); }), /could not be cloned/);
  assert.equal(calls.size, 0);
});
