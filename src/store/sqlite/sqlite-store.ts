/**
 * The embedded store: Node's built-in `node:sqlite` in the data directory, with versioned
 * migrations applied at open.
 */
import { DatabaseSync } from 'node:sqlite';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { KilnError } from '../../core/errors.ts';
import type {
  RecordingRecord,
  RecordingStatus,
  PageQuery,
  PullStreamRecord,
  RoomGrantRecord,
  RoomMemberRecord,
  RoomRecord,
  RoomSessionQuery,
  RoomSessionRecord,
  RoomTokenRecord,
  Store,
} from '../store.ts';
import { SQLITE_EVENTS_MIGRATION, SqliteEventStore } from './sqlite-events.ts';

/** Schema migrations, applied in order; each runs once (tracked by PRAGMA user_version). */
const MIGRATIONS: string[] = [
  `CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL)`,
  `CREATE TABLE pull_streams (
     vhost TEXT NOT NULL, app TEXT NOT NULL, name TEXT NOT NULL,
     urls TEXT NOT NULL, properties TEXT NOT NULL, created_at TEXT NOT NULL,
     PRIMARY KEY (vhost, app, name))`,
  `CREATE TABLE room_sessions (
     id TEXT PRIMARY KEY, room_id TEXT, name TEXT NOT NULL, settings TEXT NOT NULL, openvidu TEXT,
     status TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, start_time TEXT, end_time TEXT, end_reason TEXT);
   CREATE INDEX room_sessions_status ON room_sessions (status);
   CREATE INDEX room_sessions_created ON room_sessions (created_at);
   CREATE TABLE room_members (
     id TEXT PRIMARY KEY, room_session_id TEXT NOT NULL, role TEXT NOT NULL, server_data TEXT NOT NULL,
     client_data TEXT NOT NULL, remote_address TEXT NOT NULL, joined_at TEXT NOT NULL, left_at TEXT, leave_reason TEXT);
   CREATE INDEX room_members_session ON room_members (room_session_id);
   CREATE TABLE room_tokens (
     token TEXT PRIMARY KEY, room_session_id TEXT NOT NULL, role TEXT NOT NULL, data TEXT NOT NULL,
     created_at TEXT NOT NULL, used_at TEXT);
   CREATE INDEX room_tokens_session ON room_tokens (room_session_id)`,
  `CREATE TABLE rooms (
     id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, settings TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
   CREATE INDEX rooms_order ON rooms (created_at, id);
   CREATE INDEX room_sessions_order ON room_sessions (created_at, id);
   CREATE INDEX room_sessions_room ON room_sessions (room_id, created_at, id);
   CREATE INDEX room_sessions_name ON room_sessions (name, created_at, id);
   CREATE INDEX room_sessions_status_order ON room_sessions (status, created_at, id);
   ALTER TABLE room_members ADD COLUMN name TEXT NOT NULL DEFAULT '';
   CREATE TABLE room_grants (
     token TEXT PRIMARY KEY, room_id TEXT NOT NULL, user_name TEXT NOT NULL, role TEXT NOT NULL, permissions TEXT NOT NULL,
     created_at TEXT NOT NULL, expires_at TEXT NOT NULL, used_at TEXT)`,
  `CREATE TABLE recordings (
     id TEXT PRIMARY KEY, uuid TEXT NOT NULL UNIQUE, room_session_id TEXT NOT NULL, session_id TEXT NOT NULL, name TEXT NOT NULL,
     status TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, stopped_at TEXT,
     duration REAL NOT NULL, size INTEGER NOT NULL, has_audio INTEGER NOT NULL, has_video INTEGER NOT NULL, reason TEXT);
   CREATE INDEX recordings_order ON recordings (created_at, id);
   CREATE INDEX recordings_session ON recordings (room_session_id, created_at);
   CREATE INDEX recordings_status ON recordings (status)`,
  `ALTER TABLE room_sessions ADD COLUMN node_id TEXT NOT NULL DEFAULT '';
   ALTER TABLE pull_streams ADD COLUMN node_id TEXT NOT NULL DEFAULT '';
   ALTER TABLE recordings ADD COLUMN node_id TEXT NOT NULL DEFAULT ''`,
  SQLITE_EVENTS_MIGRATION,
];

