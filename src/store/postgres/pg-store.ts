/**
 * The shared store for cluster mode (SPEC.md §4): PostgreSQL through a `pg` pool, with the same
 * records and the same semantics as the embedded SQLite store. Versioned migrations are applied at
 * open under a transaction-level advisory lock, so nodes starting together apply each one once.
 */
import pg from 'pg';
import { errors, isKilnError, KilnError } from '../../core/errors.ts';
import type {
  PageQuery,
  PullStreamRecord,
  RecordingRecord,
  RecordingStatus,
  RoomGrantRecord,
  RoomMemberRecord,
  RoomRecord,
  RoomSessionQuery,
  RoomSessionRecord,
  RoomTokenRecord,
  Store,
} from '../store.ts';
import { PG_EVENTS_MIGRATION, PgEventStore } from './pg-events.ts';

/** The advisory lock key that serialises migrations across nodes ('KILN' in ASCII). */
const MIGRATION_LOCK = 0x4b494c4e;

/**
 * Schema migrations, applied in order; each runs once (tracked in `schema_migrations`). Text columns
 * use the "C" collation so that ordering and cursor comparisons are bytewise, as in SQLite. Dates are
 * the records' ISO 8601 strings and JSON is kept as the text it was written as, so both round-trip
 * byte-exact.
 */
