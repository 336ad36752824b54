/**
 * Cluster mode (SPEC.md §4): Kiln nodes sharing one PostgreSQL database.
 *
 * - Each node registers in `cluster_nodes` and heartbeats every second. A node whose heartbeat is
 *   older than `deadAfterMs` (5 s) is declared dead by any other node (claimed once, by an UPDATE),
 *   and what it held is closed in the shared state: its live streams and sessions, its room sessions.
 * - Each node mirrors its live streams and sessions into `live_streams` / `live_sessions` (a
 *   snapshot each, written when they open, change state or close, and their counters every 2 s), so
 *   any node answers with the cluster-wide view.
 * - Commands between nodes (kick a session, delete a stream, a control call for what another node
 *   holds) travel on one LISTEN/NOTIFY channel; the caller waits for the holder's answer, which
 *   comes once the holder has done it and its mirror shows it. An answer too large for a
 *   notification is left in `bus_replies` and fetched (and deleted) by the caller.
 * - A node that loses the database keeps its media going, reports itself unavailable (the control
 *   API answers 503), and rejoins when the database is back: it registers again and rewrites its
 *   whole mirror. It declares no other node dead until its own connection has been up for
 *   `deadAfterMs`, so that a database outage does not make every node look dead.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import type { Catalog } from '../core/catalog.ts';
import { errors, isErrorCode, isKilnError, KilnError } from '../core/errors.ts';
import type { Session } from '../core/session.ts';
import type { Stream } from '../core/stream.ts';
import type { Store } from '../store/store.ts';
import { inTransaction, unavailableIfLost } from '../store/postgres/pg-store.ts';
import { RemoteSession, RemoteStream, sessionSnapshot, streamSnapshot, type SessionSnapshot, type StreamSnapshot } from './snapshots.ts';

/** The NOTIFY channel every node listens on. */
const CHANNEL = 'kiln_bus';
/** NOTIFY payloads must stay under 8000 bytes. */
const MAX_PAYLOAD = 7900;

export interface ClusterOptions {
  /** `postgres://…` */
  url: string;
  nodeId: string;
  /** Where clients reach this node (KILN_PUBLIC_URL). */
  publicUrl: string;
  /** Where other nodes reach its control API. */
  apiUrl: string;
  /** Where other nodes pull its streams: `ovt://host:port`. */
  ovtUrl: string;
  catalog: Catalog;
  store: Store;
  logger: Logger;
  /** Default 1000. */
  heartbeatMs?: number;
  /** Default 5000. */
  deadAfterMs?: number;
  /** How long a command waits for the holder's answer, ms. Default 5000. */
  commandTimeoutMs?: number;
}

/** A node as the registry shows it. */
export interface ClusterNode {
  id: string;
  state: 'alive' | 'dead' | 'stopped';
  publicUrl: string;
  apiUrl: string;
  ovtUrl: string;
  startedAt: Date;
  heartbeatAt: Date;
  load: Record<string, unknown>;
}

/** Runs a command sent by another node; what it returns is the answer (small JSON). */
export type CommandHandler = (args: Record<string, unknown>) => Promise<unknown>;

interface BusMessage {
  /** To: a node id, or `*`. */
  t: string;
  /** From. */
  f: string;
  /** Request id. */
  i?: string;
  op?: string;
  a?: Record<string, unknown>;
  /** Answer. */
  r?: unknown;
  /** Error answer. */
  e?: { code: string; message: string };
  /** The answer is in `bus_replies` under the request id. */
  big?: true;
}

/** What a node's registry entry shows of its load: its sessions, streams and memory. */
export function nodeLoad(catalog: Catalog): { sessions: number; streams: number; rss: number } {
  let streams = 0;
  for (const _ of catalog.allStreams()) streams++;
  return { sessions: catalog.sessions.size, streams, rss: process.memoryUsage.rss() };
}

const streamKey = (vhost: string, app: string, name: string) => `${vhost}\u0000${app}\u0000${name}`;

