/**
 * The embedded store: Node's built-in `node:sqlite` in the data directory, with versioned
 * migrations applied at open.
 */
import { DatabaseSync } from 'node:sqlite';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { PullStreamRecord, Store } from '../store.ts';

/** Schema migrations, applied in order; each runs once (tracked by PRAGMA user_version). */
const MIGRATIONS: string[] = [
  `CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL)`,
  `CREATE TABLE pull_streams (
     vhost TEXT NOT NULL, app TEXT NOT NULL, name TEXT NOT NULL,
     urls TEXT NOT NULL, properties TEXT NOT NULL, created_at TEXT NOT NULL,
     PRIMARY KEY (vhost, app, name))`,
];

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

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}
