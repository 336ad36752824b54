/**
 * The OvenMediaEngine REST v1 dialect (seeds 000 and 001): vhosts → apps → streams, and the
 * playback sessions of a stream. Responses use OME's envelope `{statusCode, message, response}`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Catalog } from '../../core/catalog.ts';
import { parseAnyTypeAsJson } from '../../http/listener.ts';
import { isObject } from '../../core/json.ts';
import { errors, isKilnError, KilnError } from '../../core/errors.ts';
import type { Credentials } from '../credentials.ts';
import type { PullManager } from '../../ingest/pulls.ts';
import { appInfo, streamInfo, vhostInfo } from './ome-shapes.ts';
import type { Cluster } from '../../cluster/cluster.ts';
import type { Stream } from '../../core/stream.ts';
import type { RemoteStream } from '../../cluster/snapshots.ts';

export interface OmeApiOptions {
  catalog: Catalog;
  credentials: Credentials;
  pulls: PullManager;
  /** Cluster mode: streams and players of every node; deletes and kicks reach the node that holds them. */
  cluster?: Cluster;
}

const REALM = 'Basic realm="OvenMediaEngine"';

/** OME's error body for a KilnError (texts from the seeds). */
export function omeError(err: KilnError): { status: number; body: Record<string, unknown> } {
  const s = err.subject;
  switch (err.code) {
    case 'UNAUTHORIZED':
      return { status: 401, body: { message: `[HTTP] ${err.message} (401)`, statusCode: 401 } };
    case 'VHOST_NOT_FOUND':
      return { status: 404, body: { statusCode: 404, message: `Could not find the virtual host: [${s.vhost}] (404)` } };
    case 'APP_NOT_FOUND':
      return { status: 404, body: { statusCode: 404, message: `Could not find the application: [${s.vhost}/${s.app}] (404)` } };
    case 'STREAM_NOT_FOUND':
      return {
        status: 404,
        body: { message: `[HTTP] Could not find the stream: [${s.vhost}/#${s.vhost}#${s.app}/${s.stream}] (404)`, statusCode: 404 },
      };
    case 'SESSION_NOT_FOUND':
      return { status: 404, body: { message: 'Not Found', response: 'Could not find the session', statusCode: 404 } };
    default:
      return { status: err.status, body: { statusCode: err.status, message: `[HTTP] ${err.message} (${err.status})` } };
  }
}

function sendOmeError(reply: FastifyReply, err: KilnError): FastifyReply {
  const { status, body } = omeError(err);
  if (status === 401) reply.header('WWW-Authenticate', REALM);
  return reply.code(status).send(body);
}

const ok = (response?: unknown) =>
  response === undefined ? { statusCode: 200, message: 'OK' } : { statusCode: 200, message: 'OK', response };

type P = { vhost: string; app: string; stream: string; session: string };