interface RecordingRow {
  id: string; uuid: string; room_session_id: string; session_id: string; name: string; status: string; created_at: string;
  updated_at: string; stopped_at: string | null; duration: number; size: number; has_audio: number; has_video: number; reason: string | null; node_id: string;
}

const recordingOf = (r: RecordingRow): RecordingRecord => ({
  id: r.id, uuid: r.uuid, roomSessionId: r.room_session_id, sessionId: r.session_id, name: r.name, status: r.status as RecordingStatus,
  createdAt: r.created_at, updatedAt: r.updated_at, stoppedAt: r.stopped_at, duration: r.duration, size: r.size,
  hasAudio: r.has_audio === 1, hasVideo: r.has_video === 1, reason: r.reason, nodeId: r.node_id,
});

interface RoomSessionRow {
  id: string; room_id: string | null; name: string; settings: string; openvidu: string | null; status: string | null;
  created_at: string; updated_at: string; start_time: string | null; end_time: string | null; end_reason: string | null;
  node_id: string;
}

function roomSessionOf(r: RoomSessionRow): RoomSessionRecord {
  return {
    id: r.id, roomId: r.room_id, name: r.name, settings: JSON.parse(r.settings), openvidu: r.openvidu ? JSON.parse(r.openvidu) : null,
    status: r.status as RoomSessionRecord['status'], createdAt: r.created_at, updatedAt: r.updated_at,
    startTime: r.start_time, endTime: r.end_time, endReason: r.end_reason, nodeId: r.node_id,
  };
}

/** The WHERE and ORDER BY of a newest-first page over (created_at, id). */
function pageClause(q: PageQuery, where: string[], params: (string | number)[]): string {
  if (q.before) {
    where.push('(created_at, id) < (?, ?)');
    params.push(q.before.createdAt, q.before.id);
  }
  if (q.after) {
    where.push('(created_at, id) > (?, ?)');
    params.push(q.after.createdAt, q.after.id);
  }
  const order = q.after ? 'ASC' : 'DESC';
  params.push(q.limit);
  return `${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at ${order}, id ${order} LIMIT ?`;
}


interface RoomRow { id: string; name: string; settings: string; created_at: string; updated_at: string }
const roomOf = (r: RoomRow): RoomRecord => ({ id: r.id, name: r.name, settings: JSON.parse(r.settings), createdAt: r.created_at, updatedAt: r.updated_at });

export class SqliteStore implements Store {
  readonly #db: DatabaseSync;
  #closed = false;
  readonly events: SqliteEventStore;

  /** Opens (creating when needed) `kiln.db` in `dataDir`. */
  constructor(dataDir: string) {
    mkdirSync(dataDir, { recursive: true });
    this.#db = new DatabaseSync(join(dataDir, 'kiln.db'));
    this.#db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000');
    this.#migrate();
    this.events = new SqliteEventStore(this.#db);
  }

  #migrate(): void {
    const row = this.#db.prepare('PRAGMA user_version').get() as { user_version: number };
    for (let v = row.user_version; v < MIGRATIONS.length; v++) {
      this.#db.exec('BEGIN');
      try {
        this.#db.exec(MIGRATIONS[v]);
        this.#db.exec(`PRAGMA user_version = ${v + 1}`);
        this.#db.exec('COMMIT');
      } catch (err) {
        this.#db.exec('ROLLBACK');
        throw err;
      }
    }
  }

  async getSetting(key: string): Promise<string | undefined> {
    const row = this.#db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as { value: string } | undefined;
    return row?.value;
  }

  async setSetting(key: string, value: string): Promise<void> {
    this.#db
      .prepare('INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at')
      .run(key, value, new Date().toISOString());
  }

  async claimSetting(key: string, value: string): Promise<string> {
    this.#db.prepare('INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(key) DO NOTHING').run(key, value, new Date().toISOString());
    return (await this.getSetting(key))!;
  }

