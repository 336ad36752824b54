/**
 * The event outbox in the embedded store (tables `events`, `event_deliveries`, `event_pairs`, made
 * by the SQLite migrations). Statements are prepared once: events are written at session rate.
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { EventAppend, EventDeliveryRecord, EventPairChange, EventRecord, EventStore, NewEventRecord, OpenEventPair } from '../store.ts';

/** The outbox's schema (one SQLite migration). */
export const SQLITE_EVENTS_MIGRATION = `CREATE TABLE events (
     seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, time TEXT NOT NULL,
     node_id TEXT NOT NULL, subject TEXT NOT NULL, data TEXT NOT NULL);
   CREATE INDEX events_time ON events (time);
   CREATE TABLE event_deliveries (
     endpoint TEXT NOT NULL, seq INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
     last_attempt_at TEXT, delivered_at TEXT, PRIMARY KEY (endpoint, seq));
   CREATE INDEX event_deliveries_pending ON event_deliveries (endpoint, seq) WHERE delivered_at IS NULL;
   CREATE INDEX event_deliveries_seq ON event_deliveries (seq);
   CREATE TABLE event_pairs (
     key TEXT PRIMARY KEY, node_id TEXT NOT NULL, subject TEXT NOT NULL, close_type TEXT NOT NULL,
     data TEXT NOT NULL, opened_seq INTEGER NOT NULL);
   CREATE INDEX event_pairs_node ON event_pairs (node_id, opened_seq)`;

/** Events deleted per transaction when pruning. */
const PRUNE_CHUNK = 1000;

interface EventRow { seq: number; id: string; type: string; time: string; node_id: string; subject: string; data: string }
interface DeliveryRow { seq: number; endpoint: string; attempts: number; last_error: string | null; last_attempt_at: string | null; delivered_at: string | null }

export const eventOf = (r: EventRow): EventRecord => ({
  seq: Number(r.seq), id: r.id, type: r.type, time: r.time, nodeId: r.node_id, subject: r.subject, data: typeof r.data === 'string' ? JSON.parse(r.data) : r.data,
});

export const deliveryOf = (r: DeliveryRow): EventDeliveryRecord => ({
  endpoint: r.endpoint, attempts: Number(r.attempts), lastError: r.last_error, lastAttemptAt: r.last_attempt_at, deliveredAt: r.delivered_at,
});

