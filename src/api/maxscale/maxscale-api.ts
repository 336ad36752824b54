/**
 * The MariaDB MaxScale REST dialect (seed 002): every session of the server as JSON:API documents
 * under `/v1/sessions`, and the services they belong to under `/v1/services`, so that MaxScale's
 * `maxctrl` (`list sessions`, `show session`, `destroy session`) and JSON:API clients work.
 * Every request takes `pretty`; collections take `fields[TYPE]`, `filter`, `filter[PATH]` and
 * `page[size]`/`page[number]`; sessions take `rdns`. Errors are `{"errors": [{"detail": "…"}]}`.
 */
import { promises as dns } from 'node:dns';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Catalog } from '../../core/catalog.ts';
import { isKilnError, KilnError } from '../../core/errors.ts';
import { firstQueryValues, requestBaseUrl } from '../../http/listener.ts';
import type { Credentials } from '../credentials.ts';
import { applyFields, pageLinks, parseBoolean, shapeCollection, type JsonObject, type QueryParams } from './query.ts';
import type { Session, SessionView } from '../../core/session.ts';
import type { Cluster } from '../../cluster/cluster.ts';
import { RemoteSession } from '../../cluster/snapshots.ts';
import type { EventStore } from '../../store/store.ts';
import { eventResource } from './events.ts';
import { serverResource, serviceResource, ServiceDirectory, sessionResource, type RoomDirectory, type RoomSessionView, type ServerView } from './resources.ts';

/** What the MaxScale dialect reads: the live sessions, the credentials, and the open rooms. */
export interface MaxScaleApiOptions {
  /** The event outbox (`GET /v1/events`). */
  events?: EventStore;
  catalog: Catalog;
  credentials: Credentials;
  rooms: RoomDirectory;
  /** Cluster mode: the sessions of every node; a kill reaches the node that holds the session. */
  cluster?: Cluster;
  /** This node (KILN_NODE_ID): the `node` attribute of its sessions. */
  nodeId: string;
  /** Cluster mode: the room sessions in progress on other nodes (services of their participants). */
  remoteRooms?: () => Promise<RoomSessionView[]>;
  /** The nodes (`servers`): the cluster's registry, or this node alone. */
  servers: () => Promise<ServerView[]>;
}

/** How long a reverse DNS answer (or its failure) is kept, and how long one may take. */
const RDNS_CACHE_MS = 60_000;
const RDNS_TIMEOUT_MS = 1_000;

/** The query string as MaxScale reads it: names lower-cased, the first value of a name wins. */
function queryOf(request: FastifyRequest): QueryParams {
  return firstQueryValues(request.query, true);
}

/** Sends JSON, pretty-printed (4 spaces, as MaxScale) when `pretty` is true. */
/** An integer page parameter in [min, max], `fallback` when absent; BAD_REQUEST otherwise. */
function pageParam(value: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new KilnError('BAD_REQUEST', `${name} must be an integer from ${min} to ${max}`);
  return n;
}

function sendJson(request: FastifyRequest, reply: FastifyReply, status: number, body: unknown): FastifyReply {
  const pretty = parseBoolean(queryOf(request).pretty) === true;
  return reply.code(status).type('application/json').send(JSON.stringify(body, null, pretty ? 4 : undefined));
}

function sendError(request: FastifyRequest, reply: FastifyReply, status: number, detail: string): FastifyReply {
  return sendJson(request, reply, status, { errors: [{ detail }] });
}

/** Reverse DNS with a time limit and a small cache; the address itself when there is no name. */
class ReverseDns {
  readonly #cache = new Map<string, { name: string; at: number }>();

