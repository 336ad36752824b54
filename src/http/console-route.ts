/**
 * The web console on the signaling listener: `/console/` is the single-page app Vite builds
 * (`index.html` and hashed files under `assets/`), and `/console/config.json` tells it where the
 * control API is. The build is read from disk per request, so a rebuild needs no restart; without
 * one, `/console/` says how to make it.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KilnError } from '../core/errors.ts';

/** What `GET /console/config.json` answers. */
export interface ConsoleConfig {
  /** The control API listener's bound port. */
  apiPort: number;
  /** Whether the control API is HTTPS. */
  apiTls: boolean;
  /** Where the console calls the API when set (a reverse proxy); null: `<page protocol>//<page host>:apiPort`. */
  apiUrl: string | null;
}

export interface ConsoleRouteOptions {
  /** The console's build directory. Default: `console/dist` of this checkout (DEFAULT_CONSOLE_DIR). */
  dir?: string;
  /** The answer of `config.json`, asked per request (the API's port is known once it listens). */
  config: () => ConsoleConfig;
}

/** `console/dist` of this checkout, where `npm run build:console` writes. */
export const DEFAULT_CONSOLE_DIR = fileURLToPath(new URL('../../console/dist/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.wasm': 'application/wasm',
};

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Kiln console not built</title></head>
<body><h1>The console is not built</h1>
<p>The console is not built: run <code>npm run build:console</code> in the Kiln checkout, then reload this page.</p>
</body></html>
`;

/**
 * The path segments of a console file from the request path after `/console/` (`''` is the
 * index), each percent-decoded; undefined for anything that could leave the directory or name a
 * hidden file (`..`, `.`, an encoded `/` or `\`, NUL, empty segments, dot-files).
 */
function fileSegments(rest: string): string[] | undefined {
  if (rest === '') return ['index.html'];
  const segments: string[] = [];
  for (const raw of rest.split('/')) {
    let s: string;
    try {
      s = decodeURIComponent(raw);
    } catch {
      return undefined;
    }
    if (s === '' || s.startsWith('.') || /[/\\\0]/.test(s)) return undefined;
    segments.push(s);
  }
  return segments;
}

/** Registers `/console`, `/console/config.json` and `/console/*` on `app` (GET and HEAD). */
export function registerConsole(app: FastifyInstance, options: ConsoleRouteOptions): void {
  const root = resolve(options.dir ?? DEFAULT_CONSOLE_DIR);
  const notFound = (path: string) => new KilnError('NOT_FOUND', `Not found: ${path}`);

  app.get('/console', async (request, reply) => {
    const query = request.url.indexOf('?');
    return reply.redirect(`/console/${query >= 0 ? request.url.slice(query) : ''}`, 301);
  });

  app.get('/console/config.json', async (_request, reply) =>
    reply.header('Cache-Control', 'no-store').type('application/json; charset=utf-8').send(options.config()));

  app.get('/console/*', async (request, reply): Promise<FastifyReply> => {
    const path = request.url.split('?')[0];
    const segments = fileSegments(path.slice('/console/'.length));
    if (!segments) throw notFound(path);
    const file = join(root, ...segments);
    if (!file.startsWith(root + sep)) throw notFound(path);
    const isIndex = segments.length === 1 && segments[0] === 'index.html';
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) {
      if (isIndex) return reply.code(503).header('Cache-Control', 'no-store').type('text/html; charset=utf-8').send(NOT_BUILT);
      throw notFound(path);
    }
    // Vite names what it puts under assets/ by content hash: such a file never changes.
    reply.header('Cache-Control', segments[0] === 'assets' && segments.length > 1 ? 'public, max-age=31536000, immutable' : 'no-cache');
    const etag = `W/"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
    reply.header('ETag', etag).header('Last-Modified', info.mtime.toUTCString()).header('X-Content-Type-Options', 'nosniff');
    const known = request.headers['if-none-match']?.split(',').map((t) => t.trim());
    if (known?.includes(etag) || known?.includes('*')) return reply.code(304).send();
    const body = await readFile(file).catch(() => undefined);
    if (!body) throw notFound(path);
    return reply.type(TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream').send(body);
  });
}
