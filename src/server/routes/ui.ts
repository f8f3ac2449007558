// GET /ui: the web page for people (the JSON at / stays as it is for programs). The page is one
// HTML document, one stylesheet and the browser modules that tsc compiles from src/server/ui/web/
// (plain ES modules, loaded by the browser from this server: no CDN, no bundler). They are read
// into memory when the app is built. The page and its assets hold no data, so they are served
// without the API key; the page asks for the key and sends it with its API calls.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { UI_PAGE } from '../ui/page.js';
import { UI_STYLE } from '../ui/style.js';

/** Routes reached without the API key (app.ts adds them to its open routes). */
export const UI_ROUTES = ['/ui', '/ui/', '/ui/style.css', '/ui/js/*'] as const;

/** Only this server's own scripts, styles and data: URLs; API calls to this origin only. */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Compiled browser modules next to this file's compiled form: dist/src/server/ui/web/**.js. */
const WEB_DIR = fileURLToPath(new URL('../ui/web/', import.meta.url));

/** Every .js file under `dir`, by its path relative to `dir` with forward slashes. */
export function readModules(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (current: string) => {
    let names: string[];
    try {
      names = readdirSync(current);
    } catch {
      return; // not built: /ui answers, its script 404s
    }
    for (const name of names) {
      const file = join(current, name);
      if (statSync(file).isDirectory()) walk(file);
      else if (name.endsWith('.js')) out.set(relative(dir, file).split(sep).join('/'), readFileSync(file));
    }
  };
  walk(dir);
  return out;
}

function assetHeaders(reply: FastifyReply, type: string): FastifyReply {
  return reply.type(type).header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff');
}

export const uiRoutes: FastifyPluginAsync = async (app) => {
  const modules = readModules(WEB_DIR);
  const hide = { hide: true };

  app.get('/ui', { schema: hide }, async (_request, reply) =>
    assetHeaders(reply, 'text/html; charset=utf-8').header('content-security-policy', CONTENT_SECURITY_POLICY).send(UI_PAGE),
  );
  app.get('/ui/', { schema: hide }, async (_request, reply) => reply.redirect('../ui'));
  app.get('/ui/style.css', { schema: hide }, async (_request, reply) => assetHeaders(reply, 'text/css; charset=utf-8').send(UI_STYLE));
  app.get('/ui/js/*', { schema: hide }, async (request, reply) => {
    const path = (request.params as { '*': string })['*'];
    const body = modules.get(path);
    if (!body) return reply.code(404).send({ detail: `no page module ${path}`, error: 'not_found' });
    return assetHeaders(reply, 'text/javascript; charset=utf-8').send(body);
  });
};