export class SqliteEventStore implements EventStore {
  readonly #db: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();

  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  #sql(text: string): StatementSync {
    let statement = this.#statements.get(text);
    if (!statement) this.#statements.set(text, (statement = this.#db.prepare(text)));
    return statement;
  }

  async append(events: EventAppend[], endpoints: string[]): Promise<(number | undefined)[]> {
    const seqs: (number | undefined)[] = [];
    this.#db.exec('BEGIN');
    try {
      for (const { event, pair } of events) seqs.push(this.#appendOne(event, endpoints, pair));
      this.#db.exec('COMMIT');
      return seqs;
    } catch (err) {
      this.#db.exec('ROLLBACK');
      throw err;
    }
  }

  #appendOne(event: NewEventRecord, endpoints: string[], pair: EventPairChange | undefined): number | undefined {
    if (pair && 'close' in pair && Number(this.#sql('DELETE FROM event_pairs WHERE key = ?').run(pair.close).changes) === 0) return undefined;
    const data = JSON.stringify(event.data);
    const inserted = this.#sql('INSERT OR IGNORE INTO events (id, type, time, node_id, subject, data) VALUES (?, ?, ?, ?, ?, ?)')
      .run(event.id, event.type, event.time, event.nodeId, event.subject, data);
    if (Number(inserted.changes) === 0) return undefined;
    const seq = Number(inserted.lastInsertRowid);
    for (const endpoint of endpoints) this.#sql('INSERT INTO event_deliveries (endpoint, seq) VALUES (?, ?)').run(endpoint, seq);
    if (pair && 'open' in pair) {
      this.#sql('INSERT OR REPLACE INTO event_pairs (key, node_id, subject, close_type, data, opened_seq) VALUES (?, ?, ?, ?, ?, ?)')
        .run(pair.open, event.nodeId, event.subject, pair.closeType, data, seq);
    }
    return seq;
  }

  async openPairs(nodeId?: string): Promise<OpenEventPair[]> {
    const rows = this.#sql('SELECT key, subject, close_type, data, node_id, opened_seq FROM event_pairs WHERE ? IS NULL OR node_id = ? ORDER BY opened_seq DESC')
      .all(nodeId ?? null, nodeId ?? null) as unknown as { key: string; subject: string; close_type: string; data: string; node_id: string; opened_seq: number }[];
    return rows.map((r) => ({ key: r.key, subject: r.subject, closeType: r.close_type, data: JSON.parse(r.data), nodeId: r.node_id, openedSeq: Number(r.opened_seq) }));
  }

  async pairNodes(): Promise<string[]> {
    return (this.#sql('SELECT DISTINCT node_id FROM event_pairs').all() as { node_id: string }[]).map((r) => r.node_id);
  }

  async pending(endpoint: string, limit: number): Promise<(EventRecord & { attempts: number })[]> {
    const rows = this.#sql(`SELECT e.*, d.attempts FROM event_deliveries d JOIN events e ON e.seq = d.seq
      WHERE d.endpoint = ? AND d.delivered_at IS NULL ORDER BY d.seq LIMIT ?`).all(endpoint, limit) as unknown as (EventRow & { attempts: number })[];
    return rows.map((r) => ({ ...eventOf(r), attempts: Number(r.attempts) }));
  }

  async delivered(endpoint: string, seqs: number[], at: string): Promise<void> {
    const mark = this.#sql('UPDATE event_deliveries SET delivered_at = ?, attempts = attempts + 1, last_attempt_at = ? WHERE endpoint = ? AND seq = ?');
    this.#db.exec('BEGIN');
    try {
      for (const seq of seqs) mark.run(at, at, endpoint, seq);
      this.#db.exec('COMMIT');
    } catch (err) {
      this.#db.exec('ROLLBACK');
      throw err;
    }
  }

  async failed(endpoint: string, seq: number, error: string, at: string): Promise<void> {
    this.#sql('UPDATE event_deliveries SET attempts = attempts + 1, last_error = ?, last_attempt_at = ? WHERE endpoint = ? AND seq = ?').run(error.slice(0, 500), at, endpoint, seq);
  }

  async list(q: { limit: number; offset: number; pending?: boolean }): Promise<{ total: number; events: (EventRecord & { deliveries: EventDeliveryRecord[] })[] }> {
    const where = q.pending ? 'WHERE seq IN (SELECT seq FROM event_deliveries WHERE delivered_at IS NULL)' : '';
    const total = Number((this.#sql(`SELECT count(*) AS n FROM events ${where}`).get() as { n: number }).n);
    const rows = this.#sql(`SELECT * FROM events ${where} ORDER BY seq DESC LIMIT ? OFFSET ?`).all(q.limit, q.offset) as unknown as EventRow[];
    const events = rows.map((r) => ({ ...eventOf(r), deliveries: [] as EventDeliveryRecord[] }));
    if (events.length > 0) {
      const bySeq = new Map(events.map((e) => [e.seq, e]));
      const deliveries = this.#db.prepare(`SELECT * FROM event_deliveries WHERE seq IN (${events.map(() => '?').join(',')}) ORDER BY endpoint`)
        .all(...events.map((e) => e.seq)) as unknown as DeliveryRow[];
      for (const d of deliveries) bySeq.get(Number(d.seq))?.deliveries.push(deliveryOf(d));
    }
    return { total, events };
  }

  async prune(before: string): Promise<number> {
    // In chunks, yielding between them: this runs on the thread that carries the media.
    const old = `SELECT e.seq FROM events e WHERE e.time < ?
      AND NOT EXISTS (SELECT 1 FROM event_deliveries d WHERE d.seq = e.seq AND d.delivered_at IS NULL) LIMIT ${PRUNE_CHUNK}`;
    let total = 0;
    for (;;) {
      this.#db.exec('BEGIN');
      let deleted: number;
      try {
        const seqs = (this.#sql(old).all(before) as { seq: number }[]).map((r) => r.seq);
        for (const seq of seqs) {
          this.#sql('DELETE FROM event_deliveries WHERE seq = ?').run(seq);
          this.#sql('DELETE FROM events WHERE seq = ?').run(seq);
        }
        deleted = seqs.length;
        this.#db.exec('COMMIT');
      } catch (err) {
        this.#db.exec('ROLLBACK');
        throw err;
      }
      total += deleted;
      if (deleted < PRUNE_CHUNK) return total;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}