export class Cluster {
  readonly nodeId: string;
  readonly #options: Required<Omit<ClusterOptions, 'catalog' | 'store' | 'logger'>> & Pick<ClusterOptions, 'catalog' | 'store' | 'logger'>;
  readonly #instance = randomUUID();
  readonly #pool: pg.Pool;
  #listener: pg.Client | undefined;
  #connecting: Promise<void> | undefined;
  /** Whether the database answered the last call. */
  #available = false;
  /** Since when the database has answered without a break (ms). */
  #upSince = 0;
  /** The whole mirror must be rewritten (at start, after an outage). */
  #resync = true;
  readonly #dirtySessions = new Set<string>();
  readonly #dirtyStreams = new Set<string>();
  /** The snapshot last written of each stream, to write only changes. */
  readonly #writtenStreams = new Map<string, string>();
  #flushing: Promise<void> | undefined;
  #flushAgain = false;
  #flushTimer: NodeJS.Timeout | undefined;
  #ticker: NodeJS.Timeout | undefined;
  #ticks = 0;
  #ticking = false;
  readonly #pending = new Map<string, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  readonly #handlers = new Map<string, CommandHandler>();
  readonly #deadWatchers: ((nodeIds: string[]) => void)[] = [];
  readonly #revivalWatchers: (() => void)[] = [];
  /** The tick under way, awaited by `stop`. */
  #tickRun: Promise<void> | undefined;
  /** Whether this process is the registered holder of the node id (what `stop` may clean). */
  #registered = false;
  /** Another process holds this node id: logged once. */
  #evictedLogged = false;
  #stopped = false;
  #wasDown = false;

  constructor(options: ClusterOptions) {
    this.nodeId = options.nodeId;
    this.#options = { heartbeatMs: 1000, deadAfterMs: 5000, commandTimeoutMs: 5000, ...options };
    this.#pool = new pg.Pool({ connectionString: options.url, max: 4, connectionTimeoutMillis: 2000, query_timeout: 3000 });
    this.#pool.on('error', () => {});
  }

  /** Whether the shared database is reachable (control calls answer 503 while it is not). */
  get available(): boolean {
    return this.#available;
  }

  /**
   * Registers the node (waiting out a stale registration of the same id left by a crash; refusing
   * one that is still heartbeating), starts the heartbeat, the mirror and the bus. Resolves with
   * when this node was last alive before (its previous heartbeat), for the room sessions it left.
   */
  async start(): Promise<Date | undefined> {
    const o = this.#options;
    const { rows } = await this.#pool.query<{ heartbeat_at: Date }>('SELECT heartbeat_at FROM cluster_nodes WHERE id = $1', [this.nodeId]);
    const previous = rows[0];
    // The same id heartbeating: a crashed run of this node (its beats stop) or another process with this id.
    for (let waited = 0; !(await this.#register()); waited += 500) {
      if (waited > o.deadAfterMs + 2000) throw new Error(`KILN_NODE_ID ${this.nodeId} is in use by another running node`);
      await new Promise((r) => setTimeout(r, 500));
    }
    this.#registered = true;
    await this.#connectListener();
    this.#available = true;
    this.#upSince = Date.now();
    this.#watchCatalog();
    await this.#flush();
    this.#ticker = setInterval(() => this.#tick(), o.heartbeatMs);
    this.#ticker.unref();
    return previous ? previous.heartbeat_at : undefined;
  }

  /**
   * Registers this process under the node id, unless another process holds it (alive, with a fresh
   * heartbeat): false then. A registration that finds this very process declared dead (a partition,
   * a pause) tells the revival watchers, whose shared state others closed meanwhile.
   */
  async #register(): Promise<boolean> {
    const o = this.#options;
    const { rows } = await this.#pool.query<{ old_state: string | null; old_instance: string | null }>(
      `WITH old AS (SELECT state, instance FROM cluster_nodes WHERE id = $1)
       INSERT INTO cluster_nodes (id, instance, state, public_url, api_url, ovt_url, started_at, heartbeat_at, left_at, load)
       VALUES ($1, $2, 'alive', $3, $4, $5, now(), now(), NULL, $6)
       ON CONFLICT (id) DO UPDATE SET instance = EXCLUDED.instance, state = 'alive', public_url = EXCLUDED.public_url,
         api_url = EXCLUDED.api_url, ovt_url = EXCLUDED.ovt_url,
         started_at = CASE WHEN cluster_nodes.instance = EXCLUDED.instance THEN cluster_nodes.started_at ELSE EXCLUDED.started_at END,
         heartbeat_at = EXCLUDED.heartbeat_at, left_at = NULL, load = EXCLUDED.load, cleaned_at = NULL
       WHERE cluster_nodes.instance = EXCLUDED.instance OR cluster_nodes.state <> 'alive'
         OR cluster_nodes.heartbeat_at < now() - make_interval(secs => $7)
       RETURNING (SELECT state FROM old) AS old_state, (SELECT instance FROM old) AS old_instance`,
      [this.nodeId, this.#instance, o.publicUrl, o.apiUrl, o.ovtUrl, JSON.stringify(this.#load()), o.deadAfterMs / 1000],
    );
    if (rows.length === 0) return false;
    this.#resync = true;
    if (rows[0].old_instance === this.#instance && rows[0].old_state === 'dead') {
      this.#options.logger.warn('this node was declared dead while cut off: rejoined, and what it holds is written again');
      for (const fn of this.#revivalWatchers) {
        try {
          fn();
        } catch (err) {
          this.#options.logger.error({ err }, 'revival handler failed');
        }
      }
    }
    return true;
  }

