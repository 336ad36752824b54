/**
 * The SignalWire Video REST dialect (seed 003) under `/api/video`: rooms, room sessions (past and
 * in progress, filtered and paged with a cursor), their members, and room tokens that join a room
 * through the room signaling. HTTP Basic `<project>:<token>` is any configured `user:password`.
 * Errors in SignalWire's shapes: `{"error": "…"}`, and 422 `{"errors": [{type, code, message,
 * attribute, url}]}` naming the offending parameter.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errors, isKilnError, KilnError } from '../../core/errors.ts';
import { isObject } from '../../core/json.ts';
import { randomAlnum, roomSettingsFromJson, roomSettingsToJson, type RoomSettings } from '../../core/room.ts';
import { firstQueryValues, parseAnyTypeAsJson, requestBaseUrl } from '../../http/listener.ts';
import { roleOfGrant } from '../../rooms/grants.ts';
import type { Rooms } from '../../rooms/rooms.ts';
import type { Cluster } from '../../cluster/cluster.ts';
import { forwardCall, isForwarded, liveNode } from '../forward.ts';
import type { RecordingRecord, RoomRecord, Store } from '../../store/store.ts';
import type { Recordings } from '../../recording/recordings.ts';
import { recordingUrl, type RecordingLinks } from '../../recording/file-route.ts';
import type { Credentials } from '../credentials.ts';
import { invalidParameter, signalWireError } from './errors.ts';
import { compareCursor, pageLinks, PageTokens, type PageRequest } from './paging.ts';
import { memberJson, recordingJson, roomJson, roomSessionJson } from './shapes.ts';

/** What the SignalWire dialect uses: the rooms, the store it lists from, the credentials. */
export interface SignalWireApiOptions {
  rooms: Rooms;
  recordings: Recordings;
  /** Signs the temporary links of recording files (`uri`). */
  recordingLinks: RecordingLinks;
  /** KILN_PUBLIC_URL, where recording files are served. */
  publicUrl: string;
  store: Store;
  credentials: Credentials;
  /** Signs page tokens. */
  pageTokens: PageTokens;
  /** Dollars per member-minute (0: every cost is 0). */
  pricePerMemberMinute: number;
  /**
   * Cluster mode: changes to a room whose session is in progress on another node, and deletes of
   * recordings on another node's disk, are run on that node.
   */
  cluster?: Cluster;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ROOM_NAME = /^[A-Za-z0-9_-]+$/;
const LAYOUTS = ['grid-responsive', 'grid-responsive-mobile', 'highlight-1-responsive', '1x1', '2x1', '2x2', '5up', '3x3', '4x4', '5x5', '6x6', '8x8', '10x10'];
const STATUSES = ['in-progress', 'completed'];

function sendError(reply: FastifyReply, err: KilnError): FastifyReply {
  const { status, body } = signalWireError(err);
  if (status === 401) reply.header('WWW-Authenticate', 'Basic realm="SignalWire"');
  return reply.code(status).send(body);
}

/** The query string, one value per name (the first). */
function queryOf(request: FastifyRequest): Record<string, string | undefined> {
  return firstQueryValues(request.query);
}

/** An RFC 3339 date-time, or a date alone (midnight UTC), as SignalWire takes them. */
function dateTime(value: unknown, attribute: string): Date | null {
  if (value === null) return null;
  const bad = () => invalidParameter(attribute, `${attribute} must be an RFC 3339 date-time`);
  if (typeof value !== 'string') throw bad();
  const text = /^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value;
  const m = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?([Zz]|[+-](\d{2}):?(\d{2}))$/.exec(text);
  if (!m) throw bad();
  // Each field within its calendar range: no 30 February, no hour 24, no year 0.
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? '0'].map(Number);
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59) throw bad();
  if (m[9] !== undefined && (Number(m[9]) > 23 || Number(m[10]) > 59)) throw bad();
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) throw bad();
  return date;
}

function integer(value: unknown, attribute: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw invalidParameter(attribute, `${attribute} must be an integer`);
  if (value < min) throw invalidParameter(attribute, `${attribute} must be greater than or equal to ${min}`);
  if (value > max) throw invalidParameter(attribute, `${attribute} must be less than or equal to ${max}`);
  return value;
}

function boolean(value: unknown, attribute: string): boolean {
  if (typeof value !== 'boolean') throw invalidParameter(attribute, `${attribute} must be a boolean`);
  return value;
}

