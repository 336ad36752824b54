/**
 * The OpenVidu 1.x REST dialect (seed 004): `POST /api/sessions` and `POST /api/tokens` (and
 * OpenVidu 1.8's `GET /api/sessions`, the ids of the open sessions, and 2.x's `DELETE
 * /api/sessions/{id}`, which closes one). Errors
 * have the shape OpenVidu Server 1.8 (Spring Boot) gives them: `{timestamp, status, error,
 * message, path}`. Authentication is HTTP Basic `OPENVIDUAPP:<secret>`, the secret being the
 * password of any configured credential (or a configured `user:password` pair as it is).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { STATUS_CODES } from 'node:http';
import { errors, isKilnError, KilnError } from '../../core/errors.ts';
import { isObject } from '../../core/json.ts';
import { parseAnyTypeAsJson } from '../../http/listener.ts';
import { PARTICIPANT_ROLES, type OpenViduProperties, type ParticipantRole } from '../../core/room.ts';
import type { Credentials } from '../credentials.ts';
import { MAX_TOKEN_DATA, type Rooms } from '../../rooms/rooms.ts';
import type { Recordings } from '../../recording/recordings.ts';
import { recordingUrl } from '../../recording/file-route.ts';
import type { RecordingRecord } from '../../store/store.ts';
import type { Cluster } from '../../cluster/cluster.ts';
import { forwardCall, isForwarded, liveNode } from '../forward.ts';

export interface OpenViduApiOptions {
  rooms: Rooms;
  recordings: Recordings;
  credentials: Credentials;
  /** OpenVidu's `openvidu.recording.free-access`. */
  freeAccess: boolean;
  /** KILN_PUBLIC_URL: recording URLs are `<publicUrl>/recordings/<id>.mp4`. */
  publicUrl: string;
  /**
   * Cluster mode: calls about a room session or a recording another node holds are run there; the
   * session list is the cluster's.
   */
  cluster?: Cluster;
}

/**
 * A recording as OpenVidu 1.8 shows it (seed 004, fields in its order). A composed file is
 * `available` with its URL only with free access; otherwise it stays `stopped` with no URL.
 */
export function recordingJson(r: RecordingRecord, freeAccess: boolean, publicUrl: string): Record<string, unknown> {
  const composed = r.status === 'available';
  return {
    createdAt: Date.parse(r.createdAt),
    duration: r.duration,
    hasAudio: r.hasAudio,
    hasVideo: r.hasVideo,
    id: r.id,
    name: r.name,
    sessionId: r.sessionId,
    size: r.size,
    status: composed && !freeAccess ? 'stopped' : r.status,
    url: composed && freeAccess ? recordingUrl(publicUrl, r.id) : null,
  };
}

/** The user name every OpenVidu client sends. */
export const OPENVIDU_USER = 'OPENVIDUAPP';

/** Spring Boot's error body, as OpenVidu 1.8 answers. */
function errorBody(status: number, message: string, path: string): Record<string, unknown> {
  return { timestamp: Date.now(), status, error: STATUS_CODES[status] ?? 'Error', message, path };
}

function sendError(reply: FastifyReply, request: FastifyRequest, err: KilnError): FastifyReply {
  if (err.status === 401) reply.header('WWW-Authenticate', 'Basic realm="OpenVidu"');
  return reply.code(err.status).send(errorBody(err.status, err.message, request.url.split('?')[0]));
}


/** Checks one enum-valued session property; what the seed marks "not available yet" is named as such. */
function enumProperty<T extends string>(body: Record<string, unknown>, key: string, allowed: readonly T[], notYet: readonly string[], fallback: T): T {
  const v = body[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'string') throw errors.badRequest(`${key} must be a string: one of ${allowed.join(', ')}`);
  if ((allowed as readonly string[]).includes(v)) return v as T;
  if (notYet.includes(v)) throw errors.badRequest(`${key} ${v} is not available yet: use ${allowed.join(' or ')}`);
  throw errors.badRequest(`${key} ${v} is not defined: use ${allowed.join(' or ')}`);
}