  /**
   * Calls `fn` when this node rejoins after the others declared it dead while it ran (cut off for
   * longer than the dead-after time): what they closed in the shared state (its room sessions,
   * recordings) is to be written again.
   */
  onRevived(fn: () => void): void {
    this.#revivalWatchers.push(fn);
  }

  #load(): Record<string, unknown> {
    return nodeLoad(this.#options.catalog);
  }

  /** Updates where other nodes reach this one (once its listeners are bound). */
  async advertise(apiUrl: string, ovtUrl: string): Promise<void> {
    this.#options.apiUrl = apiUrl;
    this.#options.ovtUrl = ovtUrl;
    await this.#pool.query('UPDATE cluster_nodes SET api_url = $2, ovt_url = $3 WHERE id = $1 AND instance = $4', [this.nodeId, apiUrl, ovtUrl, this.#instance]);
  }

  /** The dedicated connection that LISTENs on the bus. */
  #connectListener(): Promise<void> {
    this.#connecting ??= (async () => {
      const client = new pg.Client({ connectionString: this.#options.url, connectionTimeoutMillis: 2000, keepAlive: true, query_timeout: 3000 });
      const lost = (err?: Error) => {
        if (this.#listener !== client) return;
        this.#listener = undefined;
        client.end().catch(() => {});
        this.#down(err ?? new Error('the bus connection ended'));
      };
      client.on('error', lost);
      client.on('end', () => lost());
      client.on('notification', (msg) => {
        if (msg.channel === CHANNEL && msg.payload) this.#onMessage(msg.payload);
      });
      try {
        await client.connect();
        await client.query(`LISTEN ${CHANNEL}`);
        if (this.#stopped) throw new Error('stopping');
      } catch (err) {
        client.end().catch(() => {});
        throw err;
      }
      this.#listener = client;
    })().finally(() => (this.#connecting = undefined));
    return this.#connecting;
  }

  #down(err: Error): void {
    if (this.#stopped) return;
    if (this.#available || !this.#wasDown) this.#options.logger.error({ err: err.message }, 'cluster database unreachable: control calls refused until it is back');
    this.#available = false;
    this.#wasDown = true;
    this.#resync = true;
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(errors.unavailable('The cluster database is unreachable'));
      this.#pending.delete(id);
    }
  }

  /** A lost database makes the node unavailable; any other failure is logged (the next tick tries again). */
  #failed(err: Error): void {
    if (unavailableIfLost(err) !== err) this.#down(err);
    else this.#options.logger.warn({ err: err.message }, 'cluster step failed: trying again');
  }

  /** Once a second: heartbeat (rejoining after an outage), mirror counters, declare dead nodes. */
  #tick(): void {
    if (this.#ticking || this.#stopped) return;
    this.#ticking = true;
    this.#tickRun = this.#beat().finally(() => {
      this.#ticking = false;
      this.#tickRun = undefined;
    });
  }

