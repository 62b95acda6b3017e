import fastJsonStringify from 'fast-json-stringify';
import { sidList } from '../../src/http/routes/service.ts';
import { sharedSchemas } from '../../src/http/schemas/common.ts';
import { RetrieveResponseSchema } from '../../src/http/schemas/retrieve.ts';
import type { RetrieveOutput } from '../../src/service/types.ts';

const schemaJson = fastJsonStringify(RetrieveResponseSchema as never, { schema: Object.fromEntries(sharedSchemas.map((s) => [s.$id!, s])) as never });

/**
 * What POST /v1/retrieve sent before src/http/retrieve-json.ts: the response schema's own serializer (as Fastify
 * compiles it) over a copy of the answer with number-array SIDs.
 */
export function retrieveSchemaJson(out: RetrieveOutput): string {
  return schemaJson({
    model: out.model, expand: out.expand,
    items: out.items.map((it) => ({ id: it.id, score: it.score, sid: sidList(it.sid), match: it.match })),
    querySids: out.querySids.map(sidList), candidates: out.candidates, timingsMs: out.timingsMs,
    ...(out.missingShards ? { partial: true, missingShards: out.missingShards } : {}),
  });
}
