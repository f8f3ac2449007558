// Request bodies are JSON. As the FastAPI service did, a body sent without a Content-Type is read
// as JSON (`requests.post(url, data=json.dumps(body))`, `curl --data-binary @body.json` through some
// proxies), and so is `application/<anything>+json`; any other type is refused with 415 saying what
// to send. Malformed JSON is 400 whichever way it came.
import type { FastifyInstance } from 'fastify';

/** application/<subtype>+json, parameters (charset) allowed. */
const STRUCTURED_JSON = /^application\/[!#$&^_.+\w-]+\+json(\s*;.*)?$/i;

export const UNSUPPORTED_MEDIA_TYPE = 'unsupported Content-Type: send the body as JSON, with Content-Type: application/json (or with no Content-Type)';

export function readBodiesAsJson(app: FastifyInstance): void {
  // Fastify looks up a parser by the request's Content-Type after the onRequest hooks: without one,
  // a body would find none (415). An empty body stays bodyless (its route's schema says what is missing).
  app.addHook('onRequest', async (request) => {
    const headers = request.raw.headers;
    if (headers['content-type'] !== undefined) return;
    const length = headers['content-length'];
    if (headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')) headers['content-type'] = 'application/json';
  });
  app.addContentTypeParser(STRUCTURED_JSON, { parseAs: 'string' }, app.getDefaultJsonParser('error', 'error'));
}
