/** Configuration: defaults, SIDX__SECTION__KEY variables, overrides, and refusals naming the field. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../src/config.ts';
import { SidxError } from '../src/errors.ts';
import { encoderThreads } from '../src/service/model-space.ts';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './helpers/paths.ts';

function refusal(field: string, message: RegExp) {
  return (e: unknown) => e instanceof SidxError && e.code === 'SIDX_ERR_CONFIG' && e.field === field && message.test(e.message);
}

test('defaults <- environment <- overrides, result frozen', () => {
  const defaults = loadConfig({}, {});
  assert.equal(defaults.server.port, 8080);
  assert.equal(defaults.limits.defaultMaxCandidates, 1500);
  const env = { SIDX__SERVER__PORT: '9001', SIDX__LIMITS__MAX_K: '50', PATH: '/bin' };
  const fromEnv = loadConfig({}, env);
  assert.deepEqual([fromEnv.server.port, fromEnv.limits.maxK], [9001, 50]);
  assert.equal(loadConfig({ server: { port: 9002 } }, env).server.port, 9002);
  assert.ok(Object.isFrozen(fromEnv) && Object.isFrozen(fromEnv.limits));
});

test('model.dir: unset, the checkout\'s models/default whatever the working directory; a value given stays as given', () => {
  assert.equal(loadConfig({}, {}).model.dir, join(repoRoot, 'models', 'default'));
  assert.equal(loadConfig({}, { SIDX__MODEL__DIR: 'models/default' }).model.dir, 'models/default');
  assert.equal(loadConfig({ model: { dir: 'my/model' } }, {}).model.dir, 'my/model');
});

test('bad values and unknown variables are refused naming the field', () => {
  assert.throws(() => loadConfig({}, { SIDX__SERVER__PORT: 'eighty' }), refusal('server.port', /server\.port/));
  assert.throws(() => loadConfig({ limits: { maxK: 0 } }, {}), refusal('limits.maxK', /limits\.maxK/));
  assert.throws(() => loadConfig({}, { SIDX__SERVER__PROT: '1' }), refusal('SIDX__SERVER__PROT', /unknown configuration variable/));
});

test('a refusal names the variable and the text it held when the value came from the environment, else the value', () => {
  const message = (overrides: Parameters<typeof loadConfig>[0], env: NodeJS.ProcessEnv) => {
    try {
      loadConfig(overrides, env);
    } catch (err) {
      return (err as Error).message;
    }
    assert.fail('not refused');
  };
  assert.equal(message({}, { SIDX__LIMITS__MAX_K: 'abc' }), 'configuration limits.maxK (from SIDX__LIMITS__MAX_K="abc"): expected an integer');
  assert.equal(message({}, { SIDX__LIMITS__MAX_K: '0' }),
    'configuration limits.maxK (from SIDX__LIMITS__MAX_K="0"): expected an integer to be greater or equal to 1');
  assert.equal(message({}, { SIDX__LIMITS__MAX_VECTOR_NORM: 'big' }),
    'configuration limits.maxVectorNorm (from SIDX__LIMITS__MAX_VECTOR_NORM="big"): expected a number');
  assert.equal(message({}, { SIDX__SERVER__LOG_LEVEL: 'loud' }), 'configuration server.logLevel (from SIDX__SERVER__LOG_LEVEL="loud"): '
    + 'must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent"');
  // A flag (an override) wins over the variable: the refused value is the flag's.
  assert.equal(message({ limits: { maxK: 0 } }, { SIDX__LIMITS__MAX_K: 'abc' }),
    'configuration limits.maxK: expected an integer to be greater or equal to 1, got 0');
  assert.equal(message({ server: { logLevel: 'loud' as 'info' } }, {}),
    'configuration server.logLevel: must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent", got "loud"');
});

test('limits.maxEncoderQueue: default 32, SIDX__LIMITS__MAX_ENCODER_QUEUE, 0 (off) allowed, negative refused', () => {
  assert.equal(loadConfig({}, {}).limits.maxEncoderQueue, 32);
  assert.equal(loadConfig({}, { SIDX__LIMITS__MAX_ENCODER_QUEUE: '8' }).limits.maxEncoderQueue, 8);
  assert.equal(loadConfig({}, { SIDX__LIMITS__MAX_ENCODER_QUEUE: '0' }).limits.maxEncoderQueue, 0);
  assert.throws(() => loadConfig({}, { SIDX__LIMITS__MAX_ENCODER_QUEUE: '-1' }), refusal('limits.maxEncoderQueue', /limits\.maxEncoderQueue/));
  assert.throws(() => loadConfig({}, { SIDX__LIMITS__MAX_ENCODER_QUEUE: 'many' }), refusal('limits.maxEncoderQueue', /limits\.maxEncoderQueue/));
});

test('limits.maxVectorNorm: default 1e4, a number from SIDX__LIMITS__MAX_VECTOR_NORM, 0 (off) allowed, negative refused', () => {
  assert.equal(loadConfig({}, {}).limits.maxVectorNorm, 1e4);
  assert.equal(loadConfig({}, { SIDX__LIMITS__MAX_VECTOR_NORM: '2.5e3' }).limits.maxVectorNorm, 2500);
  assert.equal(loadConfig({}, { SIDX__LIMITS__MAX_VECTOR_NORM: '0' }).limits.maxVectorNorm, 0);
  assert.throws(() => loadConfig({}, { SIDX__LIMITS__MAX_VECTOR_NORM: '-1' }), refusal('limits.maxVectorNorm', /limits\.maxVectorNorm/));
  assert.throws(() => loadConfig({}, { SIDX__LIMITS__MAX_VECTOR_NORM: 'big' }), refusal('limits.maxVectorNorm', /limits\.maxVectorNorm/));
});

test('limits.defaultMaxCandidates above limits.maxCandidates is refused; left unset, it follows maxCandidates down', () => {
  assert.throws(() => loadConfig({}, { SIDX__LIMITS__MAX_CANDIDATES: '500', SIDX__LIMITS__DEFAULT_MAX_CANDIDATES: '600' }),
    refusal('limits.defaultMaxCandidates', /defaultMaxCandidates \(600\) exceeds limits\.maxCandidates \(500\)/));
  assert.equal(loadConfig({}, { SIDX__LIMITS__MAX_CANDIDATES: '500' }).limits.defaultMaxCandidates, 500);
  assert.equal(loadConfig({ limits: { maxCandidates: 100_000 } }, {}).limits.defaultMaxCandidates, 1500);
  const ok = loadConfig({ limits: { maxCandidates: 500, defaultMaxCandidates: 500 } }, {});
  assert.deepEqual([ok.limits.defaultMaxCandidates, ok.limits.maxCandidates], [500, 500]);
});

test('server.logRequests: off by default, SIDX__SERVER__LOG_REQUESTS true/1/false/0, other words refused', () => {
  assert.equal(loadConfig({}, {}).server.logRequests, false);
  assert.equal(loadConfig({}, { SIDX__SERVER__LOG_REQUESTS: 'true' }).server.logRequests, true);
  assert.equal(loadConfig({}, { SIDX__SERVER__LOG_REQUESTS: '1' }).server.logRequests, true);
  assert.equal(loadConfig({}, { SIDX__SERVER__LOG_REQUESTS: 'FALSE' }).server.logRequests, false);
  assert.throws(() => loadConfig({}, { SIDX__SERVER__LOG_REQUESTS: 'yes please' }), refusal('server.logRequests', /server\.logRequests/));
});

test('encoder.spinWait: on by default (ORT\'s own), SIDX__ENCODER__SPIN_WAIT false turns it off, other words refused', () => {
  assert.equal(loadConfig({}, {}).encoder.spinWait, true);
  assert.equal(loadConfig({}, { SIDX__ENCODER__SPIN_WAIT: 'false' }).encoder.spinWait, false);
  assert.throws(() => loadConfig({}, { SIDX__ENCODER__SPIN_WAIT: 'sometimes' }), refusal('encoder.spinWait', /encoder\.spinWait/));
});

test('encoder threads 0 (the defaults) resolve to half the cores when serving, every core for a bulk load, one session on CUDA; set values stay', () => {
  const auto = loadConfig({}, {}).encoder;
  assert.deepEqual([auto.workers, auto.intraOpThreads], [0, 0]);
  const cores = availableParallelism();
  const serving = encoderThreads(auto);
  assert.equal(serving.workers, Math.max(1, Math.min(4, Math.floor(cores / 2))));
  assert.equal(serving.intraOpThreads, Math.max(1, Math.floor(cores / (2 * serving.workers))));
  assert.ok(serving.workers * serving.intraOpThreads <= Math.max(1, cores / 2), 'the encoder takes at most half the cores');
  const batch = encoderThreads(auto, 'batch');
  assert.equal(batch.workers, Math.min(4, cores));
  assert.equal(batch.intraOpThreads, Math.max(1, Math.floor(cores / batch.workers)));
  assert.equal(encoderThreads(loadConfig({ encoder: { provider: 'cuda' } }, {}).encoder).workers, 1);
  assert.deepEqual(encoderThreads(loadConfig({}, { SIDX__ENCODER__WORKERS: '3', SIDX__ENCODER__INTRA_OP_THREADS: '2' }).encoder, 'batch'),
    { workers: 3, intraOpThreads: 2 });
});

test('README documents every setting, and only settings that exist, with its default', async () => {
  const { readFileSync } = await import('node:fs');
  const { ConfigSchema } = await import('../src/config.ts');
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  // A row names one setting or several (`A`, `B` with defaults `a`, `b`): name -> its default as the row shows it.
  const rows = new Map<string, string | undefined>();
  for (const m of readme.matchAll(/^\| ((?:`SIDX__[A-Z0-9_]+`(?:, )?)+) \|[^|]*\| ([^|]*) \|/gm)) {
    const names = [...m[1]!.matchAll(/`(SIDX__[A-Z0-9_]+)`/g)].map((n) => n[1]!);
    const shown = [...m[2]!.matchAll(/`([^`]*)`/g)].map((d) => d[1]!);
    const leading = /^`([^`]*)`/.exec(m[2]!.trim())?.[1];
    names.forEach((name, i) => rows.set(name, names.length > 1 && shown.length === names.length ? shown[i] : leading));
  }
  const envName = (section: string, key: string) => `SIDX__${section}__${key}`.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase();
  const defaults = loadConfig({}, {}) as unknown as Record<string, Record<string, unknown>>;
  const settings = new Set<string>();
  const sections = ConfigSchema.properties as Record<string, { properties: Record<string, unknown> }>;
  for (const [section, schema] of Object.entries(sections)) {
    for (const key of Object.keys(schema.properties)) {
      const name = envName(section, key);
      settings.add(name);
      assert.ok(rows.has(name), `README's configuration table has no row for ${name}`);
      const value = defaults[section]![key];
      // A scalar default must be the row's first `code` (a computed one, e.g. the host name, is described instead).
      if ((typeof value === 'number' || typeof value === 'boolean' || typeof value === 'string') && value !== '') {
        const shown = rows.get(name);
        // A path default is resolved against the checkout (models/default): the README shows its tail.
        if (shown !== undefined && !(typeof value === 'string' && value.endsWith(`/${shown}`))) assert.equal(shown, String(value), `README's default for ${name}`);
      }
    }
  }
  for (const name of rows.keys()) assert.ok(settings.has(name), `README's configuration table has a row for ${name}, which is no setting`);
});
