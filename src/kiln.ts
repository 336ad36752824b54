/**
 * A Kiln node: the store, the catalogue, the media engine and both listeners, started and stopped
 * together. `main.ts` builds one from the configuration; tests can too.
 */
import { randomBytes } from 'node:crypto';
import pino, { type Logger } from 'pino';
import type { KilnConfig } from './config/config.ts';
import { Catalog } from './core/catalog.ts';
import { MediaEngine } from './media/engine.ts';
import { PullManager } from './ingest/pulls.ts';
import { closingPeers } from './media/peer.ts';
import { SignalingServer } from './protocols/signaling-server.ts';
import { ApiServer } from './api/api-server.ts';
import { Credentials } from './api/credentials.ts';
import { Metrics } from './api/metrics.ts';
import type { Store } from './store/store.ts';
import { SqliteStore } from './store/sqlite/sqlite-store.ts';

export class Kiln {
  readonly config: KilnConfig;
  readonly logger: Logger;
  readonly catalog: Catalog;
  readonly metrics = new Metrics();
  store: Store | undefined;
  engine: MediaEngine | undefined;
  pulls: PullManager | undefined;
  signaling: SignalingServer | undefined;
  api: ApiServer | undefined;
  /** The `user:password` pairs in force (configured or generated). */
  accessTokens: string[] = [];
  #stopping: Promise<void> | undefined;

  constructor(config: KilnConfig, logger?: Logger) {
    this.config = config;
    this.logger = logger ?? pino({ level: config.logLevel });
    this.catalog = new Catalog(config.vhosts);
    this.metrics.watch(this.catalog);
  }

  /** Opens the store, then the listeners. Rejects (after cleaning up) if a port is in use. */
  async start(): Promise<void> {
    const config = this.config;
    if (config.databaseUrl) throw new Error('KILN_DATABASE_URL (cluster mode) is not available in this version');
    this.store = new SqliteStore(config.dataDir);
    this.accessTokens = config.accessTokens.length > 0 ? config.accessTokens : [await this.#generatedToken(this.store)];
    const credentials = new Credentials(this.accessTokens);
    this.engine = new MediaEngine({
      catalog: this.catalog,
      ice: config.ice,
      publisherTimeoutMs: config.limits.publisherTimeoutMs,
      errorCounter: this.metrics,
    });
    this.pulls = new PullManager({
      catalog: this.catalog,
      engine: this.engine,
      store: this.store,
      timeoutMs: config.limits.pullTimeoutMs,
      ffmpegPath: config.ffmpegPath,
      logger: this.logger,
      errorCounter: this.metrics,
    });
    this.signaling = new SignalingServer({
      host: config.signaling.host,
      port: config.signaling.port,
      tls: config.tls,
      corsOrigins: config.corsOrigins,
      bodyLimit: config.limits.bodyBytes,
      wsMessageBytes: config.limits.wsMessageBytes,
      engine: this.engine,
      credentials,
      logger: this.logger,
    });
    this.api = new ApiServer({
      host: config.api.host,
      port: config.api.port,
      tls: config.tls,
      bodyLimit: config.limits.bodyBytes,
      catalog: this.catalog,
      credentials,
      pulls: this.pulls,
      metrics: this.metrics,
      metricsRequireAuth: config.metricsRequireAuth,
      logger: this.logger,
    });
    try {
      await this.api.start();
      await this.signaling.start();
    } catch (err) {
      await this.stop();
      throw err;
    }
    await this.pulls.restore();
  }

  async #generatedToken(store: Store): Promise<string> {
    const existing = await store.getSetting('generated_access_token');
    if (existing) return existing;
    const token = `kiln:${randomBytes(18).toString('base64url')}`;
    await store.setSetting('generated_access_token', token);
    return token;
  }

  /** Closes every session, then the listeners and the store; resolves when all are gone. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.pulls?.close();
      this.catalog.closeAll('server-stopping');
      this.engine?.close();
      await closingPeers();
      await Promise.allSettled([this.signaling?.stop(), this.api?.stop()]);
      await this.store?.close();
    })();
    return this.#stopping;
  }
}