  async #beat(): Promise<void> {
    try {
      if (!this.#listener) await this.#connectListener();
      // A half-open bus connection (a partition) shows nothing by itself: ask it; one that does not
      // answer is dropped (a timed-out query leaves the client unusable) and opened again.
      else {
        const listener = this.#listener;
        await listener.query('SELECT 1').catch((err: Error) => {
          if (this.#listener === listener) this.#listener = undefined;
          listener.end().catch(() => {});
          throw err;
        });
      }
      if (this.#stopped) return;
      const beat = await this.#pool.query(
        `UPDATE cluster_nodes SET heartbeat_at = now(), load = $3 WHERE id = $1 AND instance = $2 AND state = 'alive'`,
        [this.nodeId, this.#instance, JSON.stringify(this.#load())],
      );
      if (this.#stopped) return;
      if (beat.rowCount !== 1) {
        // Declared dead while away (or the row is gone): register again; the mirror is rewritten.
        // Another process holding the id keeps this one out (and unavailable) until it goes.
        this.#registered = await this.#register();
        if (!this.#registered) {
          if (!this.#evictedLogged) this.#options.logger.error(`another process runs with KILN_NODE_ID ${this.nodeId}: this one refuses control calls until it stops`);
          this.#evictedLogged = true;
          this.#available = false;
          return;
        }
        this.#evictedLogged = false;
      }
      if (!this.#available) {
        this.#available = true;
        this.#upSince = Date.now();
        this.#options.logger.info('cluster database reachable again: rejoined');
      }
      if (this.#ticks++ % 2 === 0) {
        for (const id of this.#options.catalog.sessions.keys()) this.#dirtySessions.add(id);
        for (const key of this.#localStreams().keys()) this.#dirtyStreams.add(key);
      }
      // Now and then every stream row is written again, whatever was written before (self-repair).
      if (this.#ticks % 10 === 0) this.#writtenStreams.clear();
      await this.#flush();
      if (Date.now() - this.#upSince >= this.#options.deadAfterMs) await this.#sweep();
    } catch (err) {
      this.#failed(err as Error);
    }
  }

  /**
   * Declares nodes with a stale heartbeat dead (each claimed once, by one UPDATE), then closes what
   * every dead node not yet cleaned up held: its mirror, its room sessions in progress, its
   * recordings in progress. Each step can be run again, and a node is marked cleaned only when all
   * are done, so a failure part-way is finished by the next sweep (of any node).
   */
  async #sweep(): Promise<void> {
    const { rows: claimed } = await this.#pool.query<{ id: string; heartbeat_at: Date }>(
      `UPDATE cluster_nodes SET state = 'dead', left_at = now(), cleaned_at = NULL
       WHERE state = 'alive' AND id <> $1 AND heartbeat_at < now() - make_interval(secs => $2)
       RETURNING id, heartbeat_at`,
      [this.nodeId, this.#options.deadAfterMs / 1000],
    );
    if (claimed.length > 0) {
      // Told first, so that relays from a dead node end whatever happens to the cleanup below.
      const ids = claimed.map((r) => r.id);
      for (const dead of claimed) this.#options.logger.warn({ node: dead.id, lastHeartbeat: dead.heartbeat_at.toISOString() }, 'node declared dead: closing what it held');
      this.#tellDead(ids);
      await this.#notify({ t: '*', f: this.nodeId, op: 'nodes-dead', a: { ids } }).catch((err: Error) => this.#options.logger.warn({ err: err.message }, 'nodes-dead notice not sent'));
    }
    const { rows: todo } = await this.#pool.query<{ id: string }>(`SELECT id FROM cluster_nodes WHERE state = 'dead' AND cleaned_at IS NULL`);
    for (const { id } of todo) await inTransaction(this.#pool, (client) => closeDeadNode(client, id));
    // Answers nobody fetched (their caller gave up or died).
    if (this.#ticks % 60 === 0) await this.#pool.query(`DELETE FROM bus_replies WHERE created_at < now() - interval '5 minutes'`);
  }

  #tellDead(ids: string[]): void {
    for (const fn of this.#deadWatchers) {
      try {
        fn(ids);
      } catch (err) {
        this.#options.logger.error({ err }, 'node-dead handler failed');
      }
    }
  }

  /** Calls `fn` with the ids of nodes declared dead (by any node). */
  onNodesDead(fn: (nodeIds: string[]) => void): void {
    this.#deadWatchers.push(fn);
  }

  // ---- The mirror ----

  #watchCatalog(): void {
    const catalog = this.#options.catalog;
    const onSession = (session: Session) => {
      this.#markSession(session.id);
      session.once('active', () => this.#markSession(session.id));
      session.once('close', () => this.#markSession(session.id));
    };
    const onStream = (stream: Stream) => {
      const key = streamKey(stream.vhost, stream.app, stream.name);
      this.#markStream(key);
      stream.once('close', () => this.#markStream(key));
    };
    catalog.on('session', onSession);
    catalog.on('stream', onStream);
    for (const session of catalog.sessions.values()) onSession(session);
    for (const stream of this.#localStreams().values()) onStream(stream);
  }

  #markSession(id: string): void {
    this.#dirtySessions.add(id);
    this.#scheduleFlush();
  }

  #markStream(key: string): void {
    this.#dirtyStreams.add(key);
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#flushTimer || this.#stopped) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      if (this.#available) this.#flush().catch((err: Error) => this.#failed(err));
    }, 5);
  }

  #localStreams(): Map<string, Stream> {
    const streams = new Map<string, Stream>();
    for (const s of this.#options.catalog.allStreams()) if (!s.closed) streams.set(streamKey(s.vhost, s.app, s.name), s);
    return streams;
  }

  /**
   * Writes what changed to the mirror; resolves when the database has it (so a command's answer
   * follows its effect). One flush at a time; changes made meanwhile are written by the next.
   */
  async flush(): Promise<void> {
    if (!this.#available || !this.#registered || this.#stopped) return;
    await this.#flush();
  }

  #flush(): Promise<void> {
    if (this.#flushing) {
      this.#flushAgain = true;
      return this.#flushing;
    }
    this.#flushing = (async () => {
      try {
        do {
          this.#flushAgain = false;
          await this.#write();
        } while (this.#flushAgain);
      } finally {
        this.#flushing = undefined;
      }
    })();
    return this.#flushing;
  }

  async #write(): Promise<void> {
    const catalog = this.#options.catalog;
    const node = this.nodeId;
    const local = this.#localStreams();
    if (this.#resync) {
      // Everything is written again; rows of what is gone are deleted, the others stay (no gap in
      // which other nodes would miss a stream that is live).
      this.#resync = false;
      this.#writtenStreams.clear();
      this.#dirtySessions.clear();
      this.#dirtyStreams.clear();
      for (const id of catalog.sessions.keys()) this.#dirtySessions.add(id);
      for (const key of local.keys()) this.#dirtyStreams.add(key);
      const keys = [...local.values()].map((x) => ({ vhost: x.vhost, app: x.app, name: x.name }));
      try {
        await this.#pool.query('DELETE FROM live_sessions WHERE node_id = $1 AND NOT (id = ANY($2::text[]))', [node, [...catalog.sessions.keys()]]);
        await this.#pool.query(
          `DELETE FROM live_streams s WHERE s.node_id = $1 AND NOT EXISTS (
             SELECT 1 FROM json_to_recordset($2::json) AS x(vhost text, app text, name text) WHERE x.vhost = s.vhost AND x.app = s.app AND x.name = s.name)`,
          [node, JSON.stringify(keys)],
        );
      } catch (err) {
        this.#resync = true;
        throw err;
      }
    }
    const sessions: { id: string; info: string; kind: string; vhost: string; app: string; stream: string; connected_at: string }[] = [];
    const goneSessions: string[] = [];
    for (const id of this.#dirtySessions) {
      const s = catalog.sessions.get(id);
      if (s && !s.closed) {
        const snap = sessionSnapshot(s);
        sessions.push({ id, info: JSON.stringify(snap), kind: s.kind, vhost: s.vhost, app: s.app, stream: s.stream, connected_at: snap.connectedAt });
      } else {
        goneSessions.push(id);
      }
    }
    this.#dirtySessions.clear();
    const streams: { vhost: string; app: string; name: string; relay: boolean; source_session: string; info: string; created_at: string }[] = [];
    const goneStreams: { vhost: string; app: string; name: string }[] = [];
    const written: [string, string | undefined][] = [];
    for (const key of this.#dirtyStreams) {
      const s = local.get(key);
      if (s) {
        const info = JSON.stringify(streamSnapshot(s));
        if (this.#writtenStreams.get(key) === info) continue;
        streams.push({ vhost: s.vhost, app: s.app, name: s.name, relay: s.relay, source_session: s.source.id, info, created_at: s.createdAt.toISOString() });
        written.push([key, info]);
      } else {
        const [vhost, app, name] = key.split('\u0000');
        goneStreams.push({ vhost, app, name });
        written.push([key, undefined]);
      }
    }
    this.#dirtyStreams.clear();
    try {
      if (goneSessions.length > 0) await this.#pool.query('DELETE FROM live_sessions WHERE node_id = $1 AND id = ANY($2::text[])', [node, goneSessions]);
      if (sessions.length > 0) {
        await this.#pool.query(
          `INSERT INTO live_sessions (id, node_id, info, kind, vhost, app, stream, connected_at)
           SELECT x.id, $1, x.info, x.kind, x.vhost, x.app, x.stream, x.connected_at
           FROM json_to_recordset($2::json) AS x(id text, info text, kind text, vhost text, app text, stream text, connected_at text)
           ON CONFLICT (id) DO UPDATE SET node_id = EXCLUDED.node_id, info = EXCLUDED.info`,
          [node, JSON.stringify(sessions)],
        );
      }
      if (goneStreams.length > 0) {
        await this.#pool.query(
          `DELETE FROM live_streams s USING json_to_recordset($2::json) AS x(vhost text, app text, name text)
           WHERE s.node_id = $1 AND s.vhost = x.vhost AND s.app = x.app AND s.name = x.name`,
          [node, JSON.stringify(goneStreams)],
        );
      }
      if (streams.length > 0) {
        await this.#pool.query(
          `INSERT INTO live_streams (node_id, vhost, app, name, relay, source_session, info, created_at)
           SELECT $1, x.vhost, x.app, x.name, x.relay, x.source_session, x.info, x.created_at
           FROM json_to_recordset($2::json) AS x(vhost text, app text, name text, relay boolean, source_session text, info text, created_at text)
           ON CONFLICT (node_id, vhost, app, name) DO UPDATE SET relay = EXCLUDED.relay, source_session = EXCLUDED.source_session,
             info = EXCLUDED.info, created_at = EXCLUDED.created_at`,
          [node, JSON.stringify(streams)],
        );
      }
    } catch (err) {
      // Written again in full once the database is back.
      this.#resync = true;
      throw err;
    }
    for (const [key, info] of written) {
      if (info === undefined) this.#writtenStreams.delete(key);
      else this.#writtenStreams.set(key, info);
    }
  }

  // ---- Reading the cluster-wide state ----

  /** A query of a control call: a lost database makes the node unavailable at once (503). */
  async #read<R extends pg.QueryResultRow>(text: string, params?: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      return await this.#pool.query<R>(text, params);
    } catch (err) {
      const mapped = unavailableIfLost(err);
      if (mapped !== err) this.#down(err as Error);
      throw mapped;
    }
  }

