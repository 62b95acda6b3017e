/**
 * The opening of a SidxService (sidx-service.ts `open`): the data directory's lock and stores, the served model and
 * its encoder pool, the vector state and the live posting index, as the service's Parts.
 *
 * Start-up time: the pool's first worker starts ONNX Runtime in its thread as soon as the served model is known
 * (EncoderPool.create is synchronous up to that spawn), and the others once it is ready (it settles the provider),
 * while this thread loads the vector id file, builds the posting index and then the SID tries from LMDB. Those
 * steps are separated by turns of the event loop, so the pool sees the first worker's ready message and starts the
 * next ones meanwhile. No write can come before `open` returns: the posting index and the tries are as of then. The
 * codes' layout (code-layout.ts) starts in the background once the codes are read.
 */
import { join, resolve } from 'node:path';
import { setImmediate as turn } from 'node:timers/promises';
import type { Config } from '../config.ts';
import { Catalog } from '../store/catalog.ts';
import { ControlPlane, MIGRATIONS_DIR } from '../store/control-plane.ts';
import { DataDirLock } from '../store/data-dir-lock.ts';
import { loadBundle, type ModelBundle } from '../tokenizer/bundle.ts';
import { storeOpener } from '../vector/sq8-slot-store.ts';
import { Lifecycle } from './lifecycle.ts';
import { codeLayoutOf } from './code-layout.ts';
import { LivePostings } from './live-postings.ts';
import { SidxMetrics } from './metrics.ts';
import { chooseServed, loadRegistered, openSpace, registerBundle } from './model-space.ts';
import type { OpenOptions, Parts } from './service-parts.ts';
import { VectorState, type Logger } from './vector-state.ts';

export async function openParts(config: Readonly<Config>, log: Logger, options: OpenOptions): Promise<Parts> {
  const dataDir = resolve(config.storage.dataDir);
  const configured = await loadBundle(resolve(config.model.dir));
  const lock = DataDirLock.acquire(dataDir, options.command ?? 'sidx'); // creates dataDir; before any store opens
  if (lock.tookOverFrom) {
    log.warn(`data directory ${dataDir}: ${lock.tookOverFrom.command} (pid ${lock.tookOverFrom.pid}) ended without releasing it `
      + '(kill -9, a crash): lock taken over; the stores recover what it had committed');
  }
  let control: ControlPlane | undefined;
  let catalog: Catalog | undefined;
  try {
    control = ControlPlane.open(join(dataDir, 'control.sqlite'), MIGRATIONS_DIR);
    const configuredRow = registerBundle(control, configured);
    catalog = Catalog.open(join(dataDir, 'catalog'), {
      mapSizeBytes: config.storage.mapSizeBytes, sidHistory: config.storage.sidHistory, deferSids: true,
      postingRotations: options.postingRotations ?? (config.storage.postingIndex === 'memory' ? 'natural' : 'all'),
    });
    const row = chooseServed(control, catalog, configuredRow, Lifecycle.pending({ control }), log, options.refuseOtherModel ? { dataDir } : undefined);
    control.activateModel(row.id);
    if (catalog.spaces.activeModel !== row.version) catalog.spaces.setActiveModel(row.version);
    const bundle = row.id === configuredRow.id ? configured : await loadRegistered(row);
    const metrics = options.metrics ?? new SidxMetrics();
    const opening = openSpace(bundle, row.version, config, log, metrics, options.encoderUse);
    opening.catch(() => undefined); // awaited below: no unhandled rejection meanwhile
    const derived = await openDerived(config, log, dataDir, catalog, bundle, row.version, options.sidTries !== false)
      .catch(async (err: unknown) => { await opening.then((s) => s.pool.close(), () => undefined); throw err; });
    const space = await opening.catch(async (err: unknown) => { await derived.vectors.close(); throw err; });
    const parts: Parts = {
      config, log, control, catalog, pool: space.pool, bundle, ...derived, layout: null, model: space.info, dataDir, metrics, ownMetrics: !options.metrics, lock,
    };
    parts.layout = codeLayoutOf(parts, options.encoderUse === 'index');
    return parts;
  } catch (err) {
    await catalog?.close();
    control?.close();
    lock.release();
    throw err;
  }
}

/** What this thread derives from the catalog while the pool starts: the vector state, the posting index, the SID tries. */
async function openDerived(config: Readonly<Config>, log: Logger, dataDir: string, catalog: Catalog, bundle: ModelBundle, version: number,
  sidTries: boolean): Promise<Pick<Parts, 'vectors' | 'postings'>> {
  const m = bundle.manifest;
  const vectors = await VectorState.open(dataDir, catalog, m.inputDim, m.metric, log, storeOpener(config.vectors));
  try {
    await turn();
    const postings = new LivePostings(catalog, log, config.storage.postingIndex === 'memory');
    const scanned = postings.track(version, m.levels);
    if (sidTries) {
      await turn();
      const t0 = performance.now();
      catalog.sids.load(scanned && new Map([[version, scanned]])); // the served model's postings are not read twice
      log.info(`SID tries built in ${(performance.now() - t0).toFixed(0)} ms`);
    }
    return { vectors, postings };
  } catch (err) {
    await vectors.close();
    throw err;
  }
}
