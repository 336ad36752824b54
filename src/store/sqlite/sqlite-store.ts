/**
 * The embedded store: Node's built-in `node:sqlite` in the data directory, with versioned
 * migrations applied at open.
 */
import { DatabaseSync } from 'node:sqlite';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { PullStreamRecord, RoomMemberRecord, RoomSessionRecord, RoomTokenRecord, Store } from '../store.ts';

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
];

interface RoomSessionRow {
  id: string; room_id: string | null; name: string; settings: string; openvidu: string | null; status: string | null;
  created_at: string; updated_at: string; start_time: string | null; end_time: string | null; end_reason: string | null;
}

function roomSessionOf(r: RoomSessionRow): RoomSessionRecord {
  return {
    id: r.id, roomId: r.room_id, name: r.name, settings: JSON.parse(r.settings), openvidu: r.openvidu ? JSON.parse(r.openvidu) : null,
    status: r.status as RoomSessionRecord['status'], createdAt: r.created_at, updatedAt: r.updated_at,
    startTime: r.start_time, endTime: r.end_time, endReason: r.end_reason,
  };
}

export class SqliteStore implements Store {
  readonly #db: DatabaseSync;
  #closed = false;

  /** Opens (creating when needed) `kiln.db` in `dataDir`. */
  constructor(dataDir: string) {
    mkdirSync(dataDir, { recursive: true });
    this.#db = new DatabaseSync(join(dataDir, 'kiln.db'));
    this.#db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000');
    this.#migrate();
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

  async listPullStreams(): Promise<PullStreamRecord[]> {
    const rows = this.#db.prepare('SELECT vhost, app, name, urls, properties, created_at FROM pull_streams ORDER BY created_at').all() as {
      vhost: string; app: string; name: string; urls: string; properties: string; created_at: string;
    }[];
    return rows.map((r) => ({ vhost: r.vhost, app: r.app, name: r.name, urls: JSON.parse(r.urls), properties: JSON.parse(r.properties), createdAt: r.created_at }));
  }

  async putPullStream(record: PullStreamRecord): Promise<void> {
    this.#db
      .prepare('INSERT OR REPLACE INTO pull_streams (vhost, app, name, urls, properties, created_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(record.vhost, record.app, record.name, JSON.stringify(record.urls), JSON.stringify(record.properties), record.createdAt);
  }

  async deletePullStream(vhost: string, app: string, name: string): Promise<void> {
    this.#db.prepare('DELETE FROM pull_streams WHERE vhost = ? AND app = ? AND name = ?').run(vhost, app, name);
  }

  async putRoomSession(r: RoomSessionRecord): Promise<void> {
    this.#db
      .prepare(`INSERT OR REPLACE INTO room_sessions (id, room_id, name, settings, openvidu, status, created_at, updated_at, start_time, end_time, end_reason)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(r.id, r.roomId, r.name, JSON.stringify(r.settings), r.openvidu ? JSON.stringify(r.openvidu) : null, r.status,
        r.createdAt, r.updatedAt, r.startTime, r.endTime, r.endReason);
  }

  async getRoomSession(id: string): Promise<RoomSessionRecord | undefined> {
    const row = this.#db.prepare('SELECT * FROM room_sessions WHERE id = ?').get(id) as RoomSessionRow | undefined;
    return row && roomSessionOf(row);
  }

  async listOpenRoomSessions(): Promise<RoomSessionRecord[]> {
    const rows = this.#db.prepare(`SELECT * FROM room_sessions WHERE status IS NULL OR status = 'in-progress' ORDER BY created_at`).all() as unknown as RoomSessionRow[];
    return rows.map(roomSessionOf);
  }

  async putRoomMember(m: RoomMemberRecord): Promise<void> {
    this.#db
      .prepare(`INSERT OR REPLACE INTO room_members (id, room_session_id, role, server_data, client_data, remote_address, joined_at, left_at, leave_reason)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(m.id, m.roomSessionId, m.role, m.serverData, m.clientData, m.remoteAddress, m.joinedAt, m.leftAt, m.leaveReason);
  }

  async listRoomMembers(roomSessionId: string): Promise<RoomMemberRecord[]> {
    const rows = this.#db.prepare('SELECT * FROM room_members WHERE room_session_id = ? ORDER BY joined_at').all(roomSessionId) as {
      id: string; room_session_id: string; role: string; server_data: string; client_data: string; remote_address: string;
      joined_at: string; left_at: string | null; leave_reason: string | null;
    }[];
    return rows.map((r) => ({
      id: r.id, roomSessionId: r.room_session_id, role: r.role, serverData: r.server_data, clientData: r.client_data,
      remoteAddress: r.remote_address, joinedAt: r.joined_at, leftAt: r.left_at, leaveReason: r.leave_reason,
    }));
  }

  async putRoomToken(t: RoomTokenRecord): Promise<void> {
    this.#db
      .prepare('INSERT OR REPLACE INTO room_tokens (token, room_session_id, role, data, created_at, used_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(t.token, t.roomSessionId, t.role, t.data, t.createdAt, t.usedAt);
  }

  async listOpenRoomTokens(): Promise<RoomTokenRecord[]> {
    const rows = this.#db.prepare(`SELECT t.* FROM room_tokens t JOIN room_sessions s ON s.id = t.room_session_id
      WHERE s.status IS NULL OR s.status = 'in-progress' ORDER BY t.created_at`).all() as {
      token: string; room_session_id: string; role: string; data: string; created_at: string; used_at: string | null;
    }[];
    return rows.map((r) => ({ token: r.token, roomSessionId: r.room_session_id, role: r.role, data: r.data, createdAt: r.created_at, usedAt: r.used_at }));
  }

  async useRoomToken(token: string, at: string): Promise<boolean> {
    const result = this.#db.prepare('UPDATE room_tokens SET used_at = ? WHERE token = ? AND used_at IS NULL').run(at, token);
    return Number(result.changes) === 1;
  }

  async completeInProgressRoomSessions(endTime: string, reason: string): Promise<number> {
    this.#db.exec('BEGIN');
    try {
      const open = `SELECT id FROM room_sessions WHERE status = 'in-progress'`;
      this.#db.prepare(`UPDATE room_members SET left_at = max(joined_at, ?), leave_reason = ? WHERE left_at IS NULL AND room_session_id IN (${open})`)
        .run(endTime, reason);
      const result = this.#db.prepare(`UPDATE room_sessions SET status = 'completed', end_time = max(coalesce(start_time, ?), ?), end_reason = ?, updated_at = ?
        WHERE status = 'in-progress'`).run(endTime, endTime, reason, new Date().toISOString());
      this.#db.exec('COMMIT');
      return Number(result.changes);
    } catch (err) {
      this.#db.exec('ROLLBACK');
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}