function text(value: unknown, attribute: string, max: number): string {
  if (typeof value !== 'string') throw invalidParameter(attribute, `${attribute} must be a string`);
  if (value.length > max) throw invalidParameter(attribute, `${attribute} is too long (maximum is ${max} characters)`);
  return value;
}

function roomName(value: unknown, attribute: string): string {
  if (value === undefined || value === null || value === '') throw invalidParameter(attribute, `${attribute} can't be blank`);
  const name = text(value, attribute, 100);
  if (!ROOM_NAME.test(name)) throw invalidParameter(attribute, `${attribute} may only contain letters, numbers, underscores and dashes`);
  return name;
}

/**
 * Applies a room body (create or update: only the fields given change) to `settings` and `extra`
 * (description, meta), validating each field as SignalWire documents it.
 */
function applyRoomBody(body: Record<string, unknown>, settings: RoomSettings, extra: Record<string, unknown>): void {
  const has = (k: string) => body[k] !== undefined;
  if (has('display_name')) settings.displayName = body.display_name === null ? null : text(body.display_name, 'display_name', 200);
  if (has('description')) extra.description = body.description === null ? null : text(body.description, 'description', 3000);
  if (has('max_members')) settings.maxMembers = integer(body.max_members, 'max_members', 1, 300);
  if (has('quality')) {
    if (body.quality !== '720p' && body.quality !== '1080p') throw invalidParameter('quality', 'quality must be one of 720p, 1080p');
    settings.quality = body.quality;
  }
  if (has('fps')) {
    if (![20, 30, '20', '30'].includes(body.fps as number | string)) throw invalidParameter('fps', 'fps must be one of 20, 30');
    settings.fps = Number(body.fps) as 20 | 30;
  }
  if (has('join_from')) settings.joinFrom = dateTime(body.join_from, 'join_from');
  if (has('join_until')) settings.joinUntil = dateTime(body.join_until, 'join_until');
  if (has('remove_at')) settings.removeAt = dateTime(body.remove_at, 'remove_at');
  if (has('remove_after_seconds_elapsed')) {
    settings.removeAfterSecondsElapsed = body.remove_after_seconds_elapsed === null ? null : integer(body.remove_after_seconds_elapsed, 'remove_after_seconds_elapsed', 1, 200_000);
  }
  if (has('layout')) {
    if (typeof body.layout !== 'string' || !LAYOUTS.includes(body.layout)) throw invalidParameter('layout', `layout must be one of ${LAYOUTS.join(', ')}`);
    settings.layout = body.layout;
  }
  if (has('record_on_start')) settings.recordOnStart = boolean(body.record_on_start, 'record_on_start');
  if (has('locked')) settings.locked = boolean(body.locked, 'locked');
  if (has('tone_on_entry_and_exit')) settings.toneOnEntryAndExit = boolean(body.tone_on_entry_and_exit, 'tone_on_entry_and_exit');
  if (has('room_join_video_off')) settings.roomJoinVideoOff = boolean(body.room_join_video_off, 'room_join_video_off');
  if (has('user_join_video_off')) settings.userJoinVideoOff = boolean(body.user_join_video_off, 'user_join_video_off');
  if (has('enable_room_previews')) settings.enableRoomPreviews = boolean(body.enable_room_previews, 'enable_room_previews');
  if (has('prioritize_handraise')) settings.prioritizeHandraise = boolean(body.prioritize_handraise, 'prioritize_handraise');
  if (has('sync_audio_video')) settings.syncAudioVideo = boolean(body.sync_audio_video, 'sync_audio_video');
  else if (has('audio_video_sync')) settings.syncAudioVideo = boolean(body.audio_video_sync, 'audio_video_sync');
  if (has('locked_cover')) settings.lockedCover = text(body.locked_cover, 'locked_cover', 2048);
  if (has('meta')) {
    if (body.meta !== null && (!isObject(body.meta) || JSON.stringify(body.meta).length > 2000)) throw invalidParameter('meta', 'meta must be an object of at most 2000 characters');
    extra.meta = body.meta;
  }
  if (settings.joinFrom && settings.joinUntil && settings.joinUntil < settings.joinFrom) {
    throw invalidParameter('join_until', "join_until can't be before join_from");
  }
}

