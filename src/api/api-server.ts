/**
 * The control API listener (default port 8081): every REST dialect, `/healthz`, `/metrics` and
 * the OpenAPI document. Each dialect registers its routes in its own Fastify scope, with its own
 * authentication and error shape.
 */
import type { FastifyInstance } from 'fastify';
import { boundPort, createListener } from '../http/listener.ts';
import { allowOrigin } from '../http/cors.ts';
import type { Logger } from 'pino';
import type { Catalog } from '../core/catalog.ts';
import type { Credentials } from './credentials.ts';
import type { PullManager } from '../ingest/pulls.ts';
import { registerOmeApi } from './ome/ome-api.ts';
import { registerOpenViduApi } from './openvidu/openvidu-api.ts';
import { registerMaxScaleApi } from './maxscale/maxscale-api.ts';
import { registerSignalWireApi } from './signalwire/signalwire-api.ts';
import type { PageTokens } from './signalwire/paging.ts';
import type { Store } from '../store/store.ts';
import type { Rooms } from '../rooms/rooms.ts';
import type { Recordings } from '../recording/recordings.ts';
import type { RecordingLinks } from '../recording/file-route.ts';
import { renderMetrics, type EventMetrics, type Metrics } from './metrics.ts';
import type { ServerView } from './maxscale/resources.ts';
import { omeOpenApi } from './ome/openapi.ts';
import { openViduOpenApi } from './openvidu/openapi.ts';
import { maxScaleOpenApi } from './maxscale/openapi.ts';
import { signalWireOpenApi } from './signalwire/openapi.ts';
import type { Cluster } from '../cluster/cluster.ts';
import { errors } from '../core/errors.ts';
import { FORWARDED_HEADER, FORWARDED_SECRET, type ForwardedAnswer, type ForwardedCall } from './forward.ts';

export interface ApiServerOptions {
  host: string;
  port: number;
  tls: { cert: string; key: string } | undefined;
  /** Origins whose browser pages may call the API (the web console on the signaling port); `*` allows any. */
  corsOrigins: string[];
  bodyLimit: number;
  catalog: Catalog;
  credentials: Credentials;
  /** Creates pull streams (OME POST …/streams). */
  pulls: PullManager;
  /** Room sessions and tokens (OpenVidu /api, SignalWire /api/video). */
  rooms: Rooms;
  recordings: Recordings;
  /** Temporary links to recording files (SignalWire `uri`). */
  recordingLinks: RecordingLinks;
  /** OpenVidu's recording free access (SPEC.md §3). */
  recordingFreeAccess: boolean;
  /** KILN_PUBLIC_URL, where recording files are served. */
  publicUrl: string;
  /** What the SignalWire dialect lists from. */
  store: Store;
  pageTokens: PageTokens;
  /** Dollars per member-minute (SignalWire cost_in_dollars). */
  pricePerMemberMinute: number;
  metrics: Metrics;
  /** Whether `/metrics` asks for API credentials. Default false (Prometheus scrapes it openly). */
  metricsRequireAuth: boolean;
  /** Cluster mode: the cluster-wide view, and calls refused with 503 while its database is unreachable. */
  cluster?: Cluster;
  /** This node (KILN_NODE_ID). */
  nodeId: string;
  /** OVT connections of other nodes to this one (metrics). */
  ovtConnections?: () => number;
  /** The nodes (MaxScale `servers`): the cluster's registry, or this node alone. */
  servers: () => Promise<ServerView[]>;
  /** The event log's counters (metrics). */
  eventMetrics?: () => EventMetrics;
  logger: Logger;
}

/**
 * CORS for browser pages on other origins (the web console, served on the signaling port): an
 * allowed Origin gets Access-Control-Allow-Origin on every answer, errors and 401s included, and a
 * preflight (which never carries credentials) is answered here, before any dialect asks for them.
 * A disallowed origin gets no CORS header, so the browser keeps the answer from the page.
 */
