import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { SidxError } from '../../errors.ts';
import { deleteRoute, getItemRoute, upsertRoute } from '../schemas/items.ts';
import { decodeEmbeddings } from '../embedding-input.ts';
import { checkBatch, serviceOf, sidList } from './service.ts';

/** "." and ".." cannot travel as a URL path segment (clients resolve them away), so GET could never name them. */
const UNADDRESSABLE_IDS = new Set(['.', '..']);

function checkIds(ids: readonly string[], field: (i: number) => string): void {
  const seen = new Set<string>();
  ids.forEach((id, i) => {
    if (UNADDRESSABLE_IDS.has(id)) {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', `id ${JSON.stringify(id)} is a URL path segment and cannot name an item`, { field: field(i) });
    }
    if (seen.has(id)) throw new SidxError('SIDX_ERR_DUPLICATE_ID', `id ${JSON.stringify(id)} appears twice in the batch`, { field: field(i) });
    seen.add(id);
  });
}

export const itemRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/items', { schema: upsertRoute }, async (req) => {
    const service = serviceOf(app);
    const { items } = req.body;
    checkBatch(app, items.length, 'items');
    checkIds(items.map((it) => it.id), (i) => `items[${i}].id`);
    const dim = service.model.inputDim;
    const vectors = decodeEmbeddings(items.map((it) => it.embedding), dim, app.sidxLimits.maxVectorNorm, (i) => `items[${i}].embedding`);
    const inputs = items.map((it, i) => ({ id: it.id, vector: vectors.subarray(i * dim, (i + 1) * dim) }));
    // Decoded, the body's megabytes of base64 are garbage: let them die young instead of surviving the awaits
    // below in req.body (copied by every scavenge, then promoted).
    (req as { body: unknown }).body = null;
    const out = await service.upsert(inputs, undefined, { finite: true }); // decodeEmbeddings refused non-finite values
    return {
      model: out.model,
      seq: out.seq.toString(),
      items: out.items.map((it) => ({ id: it.id, sid: sidList(it.sid), replaced: it.replaced })),
    };
  });

  app.post('/items/delete', { schema: deleteRoute }, async (req) => {
    const service = serviceOf(app);
    const { ids } = req.body;
    checkBatch(app, ids.length, 'ids');
    checkIds(ids, (i) => `ids[${i}]`);
    const out = await service.delete(ids);
    return { deleted: out.deleted, missing: out.missing };
  });

  app.get('/items/:id', { schema: getItemRoute }, async (req) => {
    const service = serviceOf(app);
    const item = await service.getItem(req.params.id);
    if (!item) throw new SidxError('SIDX_ERR_NOT_FOUND', `no item ${JSON.stringify(req.params.id)}`, { field: 'id' });
    return { id: item.id, sid: sidList(item.sid), model: item.model };
  });
};
