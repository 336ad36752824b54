/**
 * The one store interface (STYLE.md): what must survive a restart. The embedded SQLite store is the
 * default; a PostgreSQL store joins it for cluster mode. main.ts chooses.
 */

export interface Store {
  /** A named setting (e.g. the generated credential), or undefined. */
  getSetting(key: string): Promise<string | undefined>;
  setSetting(key: string, value: string): Promise<void>;
  /** Releases the database; idempotent. */
  close(): Promise<void>;
}
