/**
 * The event outbox in the shared store (cluster mode): the same tables as the embedded store's,
 * shared by every node; one node at a time delivers them (src/events/delivery.ts).
 */
import type pg from 'pg';
import type { EventAppend, EventDeliveryRecord, EventPairChange, EventRecord, EventStore, NewEventRecord, OpenEventPair } from '../store.ts';
import { deliveryOf, eventOf } from '../sqlite/sqlite-events.ts';

/** The outbox's schema (one PostgreSQL migration). */
export const PG_EVENTS_MIGRATION = `CREATE TABLE events (
     seq bigserial PRIMARY KEY, id text COLLATE "C" NOT NULL UNIQUE, type text NOT NULL, time text COLLATE "C" NOT NULL,
     node_id text COLLATE "C" NOT NULL, subject text NOT NULL, data text NOT NULL);
   CREATE INDEX events_time ON events (time);
   CREATE TABLE event_deliveries (
     endpoint text COLLATE "C" NOT NULL, seq bigint NOT NULL, attempts int NOT NULL DEFAULT 0, last_error text,
     last_attempt_at text, delivered_at text, PRIMARY KEY (endpoint, seq));
   CREATE INDEX event_deliveries_pending ON event_deliveries (endpoint, seq) WHERE delivered_at IS NULL;
   CREATE INDEX event_deliveries_seq ON event_deliveries (seq);
   CREATE TABLE event_pairs (
     key text COLLATE "C" PRIMARY KEY, node_id text COLLATE "C" NOT NULL, subject text NOT NULL, close_type text NOT NULL,
     data text NOT NULL, opened_seq bigint NOT NULL);
   CREATE INDEX event_pairs_node ON event_pairs (node_id, opened_seq)`;

type Query = <R extends pg.QueryResultRow>(text: string, params?: unknown[]) => Promise<pg.QueryResult<R>>;
type Transaction = <T>(fn: (client: pg.PoolClient) => Promise<T>) => Promise<T>;

export class PgEventStore implements EventStore {
  readonly #query: Query;
  readonly #transaction: Transaction;

  constructor(query: Query, transaction: Transaction) {
    this.#query = query;
    this.#transaction = transaction;
  }

  append(events: EventAppend[], endpoints: string[]): Promise<(number | undefined)[]> {
    return this.#transaction(async (client) => {
      const seqs: (number | undefined)[] = [];
      for (const { event, pair } of events) seqs.push(await this.#appendOne(client, event, endpoints, pair));
      return seqs;
    });
  }

  async #appendOne(client: pg.PoolClient, event: NewEventRecord, endpoints: string[], pair: EventPairChange | undefined): Promise<number | undefined> {
    {
      if (pair && 'close' in pair && (await client.query('DELETE FROM event_pairs WHERE key = $1', [pair.close])).rowCount === 0) return undefined;
      const { rows } = await client.query<{ seq: string }>(
        `WITH e AS (INSERT INTO events (id, type, time, node_id, subject, data) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING RETURNING seq),
           d AS (INSERT INTO event_deliveries (endpoint, seq) SELECT unnest($7::text[]), seq FROM e)
         SELECT seq FROM e`,
        [event.id, event.type, event.time, event.nodeId, event.subject, JSON.stringify(event.data), endpoints]);
      // Written already (a retry after a commit whose outcome was unknown): nothing more to do.
      if (rows.length === 0) return undefined;
      const seq = Number(rows[0].seq);
      if (pair && 'open' in pair) {
        await client.query(`INSERT INTO event_pairs (key, node_id, subject, close_type, data, opened_seq) VALUES ($1, $2, $3, $4, $5, $6)
          ON CONFLICT (key) DO UPDATE SET node_id = excluded.node_id, subject = excluded.subject, close_type = excluded.close_type,
            data = excluded.data, opened_seq = excluded.opened_seq`,
        [pair.open, event.nodeId, event.subject, pair.closeType, JSON.stringify(event.data), seq]);
      }
      return seq;
    }
  }

  async openPairs(nodeId?: string): Promise<OpenEventPair[]> {
    const { rows } = await this.#query<{ key: string; subject: string; close_type: string; data: string; node_id: string; opened_seq: string }>(
      'SELECT key, subject, close_type, data, node_id, opened_seq FROM event_pairs WHERE $1::text IS NULL OR node_id = $1 ORDER BY opened_seq DESC', [nodeId ?? null]);
    return rows.map((r) => ({ key: r.key, subject: r.subject, closeType: r.close_type, data: JSON.parse(r.data), nodeId: r.node_id, openedSeq: Number(r.opened_seq) }));
  }

  async pairNodes(): Promise<string[]> {
    return (await this.#query<{ node_id: string }>('SELECT DISTINCT node_id FROM event_pairs')).rows.map((r) => r.node_id);
  }

  async pending(endpoint: string, limit: number): Promise<(EventRecord & { attempts: number })[]> {
    const { rows } = await this.#query(`SELECT e.*, d.attempts FROM event_deliveries d JOIN events e ON e.seq = d.seq
      WHERE d.endpoint = $1 AND d.delivered_at IS NULL ORDER BY d.seq LIMIT $2`, [endpoint, limit]);
    return rows.map((r) => ({ ...eventOf(r as never), attempts: Number(r.attempts) }));
  }

  async delivered(endpoint: string, seqs: number[], at: string): Promise<void> {
    await this.#query('UPDATE event_deliveries SET delivered_at = $1, attempts = attempts + 1, last_attempt_at = $1 WHERE endpoint = $2 AND seq = ANY($3::bigint[])', [at, endpoint, seqs]);
  }

  async failed(endpoint: string, seq: number, error: string, at: string): Promise<void> {
    await this.#query('UPDATE event_deliveries SET attempts = attempts + 1, last_error = $1, last_attempt_at = $2 WHERE endpoint = $3 AND seq = $4',
      [error.slice(0, 500), at, endpoint, seq]);
  }

  async list(q: { limit: number; offset: number; pending?: boolean }): Promise<{ total: number; events: (EventRecord & { deliveries: EventDeliveryRecord[] })[] }> {
    const where = q.pending ? 'WHERE seq IN (SELECT seq FROM event_deliveries WHERE delivered_at IS NULL)' : '';
    const total = Number((await this.#query<{ n: string }>(`SELECT count(*) AS n FROM events ${where}`)).rows[0].n);
    const { rows } = await this.#query(`SELECT * FROM events ${where} ORDER BY seq DESC LIMIT $1 OFFSET $2`, [q.limit, q.offset]);
    const events = rows.map((r) => ({ ...eventOf(r as never), deliveries: [] as EventDeliveryRecord[] }));
    if (events.length > 0) {
      const bySeq = new Map(events.map((e) => [e.seq, e]));
      const deliveries = await this.#query('SELECT * FROM event_deliveries WHERE seq = ANY($1::bigint[]) ORDER BY endpoint', [events.map((e) => e.seq)]);
      for (const d of deliveries.rows) bySeq.get(Number(d.seq))?.deliveries.push(deliveryOf(d as never));
    }
    return { total, events };
  }

  prune(before: string): Promise<number> {
    return this.#transaction(async (client) => {
      const old = `SELECT e.seq FROM events e WHERE e.time < $1
        AND NOT EXISTS (SELECT 1 FROM event_deliveries d WHERE d.seq = e.seq AND d.delivered_at IS NULL)`;
      await client.query(`DELETE FROM event_deliveries WHERE seq IN (${old})`, [before]);
      return (await client.query(`DELETE FROM events WHERE seq IN (${old})`, [before])).rowCount ?? 0;
    });
  }
}
