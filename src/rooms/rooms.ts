/**
 * The rooms of a node: room sessions and their tokens, participants joining and leaving, the
 * room's settings enforced, and the history written to the store. Protocols (the OpenVidu room
 * signaling) and dialects (OpenVidu REST, later SignalWire) call it; it does no media itself.
 */
import type { Logger } from 'pino';
import type { Catalog } from '../core/catalog.ts';
import { errors, KilnError } from '../core/errors.ts';
import {
  Participant,
  RoomSession,
  defaultRoomSettings,
  roomSettingsFromJson,
  roomSettingsToJson,
  uniqueAlnum,
  type LeaveReason,
  type OpenViduProperties,
  type ParticipantRole,
  type RoomSettings,
} from '../core/room.ts';
import { Session } from '../core/session.ts';
import type { RoomMemberRecord, RoomRecord, RoomSessionRecord, RoomTokenRecord, Store } from '../store/store.ts';
import type { GrantClaims, GrantSigner } from './grants.ts';

export interface RoomsOptions {
  catalog: Catalog;
  store: Store;
  /** Signs and checks SignalWire room tokens. */
  grants: GrantSigner;
  /** KILN_PUBLIC_URL: OpenVidu session ids are its ws(s) form plus `/<name>`. */
  publicUrl: string;
  /** Where participants' streams live in the catalogue. */
  vhost: string;
  app: string;
  /** A room session with nobody in it ends after this long, ms. Default 5000. */
  emptyTimeoutMs?: number;
  /** This node: room sessions made here are held here. */
  nodeId: string;
  /**
   * Whether other nodes share the store (cluster mode): a restart then restores only this node's
   * room sessions. Default false (every session in the store is this node's).
   */
  shared?: boolean;
  logger: Logger;
}

/** A token as the dialects show it. */
export interface RoomToken {
  token: string;
  roomSession: RoomSession;
  role: ParticipantRole;
  data: string;
  createdAt: Date;
  usedAt: Date | undefined;
}

/** Who is joining, for the participant's session record. */
export interface JoinClient {
  remoteAddress: string;
  remotePort: number;
  userAgent?: string;
}

/** How a token admits its member: who it is, and how its use is claimed and written. */
interface Admission {
  role: ParticipantRole;
  /** OpenVidu token data (server data). */
  data: string;
  /** The member's name; '' for its id. */
  name: string;
  token: string;
  /** Marks the token used in memory, at once (throws when it is already). */
  claim: (at: Date) => void;
  /** Writes the use to the store (throws when another node used it first). */
  record: (at: Date) => Promise<unknown>;
  removeAt?: Date;
  removeAfterSeconds?: number;
}

/** Longest token data (seed 004: "Maximum 1000 chars"). */
export const MAX_TOKEN_DATA = 1000;

const iso = (d: Date | undefined | null) => (d ? d.toISOString() : null);

/** The name an OpenVidu session id ends with: `wss://host:port/<name>?secret=…` → `<name>`. */
/** The ws(s) form of a public URL, without a trailing slash: OpenVidu session ids start with it. */
function wsBaseOf(publicUrl: string): string {
  const url = new URL(publicUrl);
  return (url.origin + url.pathname).replace(/^http/, 'ws').replace(/\/+$/, '');
}

/** How long a failed history write is retried, ms. */
const WRITE_RETRY_MS = 120_000;

export function sessionName(sessionId: string): string {
  const path = sessionId.trim().split('?')[0];
  return path.slice(path.lastIndexOf('/') + 1);
}