export async function registerOpenViduApi(scope: FastifyInstance, options: OpenViduApiOptions): Promise<void> {
  const { rooms, recordings, credentials, freeAccess, publicUrl, cluster } = options;
  const show = (r: RecordingRecord) => recordingJson(r, freeAccess, publicUrl);
  /** The node to hand this call to: the holder of room session `sessionId`, when not this node. */
  const sessionHolder = async (request: FastifyRequest, sessionId: string): Promise<string | undefined> =>
    cluster && !isForwarded(request) && !rooms.find(sessionId) ? liveNode(cluster, await rooms.holderOf(sessionId)) : undefined;
  /** The node to hand this call to: the one whose disk has recording `id`, when not this node. */
  const recordingHolder = async (request: FastifyRequest, id: string): Promise<string | undefined> => {
    if (!cluster || isForwarded(request)) return undefined;
    const record = await recordings.get(id);
    if (!record || record.id !== id || record.nodeId === cluster.nodeId) return undefined;
    if (!(await liveNode(cluster, record.nodeId))) throw errors.unavailable(`Recording ${id} is kept by node ${record.nodeId}, which is not running`);
    return record.nodeId;
  };

  scope.addHook('onRequest', async (request: FastifyRequest) => {
    const header = request.headers.authorization;
    if (!header) throw errors.unauthorized('Full authentication is required to access this resource');
    if (!credentials.basic(header) && !credentials.basicWithAnyUser(header, OPENVIDU_USER)) throw errors.unauthorized('Bad credentials');
  });
  scope.setErrorHandler(async (err, request, reply) => {
    if (isKilnError(err)) return sendError(reply, request, err);
    const e = err as { statusCode?: number; message?: string };
    const status = e.statusCode && e.statusCode >= 400 && e.statusCode < 500 ? e.statusCode : 500;
    if (status === 500) request.log.error({ err }, 'OpenVidu API request failed');
    return reply.code(status).send(errorBody(status, status === 500 ? 'Internal Server Error' : e.message ?? 'Bad Request', request.url.split('?')[0]));
  });
  scope.setNotFoundHandler(async (request, reply) =>
    reply.code(404).send(errorBody(404, 'No message available', request.url.split('?')[0])));
  // The body is read as JSON whatever its Content-Type, and may be empty where OpenVidu allows it.
  scope.removeAllContentTypeParsers();
  parseAnyTypeAsJson(scope, (reason) => `JSON parse error: ${reason}`);

  // OpenVidu 1.8 lists the ids of its running sessions, those someone joined (not in the seed; its
  // SessionRestController has it).
  scope.get('/sessions', async () => {
    const ids = [...rooms.openSessions].filter((rs) => rs.status === 'in-progress').map((rs) => rooms.sessionIdOf(rs));
    if (cluster) ids.push(...await rooms.otherNodesSessionIds(cluster));
    return ids;
  });

  scope.post('/sessions', async (request) => {
    const body = request.body;
    if (body !== undefined && body !== null && !isObject(body)) throw errors.badRequest('The body must be a JSON object');
    const b = (body ?? {}) as Record<string, unknown>;
    const properties: OpenViduProperties = {
      archiveMode: enumProperty(b, 'archiveMode', ['ALWAYS', 'MANUAL'] as const, [], 'MANUAL'),
      archiveLayout: enumProperty(b, 'archiveLayout', ['BEST_FIT'] as const, ['PICTURE_IN_PICTURE', 'VERTICAL_PRESENTATION', 'HORIZONTAL_PRESENTATION'], 'BEST_FIT'),
      mediaMode: enumProperty(b, 'mediaMode', ['ROUTED'] as const, ['RELAYED'], 'ROUTED'),
    };
    const rs = await rooms.createOpenViduSession(properties);
    return { id: rooms.sessionIdOf(rs) };
  });

  // OpenVidu 2.x's "close session", which Kiln's 1.x dialect adds: every participant leaves and the
  // room session is completed. The id is the OpenVidu session id (URL-encoded) or its bare name.
  scope.delete<{ Params: { id: string } }>('/sessions/:id', async (request, reply) => {
    const id = request.params.id;
    const holder = await sessionHolder(request, id);
    if (holder) return forwardCall(cluster!, holder, request, reply);
    const roomSession = rooms.find(id);
    if (!roomSession || roomSession.ended) throw new KilnError('NOT_FOUND', `Session ${id} does not exist`);
    await rooms.endSession(roomSession);
    return reply.code(204).send();
  });

  scope.post('/tokens', async (request, reply) => {
    const body = request.body;
    if (body === undefined) throw errors.badRequest('Required request body is missing: {"session", "role", "data"}');
    if (!isObject(body)) throw errors.badRequest('The body must be a JSON object');
    const { session, role, data } = body;
    if (typeof session !== 'string' || session === '') throw errors.badRequest('"session" must be a session id returned by POST /api/sessions');
    const holder = await sessionHolder(request, session);
    if (holder) return forwardCall(cluster!, holder, request, reply);
    const roomSession = rooms.find(session);
    if (!roomSession) throw errors.badRequest(`[${session}] is not a valid sessionId`);
    if (typeof role !== 'string' || !(PARTICIPANT_ROLES as readonly string[]).includes(role)) {
      throw errors.badRequest(`Role ${JSON.stringify(role ?? null)} is not defined: use SUBSCRIBER, PUBLISHER or MODERATOR`);
    }
    if (data !== undefined && data !== null && typeof data !== 'string') throw errors.badRequest('"data" must be a string');
    const text = typeof data === 'string' ? data : '';
    if (text.length > MAX_TOKEN_DATA) {
      throw errors.badRequest(`Metadata [${text.slice(0, 40)}…] unexpected format. Max length allowed is ${MAX_TOKEN_DATA} chars (got ${text.length})`);
    }
    const token = await rooms.createToken(roomSession, role as ParticipantRole, text);
    return { token: token.token, session, role, data: text, id: token.token };
  });

  // Recordings (OpenVidu 1.8, seed 004).
  scope.post('/recordings/start', async (request, reply) => {
    const body = request.body;
    if (body === undefined || !isObject(body) || typeof body.session !== 'string' || body.session === '') {
      throw errors.badRequest('The body must be a JSON object with "session": the id of the session to record');
    }
    const holder = await sessionHolder(request, body.session);
    if (holder) return forwardCall(cluster!, holder, request, reply, 30_000);
    const roomSession = rooms.find(body.session);
    if (!roomSession) throw new KilnError('NOT_FOUND', `Session ${body.session} does not exist`);
    return show(await recordings.start(roomSession, body.session));
  });
  scope.post('/recordings/stop', async () => {
    throw errors.badRequest('RECORDING_ID parameter not found: POST /api/recordings/stop/<RECORDING_ID>');
  });
  scope.post<{ Params: { id: string } }>('/recordings/stop/:id', async (request, reply) => {
    if (request.params.id === '') throw errors.badRequest('RECORDING_ID parameter not found: POST /api/recordings/stop/<RECORDING_ID>');
    // The answer may wait for the composition, longer than the listener lets a silent socket live.
    request.raw.socket?.setTimeout?.(recordings.stopWaitMs + 15_000);
    const holder = await recordingHolder(request, request.params.id);
    if (holder) return forwardCall(cluster!, holder, request, reply, recordings.stopWaitMs + 10_000);
    return show(await recordings.stop(request.params.id));
  });
  scope.get('/recordings', async () => {
    const items = (await recordings.list()).map(show);
    return { count: items.length, items };
  });
  scope.get<{ Params: { id: string } }>('/recordings/:id', async (request) => {
    const record = await recordings.get(request.params.id);
    if (!record || record.id !== request.params.id) throw new KilnError('NOT_FOUND', `Recording ${request.params.id} does not exist`);
    return show(record);
  });
  scope.delete<{ Params: { id: string } }>('/recordings/:id', async (request, reply) => {
    const holder = await recordingHolder(request, request.params.id);
    if (holder) return forwardCall(cluster!, holder, request, reply);
    await recordings.delete(request.params.id);
    return reply.code(204).send();
  });
}