  async listPullStreams(nodeId?: string): Promise<PullStreamRecord[]> {
    const rows = this.#db.prepare(`SELECT vhost, app, name, urls, properties, created_at, node_id FROM pull_streams
      WHERE (? IS NULL OR node_id = ?) ORDER BY created_at`).all(nodeId ?? null, nodeId ?? null) as {
      vhost: string; app: string; name: string; urls: string; properties: string; created_at: string; node_id: string;
    }[];
    return rows.map((r) => ({ vhost: r.vhost, app: r.app, name: r.name, urls: JSON.parse(r.urls), properties: JSON.parse(r.properties), createdAt: r.created_at, nodeId: r.node_id }));
  }

  async putPullStream(record: PullStreamRecord): Promise<void> {
    this.#db
      .prepare('INSERT OR REPLACE INTO pull_streams (vhost, app, name, urls, properties, created_at, node_id) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(record.vhost, record.app, record.name, JSON.stringify(record.urls), JSON.stringify(record.properties), record.createdAt, record.nodeId);
  }

  async deletePullStream(vhost: string, app: string, name: string, nodeId?: string): Promise<void> {
    this.#db.prepare('DELETE FROM pull_streams WHERE vhost = ? AND app = ? AND name = ? AND (? IS NULL OR node_id = ?)')
      .run(vhost, app, name, nodeId ?? null, nodeId ?? null);
  }

  async putRoomSession(r: RoomSessionRecord): Promise<void> {
    this.#db
      .prepare(`INSERT OR REPLACE INTO room_sessions (id, room_id, name, settings, openvidu, status, created_at, updated_at, start_time, end_time, end_reason, node_id)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(r.id, r.roomId, r.name, JSON.stringify(r.settings), r.openvidu ? JSON.stringify(r.openvidu) : null, r.status,
        r.createdAt, r.updatedAt, r.startTime, r.endTime, r.endReason, r.nodeId);
  }

  async getRoomSession(id: string): Promise<RoomSessionRecord | undefined> {
    const row = this.#db.prepare('SELECT * FROM room_sessions WHERE id = ?').get(id) as RoomSessionRow | undefined;
    return row && roomSessionOf(row);
  }

  async listOpenRoomSessions(nodeId?: string): Promise<RoomSessionRecord[]> {
    const rows = this.#db.prepare(`SELECT * FROM room_sessions WHERE (status IS NULL OR status = 'in-progress') AND (? IS NULL OR node_id = ?)
      ORDER BY created_at`).all(nodeId ?? null, nodeId ?? null) as unknown as RoomSessionRow[];
    return rows.map(roomSessionOf);
  }

  async putRoomMember(m: RoomMemberRecord): Promise<void> {
    this.#db
      .prepare(`INSERT OR REPLACE INTO room_members (id, room_session_id, name, role, server_data, client_data, remote_address, joined_at, left_at, leave_reason)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(m.id, m.roomSessionId, m.name, m.role, m.serverData, m.clientData, m.remoteAddress, m.joinedAt, m.leftAt, m.leaveReason);
  }

