/**
 * The media signaling listener (default port 3333): WHIP/WHEP, OvenMediaEngine WebSocket
 * signaling, the web pages and the web console, with CORS for browser clients on other origins.
 */
import type { FastifyInstance } from 'fastify';
import { boundPort, createListener } from '../http/listener.ts';
import { allowOrigin } from '../http/cors.ts';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from 'pino';
import { KilnError, isKilnError } from '../core/errors.ts';
import type { MediaEngine } from '../media/engine.ts';
import type { Credentials } from '../api/credentials.ts';
import { registerWhipWhep, sendSignalingError } from './whip-whep.ts';
import { handleOmeSignaling } from './ome-signaling.ts';
import { handleRoomSignaling } from './openvidu-rpc/room-signaling.ts';
import type { Rooms } from '../rooms/rooms.ts';
import { registerRecordingFiles, type RecordingFileRouteOptions } from '../recording/file-route.ts';
import { registerConsole, type ConsoleRouteOptions } from '../http/console-route.ts';

export interface SignalingServerOptions {
  host: string;
  port: number;
  tls: { cert: string; key: string } | undefined;
  corsOrigins: string[];
  bodyLimit: number;
  wsMessageBytes: number;
  engine: MediaEngine;
  credentials: Credentials;
  /** Rooms, for the room WebSocket at `/room`. */
  rooms: Rooms;
  /** The application room participants publish into. */
  roomsApp: string;
  /** A room WebSocket silent for this long is dropped, ms. */
  roomPingTimeoutMs: number;
  /** Recording files, served at `/recordings/<id>.mp4` (the public URL's listener). */
  recordingFiles?: RecordingFileRouteOptions;
  /** The web console at `/console/` (its build directory, and where it finds the API); none when undefined. */
  console?: ConsoleRouteOptions;
  logger: Logger;
}

const PAGES: Record<string, string> = {
  '/': 'index.html',
  '/index.html': 'index.html',
  '/publish.html': 'publish.html',
  '/play.html': 'play.html',
};

/** Handles a WebSocket upgrade whose path the listener routes to it. */
export type UpgradeRoute = (ws: WebSocket, request: IncomingMessage, segments: string[]) => void;

export class SignalingServer {
  readonly app: FastifyInstance;
  readonly #options: SignalingServerOptions;
  readonly #wss: WebSocketServer;
  readonly #routes = new Map<string, UpgradeRoute>();

  constructor(options: SignalingServerOptions) {
    this.#options = options;
    this.app = createListener({ name: 'signaling', tls: options.tls, bodyLimit: options.bodyLimit, logger: options.logger });
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: options.wsMessageBytes });
    this.#setup();
  }

  /** Routes WebSocket upgrades for `/{first}` (e.g. `room`) to `route`. */
  addUpgradeRoute(first: string, route: UpgradeRoute): void {
    this.#routes.set(first, route);
  }

  #originAllowed(origin: string | undefined): boolean {
    const allowed = this.#options.corsOrigins;
    return origin === undefined || allowed.includes('*') || allowed.includes(origin);
  }

  #setup(): void {
    const app = this.app;
    const { corsOrigins } = this.#options;
    app.addHook('onRequest', async (request, reply) => {
      allowOrigin(reply, request.headers.origin, corsOrigins, 'Location, ETag, Link, Accept-Patch, Accept-Post');
      if (request.method === 'OPTIONS') {
        reply
          .header('Access-Control-Allow-Methods', 'GET, POST, PATCH, DELETE, OPTIONS')
          .header('Access-Control-Allow-Headers', 'Content-Type, Authorization, If-Match')
          .header('Access-Control-Max-Age', '86400')
          .header('Accept-Post', 'application/sdp')
          .header('Allow', 'GET, POST, PATCH, DELETE, OPTIONS');
        return reply.code(204).send();
      }
    });

    const web = new URL('../../web/', import.meta.url);
    for (const [route, file] of Object.entries(PAGES)) {
      const html = readFileSync(new URL(file, web), 'utf8');
      app.get(route, async (_req, reply) => reply.type('text/html; charset=utf-8').send(html));
    }
    app.get('/favicon.ico', async (_req, reply) => reply.code(204).send());
    if (this.#options.console) registerConsole(app, this.#options.console);

    if (this.#options.recordingFiles) registerRecordingFiles(app, this.#options.recordingFiles);
    registerWhipWhep(app, { engine: this.#options.engine, credentials: this.#options.credentials });

    app.setNotFoundHandler(async (request, reply) =>
      sendSignalingError(reply, new KilnError('NOT_FOUND', `Not found: ${request.method} ${request.url.split('?')[0]}`)));
    app.setErrorHandler(async (err, request, reply) => {
      if (isKilnError(err)) return sendSignalingError(reply, err);
      const e = err as { statusCode?: number; message?: string; code?: string };
      const status = e.statusCode && e.statusCode >= 400 && e.statusCode < 500 ? e.statusCode : 500;
      if (status === 500) request.log.error({ err }, 'signaling request failed');
      const message = status === 500 ? 'Internal Server Error' : e.message ?? 'Bad Request';
      return sendSignalingError(reply, new KilnError(status === 413 ? 'PAYLOAD_TOO_LARGE' : status === 415 ? 'UNSUPPORTED_MEDIA' : status === 500 ? 'INTERNAL' : 'BAD_REQUEST', message));
    });

    this.addUpgradeRoute('*', (ws, request, segments) => handleOmeSignaling(ws, request, segments, {
      engine: this.#options.engine,
      credentials: this.#options.credentials,
      logger: this.#options.logger,
    }));
    this.addUpgradeRoute('room', (ws, request, segments) => {
      if (segments.length !== 1) return ws.close(1008, 'The room WebSocket is /room');
      handleRoomSignaling(ws, request, {
        rooms: this.#options.rooms,
        engine: this.#options.engine,
        credentials: this.#options.credentials,
        app: this.#options.roomsApp,
        pingTimeoutMs: this.#options.roomPingTimeoutMs,
        logger: this.#options.logger,
      });
    });
    app.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(request, socket, head));
  }

  #upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const reject = (status: number, text: string) => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    socket.on('error', () => socket.destroy());
    if (!this.#originAllowed(request.headers.origin)) return reject(403, 'Forbidden');
    let segments: string[];
    try {
      const path = new URL(request.url ?? '/', 'http://x').pathname;
      segments = path.split('/').filter(Boolean).map(decodeURIComponent);
    } catch {
      return reject(400, 'Bad Request');
    }
    const route = this.#routes.get(segments[0] ?? '') ?? (segments.length === 2 ? this.#routes.get('*') : undefined);
    if (!route) return reject(404, 'Not Found');
    this.#wss.handleUpgrade(request, socket, head, (ws) => {
      ws.on('error', () => ws.terminate());
      try {
        route(ws, request, segments);
      } catch (err) {
        this.#options.logger.error({ err }, 'websocket route failed');
        ws.close(1011, 'internal error');
      }
    });
  }

  async start(): Promise<void> {
    await this.app.listen({ host: this.#options.host, port: this.#options.port });
  }

  /** The port actually bound (useful with port 0). */
  get port(): number {
    return boundPort(this.app, this.#options.port);
  }

  /** Stops accepting, closes WebSockets and the listener. */
  async stop(): Promise<void> {
    for (const ws of this.#wss.clients) ws.terminate();
    this.#wss.close();
    await this.app.close();
  }
}