  #checkAvailable(): void {
    if (!this.#available) throw errors.unavailable('The cluster database is unreachable');
  }

  /** Streams of other live nodes (origins only, not their relays), of one app or one name. */
  async remoteStreams(vhost: string, app: string, name?: string): Promise<RemoteStream[]> {
    this.#checkAvailable();
    const { rows } = await this.#read<{ node_id: string; vhost: string; app: string; name: string; info: string }>(
      `SELECT s.node_id, s.vhost, s.app, s.name, s.info FROM live_streams s JOIN cluster_nodes n ON n.id = s.node_id AND n.state = 'alive'
       WHERE s.node_id <> $1 AND s.vhost = $2 AND s.app = $3 AND ($4::text IS NULL OR s.name = $4) AND NOT s.relay
       ORDER BY s.created_at, s.name`,
      [this.nodeId, vhost, app, name ?? null],
    );
    return rows.map((r) => new RemoteStream(r.node_id, r.vhost, r.app, r.name, JSON.parse(r.info) as StreamSnapshot));
  }

  /** Sessions of other live nodes; of one stream (vhost, app, name) when given. */
  async remoteSessions(stream?: { vhost: string; app: string; name: string }): Promise<RemoteSession[]> {
    this.#checkAvailable();
    const { rows } = await this.#read<{ id: string; node_id: string; info: string }>(
      `SELECT s.id, s.node_id, s.info FROM live_sessions s JOIN cluster_nodes n ON n.id = s.node_id AND n.state = 'alive'
       WHERE s.node_id <> $1 AND ($2::text IS NULL OR (s.vhost = $2 AND s.app = $3 AND s.stream = $4))
       ORDER BY s.connected_at, s.id`,
      [this.nodeId, stream?.vhost ?? null, stream?.app ?? null, stream?.name ?? null],
    );
    return rows.map((r) => new RemoteSession(r.id, r.node_id, JSON.parse(r.info) as SessionSnapshot));
  }

  async remoteSession(id: string): Promise<RemoteSession | undefined> {
    this.#checkAvailable();
    const { rows } = await this.#read<{ id: string; node_id: string; info: string }>(
      `SELECT s.id, s.node_id, s.info FROM live_sessions s JOIN cluster_nodes n ON n.id = s.node_id AND n.state = 'alive'
       WHERE s.id = $1 AND s.node_id <> $2`,
      [id, this.nodeId],
    );
    return rows[0] && new RemoteSession(rows[0].id, rows[0].node_id, JSON.parse(rows[0].info) as SessionSnapshot);
  }

  /** The registry: every node that has joined, alive or not. */
  async nodes(): Promise<ClusterNode[]> {
    this.#checkAvailable();
    const { rows } = await this.#read<{ id: string; state: ClusterNode['state']; public_url: string; api_url: string; ovt_url: string; started_at: Date; heartbeat_at: Date; load: string }>(
      'SELECT id, state, public_url, api_url, ovt_url, started_at, heartbeat_at, load FROM cluster_nodes ORDER BY id',
    );
    return rows.map((r) => ({
      id: r.id, state: r.state, publicUrl: r.public_url, apiUrl: r.api_url, ovtUrl: r.ovt_url, startedAt: r.started_at, heartbeatAt: r.heartbeat_at,
      load: JSON.parse(r.load) as Record<string, unknown>,
    }));
  }

  async node(id: string): Promise<ClusterNode | undefined> {
    return (await this.nodes()).find((n) => n.id === id);
  }

  // ---- The command bus ----

  /** Handles command `op` sent by other nodes. */
  handle(op: string, handler: CommandHandler): void {
    this.#handlers.set(op, handler);
  }

  /**
   * Sends command `op` to `nodeId` and resolves with its answer once it has run there. UNAVAILABLE
   * when the database is unreachable or the node does not answer in time; the holder's own errors
   * (a KilnError's code and message) are thrown as they were.
   */
  async request(nodeId: string, op: string, args: Record<string, unknown>, timeoutMs = this.#options.commandTimeoutMs): Promise<unknown> {
    this.#checkAvailable();
    const id = randomUUID();
    const answer = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(errors.unavailable(`Node ${nodeId} did not answer in time`));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
    });
    // The answer may come (even as an error) before pg_notify's own reply: handled from now on,
    // and still given to the caller below.
    answer.catch(() => {});
    try {
      await this.#notify({ t: nodeId, f: this.nodeId, i: id, op, a: args });
    } catch (err) {
      const p = this.#pending.get(id);
      if (p) {
        clearTimeout(p.timer);
        this.#pending.delete(id);
      }
      answer.catch(() => {});
      throw err;
    }
    return answer;
  }

  async #notify(message: BusMessage): Promise<void> {
    const payload = JSON.stringify(message);
    if (Buffer.byteLength(payload) > MAX_PAYLOAD) throw errors.badRequest('Cluster command too large');
    await this.#read('SELECT pg_notify($1, $2)', [CHANNEL, payload]);
  }

  #onMessage(payload: string): void {
    let m: BusMessage;
    try {
      m = JSON.parse(payload) as BusMessage;
    } catch {
      return;
    }
    if (typeof m !== 'object' || m === null || m.f === this.nodeId) return;
    if (m.t !== this.nodeId && !(m.t === '*' && m.op === 'nodes-dead')) return;
    if (m.op === 'nodes-dead') {
      this.#tellDead(Array.isArray(m.a?.ids) ? (m.a.ids as unknown[]).filter((x): x is string => typeof x === 'string') : []);
      return;
    }
    if (m.op !== undefined && typeof m.i === 'string') {
      // A process that does not hold the node id (another took it) runs nothing in its name.
      if (this.#registered && this.#available && !this.#stopped) void this.#run(m);
      return;
    }
    if (typeof m.i === 'string') {
      const p = this.#pending.get(m.i);
      if (!p) return;
      clearTimeout(p.timer);
      this.#pending.delete(m.i);
      if (m.e) p.reject(new KilnError(isErrorCode(m.e.code) ? m.e.code : 'INTERNAL', String(m.e.message)));
      else if (m.big) this.#fetchReply(m.i).then(p.resolve, p.reject);
      else p.resolve(m.r);
    }
  }

  /** An answer left in `bus_replies`: read once, then deleted. */
  async #fetchReply(id: string): Promise<unknown> {
    const { rows } = await this.#read<{ body: string }>('DELETE FROM bus_replies WHERE id = $1 RETURNING body', [id]);
    if (!rows[0]) throw errors.unavailable('The answer of another node was lost');
    return JSON.parse(rows[0].body) as unknown;
  }

  async #run(m: BusMessage): Promise<void> {
    const reply: BusMessage = { t: m.f, f: this.nodeId, i: m.i };
    const handler = this.#handlers.get(m.op!);
    try {
      if (!handler) throw errors.badRequest(`Unknown cluster command ${m.op}`);
      const answer = (await handler(m.a ?? {})) ?? null;
      // The answer follows the effect: the mirror shows it when the caller reads again.
      await this.flush();
      const body = JSON.stringify(answer);
      if (Buffer.byteLength(body) > MAX_PAYLOAD - 500) {
        await this.#read('INSERT INTO bus_replies (id, body) VALUES ($1, $2)', [m.i, body]);
        reply.big = true;
      } else {
        reply.r = answer;
      }
    } catch (err) {
      const message = String((err as Error).message).slice(0, 2000);
      reply.e = isKilnError(err) ? { code: err.code, message } : { code: 'INTERNAL', message };
      if (!isKilnError(err)) this.#options.logger.error({ err, op: m.op }, 'cluster command failed');
    }
    await this.#notify(reply).catch((err: Error) => this.#options.logger.warn({ err: err.message, op: m.op }, 'cluster answer could not be sent'));
  }

  /** Leaves the cluster: the mirror is emptied and the node marked stopped. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#available = false;
    clearInterval(this.#ticker);
    clearTimeout(this.#flushTimer);
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(errors.unavailable('The server is stopping'));
    }
    this.#pending.clear();
    await this.#tickRun;
    await this.#flushing?.catch(() => {});
    try {
      // Only the registered holder of the id cleans its rows (a refused twin leaves them alone).
      if (this.#registered) {
        const mine = `EXISTS (SELECT 1 FROM cluster_nodes WHERE id = $1 AND instance = $2)`;
        await this.#pool.query(`DELETE FROM live_sessions WHERE node_id = $1 AND ${mine}`, [this.nodeId, this.#instance]);
        await this.#pool.query(`DELETE FROM live_streams WHERE node_id = $1 AND ${mine}`, [this.nodeId, this.#instance]);
        await this.#pool.query(`UPDATE cluster_nodes SET state = 'stopped', left_at = now() WHERE id = $1 AND instance = $2`, [this.nodeId, this.#instance]);
      }
    } catch (err) {
      this.#options.logger.warn({ err: (err as Error).message }, 'could not leave the cluster cleanly: other nodes will declare this node dead');
    }
    const listener = this.#listener;
    this.#listener = undefined;
    await listener?.end().catch(() => {});
    await this.#pool.end().catch(() => {});
  }
}

/**
 * Closes in the shared state what a dead node held, in one transaction with its registry row
 * locked (a node coming back waits for it, and finds it done): its mirror rows, its room sessions in
 * progress (completed at its last heartbeat, `node-lost`, members left), its recordings in progress
 * (`stopped`, to be composed when it is back). Nothing when it came back or was cleaned meanwhile.
 */
