/**
 * The HTTP(S) settings both of Kiln's listeners share: TLS from PEM files, a body limit, time-outs
 * so a slow client cannot hold a socket, and a logger quiet at request level.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { errors } from '../core/errors.ts';

export interface ListenerOptions {
  /** Used in log lines: `api`, `signaling`. */
  name: string;
  tls: { cert: string; key: string } | undefined;
  bodyLimit: number;
  logger: Logger;
}

export function createListener(options: ListenerOptions): FastifyInstance {
  const tls = options.tls ? { cert: readFileSync(options.tls.cert), key: readFileSync(options.tls.key) } : undefined;
  return Fastify({
    ...(tls ? { https: tls } : {}),
    bodyLimit: options.bodyLimit,
    connectionTimeout: 30_000,
    requestTimeout: 30_000,
    keepAliveTimeout: 5_000,
    routerOptions: { maxParamLength: 256 },
    // Request-level logs are at info: keep the listener's own logger at warn.
    // (A quieter parent, e.g. silent in tests, stays quieter.)
    loggerInstance: options.logger.child({ listener: options.name }, { level: options.logger.levelVal > 40 ? options.logger.level : 'warn' }),
  }) as unknown as FastifyInstance;
}

/**
 * Reads request bodies of `scope` that no other parser takes as JSON, whatever their Content-Type
 * (OME's and OpenVidu's clients send JSON with form or text types): an empty body is undefined, and
 * text that is not JSON is BAD_REQUEST with the message `notJson(reason)`.
 */
export function parseAnyTypeAsJson(scope: FastifyInstance, notJson: (reason: string) => string): void {
  scope.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      done(errors.badRequest(notJson((err as Error).message)), undefined);
    }
  });
}

/** The port a listener is bound to (useful after listening on port 0), else `fallback`. */
export function boundPort(app: FastifyInstance, fallback: number): number {
  const address = app.server.address();
  return typeof address === 'object' && address ? address.port : fallback;
}

/**
 * The absolute base URL (`scheme://host[:port]`) of the listener as the client reached it (SPEC.md
 * §2: links follow the request's `Host`). A Host header that is not a plain host[:port] falls back
 * to the socket's own address, so a forged header cannot steer links elsewhere than a host name.
 */
export function requestBaseUrl(request: { protocol: string; headers: { host?: string }; socket: { localAddress?: string; localPort?: number } }): string {
  const host = request.headers.host;
  const m = host ? /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?$/.exec(host) : null;
  if (m && (m[2] === undefined || Number(m[2]) <= 65535)) return `${request.protocol}://${host}`;
  const address = request.socket.localAddress ?? '127.0.0.1';
  const shown = address.includes(':') ? `[${address}]` : address;
  return `${request.protocol}://${shown}:${request.socket.localPort ?? 80}`;
}

/**
 * A request's query string as one value per name, the first of a repeated name (as MaxScale and
 * SignalWire read them); names lower-cased when `lowerCaseNames`.
 */
export function firstQueryValues(query: unknown, lowerCaseNames = false): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries((query ?? {}) as Record<string, unknown>)) {
    const v = Array.isArray(value) ? value[0] : value;
    const name = lowerCaseNames ? key.toLowerCase() : key;
    if (typeof v === 'string' && out[name] === undefined) out[name] = v;
  }
  return out;
}
