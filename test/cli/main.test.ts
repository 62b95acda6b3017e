/** `sidx --help`, `sidx --version` and the help texts: they say what the code does. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths.ts';
import { runCli } from '../helpers/cli.ts';

test('sidx --version prints package.json\'s version', async (t) => {
  const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  for (const flag of ['--version', '-v']) {
    const run = await runCli(t, [flag]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `${version}\n`);
  }
});

test('sidx --help names every training method; sidx serve --help gives the encoder workers\' real default', async (t) => {
  const help = await runCli(t, ['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /train +train a tokenizer \(RQ-KMeans, RQ-VAE or VQ-VAE\)/);
  const serve = await runCli(t, ['serve', '--help']);
  assert.equal(serve.code, 0);
  assert.match(serve.stdout, /one worker per two cores: at\s+least 1, at most 4/);
  assert.doesNotMatch(serve.stdout, /one worker per core/);
});

test('sidx train --method with an unknown method lists the valid ones', async (t) => {
  const run = await runCli(t, ['train', '--method', 'foo', '--input', 'x.npy', '--out', 'never']);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /unknown --method "foo"; use one of rqkmeans, rqvae, vqvae/);
});
