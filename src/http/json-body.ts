/**
 * The application/json body parser: Fastify's own (secure-json-parse, protoAction and constructorAction as the app
 * is configured) with a fast path for the bodies it would pass unchanged. An ingest batch is megabytes of base64;
 * for it the default parser decodes UTF-8 and runs two regular expressions over the whole text, looking for
 * "__proto__" and "constructor" keys, possibly spelled with \u escapes. A body that is ASCII, holds no backslash and
 * neither word cannot hold such a key, so it is decoded as Latin-1 (a copy) and given to JSON.parse directly. Every
 * other body goes to the default parser, so answers and errors are the same either way.
 */
import { isAscii } from 'node:buffer';
import { errorCodes, type FastifyInstance } from 'fastify';

const BACKSLASH = 0x5c;
/** Either word anywhere in the text (cheaper than two searches; a hit only means the default parser decides). */
const SUSPECT = /__proto__|constructor/;

export function registerJsonBodyParser(app: FastifyInstance): void {
  const { onProtoPoisoning, onConstructorPoisoning } = app.initialConfig;
  const fallback = app.getDefaultJsonParser(onProtoPoisoning ?? 'error', onConstructorPoisoning ?? 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body: Buffer, done) => {
    if (body.length > 0 && isAscii(body) && body.indexOf(BACKSLASH) < 0) {
      const text = body.toString('latin1');
      if (!SUSPECT.test(text)) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          done(new errorCodes.FST_ERR_CTP_INVALID_JSON_BODY(), undefined);
          return;
        }
        done(null, parsed);
        return;
      }
      fallback(req, text, done);
      return;
    }
    fallback(req, body.toString('utf8'), done);
  });
}