const MIGRATIONS: string[] = [
  `CREATE TABLE settings (key text COLLATE "C" PRIMARY KEY, value text NOT NULL, updated_at text COLLATE "C" NOT NULL);
   CREATE TABLE pull_streams (
     vhost text COLLATE "C" NOT NULL, app text COLLATE "C" NOT NULL, name text COLLATE "C" NOT NULL,
     urls text NOT NULL, properties text NOT NULL, created_at text COLLATE "C" NOT NULL,
     PRIMARY KEY (vhost, app, name));
   CREATE TABLE room_sessions (
     id text COLLATE "C" PRIMARY KEY, room_id text COLLATE "C", name text COLLATE "C" NOT NULL, settings text NOT NULL, openvidu text,
     status text COLLATE "C", created_at text COLLATE "C" NOT NULL, updated_at text COLLATE "C" NOT NULL,
     start_time text COLLATE "C", end_time text COLLATE "C", end_reason text);
   CREATE INDEX room_sessions_status ON room_sessions (status);
   CREATE INDEX room_sessions_created ON room_sessions (created_at);
   CREATE INDEX room_sessions_order ON room_sessions (created_at, id);
   CREATE INDEX room_sessions_room ON room_sessions (room_id, created_at, id);
   CREATE INDEX room_sessions_name ON room_sessions (name, created_at, id);
   CREATE INDEX room_sessions_status_order ON room_sessions (status, created_at, id);
   CREATE TABLE room_members (
     id text COLLATE "C" PRIMARY KEY, room_session_id text COLLATE "C" NOT NULL, role text NOT NULL, server_data text NOT NULL,
     client_data text NOT NULL, remote_address text NOT NULL, joined_at text COLLATE "C" NOT NULL, left_at text COLLATE "C",
     leave_reason text, name text NOT NULL DEFAULT '');
   CREATE INDEX room_members_session ON room_members (room_session_id);
   CREATE TABLE room_tokens (
     token text COLLATE "C" PRIMARY KEY, room_session_id text COLLATE "C" NOT NULL, role text NOT NULL, data text NOT NULL,
     created_at text COLLATE "C" NOT NULL, used_at text COLLATE "C");
   CREATE INDEX room_tokens_session ON room_tokens (room_session_id);
   CREATE TABLE rooms (
     id text COLLATE "C" PRIMARY KEY, name text COLLATE "C" NOT NULL, settings text NOT NULL,
     created_at text COLLATE "C" NOT NULL, updated_at text COLLATE "C" NOT NULL,
     CONSTRAINT rooms_name_key UNIQUE (name));
   CREATE INDEX rooms_order ON rooms (created_at, id);
   CREATE TABLE room_grants (
     token text COLLATE "C" PRIMARY KEY, room_id text COLLATE "C" NOT NULL, user_name text NOT NULL, role text NOT NULL,
     permissions text NOT NULL, created_at text COLLATE "C" NOT NULL, expires_at text COLLATE "C" NOT NULL, used_at text COLLATE "C");
   CREATE INDEX room_grants_room ON room_grants (room_id);
   CREATE TABLE recordings (
     id text COLLATE "C" PRIMARY KEY, uuid text COLLATE "C" NOT NULL UNIQUE, room_session_id text COLLATE "C" NOT NULL,
     session_id text NOT NULL, name text NOT NULL, status text COLLATE "C" NOT NULL,
     created_at text COLLATE "C" NOT NULL, updated_at text COLLATE "C" NOT NULL, stopped_at text COLLATE "C",
     duration double precision NOT NULL, size bigint NOT NULL, has_audio boolean NOT NULL, has_video boolean NOT NULL, reason text);
   CREATE INDEX recordings_order ON recordings (created_at, id);
   CREATE INDEX recordings_session ON recordings (room_session_id, created_at);
   CREATE INDEX recordings_status ON recordings (status)`,
  // Cluster mode: who holds what, the nodes, and the live state each node mirrors (src/cluster).
  `ALTER TABLE room_sessions ADD COLUMN node_id text COLLATE "C" NOT NULL DEFAULT '';
   ALTER TABLE pull_streams ADD COLUMN node_id text COLLATE "C" NOT NULL DEFAULT '';
   CREATE INDEX room_sessions_node ON room_sessions (node_id, status);
   ALTER TABLE recordings ADD COLUMN node_id text COLLATE "C" NOT NULL DEFAULT '';
   CREATE TABLE cluster_nodes (
     id text COLLATE "C" PRIMARY KEY, instance text NOT NULL, state text NOT NULL, public_url text NOT NULL,
     api_url text NOT NULL, ovt_url text NOT NULL, started_at timestamptz NOT NULL, heartbeat_at timestamptz NOT NULL,
     left_at timestamptz, cleaned_at timestamptz, load text NOT NULL DEFAULT '{}');
   CREATE UNLOGGED TABLE live_streams (
     node_id text COLLATE "C" NOT NULL, vhost text COLLATE "C" NOT NULL, app text COLLATE "C" NOT NULL, name text COLLATE "C" NOT NULL,
     relay boolean NOT NULL, source_session text NOT NULL, info text NOT NULL, created_at text COLLATE "C" NOT NULL,
     PRIMARY KEY (node_id, vhost, app, name));
   CREATE INDEX live_streams_name ON live_streams (vhost, app, name);
   CREATE UNLOGGED TABLE live_sessions (
     id text COLLATE "C" PRIMARY KEY, node_id text COLLATE "C" NOT NULL, info text NOT NULL,
     kind text NOT NULL, vhost text COLLATE "C" NOT NULL, app text COLLATE "C" NOT NULL, stream text COLLATE "C" NOT NULL,
     connected_at text COLLATE "C" NOT NULL);
   CREATE INDEX live_sessions_node ON live_sessions (node_id);
   CREATE INDEX live_sessions_stream ON live_sessions (vhost, app, stream);
   CREATE UNLOGGED TABLE bus_replies (id text COLLATE "C" PRIMARY KEY, body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`,
  // The event outbox (src/events).
  PG_EVENTS_MIGRATION,
];

/** SQLSTATE of a unique violation. */
const UNIQUE_VIOLATION = '23505';

interface RecordingRow {
  id: string; uuid: string; room_session_id: string; session_id: string; name: string; status: string; created_at: string;
  updated_at: string; stopped_at: string | null; duration: number; size: string; has_audio: boolean; has_video: boolean; reason: string | null;
  node_id: string;
}

const recordingOf = (r: RecordingRow): RecordingRecord => ({
  id: r.id, uuid: r.uuid, roomSessionId: r.room_session_id, sessionId: r.session_id, name: r.name, status: r.status as RecordingStatus,
  createdAt: r.created_at, updatedAt: r.updated_at, stoppedAt: r.stopped_at, duration: r.duration, size: Number(r.size),
  hasAudio: r.has_audio, hasVideo: r.has_video, reason: r.reason, nodeId: r.node_id,
});

interface RoomSessionRow {
  id: string; room_id: string | null; name: string; settings: string; openvidu: string | null; status: string | null;
  created_at: string; updated_at: string; start_time: string | null; end_time: string | null; end_reason: string | null;
  node_id: string;
}