async function closeDeadNode(client: pg.PoolClient, id: string): Promise<void> {
  const { rows } = await client.query<{ heartbeat_at: Date }>(
    `SELECT heartbeat_at FROM cluster_nodes WHERE id = $1 AND state = 'dead' AND cleaned_at IS NULL FOR UPDATE`,
    [id],
  );
  if (!rows[0]) return;
  const at = rows[0].heartbeat_at.toISOString();
  const now = new Date().toISOString();
  await client.query('DELETE FROM live_sessions WHERE node_id = $1', [id]);
  await client.query('DELETE FROM live_streams WHERE node_id = $1', [id]);
  await client.query(
    `UPDATE room_members SET left_at = GREATEST(joined_at, $2::text COLLATE "C"), leave_reason = 'node-lost'
     WHERE left_at IS NULL AND room_session_id IN (SELECT id FROM room_sessions WHERE status = 'in-progress' AND node_id = $1)`,
    [id, at],
  );
  await client.query(
    `UPDATE room_sessions SET status = 'completed', end_time = GREATEST(COALESCE(start_time, $2::text), $2::text COLLATE "C"),
       end_reason = 'node-lost', updated_at = $3
     WHERE status = 'in-progress' AND node_id = $1`,
    [id, at, now],
  );
  await client.query(
    `UPDATE recordings SET status = 'stopped', stopped_at = $2, updated_at = $3, reason = 'node-lost: composed when the node is back'
     WHERE node_id = $1 AND status IN ('starting', 'started')`,
    [id, at, now],
  );
  await client.query('UPDATE cluster_nodes SET cleaned_at = now() WHERE id = $1', [id]);
}
