/**
 * The one store interface (STYLE.md): what must survive a restart. The embedded SQLite store is the
 * default; a PostgreSQL store joins it for cluster mode. main.ts chooses.
 */

/** A persistent pull stream (OME "Create Stream (Pull)" with `persistent: true`), recreated at start. */
export interface PullStreamRecord {
  vhost: string;
  app: string;
  name: string;
  /** The source URLs as given, credentials included (needed to reconnect). */
  urls: string[];
  /** The pull properties as given (JSON object). */
  properties: Record<string, unknown>;
  createdAt: string;
}

export interface Store {
  /** A named setting (e.g. the generated credential), or undefined. */
  getSetting(key: string): Promise<string | undefined>;
  setSetting(key: string, value: string): Promise<void>;
  listPullStreams(): Promise<PullStreamRecord[]>;
  /** Inserts or replaces the record of (vhost, app, name). */
  putPullStream(record: PullStreamRecord): Promise<void>;
  deletePullStream(vhost: string, app: string, name: string): Promise<void>;
  /** Releases the database; idempotent. */
  close(): Promise<void>;
}