const roomSessionOf = (r: RoomSessionRow): RoomSessionRecord => ({
  id: r.id, roomId: r.room_id, name: r.name, settings: JSON.parse(r.settings), openvidu: r.openvidu ? JSON.parse(r.openvidu) : null,
  status: r.status as RoomSessionRecord['status'], createdAt: r.created_at, updatedAt: r.updated_at,
  startTime: r.start_time, endTime: r.end_time, endReason: r.end_reason, nodeId: r.node_id,
});

interface RoomRow { id: string; name: string; settings: string; created_at: string; updated_at: string }
const roomOf = (r: RoomRow): RoomRecord => ({ id: r.id, name: r.name, settings: JSON.parse(r.settings), createdAt: r.created_at, updatedAt: r.updated_at });

interface RoomMemberRow {
  id: string; room_session_id: string; name: string; role: string; server_data: string; client_data: string; remote_address: string;
  joined_at: string; left_at: string | null; leave_reason: string | null;
}

interface RoomTokenRow { token: string; room_session_id: string; role: string; data: string; created_at: string; used_at: string | null }

interface RoomGrantRow {
  token: string; room_id: string; user_name: string; role: string; permissions: string; created_at: string; expires_at: string; used_at: string | null;
}

/** The WHERE and ORDER BY of a newest-first page over (created_at, id); `params` holds the earlier placeholders' values. */
function pageClause(q: PageQuery, where: string[], params: unknown[]): string {
  const p = (value: unknown): string => `$${params.push(value)}`;
  if (q.before) where.push(`(created_at, id) < (${p(q.before.createdAt)}, ${p(q.before.id)})`);
  if (q.after) where.push(`(created_at, id) > (${p(q.after.createdAt)}, ${p(q.after.id)})`);
  const order = q.after ? 'ASC' : 'DESC';
  return `${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at ${order}, id ${order} LIMIT ${p(q.limit)}`;
}

/**
 * An ISO 8601 text column or expression as a timestamptz; without an offset it means UTC, as SQLite's
 * julianday() reads it (whatever the session's TimeZone).
 */
const utc = (expr: string): string =>
  `(CASE WHEN ${expr} ~ '(Z|z|[+-]\\d\\d(:?\\d\\d)?)$' THEN (${expr})::timestamptz ELSE (${expr} || 'Z')::timestamptz END)`;

const isUniqueViolation = (err: unknown, constraint?: string): boolean =>
  typeof err === 'object' && err !== null && (err as { code?: unknown }).code === UNIQUE_VIOLATION &&
  (constraint === undefined || (err as { constraint?: unknown }).constraint === constraint);

const nameTaken = (name: string): KilnError =>
  new KilnError('CONFLICT', `A room named ${name} already exists`, { parameter: 'name', rule: 'value_not_unique' });

/** SQLSTATE classes and codes, and socket errors, that mean the database is out of reach (not a bad query). */
const LOST_CODES = /^(08|57P0[1-3]|53300|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN)/;

/**
 * An error of a lost database (refused, cut, timed out, shutting down) as UNAVAILABLE, so that the
 * dialects answer 503 in their own shape; any other error as it is.
 */
export function unavailableIfLost(err: unknown): unknown {
  if (isKilnError(err)) return err;
  const e = err as { code?: unknown; message?: unknown };
  const lost = (typeof e.code === 'string' && LOST_CODES.test(e.code))
    || (typeof e.message === 'string' && /timeout|Connection terminated|connection.*(ended|closed|refused)|not queryable/i.test(e.message));
  return lost ? errors.unavailable('The database is unreachable: try again later') : err;
}

/** Runs `fn` in one transaction on one pooled connection; rolls back when it throws. */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch((rollbackErr: Error) => { broken = rollbackErr; });
    throw err;
  } finally {
    // A connection whose rollback failed is in an unknown state: destroy it rather than reuse it.
    client.release(broken);
  }
}

/** Applies the missing migrations in one transaction, under the advisory lock. */
async function migrate(pool: pg.Pool): Promise<void> {
  await inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
    const applied = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
    for (let v = 1; v <= MIGRATIONS.length; v++) {
      if (applied.has(v)) continue;
      await client.query(MIGRATIONS[v - 1]);
      await client.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())', [v]);
    }
  });
}