/** Registers the routes under the scope's prefix (`/api/video`). */
export async function registerSignalWireApi(scope: FastifyInstance, options: SignalWireApiOptions): Promise<void> {
  const { rooms, store, credentials, pageTokens, cluster } = options;
  /** The node to hand this call to: the one holding the room's session in progress, when not this one. */
  const roomHolder = async (request: FastifyRequest, roomId: string): Promise<string | undefined> =>
    cluster && !isForwarded(request) ? liveNode(cluster, await rooms.roomHolder(roomId)) : undefined;
  const price = options.pricePerMemberMinute;

  scope.addHook('onRequest', async (request) => {
    if (!credentials.basic(request.headers.authorization)) throw errors.unauthorized();
  });
  scope.setErrorHandler(async (err, request, reply) => {
    if (isKilnError(err)) return sendError(reply, err);
    const e = err as { statusCode?: number };
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) return sendError(reply, errors.badRequest('Bad Request'));
    request.log.error({ err }, 'SignalWire API request failed');
    return sendError(reply, new KilnError('INTERNAL', 'Internal Server Error'));
  });
  scope.setNotFoundHandler(async (_request, reply) => sendError(reply, new KilnError('NOT_FOUND', 'Not Found')));
  scope.removeAllContentTypeParsers();
  parseAnyTypeAsJson(scope, () => 'Bad Request');

  const bodyObject = (request: FastifyRequest): Record<string, unknown> => {
    if (!isObject(request.body)) throw errors.badRequest('The body must be a JSON object');
    return request.body as Record<string, unknown>;
  };
  const urlOf = (request: FastifyRequest) => new URL(request.url, requestBaseUrl(request));

  /** One page of rows newest first: `fetch(limit)` answers with one row more when there is more. */
  async function page<T extends { createdAt: string; id: string }>(
    request: FastifyRequest,
    filters: string,
    fetch: (p: PageRequest, limit: number) => Promise<T[]>,
  ): Promise<{ rows: T[]; links: ReturnType<typeof pageLinks> }> {
    const p = pageTokens.read(queryOf(request), filters);
    const got = await fetch(p, p.size + 1);
    const extra = got.length > p.size;
    // Toward newer rows (a prev token) the extra row is the newest; toward older ones, the oldest.
    const rows = p.after ? (extra ? got.slice(1) : got) : got.slice(0, p.size);
    const more = p.after ? true : extra;
    return { rows, links: pageLinks(urlOf(request), pageTokens, p, rows, more, filters) };
  }

  // ---- rooms

  const findRoom = async (idOrName: string): Promise<RoomRecord> => {
    const room = UUID.test(idOrName) ? await store.getRoom(idOrName.toLowerCase()) : await store.getRoomByName(idOrName);
    if (!room) throw new KilnError('NOT_FOUND', 'Not Found');
    return room;
  };

  const createRoom = async (name: string, body: Record<string, unknown>): Promise<RoomRecord> => {
    if (await store.getRoomByName(name)) throw invalidParameter('name', 'name has already been taken', 'value_not_unique');
    const settings = roomSettingsFromJson({});
    const extra: Record<string, unknown> = {};
    applyRoomBody(body, settings, extra);
    const now = new Date().toISOString();
    const record: RoomRecord = { id: randomUUID(), name, settings: { ...roomSettingsToJson(settings), ...extra }, createdAt: now, updatedAt: now };
    await rooms.putRoom(record);
    return record;
  };

  scope.post('/rooms', async (request) => {
    const body = bodyObject(request);
    return roomJson(await createRoom(roomName(body.name, 'name'), body));
  });

  scope.get('/rooms', async (request) => {
    const { rows, links } = await page(request, 'rooms', (p, limit) => store.listRooms({ before: p.before, after: p.after, limit }));
    return { links, data: rows.map(roomJson) };
  });

  scope.get<{ Params: { id: string } }>('/rooms/:id', async (request) => roomJson(await findRoom(request.params.id)));

  scope.put<{ Params: { id: string } }>('/rooms/:id', async (request, reply) => {
    const room = await findRoom(request.params.id);
    const holder = await roomHolder(request, room.id);
    if (holder) return forwardCall(cluster!, holder, request, reply);
    const body = bodyObject(request);
    const settings = roomSettingsFromJson(room.settings);
    const extra: Record<string, unknown> = { description: room.settings.description, meta: room.settings.meta };
    applyRoomBody(body, settings, extra);
    const name = body.name === undefined ? room.name : roomName(body.name, 'name');
    if (name !== room.name && (await store.getRoomByName(name))) throw invalidParameter('name', 'name has already been taken', 'value_not_unique');
    const updated: RoomRecord = { ...room, name, settings: { ...roomSettingsToJson(settings), ...extra }, updatedAt: new Date().toISOString() };
    await rooms.putRoom(updated);
    return roomJson(updated);
  });

  scope.delete<{ Params: { id: string } }>('/rooms/:id', async (request, reply) => {
    const room = await findRoom(request.params.id);
    const holder = await roomHolder(request, room.id);
    if (holder) return forwardCall(cluster!, holder, request, reply);
    await rooms.deleteRoom(room.id);
    return reply.code(204).send();
  });

  // ---- room sessions

  scope.get('/room_sessions', async (request) => {
    const q = queryOf(request);
    if (q.room_id !== undefined && !UUID.test(q.room_id)) throw invalidParameter('room_id', 'room_id must be a UUID');
    if (q.status !== undefined && !STATUSES.includes(q.status)) throw invalidParameter('status', `status must be one of ${STATUSES.join(', ')}`);
    const filter = {
      roomId: q.room_id?.toLowerCase(),
      name: q.room_name,
      nameContains: q.room_name_matches,
      status: q.status as 'in-progress' | 'completed' | undefined,
    };
    const filters = JSON.stringify(['room_sessions', filter.roomId ?? null, filter.name ?? null, filter.nameContains ?? null, filter.status ?? null]);
    const { rows, links } = await page(request, filters, (p, limit) => store.listRoomSessions({ ...filter, before: p.before, after: p.after, limit }));
    const now = new Date().toISOString();
    const seconds = price > 0 ? await store.memberSeconds(rows.map((r) => r.id), now) : new Map<string, number>();
    return { links, data: rows.map((r) => roomSessionJson(r, seconds.get(r.id) ?? 0, price)) };
  });

  const findRoomSession = async (id: string) => {
    const record = UUID.test(id) ? await store.getRoomSession(id.toLowerCase()) : undefined;
    if (!record) throw new KilnError('NOT_FOUND', 'Not Found');
    return record;
  };

  scope.get<{ Params: { id: string } }>('/room_sessions/:id', async (request) => {
    const record = await findRoomSession(request.params.id);
    const seconds = price > 0 ? await store.memberSeconds([record.id], new Date().toISOString()) : new Map<string, number>();
    return roomSessionJson(record, seconds.get(record.id) ?? 0, price);
  });

  scope.get<{ Params: { id: string } }>('/room_sessions/:id/members', async (request) => {
    const record = await findRoomSession(request.params.id);
    const members = await store.listRoomMembers(record.id);
    // Members in join order; the page cursor is (join time, id), read oldest first.
    const keyed = members.map((m) => ({ createdAt: m.joinedAt, id: m.id, m }));
    const { rows, links } = await page(request, JSON.stringify(['members', record.id]), async (p, limit) => {
      const after = p.before; // a `next` token: members joined after its row
      const before = p.after; // a `prev` token: members joined before its row
      if (before) return keyed.filter((k) => compareCursor(k, before) < 0).slice(-limit);
      return keyed.filter((k) => !after || compareCursor(k, after) > 0).slice(0, limit);
    });
    const now = new Date().toISOString();
    return { links, data: rows.map((r) => memberJson(r.m, now, price)) };
  });

  // ---- room recordings

  /** `media_ttl`: seconds a recording's `uri` stays valid (default 900, as SignalWire). */
  const mediaTtl = (request: FastifyRequest): number => {
    const raw = queryOf(request).media_ttl;
    if (raw === undefined) return 900;
    if (!/^\d{1,7}$/.test(raw) || Number(raw) < 1 || Number(raw) > 604_800) throw invalidParameter('media_ttl', 'media_ttl must be an integer from 1 to 604800');
    return Number(raw);
  };
  const showRecording = (r: RecordingRecord, ttl: number) => recordingJson(r,
    r.status === 'available' ? `${recordingUrl(options.publicUrl, r.id)}?${options.recordingLinks.query(r.uuid, ttl)}` : null);

  /** One page of recordings (held newest first) by the page cursor. */
  async function recordingPage(request: FastifyRequest, filters: string, all: RecordingRecord[]) {
    const keyed = all.map((r) => ({ createdAt: r.createdAt, id: r.uuid, r }));
    keyed.sort((a, b) => compareCursor(b, a));
    return page(request, filters, async (p, limit) => {
      if (p.after) return keyed.filter((k) => compareCursor(k, p.after!) > 0).slice(-limit);
      return keyed.filter((k) => !p.before || compareCursor(k, p.before) < 0).slice(0, limit);
    });
  }

  scope.get<{ Params: { id: string } }>('/room_sessions/:id/recordings', async (request) => {
    const record = await findRoomSession(request.params.id);
    const ttl = mediaTtl(request);
    const { rows, links } = await recordingPage(request, JSON.stringify(['recordings', record.id]), await options.recordings.list(record.id));
    return { links, data: rows.map((k) => showRecording(k.r, ttl)) };
  });

  scope.get('/room_recordings', async (request) => {
    const ttl = mediaTtl(request);
    const { rows, links } = await recordingPage(request, 'recordings', await options.recordings.list());
    return { links, data: rows.map((k) => showRecording(k.r, ttl)) };
  });

  const findRecording = async (id: string): Promise<RecordingRecord> => {
    const record = UUID.test(id) ? await options.recordings.get(id.toLowerCase()) : undefined;
    if (!record) throw new KilnError('NOT_FOUND', 'Not Found');
    return record;
  };

  scope.get<{ Params: { id: string } }>('/room_recordings/:id', async (request) => showRecording(await findRecording(request.params.id), mediaTtl(request)));

  scope.delete<{ Params: { id: string } }>('/room_recordings/:id', async (request, reply) => {
    const record = await findRecording(request.params.id);
    if (cluster && !isForwarded(request) && record.nodeId !== cluster.nodeId) {
      if (!(await liveNode(cluster, record.nodeId))) throw errors.unavailable(`The recording is kept by node ${record.nodeId}, which is not running`);
      return forwardCall(cluster, record.nodeId, request, reply);
    }
    await options.recordings.delete(record.id);
    return reply.code(204).send();
  });

  // ---- room tokens

  scope.post('/room_tokens', async (request) => {
    const body = bodyObject(request);
    const name = roomName(body.room_name, 'room_name');
    const userName = body.user_name === undefined || body.user_name === null ? `user-${randomAlnum(8)}` : text(body.user_name, 'user_name', 100);
    let permissions = ['room.self.audio_mute', 'room.self.audio_unmute', 'room.self.video_mute', 'room.self.video_unmute', 'room.self.deaf', 'room.self.undeaf',
      'room.self.set_input_volume', 'room.self.set_output_volume', 'room.self.set_input_sensitivity', 'room.self.screenshare', 'room.self.additional_source'];
    if (body.permissions !== undefined) {
      if (!Array.isArray(body.permissions) || body.permissions.some((p) => typeof p !== 'string' || !/^room\.[a-z_.]+$/.test(p))) {
        throw invalidParameter('permissions', 'permissions must be an array of permission names (room.…)');
      }
      permissions = body.permissions as string[];
    }
    let joinAs: 'member' | 'audience' = 'member';
    if (body.join_as !== undefined) {
      if (body.join_as !== 'member' && body.join_as !== 'audience') throw invalidParameter('join_as', 'join_as must be one of member, audience');
      joinAs = body.join_as;
    }
    if (joinAs === 'audience') permissions = [];
    const autoCreate = body.auto_create_room === undefined ? true : boolean(body.auto_create_room, 'auto_create_room');
    const joinFrom = body.join_from === undefined ? null : dateTime(body.join_from, 'join_from');
    const joinUntil = body.join_until === undefined ? null : dateTime(body.join_until, 'join_until');
    if (joinFrom && joinUntil && joinUntil < joinFrom) throw invalidParameter('join_until', "join_until can't be before join_from");
    const removeAt = body.remove_at === undefined ? null : dateTime(body.remove_at, 'remove_at');
    const rse = body.remove_after_seconds_elapsed === undefined || body.remove_after_seconds_elapsed === null
      ? undefined : integer(body.remove_after_seconds_elapsed, 'remove_after_seconds_elapsed', 1, 200_000);
    let room = await store.getRoomByName(name);
    if (!room) {
      if (!autoCreate) throw invalidParameter('room_name', `room ${name} does not exist`);
      const created: Record<string, unknown> = {};
      if (body.room_display_name !== undefined) created.display_name = text(body.room_display_name, 'room_display_name', 200);
      if (body.enable_room_previews !== undefined) created.enable_room_previews = boolean(body.enable_room_previews, 'enable_room_previews');
      room = await createRoom(name, created);
    }
    const sec = (d: Date | null) => (d ? Math.floor(d.getTime() / 1000) : undefined);
    const user = credentials.basic(request.headers.authorization) ?? '';
    const token = await rooms.grant(room, {
      sub: user, u: userName, s: permissions, ja: joinAs, acr: autoCreate,
      jf: sec(joinFrom), ju: sec(joinUntil), rat: sec(removeAt), rse,
    }, roleOfGrant(joinAs, permissions));
    return { token };
  });
}