export class Rooms {
  readonly #options: RoomsOptions;
  readonly #store: Store;
  readonly #emptyTimeoutMs: number;
  /** Room sessions not completed, by name (the last segment of the OpenVidu session id). */
  readonly #open = new Map<string, RoomSession>();
  readonly #tokens = new Map<string, RoomToken>();
  readonly #timers = new Map<RoomSession, NodeJS.Timeout>();
  readonly #watchers: ((rs: RoomSession) => void)[] = [];
  /** Each member's removal timer, with its token's own deadlines (re-armed when the room changes). */
  readonly #removals = new Map<Participant, { timer: NodeJS.Timeout | undefined; own: { removeAt?: Date; removeAfterSeconds?: number } }>();
  /** Store writes in order, so a leave never lands before its join. */
  #writes: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(options: RoomsOptions) {
    this.#options = options;
    this.#store = options.store;
    this.#emptyTimeoutMs = options.emptyTimeoutMs ?? 5000;
  }

  /** The ws(s) form of the public URL, without a trailing slash. */
  get wsBase(): string {
    return wsBaseOf(this.#options.publicUrl);
  }

  /**
   * Cluster mode: the node that holds the open room session an OpenVidu id names, when it is
   * another node; undefined when none does (or the store is this node's alone).
   */
  async holderOf(sessionId: string): Promise<string | undefined> {
    const name = sessionName(sessionId);
    return (await this.#elsewhere(false)).find((r) => r.name === name)?.nodeId;
  }

  /**
   * Cluster mode: the open room sessions of other nodes (those in progress only with `inProgress`),
   * as the shared store has them; none when the store is this node's alone.
   */
  async #elsewhere(inProgress: boolean): Promise<RoomSessionRecord[]> {
    if (!this.#options.shared) return [];
    return (await this.#store.listOpenRoomSessions())
      .filter((r) => r.nodeId !== this.#options.nodeId && (!inProgress || r.status === 'in-progress'));
  }

  /**
   * Writes again what this node holds: its room sessions in progress and their members present
   * (after other nodes, taking it for dead, completed them in the shared store).
   */
  rewriteHeld(): void {
    for (const rs of this.#open.values()) {
      if (rs.status !== 'in-progress') continue;
      void this.#write(() => this.#store.putRoomSession(this.#record(rs)), true);
      for (const p of rs.participants.values()) void this.#write(() => this.#store.putRoomMember(this.#memberRecord(rs, p)), true);
    }
  }

  /** Cluster mode: the node holding a session in progress of room `roomId`, when it is another node. */
  async roomHolder(roomId: string): Promise<string | undefined> {
    return (await this.#elsewhere(true)).find((r) => r.roomId === roomId)?.nodeId;
  }

  /** Cluster mode: the room sessions in progress on other nodes (as the store has them). */
  async otherNodesRoomSessions(): Promise<{ id: string; name: string; roomId: string | null; status: 'in-progress'; startTime: Date | undefined; createdAt: Date }[]> {
    return (await this.#elsewhere(true)).map((r) => ({ id: r.id, name: r.name, roomId: r.roomId, status: 'in-progress', startTime: r.startTime ? new Date(r.startTime) : undefined, createdAt: new Date(r.createdAt) }));
  }

  /** Cluster mode: the OpenVidu ids of the room sessions in progress on the other live nodes (their public URLs). */
  async otherNodesSessionIds(cluster: { nodes(): Promise<{ id: string; state: string; publicUrl: string }[]> }): Promise<string[]> {
    const alive = new Map((await cluster.nodes()).filter((n) => n.state === 'alive').map((n) => [n.id, n.publicUrl]));
    const ids: string[] = [];
    for (const r of await this.#elsewhere(true)) {
      const url = alive.get(r.nodeId);
      if (url) ids.push(`${wsBaseOf(url)}/${r.name}`);
    }
    return ids;
  }

  /** The OpenVidu session id of a room session: `wss://HOST:PORT/<name>`. */
  sessionIdOf(roomSession: RoomSession): string {
    return `${this.wsBase}/${roomSession.name}`;
  }

  /**
   * After a restart: completes what was in progress when the node stopped (at `lastAlive`, the
   * node's last heartbeat), then loads the created sessions that nobody joined yet, with their tokens.
   */
  async restore(lastAlive: Date): Promise<void> {
    const own = this.#options.shared ? this.#options.nodeId : undefined;
    const completed = await this.#store.completeInProgressRoomSessions(lastAlive.toISOString(), 'node-lost', own);
    if (completed > 0) this.#options.logger.warn({ completed }, 'room sessions left in progress by the last run were completed');
    for (const record of await this.#store.listOpenRoomSessions(own)) {
      const rs = new RoomSession({
        id: record.id,
        roomId: record.roomId,
        name: record.name,
        settings: roomSettingsFromJson(record.settings),
        openvidu: (record.openvidu ?? undefined) as OpenViduProperties | undefined,
        createdAt: new Date(record.createdAt),
      });
      this.#adopt(rs);
    }
    const byId = new Map([...this.#open.values()].map((rs) => [rs.id, rs]));
    for (const t of await this.#store.listOpenRoomTokens(own)) {
      const rs = byId.get(t.roomSessionId);
      if (!rs) continue;
      this.#tokens.set(t.token, { token: t.token, roomSession: rs, role: t.role as ParticipantRole, data: t.data, createdAt: new Date(t.createdAt), usedAt: t.usedAt ? new Date(t.usedAt) : undefined });
    }
  }

  /** Open room sessions (created or in progress). */
  get openSessions(): IterableIterator<RoomSession> {
    return this.#open.values();
  }

  /**
   * The open room session an OpenVidu session id names: the full `wss://…/<name>` id (any host, as
   * clients may reach the server by another name) or the bare name; undefined when none.
   */
  find(sessionId: string): RoomSession | undefined {
    return this.#open.get(sessionName(sessionId));
  }

  /** OpenVidu `POST /api/sessions`: a room session in an auto-created room. */
  async createOpenViduSession(openvidu: OpenViduProperties): Promise<RoomSession> {
    this.#checkOpen();
    const name = uniqueAlnum(16, this.#open);
    const rs = new RoomSession({ roomId: null, name, settings: defaultRoomSettings(), openvidu });
    this.#adopt(rs);
    await this.#write(() => this.#store.putRoomSession(this.#record(rs)));
    return rs;
  }

  /** An OpenVidu session under a name the client chose (joins with the secret). */
  async #openNamed(sessionId: string): Promise<RoomSession | undefined> {
    const name = sessionName(sessionId);
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(name)) return undefined;
    const rs = new RoomSession({ roomId: null, name, settings: defaultRoomSettings(), openvidu: { archiveMode: 'MANUAL', archiveLayout: 'BEST_FIT', mediaMode: 'ROUTED' } });
    this.#adopt(rs);
    await this.#write(() => this.#store.putRoomSession(this.#record(rs)));
    return rs;
  }

  /** OpenVidu `POST /api/tokens`: a single-use token for `roomSession`. */
  async createToken(roomSession: RoomSession, role: ParticipantRole, data: string): Promise<RoomToken> {
    this.#checkOpen();
    if (roomSession.ended) throw errors.badRequest('The session has ended');
    if (data.length > MAX_TOKEN_DATA) throw errors.badRequest(`"data" is longer than ${MAX_TOKEN_DATA} characters`);
    const value = uniqueAlnum(16, this.#tokens);
    const token: RoomToken = { token: value, roomSession, role, data, createdAt: new Date(), usedAt: undefined };
    this.#tokens.set(value, token);
    await this.#write(() => this.#store.putRoomToken(this.#tokenRecord(token)));
    return token;
  }

  /**
   * Joins `sessionId` with `token`: the token must exist, belong to that session and be unused; the
   * room must admit a member now. Creates the participant (and its session in the catalogue) and
   * starts the room session on the first join. Throws UNAUTHORIZED (token) or FORBIDDEN (room).
   *
   * `withSecret`: the client gave an API password as OpenVidu's `secret` (`…/<name>?secret=…`), which
   * in OpenVidu 1.x joins without a token; Kiln then joins as MODERATOR, opening the session when
   * none of that name is open.
   */
  async join(sessionId: string, tokenValue: string, clientData: string, client: JoinClient, withSecret = false): Promise<{ roomSession: RoomSession; participant: Participant }> {
    this.#checkOpen();
    const claims = this.#tokens.has(tokenValue) ? undefined : this.#options.grants.verify(tokenValue);
    if (claims) return this.#joinWithGrant(sessionId, tokenValue, claims, clientData, client);
    let roomSession = this.find(sessionId);
    if (!roomSession && withSecret) roomSession = await this.#openNamed(sessionId);
    if (!roomSession) throw new KilnError('NOT_FOUND', `Session ${sessionId} does not exist`);
    let token = this.#tokens.get(tokenValue);
    if (withSecret && (!token || token.roomSession !== roomSession || token.usedAt)) {
      token = await this.createToken(roomSession, 'MODERATOR', '');
    }
    if (!token || token.roomSession !== roomSession) throw errors.unauthorized(`Token ${tokenValue} is not valid for session ${sessionId}`);
    if (token.usedAt) throw errors.unauthorized(`Token ${tokenValue} has been used already`);
    const used = token;
    return this.#admit(roomSession, {
      role: used.role,
      data: used.data,
      name: used.data || clientData,
      token: used.token,
      claim: (at) => {
        used.usedAt = at;
      },
      record: (at) => this.#store.useRoomToken(used.token, at.toISOString()),
    }, clientData, client);
  }

  /** A SignalWire room token: joins its room's session in progress, or starts one. */
  async #joinWithGrant(sessionId: string, tokenValue: string, claims: GrantClaims, clientData: string, client: JoinClient) {
    if (sessionName(sessionId) !== claims.r) throw errors.unauthorized(`Token is not valid for session ${sessionId}: it joins the room ${claims.r}`);
    const grant = await this.#store.getRoomGrant(claims.jti);
    if (!grant) throw errors.unauthorized('Token is not valid');
    if (grant.usedAt) throw errors.unauthorized('Token has been used already');
    // The room the token was made for, by id: a room since deleted or renamed is not it.
    const room = await this.#store.getRoom(grant.roomId);
    if (!room || room.name !== claims.r) throw new KilnError('NOT_FOUND', `Room ${claims.r} does not exist`);
    const now = Date.now();
    if (claims.jf !== undefined && now < claims.jf * 1000) throw errors.forbidden(`The token does not join before ${new Date(claims.jf * 1000).toISOString()}`);
    if (claims.ju !== undefined && now >= claims.ju * 1000) throw errors.forbidden(`The token stopped joining at ${new Date(claims.ju * 1000).toISOString()}`);
    this.#checkOpen();
    let roomSession = this.find(claims.r);
    if (roomSession && roomSession.roomId !== room.id) throw errors.forbidden(`Another session is named ${claims.r}`);
    if (!roomSession) {
      // A room is in progress on one node at a time (cluster mode): its members join it there.
      const holder = await this.roomHolder(room.id);
      if (holder) throw errors.forbidden(`The room ${room.name} is in progress on node ${holder}: join it there`);
    }
    // The room's own rules first (a refused join keeps its token), then the token is spent in the
    // store, atomically, before anyone sees the member: two joins with one token, one member.
    // With no session yet, a candidate (not registered until the join is accepted) is asked.
    const candidate = roomSession ?? this.#newRoomSession(room);
    const refusal = candidate.refusal(new Date());
    if (refusal) throw errors.forbidden(refusal);
    if (!(await this.#store.useRoomGrant(claims.jti, new Date().toISOString()))) throw errors.unauthorized('Token has been used already');
    roomSession = this.find(claims.r);
    if (!roomSession) {
      roomSession = candidate;
      this.#adopt(roomSession);
    }
    return this.#admit(roomSession, {
      role: grant.role as ParticipantRole,
      data: '',
      name: grant.userName,
      token: tokenValue,
      claim: () => {},
      record: async () => {},
      removeAt: claims.rat !== undefined ? new Date(claims.rat * 1000) : undefined,
      removeAfterSeconds: claims.rse,
    }, clientData, client);
  }

  /** A new room session of a SignalWire room (registered by the caller once its first member is in). */
  #newRoomSession(room: RoomRecord): RoomSession {
    return new RoomSession({ roomId: room.id, name: room.name, settings: roomSettingsFromJson(room.settings), openvidu: undefined });
  }

  /**
   * Admits a member once its token holds: the room's settings decide, then the participant and its
   * session are made and the join is written (token use, room session start, member).
   */
  async #admit(roomSession: RoomSession, pass: Admission, clientData: string, client: JoinClient): Promise<{ roomSession: RoomSession; participant: Participant }> {
    const now = new Date();
    const refusal = roomSession.refusal(now);
    if (refusal) throw errors.forbidden(refusal);
    pass.claim(now);
    const id = uniqueAlnum(16, roomSession.participants);
    const name = pass.name || id;
    const session = new Session({
      ...client,
      kind: 'participant',
      protocol: 'openvidu',
      vhost: this.#options.vhost,
      app: this.#options.app,
      stream: '',
      user: name,
      roomSession: roomSession.id,
    });
    const participant = new Participant({ id, name, session, role: pass.role, serverData: pass.data, clientData, token: pass.token });
    // A kick of the participant's session (an API DELETE) evicts it.
    session.setTeardown((reason) => participant.leave(reason === 'kicked' ? 'evicted' : reason === 'timed-out' ? 'network-lost' : 'disconnect'));
    this.#options.catalog.addSession(session);
    this.#cancelEmptyTimer(roomSession);
    const wasStarted = roomSession.status !== null;
    roomSession.add(participant);
    session.activate();
    participant.once('left', (reason) => this.#onLeft(roomSession, participant, reason));
    this.#scheduleRemoval(roomSession, participant, pass);
    let failure: unknown;
    await this.#write(async () => {
      try {
        await pass.record(now);
      } catch (err) {
        failure = err;
        return;
      }
      if (!wasStarted) await this.#store.putRoomSession(this.#record(roomSession));
      await this.#store.putRoomMember(this.#memberRecord(roomSession, participant));
    });
    if (failure) {
      participant.leave('disconnect');
      throw failure;
    }
    // Removed while its join was written (the room ended, a removal fell due): no member to answer for.
    if (participant.left) throw new KilnError('NOT_FOUND', `The participant left the session while joining (${participant.leaveReason})`);
    return { roomSession, participant };
  }

  /**
   * Writes a SignalWire room (created or updated). A session of it in progress takes the new
   * settings at once (a room locked now refuses the next join).
   */
  async putRoom(record: RoomRecord): Promise<void> {
    this.#checkOpen();
    const open = this.find(record.name);
    if (open && open.roomId !== record.id) throw errors.invalidParameter('name', `A session named ${record.name} is open`, 'value_not_unique');
    for (const rs of this.#open.values()) {
      if (rs.roomId === record.id && rs.name !== record.name) throw errors.invalidParameter('name', 'The room cannot be renamed while a session of it is in progress');
    }
    await this.#store.putRoom(record);
    for (const rs of this.#open.values()) {
      if (rs.roomId !== record.id) continue;
      Object.assign(rs.settings, roomSettingsFromJson(record.settings));
      // remove_at and remove_after_seconds_elapsed apply to the members already in, too.
      for (const p of rs.participants.values()) this.#scheduleRemoval(rs, p, this.#removals.get(p)?.own);
      // The session's stored copy of the settings follows (what GET /room_sessions shows).
      if (rs.status !== null) await this.#write(() => this.#store.putRoomSession(this.#record(rs)));
    }
  }

  /** Deletes a room; its session in progress ends (members removed). False when there was none. */
  async deleteRoom(id: string): Promise<boolean> {
    for (const rs of [...this.#open.values()]) if (rs.roomId === id) rs.end('session-ended');
    return this.#store.deleteRoom(id);
  }

  /**
   * Ends an open room session now (OpenVidu 2.x `DELETE /api/sessions/{id}`): its members leave
   * with `session-ended`, as when its room is deleted; resolves once the history has it.
   */
  async endSession(roomSession: RoomSession): Promise<void> {
    roomSession.end('session-ended');
    await this.#writes;
  }

  /** A SignalWire room token for `room`, recorded for its single use. */
  async grant(room: RoomRecord, claims: Omit<GrantClaims, 'jti' | 'iat' | 'r'>, role: ParticipantRole): Promise<string> {
    this.#checkOpen();
    const { token, claims: full } = this.#options.grants.issue({ ...claims, r: room.name });
    await this.#store.putRoomGrant({
      token: full.jti, roomId: room.id, userName: full.u, role, permissions: full.s,
      createdAt: new Date(full.iat * 1000).toISOString(), expiresAt: new Date(full.ju !== undefined ? full.ju * 1000 : 8.64e15).toISOString(), usedAt: null,
    });
    return token;
  }

  /** A participant of an open room session, by id. */
  participant(id: string): Participant | undefined {
    for (const rs of this.#open.values()) {
      const p = rs.participants.get(id);
      if (p) return p;
    }
    return undefined;
  }

  #onLeft(roomSession: RoomSession, participant: Participant, _reason: LeaveReason): void {
    void this.#write(() => this.#store.putRoomMember(this.#memberRecord(roomSession, participant)), true);
    if (roomSession.participants.size === 0 && !roomSession.ended && !this.#closed) {
      this.#cancelEmptyTimer(roomSession);
      const timer = setTimeout(() => {
        this.#timers.delete(roomSession);
        if (roomSession.participants.size === 0) roomSession.end('session-ended');
      }, this.#emptyTimeoutMs);
      timer.unref();
      this.#timers.set(roomSession, timer);
    }
  }

  /**
   * `remove_at` and `remove_after_seconds_elapsed` (the room's, and the member's token's): the
   * participant leaves when the first of its times is up.
   */
  #scheduleRemoval(roomSession: RoomSession, participant: Participant, own: { removeAt?: Date; removeAfterSeconds?: number } = {}): void {
    const previous = this.#removals.get(participant);
    if (previous) clearTimeout(previous.timer);
    else participant.once('left', () => {
      clearTimeout(this.#removals.get(participant)?.timer);
      this.#removals.delete(participant);
    });
    if (participant.left) return;
    const s = roomSession.settings;
    const deadlines: number[] = [];
    if (s.removeAt) deadlines.push(s.removeAt.getTime());
    if (s.removeAfterSecondsElapsed !== null) deadlines.push(participant.joinedAt.getTime() + s.removeAfterSecondsElapsed * 1000);
    if (own.removeAt) deadlines.push(own.removeAt.getTime());
    if (own.removeAfterSeconds !== undefined) deadlines.push(participant.joinedAt.getTime() + own.removeAfterSeconds * 1000);
    if (deadlines.length === 0) {
      this.#removals.set(participant, { timer: undefined, own: { removeAt: own.removeAt, removeAfterSeconds: own.removeAfterSeconds } });
      return;
    }
    const delay = Math.max(0, Math.min(...deadlines) - Date.now());
    // setTimeout holds at most 2^31-1 ms; longer waits re-arm.
    const timer = setTimeout(() => {
      if (Math.min(...deadlines) > Date.now()) return this.#scheduleRemoval(roomSession, participant, own);
      participant.leave('removed-by-room');
    }, Math.min(delay, 2 ** 31 - 1));
    timer.unref();
    this.#removals.set(participant, { timer, own: { removeAt: own.removeAt, removeAfterSeconds: own.removeAfterSeconds } });
  }

  #cancelEmptyTimer(roomSession: RoomSession): void {
    const timer = this.#timers.get(roomSession);
    if (timer) clearTimeout(timer);
    this.#timers.delete(roomSession);
  }

  /** Calls `fn` with every room session this node opens from now on (recordings follow them). */
  watch(fn: (rs: RoomSession) => void): void {
    this.#watchers.push(fn);
  }

  #adopt(rs: RoomSession): void {
    this.#open.set(rs.name, rs);
    for (const fn of this.#watchers) fn(rs);
    rs.once('ended', () => {
      this.#cancelEmptyTimer(rs);
      if (this.#open.get(rs.name) === rs) this.#open.delete(rs.name);
      for (const [value, token] of this.#tokens) if (token.roomSession === rs) this.#tokens.delete(value);
      void this.#write(() => this.#store.putRoomSession(this.#record(rs)), true);
    });
  }

  #checkOpen(): void {
    if (this.#closed) throw errors.unavailable('The server is stopping');
  }

  /**
   * Queues a store write after the earlier ones; a failure is logged, never thrown at the caller's
   * peers. With `retry` (the history of what happened without a caller waiting: a member leaving, a
   * session ending), a failed write (a shared database out of reach) is tried again, in order,
   * every few seconds for two minutes (not once the node is stopping), so that a short outage loses
   * no history.
   */
  #write(fn: () => Promise<unknown>, retry = false): Promise<void> {
    const attempt = async (): Promise<void> => {
      const started = Date.now();
      for (let tries = 1; ; tries++) {
        try {
          await fn();
          return;
        } catch (err) {
          if (!retry || this.#closed || Date.now() - started > WRITE_RETRY_MS) {
            this.#options.logger.error({ err }, 'room history could not be written');
            return;
          }
          if (tries === 1) this.#options.logger.warn({ err: (err as Error).message }, 'room history not written yet: retrying');
          await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 500 * 2 ** tries)));
        }
      }
    };
    const next = this.#writes.then(attempt);
    this.#writes = next;
    return next;
  }

  #record(rs: RoomSession): RoomSessionRecord {
    return {
      id: rs.id,
      roomId: rs.roomId,
      name: rs.name,
      settings: roomSettingsToJson(rs.settings),
      openvidu: rs.openvidu ? { ...rs.openvidu } : null,
      status: rs.status,
      createdAt: rs.createdAt.toISOString(),
      updatedAt: new Date().toISOString(),
      startTime: iso(rs.startTime),
      endTime: iso(rs.endTime),
      endReason: rs.endReason ?? null,
      nodeId: this.#options.nodeId,
    };
  }

  #memberRecord(rs: RoomSession, p: Participant): RoomMemberRecord {
    return {
      id: p.id,
      roomSessionId: rs.id,
      name: p.name,
      role: p.role,
      serverData: p.serverData,
      clientData: p.clientData,
      remoteAddress: p.session.remoteAddress,
      joinedAt: p.joinedAt.toISOString(),
      leftAt: iso(p.leftAt),
      leaveReason: p.leaveReason ?? null,
    };
  }

  #tokenRecord(t: RoomToken): RoomTokenRecord {
    return { token: t.token, roomSessionId: t.roomSession.id, role: t.role, data: t.data, createdAt: t.createdAt.toISOString(), usedAt: iso(t.usedAt) };
  }

  /**
   * On shutdown: every room session in progress ends (`server-stopping`) and the history is
   * written; resolves when the store has it.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    for (const { timer } of this.#removals.values()) clearTimeout(timer);
    for (const rs of [...this.#open.values()]) if (rs.status === 'in-progress') rs.end('server-stopping');
    await this.#writes;
  }
}