/** The PostgreSQL store (cluster mode): several Kiln nodes share one database through it. */
export class PgStore implements Store {
  readonly #pool: pg.Pool;
  #closing: Promise<void> | undefined;
  readonly events: PgEventStore;

  private constructor(pool: pg.Pool) {
    this.#pool = pool;
    this.events = new PgEventStore((text, params) => this.#query(text, params), (fn) => this.#transaction(fn));
  }

  /**
   * Connects to `url` (`postgres://…`) with a pool of at most 10 connections and applies the
   * missing migrations; safe when several nodes open the same database at once.
   */
  static async open(url: string): Promise<PgStore> {
    // Time limits, so that a lost database fails calls in seconds rather than hanging them.
    const pool = new pg.Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 3000, query_timeout: 15_000 });
    // An idle connection that fails (server restart, network) is dropped by the pool; the next query
    // opens a new one. Without a listener the 'error' event would end the process.
    pool.on('error', () => {});
    try {
      await migrate(pool);
    } catch (err) {
      await pool.end().catch(() => {});
      throw err;
    }
    return new PgStore(pool);
  }

  async #query<R extends pg.QueryResultRow>(text: string, params?: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      return await this.#pool.query<R>(text, params);
    } catch (err) {
      throw unavailableIfLost(err);
    }
  }

  async #transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    try {
      return await inTransaction(this.#pool, fn);
    } catch (err) {
      throw unavailableIfLost(err);
    }
  }

  async getSetting(key: string): Promise<string | undefined> {
    const { rows } = await this.#query<{ value: string }>('SELECT value FROM settings WHERE key = $1', [key]);
    return rows[0]?.value;
  }

  async setSetting(key: string, value: string): Promise<void> {
    await this.#query(
      'INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at',
      [key, value, new Date().toISOString()],
    );
  }

  async claimSetting(key: string, value: string): Promise<string> {
    await this.#query('INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING', [key, value, new Date().toISOString()]);
    return (await this.getSetting(key))!;
  }

  async listPullStreams(nodeId?: string): Promise<PullStreamRecord[]> {
    const { rows } = await this.#query<{ vhost: string; app: string; name: string; urls: string; properties: string; created_at: string; node_id: string }>(
      `SELECT vhost, app, name, urls, properties, created_at, node_id FROM pull_streams WHERE ($1::text IS NULL OR node_id = $1)
       ORDER BY created_at, vhost, app, name`,
      [nodeId ?? null],
    );
    return rows.map((r) => ({
      vhost: r.vhost, app: r.app, name: r.name, urls: JSON.parse(r.urls), properties: JSON.parse(r.properties), createdAt: r.created_at, nodeId: r.node_id,
    }));
  }

  async putPullStream(r: PullStreamRecord): Promise<void> {
    await this.#query(
      `INSERT INTO pull_streams (vhost, app, name, urls, properties, created_at, node_id) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (vhost, app, name) DO UPDATE SET urls = EXCLUDED.urls, properties = EXCLUDED.properties, created_at = EXCLUDED.created_at,
         node_id = EXCLUDED.node_id`,
      [r.vhost, r.app, r.name, JSON.stringify(r.urls), JSON.stringify(r.properties), r.createdAt, r.nodeId],
    );
  }

  async deletePullStream(vhost: string, app: string, name: string, nodeId?: string): Promise<void> {
    await this.#query('DELETE FROM pull_streams WHERE vhost = $1 AND app = $2 AND name = $3 AND ($4::text IS NULL OR node_id = $4)', [vhost, app, name, nodeId ?? null]);
  }

  async putRoomSession(r: RoomSessionRecord): Promise<void> {
    await this.#query(
      `INSERT INTO room_sessions (id, room_id, name, settings, openvidu, status, created_at, updated_at, start_time, end_time, end_reason, node_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
       ON CONFLICT (id) DO UPDATE SET room_id = EXCLUDED.room_id, name = EXCLUDED.name, settings = EXCLUDED.settings,
         openvidu = EXCLUDED.openvidu, status = EXCLUDED.status, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,
         start_time = EXCLUDED.start_time, end_time = EXCLUDED.end_time, end_reason = EXCLUDED.end_reason, node_id = EXCLUDED.node_id`,
      [r.id, r.roomId, r.name, JSON.stringify(r.settings), r.openvidu ? JSON.stringify(r.openvidu) : null, r.status,
        r.createdAt, r.updatedAt, r.startTime, r.endTime, r.endReason, r.nodeId],
    );
  }

  async getRoomSession(id: string): Promise<RoomSessionRecord | undefined> {
    const { rows } = await this.#query<RoomSessionRow>('SELECT * FROM room_sessions WHERE id = $1', [id]);
    return rows[0] && roomSessionOf(rows[0]);
  }

  async listOpenRoomSessions(nodeId?: string): Promise<RoomSessionRecord[]> {
    const { rows } = await this.#query<RoomSessionRow>(
      `SELECT * FROM room_sessions WHERE (status IS NULL OR status = 'in-progress') AND ($1::text IS NULL OR node_id = $1) ORDER BY created_at, id`,
      [nodeId ?? null],
    );
    return rows.map(roomSessionOf);
  }

  async putRoomMember(m: RoomMemberRecord): Promise<void> {
    await this.#query(
      `INSERT INTO room_members (id, room_session_id, name, role, server_data, client_data, remote_address, joined_at, left_at, leave_reason)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
       ON CONFLICT (id) DO UPDATE SET room_session_id = EXCLUDED.room_session_id, name = EXCLUDED.name, role = EXCLUDED.role,
         server_data = EXCLUDED.server_data, client_data = EXCLUDED.client_data, remote_address = EXCLUDED.remote_address,
         joined_at = EXCLUDED.joined_at, left_at = EXCLUDED.left_at, leave_reason = EXCLUDED.leave_reason`,
      [m.id, m.roomSessionId, m.name, m.role, m.serverData, m.clientData, m.remoteAddress, m.joinedAt, m.leftAt, m.leaveReason],
    );
  }

  async listRoomMembers(roomSessionId: string): Promise<RoomMemberRecord[]> {
    const { rows } = await this.#query<RoomMemberRow>('SELECT * FROM room_members WHERE room_session_id = $1 ORDER BY joined_at, id', [roomSessionId]);
    return rows.map((r) => ({
      id: r.id, roomSessionId: r.room_session_id, name: r.name, role: r.role, serverData: r.server_data, clientData: r.client_data,
      remoteAddress: r.remote_address, joinedAt: r.joined_at, leftAt: r.left_at, leaveReason: r.leave_reason,
    }));
  }

  async putRoomToken(t: RoomTokenRecord): Promise<void> {
    await this.#query(
      `INSERT INTO room_tokens (token, room_session_id, role, data, created_at, used_at) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (token) DO UPDATE SET room_session_id = EXCLUDED.room_session_id, role = EXCLUDED.role, data = EXCLUDED.data,
         created_at = EXCLUDED.created_at, used_at = EXCLUDED.used_at`,
      [t.token, t.roomSessionId, t.role, t.data, t.createdAt, t.usedAt],
    );
  }

  async listOpenRoomTokens(nodeId?: string): Promise<RoomTokenRecord[]> {
    const { rows } = await this.#query<RoomTokenRow>(
      `SELECT t.* FROM room_tokens t JOIN room_sessions s ON s.id = t.room_session_id
       WHERE (s.status IS NULL OR s.status = 'in-progress') AND ($1::text IS NULL OR s.node_id = $1) ORDER BY t.created_at, t.token`,
      [nodeId ?? null],
    );
    return rows.map((r) => ({ token: r.token, roomSessionId: r.room_session_id, role: r.role, data: r.data, createdAt: r.created_at, usedAt: r.used_at }));
  }

  async useRoomToken(token: string, at: string): Promise<boolean> {
    const result = await this.#query('UPDATE room_tokens SET used_at = $1 WHERE token = $2 AND used_at IS NULL', [at, token]);
    return result.rowCount === 1;
  }

  async completeInProgressRoomSessions(endTime: string, reason: string, nodeId?: string): Promise<number> {
    return this.#transaction(async (client) => {
      await client.query(
        `UPDATE room_members SET left_at = GREATEST(joined_at, $1::text COLLATE "C"), leave_reason = $2
         WHERE left_at IS NULL AND room_session_id IN (SELECT id FROM room_sessions WHERE status = 'in-progress' AND ($3::text IS NULL OR node_id = $3))`,
        [endTime, reason, nodeId ?? null],
      );
      const result = await client.query(
        `UPDATE room_sessions SET status = 'completed', end_time = GREATEST(COALESCE(start_time, $1::text), $1::text COLLATE "C"),
           end_reason = $2, updated_at = $3
         WHERE status = 'in-progress' AND ($4::text IS NULL OR node_id = $4)`,
        [endTime, reason, new Date().toISOString(), nodeId ?? null],
      );
      return result.rowCount ?? 0;
    });
  }

  async putRoom(r: RoomRecord): Promise<void> {
    // The unique constraint on name decides, so two nodes naming two rooms alike at once cannot both win.
    try {
      await this.#query(
        `INSERT INTO rooms (id, name, settings, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, settings = EXCLUDED.settings,
           created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at`,
        [r.id, r.name, JSON.stringify(r.settings), r.createdAt, r.updatedAt],
      );
    } catch (err) {
      if (isUniqueViolation(err, 'rooms_name_key')) throw nameTaken(r.name);
      throw err;
    }
  }

  async getRoom(id: string): Promise<RoomRecord | undefined> {
    const { rows } = await this.#query<RoomRow>('SELECT * FROM rooms WHERE id = $1', [id]);
    return rows[0] && roomOf(rows[0]);
  }

  async getRoomByName(name: string): Promise<RoomRecord | undefined> {
    const { rows } = await this.#query<RoomRow>('SELECT * FROM rooms WHERE name = $1', [name]);
    return rows[0] && roomOf(rows[0]);
  }

  async listRooms(q: PageQuery): Promise<RoomRecord[]> {
    const params: unknown[] = [];
    const { rows } = await this.#query<RoomRow>(`SELECT * FROM rooms ${pageClause(q, [], params)}`, params);
    return (q.after ? rows.reverse() : rows).map(roomOf);
  }

  async deleteRoom(id: string): Promise<boolean> {
    return this.#transaction(async (client) => {
      // Its grants go with it: they could only ever join this room.
      await client.query('DELETE FROM room_grants WHERE room_id = $1', [id]);
      return (await client.query('DELETE FROM rooms WHERE id = $1', [id])).rowCount === 1;
    });
  }

  async listRoomSessions(q: RoomSessionQuery): Promise<RoomSessionRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const p = (value: unknown): string => `$${params.push(value)}`;
    if (q.roomId !== undefined) where.push(`room_id = ${p(q.roomId)}`);
    if (q.name !== undefined) where.push(`name = ${p(q.name)}`);
    // A substring, case sensitive as names are (ILIKE would fold case; LIKE would read % and _).
    if (q.nameContains !== undefined) where.push(`strpos(name, ${p(q.nameContains)}) > 0`);
    if (q.status !== undefined) where.push(`status = ${p(q.status)}`);
    const { rows } = await this.#query<RoomSessionRow>(`SELECT * FROM room_sessions ${pageClause(q, where, params)}`, params);
    return (q.after ? rows.reverse() : rows).map(roomSessionOf);
  }

  async memberSeconds(roomSessionIds: string[], now: string): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (roomSessionIds.length === 0) return out;
    const { rows } = await this.#query<{ id: string; seconds: number }>(
      `SELECT room_session_id AS id,
         SUM(EXTRACT(EPOCH FROM ${utc('COALESCE(left_at, $1)')}) - EXTRACT(EPOCH FROM ${utc('joined_at')}))::float8 AS seconds
       FROM room_members WHERE room_session_id = ANY($2::text[]) GROUP BY room_session_id`,
      [now, roomSessionIds],
    );
    for (const r of rows) out.set(r.id, Math.max(0, r.seconds));
    return out;
  }

  async putRoomGrant(g: RoomGrantRecord): Promise<void> {
    await this.#query(
      `INSERT INTO room_grants (token, room_id, user_name, role, permissions, created_at, expires_at, used_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (token) DO UPDATE SET room_id = EXCLUDED.room_id, user_name = EXCLUDED.user_name, role = EXCLUDED.role,
         permissions = EXCLUDED.permissions, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, used_at = EXCLUDED.used_at`,
      [g.token, g.roomId, g.userName, g.role, JSON.stringify(g.permissions), g.createdAt, g.expiresAt, g.usedAt],
    );
  }

  async getRoomGrant(token: string): Promise<RoomGrantRecord | undefined> {
    const { rows: [r] } = await this.#query<RoomGrantRow>('SELECT * FROM room_grants WHERE token = $1', [token]);
    return r && {
      token: r.token, roomId: r.room_id, userName: r.user_name, role: r.role, permissions: JSON.parse(r.permissions),
      createdAt: r.created_at, expiresAt: r.expires_at, usedAt: r.used_at,
    };
  }

  async useRoomGrant(token: string, at: string): Promise<boolean> {
    return (await this.#query('UPDATE room_grants SET used_at = $1 WHERE token = $2 AND used_at IS NULL', [at, token])).rowCount === 1;
  }

  async pruneRoomGrants(now: string, usedBefore: string): Promise<number> {
    return (await this.#query('DELETE FROM room_grants WHERE expires_at < $1 OR used_at < $2', [now, usedBefore])).rowCount ?? 0;
  }

  async putRecording(r: RecordingRecord): Promise<void> {
    await this.#transaction(async (client) => {
      // As SQLite's INSERT OR REPLACE: a record with this uuid under another id is replaced too.
      await client.query('DELETE FROM recordings WHERE uuid = $1 AND id <> $2', [r.uuid, r.id]);
      await client.query(
        `INSERT INTO recordings (id, uuid, room_session_id, session_id, name, status, created_at, updated_at,
           stopped_at, duration, size, has_audio, has_video, reason, node_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         ON CONFLICT (id) DO UPDATE SET uuid = EXCLUDED.uuid, room_session_id = EXCLUDED.room_session_id, session_id = EXCLUDED.session_id,
           name = EXCLUDED.name, status = EXCLUDED.status, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,
           stopped_at = EXCLUDED.stopped_at, duration = EXCLUDED.duration, size = EXCLUDED.size, has_audio = EXCLUDED.has_audio,
           has_video = EXCLUDED.has_video, reason = EXCLUDED.reason, node_id = EXCLUDED.node_id`,
        [r.id, r.uuid, r.roomSessionId, r.sessionId, r.name, r.status, r.createdAt, r.updatedAt, r.stoppedAt, r.duration, r.size,
          r.hasAudio, r.hasVideo, r.reason, r.nodeId],
      );
    });
  }

  async getRecording(id: string): Promise<RecordingRecord | undefined> {
    const { rows } = await this.#query<RecordingRow>('SELECT * FROM recordings WHERE id = $1 OR uuid = $1 ORDER BY (id = $1) DESC LIMIT 1', [id]);
    return rows[0] && recordingOf(rows[0]);
  }

  async listRecordings(roomSessionId?: string): Promise<RecordingRecord[]> {
    const { rows } = roomSessionId === undefined
      ? await this.#query<RecordingRow>('SELECT * FROM recordings ORDER BY created_at DESC, id DESC')
      : await this.#query<RecordingRow>('SELECT * FROM recordings WHERE room_session_id = $1 ORDER BY created_at DESC, id DESC', [roomSessionId]);
    return rows.map(recordingOf);
  }

  async listUnfinishedRecordings(nodeId?: string): Promise<RecordingRecord[]> {
    const { rows } = await this.#query<RecordingRow>(
      `SELECT * FROM recordings WHERE status IN ('starting', 'started', 'stopped') AND ($1::text IS NULL OR node_id = $1) ORDER BY created_at, id`,
      [nodeId ?? null],
    );
    return rows.map(recordingOf);
  }

  async deleteRecording(id: string): Promise<boolean> {
    return (await this.#query('DELETE FROM recordings WHERE id = $1', [id])).rowCount === 1;
  }

  /** Ends the pool once its connections are released; idempotent. */
  async close(): Promise<void> {
    this.#closing ??= this.#pool.end();
    return this.#closing;
  }
}
