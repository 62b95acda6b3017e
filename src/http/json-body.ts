/**
 * The application/json body parser: Fastify's own (secure-json-parse, protoAction and constructorAction as the app
 * is configured) with a fast path for the bodies it would pass unchanged. An ingest batch is megabytes of base64;
 * for it the default parser runs two regular expressions over the whole text, looking for "__proto__" and
 * "constructor" keys, possibly spelled with \u escapes. A body without a backslash, a BOM or either word cannot hold
 * such a key, so it goes to JSON.parse directly; every other body goes to the default parser, so answers and errors
 * are the same either way. An upsert batch's body, ASCII as clients send it, is parsed without the text at all
 * (item-batch-body.ts). (The text stays UTF-8-decoded: a Latin-1 decode is faster but makes a megabyte-sized body an
 * external string, whose allocation V8 counts towards its next full collection.)
 */
import { isAscii } from 'node:buffer';
import { errorCodes, type FastifyInstance } from 'fastify';
import { parseItemBatchBody } from './item-batch-body.ts';

const BACKSLASH = 0x5c;
const BOM = 0xfeff;
/** Either word anywhere in the text (cheaper than two searches; a hit only means the default parser decides). */
const SUSPECT = /__proto__|constructor/;

export function registerJsonBodyParser(app: FastifyInstance): void {
  const { onProtoPoisoning, onConstructorPoisoning } = app.initialConfig;
  const fallback = app.getDefaultJsonParser(onProtoPoisoning ?? 'error', onConstructorPoisoning ?? 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body: Buffer, done) => {
    const plain = body.indexOf(BACKSLASH) < 0;
    if (plain && isAscii(body)) {
      const batch = parseItemBatchBody(body);
      if (batch !== undefined) {
        done(null, batch);
        return;
      }
    }
    const text = body.toString('utf8');
    if (text.length === 0 || text.charCodeAt(0) === BOM || !plain || SUSPECT.test(text)) {
      fallback(req, text, done);
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      done(new errorCodes.FST_ERR_CTP_INVALID_JSON_BODY(), undefined);
      return;
    }
    done(null, parsed);
  });
}
