// Request bodies are JSON. As the FastAPI service did, a body sent without a Content-Type is read
// as JSON (`requests.post(url, data=json.dumps(body))`, `curl --data-binary @body.json` through some
// proxies), and so is `application/<anything>+json`; any other type is refused with 415 saying what
// to send. Malformed JSON is 400 whichever way it came. Every body Fastify would read (JSON, and
// text/plain, which Fastify reads by default and the routes' schemas then refuse) is read by
// server/body.ts, as Buffers, within BODY_LIMIT_BYTES and MAX_BODY_BYTES_IN_FLIGHT.
import type { FastifyInstance } from 'fastify';
import { budgetedParser, type BodyBudget } from './body.js';

export { UNSUPPORTED_MEDIA_TYPE } from './errors.js';

/** application/<subtype>+json, parameters (charset) allowed. */
const STRUCTURED_JSON = /^application\/[!#$&^_.+\w-]+\+json(\s*;.*)?$/i;

export function readBodiesAsJson(app: FastifyInstance, budget: BodyBudget): void {
  // Fastify looks up a parser by the request's Content-Type after the onRequest hooks: without one,
  // a body would find none (415). An empty body stays bodyless (its route's schema says what is missing).
  app.addHook('onRequest', async (request) => {
    const headers = request.raw.headers;
    if (headers['content-type'] !== undefined) return;
    const length = headers['content-length'];
    if (headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')) headers['content-type'] = 'application/json';
  });
  // Fastify's own JSON parser (empty body 400, malformed 400, `__proto__` and `constructor.prototype`
  // refused), given the whole body decoded once at the end.
  const json = app.getDefaultJsonParser('error', 'error');
  const parseJson = budgetedParser(budget, (request, body) => {
    let outcome: { err: Error | null; value?: unknown } | undefined;
    json(request, body.toString('utf8'), (err, value) => void (outcome = { err, value }));
    if (!outcome) throw new Error('the JSON parser did not answer synchronously');
    if (outcome.err) throw outcome.err;
    return outcome.value;
  });
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', parseJson);
  app.addContentTypeParser(STRUCTURED_JSON, parseJson);
  app.addContentTypeParser(
    'text/plain',
    budgetedParser(budget, (_request, body) => body.toString('utf8')),
  );
}