  async listRoomMembers(roomSessionId: string): Promise<RoomMemberRecord[]> {
    const rows = this.#db.prepare('SELECT * FROM room_members WHERE room_session_id = ? ORDER BY joined_at, id').all(roomSessionId) as {
      id: string; room_session_id: string; name: string; role: string; server_data: string; client_data: string; remote_address: string;
      joined_at: string; left_at: string | null; leave_reason: string | null;
    }[];
    return rows.map((r) => ({
      id: r.id, roomSessionId: r.room_session_id, name: r.name, role: r.role, serverData: r.server_data, clientData: r.client_data,
      remoteAddress: r.remote_address, joinedAt: r.joined_at, leftAt: r.left_at, leaveReason: r.leave_reason,
    }));
  }

  async putRoomToken(t: RoomTokenRecord): Promise<void> {
    this.#db
      .prepare('INSERT OR REPLACE INTO room_tokens (token, room_session_id, role, data, created_at, used_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(t.token, t.roomSessionId, t.role, t.data, t.createdAt, t.usedAt);
  }

  async listOpenRoomTokens(nodeId?: string): Promise<RoomTokenRecord[]> {
    const rows = this.#db.prepare(`SELECT t.* FROM room_tokens t JOIN room_sessions s ON s.id = t.room_session_id
      WHERE (s.status IS NULL OR s.status = 'in-progress') AND (? IS NULL OR s.node_id = ?) ORDER BY t.created_at`).all(nodeId ?? null, nodeId ?? null) as {
      token: string; room_session_id: string; role: string; data: string; created_at: string; used_at: string | null;
    }[];
    return rows.map((r) => ({ token: r.token, roomSessionId: r.room_session_id, role: r.role, data: r.data, createdAt: r.created_at, usedAt: r.used_at }));
  }

  async useRoomToken(token: string, at: string): Promise<boolean> {
    const result = this.#db.prepare('UPDATE room_tokens SET used_at = ? WHERE token = ? AND used_at IS NULL').run(at, token);
    return Number(result.changes) === 1;
  }

  async completeInProgressRoomSessions(endTime: string, reason: string, nodeId?: string): Promise<number> {
    this.#db.exec('BEGIN');
    try {
      const node = nodeId ?? null;
      const open = `SELECT id FROM room_sessions WHERE status = 'in-progress' AND (? IS NULL OR node_id = ?)`;
      this.#db.prepare(`UPDATE room_members SET left_at = max(joined_at, ?), leave_reason = ? WHERE left_at IS NULL AND room_session_id IN (${open})`)
        .run(endTime, reason, node, node);
      const result = this.#db.prepare(`UPDATE room_sessions SET status = 'completed', end_time = max(coalesce(start_time, ?), ?), end_reason = ?, updated_at = ?
        WHERE status = 'in-progress' AND (? IS NULL OR node_id = ?)`).run(endTime, endTime, reason, new Date().toISOString(), node, node);
      this.#db.exec('COMMIT');
      return Number(result.changes);
    } catch (err) {
      this.#db.exec('ROLLBACK');
      throw err;
    }
  }

  async putRoom(r: RoomRecord): Promise<void> {
    const other = this.#db.prepare('SELECT id FROM rooms WHERE name = ? AND id <> ?').get(r.name, r.id);
    if (other) throw new KilnError('CONFLICT', `A room named ${r.name} already exists`, { parameter: 'name', rule: 'value_not_unique' });
    this.#db.prepare('INSERT OR REPLACE INTO rooms (id, name, settings, created_at, updated_at) VALUES (?, ?, ?, ?, ?)')
      .run(r.id, r.name, JSON.stringify(r.settings), r.createdAt, r.updatedAt);
  }

  async getRoom(id: string): Promise<RoomRecord | undefined> {
    const row = this.#db.prepare('SELECT * FROM rooms WHERE id = ?').get(id) as RoomRow | undefined;
    return row && roomOf(row);
  }

  async getRoomByName(name: string): Promise<RoomRecord | undefined> {
    const row = this.#db.prepare('SELECT * FROM rooms WHERE name = ?').get(name) as RoomRow | undefined;
    return row && roomOf(row);
  }

  async listRooms(q: PageQuery): Promise<RoomRecord[]> {
    const params: (string | number)[] = [];
    const rows = this.#db.prepare(`SELECT * FROM rooms ${pageClause(q, [], params)}`).all(...params) as unknown as RoomRow[];
    return (q.after ? rows.reverse() : rows).map(roomOf);
  }

  async deleteRoom(id: string): Promise<boolean> {
    // Its tokens go with it: they could only ever join this room.
    this.#db.prepare('DELETE FROM room_grants WHERE room_id = ?').run(id);
    return Number(this.#db.prepare('DELETE FROM rooms WHERE id = ?').run(id).changes) === 1;
  }

  async listRoomSessions(q: RoomSessionQuery): Promise<RoomSessionRecord[]> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (q.roomId !== undefined) {
      where.push('room_id = ?');
      params.push(q.roomId);
    }
    if (q.name !== undefined) {
      where.push('name = ?');
      params.push(q.name);
    }
    if (q.nameContains !== undefined) {
      // A substring, case sensitive as names are (LIKE would fold ASCII case).
      where.push('instr(name, ?) > 0');
      params.push(q.nameContains);
    }
    if (q.status !== undefined) {
      where.push('status = ?');
      params.push(q.status);
    }
    const rows = this.#db.prepare(`SELECT * FROM room_sessions ${pageClause(q, where, params)}`).all(...params) as unknown as RoomSessionRow[];
    return (q.after ? rows.reverse() : rows).map(roomSessionOf);
  }

  async memberSeconds(roomSessionIds: string[], now: string): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (roomSessionIds.length === 0) return out;
    const rows = this.#db.prepare(`SELECT room_session_id AS id, SUM((julianday(coalesce(left_at, ?)) - julianday(joined_at)) * 86400) AS seconds
      FROM room_members WHERE room_session_id IN (${roomSessionIds.map(() => '?').join(',')}) GROUP BY room_session_id`)
      .all(now, ...roomSessionIds) as { id: string; seconds: number }[];
    for (const r of rows) out.set(r.id, Math.max(0, r.seconds));
    return out;
  }

  async putRoomGrant(g: RoomGrantRecord): Promise<void> {
    this.#db.prepare(`INSERT OR REPLACE INTO room_grants (token, room_id, user_name, role, permissions, created_at, expires_at, used_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)`).run(g.token, g.roomId, g.userName, g.role, JSON.stringify(g.permissions), g.createdAt, g.expiresAt, g.usedAt);
  }

  async getRoomGrant(token: string): Promise<RoomGrantRecord | undefined> {
    const r = this.#db.prepare('SELECT * FROM room_grants WHERE token = ?').get(token) as {
      token: string; room_id: string; user_name: string; role: string; permissions: string; created_at: string; expires_at: string; used_at: string | null;
    } | undefined;
    return r && { token: r.token, roomId: r.room_id, userName: r.user_name, role: r.role, permissions: JSON.parse(r.permissions), createdAt: r.created_at, expiresAt: r.expires_at, usedAt: r.used_at };
  }

  async useRoomGrant(token: string, at: string): Promise<boolean> {
    return Number(this.#db.prepare('UPDATE room_grants SET used_at = ? WHERE token = ? AND used_at IS NULL').run(at, token).changes) === 1;
  }

  async pruneRoomGrants(now: string, usedBefore: string): Promise<number> {
    return Number(this.#db.prepare('DELETE FROM room_grants WHERE expires_at < ? OR used_at < ?').run(now, usedBefore).changes);
  }

  async putRecording(r: RecordingRecord): Promise<void> {
    this.#db.prepare(`INSERT OR REPLACE INTO recordings (id, uuid, room_session_id, session_id, name, status, created_at, updated_at,
      stopped_at, duration, size, has_audio, has_video, reason, node_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(r.id, r.uuid, r.roomSessionId, r.sessionId, r.name, r.status, r.createdAt, r.updatedAt, r.stoppedAt, r.duration, r.size,
        r.hasAudio ? 1 : 0, r.hasVideo ? 1 : 0, r.reason, r.nodeId);
  }

  async getRecording(id: string): Promise<RecordingRecord | undefined> {
    const row = this.#db.prepare('SELECT * FROM recordings WHERE id = ? OR uuid = ?').get(id, id) as RecordingRow | undefined;
    return row && recordingOf(row);
  }

  async listRecordings(roomSessionId?: string): Promise<RecordingRecord[]> {
    const rows = (roomSessionId === undefined
      ? this.#db.prepare('SELECT * FROM recordings ORDER BY created_at DESC, id DESC').all()
      : this.#db.prepare('SELECT * FROM recordings WHERE room_session_id = ? ORDER BY created_at DESC, id DESC').all(roomSessionId)) as unknown as RecordingRow[];
    return rows.map(recordingOf);
  }

  async listUnfinishedRecordings(nodeId?: string): Promise<RecordingRecord[]> {
    const rows = this.#db.prepare(`SELECT * FROM recordings WHERE status IN ('starting', 'started', 'stopped')
      AND (? IS NULL OR node_id = ?) ORDER BY created_at`).all(nodeId ?? null, nodeId ?? null) as unknown as RecordingRow[];
    return rows.map(recordingOf);
  }

  async deleteRecording(id: string): Promise<boolean> {
    return Number(this.#db.prepare('DELETE FROM recordings WHERE id = ?').run(id).changes) === 1;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}