  async lookup(address: string): Promise<string> {
    const now = Date.now();
    const hit = this.#cache.get(address);
    if (hit && now - hit.at < RDNS_CACHE_MS) return hit.name;
    let timer: NodeJS.Timeout | undefined;
    const name = await Promise.race([
      dns.reverse(address).then((names) => names[0] ?? address, () => address),
      new Promise<string>((resolve) => (timer = setTimeout(() => resolve(address), RDNS_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    if (this.#cache.size > 4096) this.#cache.clear();
    this.#cache.set(address, { name, at: now });
    return name;
  }
}

/** Registers `/sessions` and `/services` (under the scope's `/v1` prefix) with their auth and errors. */
export async function registerMaxScaleApi(scope: FastifyInstance, options: MaxScaleApiOptions): Promise<void> {
  const { catalog, credentials, cluster } = options;
  const services = new ServiceDirectory(catalog, options.rooms);
  const rdns = new ReverseDns();
  /** The pending kill of each session given a `ttl` (a new ttl replaces it, as MaxScale's set_ttl). */
  const pendingKills = new Map<Session | string, NodeJS.Timeout>();

  scope.addHook('onRequest', async (request, reply) => {
    if (credentials.basic(request.headers.authorization)) return;
    reply.header('WWW-Authenticate', 'Basic realm="maxscale"');
    return sendError(request, reply, 401, 'Access denied');
  });

  scope.setErrorHandler(async (err, request, reply) => {
    if (isKilnError(err)) return sendError(request, reply, err.status, err.message);
    const e = err as { statusCode?: number; message?: string };
    const status = e.statusCode && e.statusCode >= 400 && e.statusCode < 500 ? e.statusCode : 500;
    if (status === 500) request.log.error({ err }, 'MaxScale API request failed');
    return sendError(request, reply, status, status === 500 ? 'Internal Server Error' : e.message ?? 'Bad Request');
  });

  /** The sessions of `list` (taken now) as resources, names resolved (all at once) when `rdns` is on. */
  const sessionResources = async (request: FastifyRequest, list: Iterable<SessionView>): Promise<JsonObject[]> => {
    const sessions = [...list];
    const base = requestBaseUrl(request);
    const names = new Map<string, string>();
    if (parseBoolean(queryOf(request).rdns) === true) {
      const addresses = [...new Set(sessions.map((s) => s.remoteAddress).filter((a) => a !== ''))];
      await Promise.all(addresses.map(async (a) => names.set(a, await rdns.lookup(a))));
    }
    const serviceIdOf = services.resolver(await remoteRooms());
    const now = Date.now();
    return sessions.map((session) =>
      sessionResource(session, serviceIdOf(session), base, now, session instanceof RemoteSession ? session.nodeId : options.nodeId, names.get(session.remoteAddress)));
  };

  const remoteRooms = async (): Promise<RoomSessionView[]> => (options.remoteRooms ? options.remoteRooms() : []);

  /** A session of this node, or (cluster mode) of another. */
  const findSession = async (id: string): Promise<Session | RemoteSession> => {
    const session = catalog.sessions.get(id) ?? await cluster?.remoteSession(id);
    if (!session) throw new KilnError('SESSION_NOT_FOUND', `Session '${id}' not found`, { session: id });
    return session;
  };
  /** Every session of the cluster (of this node when alone). */
  const allSessions = async (): Promise<SessionView[]> =>
    cluster ? [...catalog.sessions.values(), ...await cluster.remoteSessions()] : [...catalog.sessions.values()];

  const collection = (request: FastifyRequest, reply: FastifyReply, type: string, self: string, data: JsonObject[]) => {
    const doc = { links: { self }, data };
    shapeCollection(doc, type, queryOf(request));
    return sendJson(request, reply, 200, doc);
  };

  const single = (request: FastifyRequest, reply: FastifyReply, type: string, resource: JsonObject) => {
    applyFields([resource], type, queryOf(request));
    return sendJson(request, reply, 200, { links: { self: (resource.links as { self: string }).self }, data: resource });
  };

  // Collections answer with and without the trailing slash (their `self` links carry it).
  for (const url of ['/sessions', '/sessions/']) {
    scope.get(url, async (request, reply) =>
      collection(request, reply, 'sessions', `${requestBaseUrl(request)}/v1/sessions/`, await sessionResources(request, await allSessions())));
  }

  // Single resources too answer with a trailing slash (MaxScale strips it; its links carry it).
  for (const url of ['/sessions/:id', '/sessions/:id/']) {
    scope.get<{ Params: { id: string } }>(url, async (request, reply) => {
      const [resource] = await sessionResources(request, [await findSession(request.params.id)]);
      return single(request, reply, 'sessions', resource);
    });
  }

  // Kill a session: now, or after `ttl` seconds (MaxScale's grace period); 204 either way.
  scope.delete<{ Params: { id: string } }>('/sessions/:id', async (request, reply) => killSession(request, reply));
  scope.delete<{ Params: { id: string } }>('/sessions/:id/', async (request, reply) => killSession(request, reply));
  async function killSession(request: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply): Promise<FastifyReply> {
    const session = await findSession(request.params.id);
    const ttl = Number.parseInt(queryOf(request).ttl ?? '', 10);
    const by = `maxscale-api:${credentials.basic(request.headers.authorization) ?? ''}`;
    if (!('close' in session)) {
      // Another node's: it kills it now, or this node asks it to when the ttl runs out.
      const kill = () => cluster!.request(session.nodeId, 'kick-session', { id: session.id, by });
      clearTimeout(pendingKills.get(session.id));
      pendingKills.delete(session.id);
      if (ttl > 0) {
        const timer = setTimeout(() => {
          pendingKills.delete(session.id);
          kill().catch((err: Error) => request.log.warn({ err: err.message, session: session.id }, 'delayed kill of a session of another node failed'));
        }, Math.min(ttl, 86_400) * 1000);
        timer.unref();
        pendingKills.set(session.id, timer);
      } else {
        await kill();
      }
      return reply.code(204).send();
    }
    const pending = pendingKills.get(session);
    clearTimeout(pending);
    if (ttl > 0) {
      if (!pending) {
        session.once('close', () => {
          clearTimeout(pendingKills.get(session));
          pendingKills.delete(session);
        });
      }
      const timer = setTimeout(() => session.close('kicked', by), Math.min(ttl, 86_400) * 1000);
      timer.unref();
      pendingKills.set(session, timer);
    } else {
      session.close('kicked', by);
    }
    return reply.code(204).send();
  }

  for (const url of ['/services', '/services/']) {
    scope.get(url, async (request, reply) => {
      const base = requestBaseUrl(request);
      const data = services.list(cluster ? await cluster.remoteSessions() : [], await remoteRooms()).map((s) => serviceResource(s, services.totalOf(s), base));
      return collection(request, reply, 'services', `${base}/v1/services/`, data);
    });
  }

  const oneService = async (request: FastifyRequest, reply: FastifyReply, id: string) => {
    const service = services.find(id, cluster ? await cluster.remoteSessions() : [], await remoteRooms());
    if (!service) throw new KilnError('NOT_FOUND', `Service '${id}' not found`);
    return single(request, reply, 'services', serviceResource(service, services.totalOf(service), requestBaseUrl(request)));
  };
  // A service id is `vhost/app` (its link escapes the slash) or a room's name.
  for (const url of ['/services/:id', '/services/:id/']) {
    scope.get<{ Params: { id: string } }>(url, async (request, reply) => oneService(request, reply, request.params.id));
  }
  for (const url of ['/services/:vhost/:app', '/services/:vhost/:app/']) {
    scope.get<{ Params: { vhost: string; app: string } }>(url, async (request, reply) =>
      oneService(request, reply, `${request.params.vhost}/${request.params.app}`));
  }

  // The nodes, as MaxScale's servers: every node of the cluster (stopped and dead ones too), or this one.
  for (const url of ['/servers', '/servers/']) {
    scope.get(url, async (request, reply) => {
      const base = requestBaseUrl(request);
      return collection(request, reply, 'servers', `${base}/v1/servers/`, (await options.servers()).map((n) => serverResource(n, base)));
    });
  }
  for (const url of ['/servers/:id', '/servers/:id/']) {
    scope.get<{ Params: { id: string } }>(url, async (request, reply) => {
      const node = (await options.servers()).find((n) => n.id === request.params.id);
      if (!node) throw new KilnError('NOT_FOUND', `Server '${request.params.id}' not found`);
      return single(request, reply, 'servers', serverResource(node, requestBaseUrl(request)));
    });
  }

  // The events of the server (issue 9), newest first, with where each stands with each webhook:
  // paged in the store (`page[size]`, default 100, at most 1000; `page[number]` from 0); `pending=true`
  // keeps those some endpoint still waits for.
  for (const url of ['/events', '/events/']) {
    scope.get(url, async (request, reply) => {
      if (!options.events) throw new KilnError('NOT_FOUND', 'No event log');
      const query = queryOf(request);
      const size = pageParam(query['page[size]'], 'page[size]', 100, 1, 1000);
      const number = pageParam(query['page[number]'], 'page[number]', 0, 0, 1_000_000);
      const pending = parseBoolean(query.pending);
      if (query.pending !== undefined && pending === undefined) throw new KilnError('BAD_REQUEST', 'pending must be true or false');
      const { total, events } = await options.events.list({ limit: size, offset: number * size, pending });
      const base = requestBaseUrl(request);
      const links = pageLinks(`${base}/v1/events/`, size, number, total, pending ? '&pending=true' : '');
      return sendJson(request, reply, 200, { links, data: events.map(eventResource), meta: { total } });
    });
  }

  // What MaxScale has that Kiln does not: a clear answer in the dialect's shape.
  for (const url of ['/events', '/events/', '/sessions', '/sessions/', '/sessions/:id', '/services', '/services/', '/services/:id', '/services/:vhost/:app', '/servers', '/servers/', '/servers/:id']) {
    scope.route({
      method: ['POST', 'PUT', 'PATCH', ...(url === '/sessions/:id' ? [] : ['DELETE'])],
      url,
      handler: async (request, reply) => {
        reply.header('Allow', url === '/sessions/:id' ? 'GET, HEAD, DELETE' : 'GET, HEAD');
        return sendError(request, reply, 405, `Method ${request.method} is not supported on ${request.url.split('?')[0]}`);
      },
    });
  }
  scope.all('/sessions/*', async (request, reply) => sendError(request, reply, 404, `No resource at ${request.url.split('?')[0]}`));
  scope.all('/services/*', async (request, reply) => sendError(request, reply, 404, `No resource at ${request.url.split('?')[0]}`));
  scope.all('/events/*', async (request, reply) => sendError(request, reply, 404, `No resource at ${request.url.split('?')[0]}`));
  scope.all('/servers/*', async (request, reply) => sendError(request, reply, 404, `No resource at ${request.url.split('?')[0]}`));
}
