import type { FastifyInstance } from 'fastify';
import { SidxError } from '../../errors.ts';
import type { ServiceApi } from '../../service/service-api.ts';

/** The ready service, or a 503 when it is still starting. */
export function serviceOf(app: FastifyInstance): ServiceApi {
  const service = app.sidx;
  if (!service || !service.ready) throw new SidxError('SIDX_ERR_NOT_READY', 'service is not ready');
  return service;
}

export function checkModel(service: ServiceApi, model: string | undefined, field = 'model'): void {
  if (model !== undefined && model !== service.model.id) {
    throw new SidxError('SIDX_ERR_UNKNOWN_MODEL', `model ${JSON.stringify(model)} is not the active model (${service.model.id})`, { field });
  }
}

export function checkBatch(app: FastifyInstance, size: number, field: string): void {
  if (size === 0) throw new SidxError('SIDX_ERR_BATCH_EMPTY', `${field} is empty`, { field });
  const max = app.sidxLimits.maxBatch;
  if (size > max) throw new SidxError('SIDX_ERR_BATCH_TOO_LARGE', `${field} has ${size} entries, the limit is ${max}`, { field });
}

/** A SID as a JSON array (a plain loop: Array.from on a typed array costs ~1 µs per SID, and a beam answer has 129). */
export function sidList(codes: Int32Array): number[] {
  const out = new Array<number>(codes.length);
  for (let l = 0; l < codes.length; l++) out[l] = codes[l]!;
  return out;
}