export async function registerOmeApi(scope: FastifyInstance, options: OmeApiOptions): Promise<void> {
  const { catalog, credentials, pulls, cluster } = options;
  /** Who a kick or a delete is by, for the close events: the API and its user. */
  const kickedBy = (request: FastifyRequest): string => `ome-api:${credentials.basic(request.headers.authorization) ?? ''}`;

  /**
   * Where a stream lives: this node's own stream (not a relay), else another node's, else this
   * node's relay of one (its origin just left). STREAM_NOT_FOUND when nowhere.
   */
  const findStream = async (vhost: string, app: string, name: string): Promise<{ local?: Stream; remote?: RemoteStream }> => {
    const local = catalog.app(vhost, app).streams.get(name);
    if (local && !local.relay) return { local };
    const [remote] = cluster ? await cluster.remoteStreams(vhost, app, name) : [];
    if (remote) return { remote, local };
    if (local) return { local };
    throw errors.streamNotFound(vhost, app, name);
  };

  scope.addHook('onRequest', async (request: FastifyRequest) => {
    const header = request.headers.authorization;
    if (!header) throw errors.unauthorized('Authorization header is required to call API');
    if (!credentials.basic(header)) throw errors.unauthorized('Authorization failed');
  });

  scope.setErrorHandler(async (err, request, reply) => {
    if (isKilnError(err)) return sendOmeError(reply, err);
    const e = err as { statusCode?: number; message?: string; code?: string };
    const status = e.statusCode && e.statusCode >= 400 && e.statusCode < 500 ? e.statusCode : 500;
    if (status === 500) request.log.error({ err }, 'OME API request failed');
    const message = status === 500 ? 'Internal Server Error' : e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY'
      ? 'Invalid request body: not a JSON object'
      : e.message ?? 'Bad Request';
    return reply.code(status).send({ statusCode: status, message: `[HTTP] ${message} (${status})` });
  });
  scope.setNotFoundHandler(async (request, reply) =>
    reply.code(404).send({ statusCode: 404, message: `[HTTP] Could not find the resource: ${request.method} ${request.url.split('?')[0]} (404)` }));

  scope.get('/vhosts', async () => ok([...catalog.vhosts.keys()]));
  scope.get<{ Params: P }>('/vhosts/:vhost', async (request) => ok(vhostInfo(catalog.vhost(request.params.vhost))));
  scope.get<{ Params: P }>('/vhosts/:vhost/apps', async (request) => ok(catalog.vhost(request.params.vhost).listedApps()));
  scope.get<{ Params: P }>('/vhosts/:vhost/apps/:app', async (request) =>
    ok(appInfo(catalog.app(request.params.vhost, request.params.app))));
  scope.get<{ Params: P }>('/vhosts/:vhost/apps/:app/streams', async (request) => {
    const { vhost, app } = request.params;
    const names = [...catalog.app(vhost, app).streams.values()].filter((s) => !s.relay).map((s) => s.name);
    if (cluster) for (const remote of await cluster.remoteStreams(vhost, app)) names.push(remote.name);
    return ok([...new Set(names)]);
  });
  scope.get<{ Params: P }>('/vhosts/:vhost/apps/:app/streams/:stream', async (request) => {
    const { vhost, app, stream } = request.params;
    const found = await findStream(vhost, app, stream);
    return ok(streamInfo(found.remote ?? found.local!));
  });
  // OME reads a request body as JSON whatever its Content-Type (curl -d sends a form type).
  scope.removeContentTypeParser(['text/plain']);
  parseAnyTypeAsJson(scope, (reason) => `Invalid request body: not JSON (${reason})`);

  // Create Stream (Pull): as OME, the JSON is parsed first, then the vhost and app are found,
  // then the body's shape is checked, then the name, then the source is pulled.
  scope.post<{ Params: P; Body: unknown }>('/vhosts/:vhost/apps/:app/streams', async (request, reply) => {
    const { vhost, app } = request.params;
    catalog.app(vhost, app);
    const { name, urls, properties } = pullBody(request.body);
    if (cluster && (await cluster.remoteStreams(vhost, app, name)).length > 0) throw errors.streamExists(vhost, app, name);
    const stream = await pulls.create({ vhost, app, name, urls, properties });
    return reply.code(201).send({ statusCode: 201, message: 'Created', response: streamInfo(stream) });
  });
  scope.delete<{ Params: P }>('/vhosts/:vhost/apps/:app/streams/:stream', async (request) => {
    const { vhost, app, stream } = request.params;
    const found = await findStream(vhost, app, stream);
    const by = kickedBy(request);
    // The origin ends it; its relays end with it.
    if (found.remote) await cluster!.request(found.remote.nodeId, 'delete-stream', { vhost, app, name: stream, by });
    // This node's relay of it ends now too (not when the origin's stop reaches it).
    found.local?.close('kicked', by);
    return ok();
  });
  scope.get<{ Params: P }>('/vhosts/:vhost/apps/:app/streams/:stream/sessions', async (request) => {
    const { vhost, app, stream } = request.params;
    // Found anywhere (404 otherwise); its players are its viewers on this node (of the stream or its
    // relay) and on every other; the OVT links that carry it between nodes are not viewers.
    await findStream(vhost, app, stream);
    const local = catalog.app(vhost, app).streams.get(stream);
    const ids = local ? [...local.players.values()].filter((p) => p.protocol !== 'ovt').map((p) => p.id) : [];
    if (cluster) for (const s of await cluster.remoteSessions({ vhost, app, name: stream })) if (s.kind === 'player' && s.protocol !== 'ovt') ids.push(s.id);
    return ok(ids);
  });
  scope.delete<{ Params: P }>('/vhosts/:vhost/apps/:app/streams/:stream/sessions/:session', async (request) => {
    const { vhost, app, stream, session } = request.params;
    await findStream(vhost, app, stream);
    const player = catalog.app(vhost, app).streams.get(stream)?.players.get(session);
    if (player) {
      player.close('kicked', kickedBy(request));
      return ok();
    }
    const remote = cluster ? await cluster.remoteSession(session) : undefined;
    if (!remote || remote.kind !== 'player' || remote.vhost !== vhost || remote.app !== app || remote.stream !== stream) throw errors.sessionNotFound(session);
    await cluster!.request(remote.nodeId, 'kick-session', { id: session, by: kickedBy(request) });
    return ok();
  });
}


/** The body of Create Stream (Pull), with OME's 400 texts and what exactly is wrong. */
function pullBody(body: unknown): { name: string; urls: string[]; properties: Record<string, unknown> } {
  if (!isObject(body)) throw errors.badRequest('Request body must be an object');
  if (typeof body.name !== 'string' || body.name === '') throw errors.badRequest('Stream name or urls is required: "name" must be a non-empty string');
  if (!Array.isArray(body.urls)) throw errors.badRequest('Stream name or urls is required: "urls" must be an array of URLs');
  if (body.urls.length === 0) throw errors.badRequest('Urls must be at least one');
  if (body.urls.length > 16) throw errors.badRequest('Urls must be at most 16');
  for (const url of body.urls) if (typeof url !== 'string' || url === '') throw errors.badRequest('Url must be a string');
  if (body.properties !== undefined && !isObject(body.properties)) throw errors.badRequest('"properties" must be an object');
  return { name: body.name, urls: body.urls as string[], properties: (body.properties as Record<string, unknown> | undefined) ?? {} };
}