function registerCors(app: FastifyInstance, corsOrigins: string[]): void {
  app.addHook('onRequest', async (request, reply) => {
    const origin = request.headers.origin;
    const allowed = allowOrigin(reply, origin, corsOrigins, 'Location, Link, WWW-Authenticate, Content-Disposition');
    const preflight = request.method === 'OPTIONS' && origin !== undefined && request.headers['access-control-request-method'] !== undefined;
    if (!preflight) return;
    if (allowed) {
      reply
        .header('Access-Control-Allow-Methods', 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS')
        .header('Access-Control-Allow-Headers', 'Authorization, Content-Type')
        .header('Access-Control-Max-Age', '600');
    }
    return reply.code(204).send();
  });
}

/** The OpenAPI document of every dialect the control API speaks. */
function controlApiDocument(): object {
  const ome = omeOpenApi() as { info: object; components: { schemas: object }; paths: object };
  const openvidu = openViduOpenApi();
  const maxscale = maxScaleOpenApi();
  const signalwire = signalWireOpenApi();
  return {
    ...ome,
    info: { title: 'Kiln control API: OvenMediaEngine REST v1, MaxScale REST, OpenVidu 1.x and SignalWire Video dialects', version: '1.0.0' },
    components: { ...ome.components, schemas: { ...ome.components.schemas, ...maxscale.schemas, ...openvidu.schemas, ...signalwire.schemas } },
    paths: { ...ome.paths, ...maxscale.paths, ...openvidu.paths, ...signalwire.paths },
  };
}

export class ApiServer {
  readonly app: FastifyInstance;
  readonly #options: ApiServerOptions;

  constructor(options: ApiServerOptions) {
    this.#options = options;
    this.app = createListener({ name: 'api', tls: options.tls, bodyLimit: options.bodyLimit, logger: options.logger });
    this.#setup();
  }

  #setup(): void {
    const app = this.app;
    const { catalog, credentials, metrics, pulls, rooms, recordings, recordingLinks, recordingFreeAccess, publicUrl, store, pageTokens, pricePerMemberMinute, cluster, nodeId } = this.#options;
    // First of the root hooks: before the cluster's 503 and each dialect's credentials.
    registerCors(app, this.#options.corsOrigins);
    if (cluster) {
      // A node that lost the shared database keeps its media going but takes no control call: each
      // dialect answers 503 in its own shape (the error reaches the route's scope handler).
      app.addHook('onRequest', async (request) => {
        if (cluster.available || request.url === '/healthz' || request.url.startsWith('/metrics')) return;
        throw errors.unavailable('The cluster database is unreachable: try again later or another node');
      });
    }
    app.get('/healthz', async (_req, reply) => reply.header('Cache-Control', 'no-store').send({ status: 'ok' }));
    app.get('/metrics', async (request, reply) => {
      if (this.#options.metricsRequireAuth && !credentials.basic(request.headers.authorization)) {
        return reply.code(401).header('WWW-Authenticate', 'Basic realm="Kiln"').type('text/plain').send('Unauthorized\n');
      }
      const clusterMetrics = cluster && { databaseUp: cluster.available, ovtConnections: this.#options.ovtConnections?.() ?? 0 };
      return reply.type('text/plain; version=0.0.4; charset=utf-8').send(renderMetrics(catalog, metrics, clusterMetrics, this.#options.eventMetrics?.()));
    });
    app.get('/openapi.json', async (_req, reply) => reply.send(controlApiDocument()));
    app.register(async (scope) => registerOmeApi(scope, { catalog, credentials, pulls, cluster }), { prefix: '/v1' });
    app.register(async (scope) => registerMaxScaleApi(scope, {
      catalog, credentials, rooms, cluster, nodeId, events: store.events, remoteRooms: cluster && (() => rooms.otherNodesRoomSessions()), servers: this.#options.servers,
    }), { prefix: '/v1' });
    app.register(async (scope) => registerOpenViduApi(scope, { rooms, recordings, credentials, freeAccess: recordingFreeAccess, publicUrl, cluster }), { prefix: '/api' });
    app.register(async (scope) => registerSignalWireApi(scope, { rooms, recordings, recordingLinks, publicUrl, store, credentials, pageTokens, pricePerMemberMinute, cluster }), { prefix: '/api/video' });
    app.setNotFoundHandler(async (request, reply) =>
      reply.code(404).send({ statusCode: 404, message: `[HTTP] Could not find the resource: ${request.method} ${request.url.split('?')[0]} (404)` }));
    app.setErrorHandler(async (err, request, reply) => {
      const e = err as { statusCode?: number; message?: string };
      const status = e.statusCode && e.statusCode >= 400 && e.statusCode < 500 ? e.statusCode : 500;
      if (status === 500) request.log.error({ err }, 'api request failed');
      return reply.code(status).send({ statusCode: status, message: status === 500 ? 'Internal Server Error' : e.message });
    });
  }

  /** Runs a control call another node forwarded (cluster mode) through this node's own routes. */
  async runForwarded(call: ForwardedCall): Promise<ForwardedAnswer> {
    const headers: Record<string, string> = { [FORWARDED_HEADER]: FORWARDED_SECRET };
    if (call.authorization) headers.authorization = call.authorization;
    if (call.body !== undefined) headers['content-type'] = 'application/json';
    const res = await this.app.inject({ method: call.method as 'GET', url: call.url, headers, payload: call.body });
    return { status: res.statusCode, contentType: String(res.headers['content-type'] ?? ''), body: res.body };
  }

  async start(): Promise<void> {
    await this.app.listen({ host: this.#options.host, port: this.#options.port });
  }

  get port(): number {
    return boundPort(this.app, this.#options.port);
  }

  async stop(): Promise<void> {
    await this.app.close();
  }
}
