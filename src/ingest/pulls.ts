/**
 * Pull streams (OME "Create Stream (Pull)"): creates a stream from source URLs, removes unused
 * ones, and keeps persistent ones in the store so that they come back after a restart.
 */
import type { Logger } from 'pino';
import type { Catalog } from '../core/catalog.ts';
import { errors, isKilnError } from '../core/errors.ts';
import { Session } from '../core/session.ts';
import type { Stream } from '../core/stream.ts';
import type { MediaEngine } from '../media/engine.ts';
import { checkName } from '../media/engine.ts';
import type { PullStreamRecord, Store } from '../store/store.ts';
import { maskUrl } from './rtsp/client.ts';
import { DEFAULT_PULL_PROPERTIES, PullError, RtspPull, type PullProperties } from './rtsp-pull.ts';

export interface PullRequest {
  vhost: string;
  app: string;
  name: string;
  urls: string[];
  /** The properties as given (validated by `pullProperties`). */
  properties: Record<string, unknown>;
}

export interface PullManagerOptions {
  catalog: Catalog;
  engine: MediaEngine;
  store: Store;
  timeoutMs: number;
  ffmpegPath: string;
  logger: Logger;
  errorCounter?: { forwardingErrors: number };
}

/**
 * Reads OME's `properties` object; throws BAD_REQUEST naming a member of the wrong type. Accepts
 * OME's documented names (`noInputFailoverTimeoutMs`) and the short ones (`noInputFailoverTimeout`).
 */
export function pullProperties(given: Record<string, unknown>): PullProperties {
  const p = { ...DEFAULT_PULL_PROPERTIES };
  const bool = (key: string): boolean | undefined => {
    const v = given[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') throw errors.badRequest(`properties.${key} must be true or false`);
    return v;
  };
  const int = (keys: string[], min: number): number | undefined => {
    for (const key of keys) {
      const v = given[key];
      if (v === undefined) continue;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw errors.badRequest(`properties.${key} must be an integer ≥ ${min}`);
      return v;
    }
    return undefined;
  };
  p.persistent = bool('persistent') ?? p.persistent;
  p.ignoreRtcpSRTimestamp = bool('ignoreRtcpSRTimestamp') ?? p.ignoreRtcpSRTimestamp;
  p.noInputFailoverTimeoutMs = int(['noInputFailoverTimeoutMs', 'noInputFailoverTimeout'], 500) ?? p.noInputFailoverTimeoutMs;
  p.unusedStreamDeletionTimeoutMs = int(['unusedStreamDeletionTimeoutMs', 'unusedStreamDeletionTimeout'], 1000) ?? p.unusedStreamDeletionTimeoutMs;
  p.retryCount = int(['retryCount'], 0) ?? p.retryCount;
  if (p.retryCount > 5) throw errors.badRequest('properties.retryCount must be at most 5');
  const transport = given.rtspTransport;
  if (transport !== undefined) {
    if (transport !== 'tcp' && transport !== 'udp') throw errors.badRequest('properties.rtspTransport must be "tcp" or "udp"');
    p.transport = transport;
  }
  return p;
}

export class PullManager {
  readonly #options: PullManagerOptions;
  /** `vhost/app/name` of pulls still connecting: the name is taken. */
  readonly #pending = new Set<string>();
  readonly #pulls = new Set<RtspPull>();
  readonly #restoring = new Set<NodeJS.Timeout>();
  #closed = false;

  constructor(options: PullManagerOptions) {
    this.#options = options;
  }

  /**
   * Connects to the source and creates the stream once its tracks are known. Throws
   * APP_NOT_FOUND, STREAM_EXISTS, BAD_REQUEST, or BAD_GATEWAY naming why the URL cannot be pulled.
   */
  async create(request: PullRequest, persist = true): Promise<Stream> {
    const { catalog } = this.#options;
    const application = catalog.app(request.vhost, request.app);
    checkName('stream', request.name);
    const key = `${request.vhost}/${request.app}/${request.name}`;
    if (application.streams.has(request.name) || this.#pending.has(key)) throw errors.streamExists(request.vhost, request.app, request.name);
    const properties = pullProperties(request.properties);
    const schemes = new Set<string>();
    for (const url of request.urls) {
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        throw errors.badRequest(`Invalid URL: ${JSON.stringify(maskUrl(url))}`);
      }
      schemes.add(parsed.protocol);
    }
    if (schemes.size > 1) throw errors.badRequest('All urls must have the same scheme');
    const scheme = [...schemes][0];
    if (scheme !== 'rtsp:') {
      const list = request.urls.map(maskUrl).join(', ');
      throw errors.pullFailed(`${list} - unsupported URL scheme "${scheme.replace(':', '')}" (Kiln pulls rtsp:// URLs)`);
    }
    const first = new URL(request.urls[0]);
    const session = new Session({
      kind: 'pull',
      protocol: 'rtsp',
      vhost: request.vhost,
      app: request.app,
      stream: request.name,
      remoteAddress: first.hostname.replace(/^\[|\]$/g, ''),
      remotePort: first.port === '' ? 554 : Number(first.port),
      userAgent: 'Kiln RTSP client',
    });
    const errorCounter = this.#options.errorCounter;
    const pull = new RtspPull({
      urls: request.urls,
      properties,
      session,
      timeoutMs: this.#options.timeoutMs,
      ffmpegPath: this.#options.ffmpegPath,
      logger: this.#options.logger,
      onForwardingError: errorCounter ? () => errorCounter.forwardingErrors++ : undefined,
    });
    session.setTeardown(() => pull.close());
    this.#pending.add(key);
    this.#pulls.add(pull);
    session.once('close', () => this.#pulls.delete(pull));
    let stream: Stream;
    try {
      await pull.open();
      if (this.#closed) throw errors.unavailable('Kiln is stopping');
      stream = catalog.createStream(application, request.name, 'RTSP', session);
    } catch (err) {
      session.close('error');
      if (err instanceof PullError) throw errors.pullFailed(err.message);
      throw err;
    } finally {
      this.#pending.delete(key);
    }
    stream.tracks = pull.tracks.map((t) => t.info);
    stream.sourceUrl = pull.currentUrl;
    // The info follows failovers to the URL in use.
    pull.onLive = (url) => (stream.sourceUrl = url);
    this.#options.engine.attachSource(stream, pull.forwarder);
    if (!properties.persistent) this.#watchUnused(stream, properties.unusedStreamDeletionTimeoutMs);
    if (persist && properties.persistent) {
      await this.#options.store.putPullStream({ vhost: request.vhost, app: request.app, name: request.name, urls: request.urls, properties: request.properties, createdAt: new Date().toISOString() });
    }
    if (properties.persistent) {
      stream.once('close', (reason) => {
        // Deleted through the API (or ended otherwise): forget it; a shutdown keeps it.
        if (reason !== 'server-stopping' && !this.#closed) void this.#options.store.deletePullStream(request.vhost, request.app, request.name).catch(() => {});
      });
    }
    this.#options.logger.info({ stream: key, url: pull.currentUrl, tracks: stream.tracks.map((t) => t.codec) }, 'pull stream created');
    return stream;
  }

  /** Removes a stream that has had no player for `timeoutMs`. */
  #watchUnused(stream: Stream, timeoutMs: number): void {
    let timer: NodeJS.Timeout | undefined;
    const check = () => {
      clearTimeout(timer);
      timer = undefined;
      if (stream.closed || stream.players.size > 0) return;
      timer = setTimeout(() => {
        if (stream.players.size === 0) {
          this.#options.logger.info({ stream: `${stream.vhost}/${stream.app}/${stream.name}` }, 'pull stream unused: removed');
          stream.close('timed-out');
        }
      }, timeoutMs);
    };
    stream.on('player', (session) => {
      check();
      session.once('close', check);
    });
    stream.once('close', () => clearTimeout(timer));
    check();
  }

  /** Recreates the persistent pull streams of the store, retrying in the background until each works. */
  async restore(): Promise<void> {
    const records = await this.#options.store.listPullStreams();
    for (const record of records) this.#restore(record, 0);
  }

  #restore(record: PullStreamRecord, attempt: number): void {
    if (this.#closed) return;
    this.create({ ...record }, false).catch((err: unknown) => {
      const { vhost, app, name } = record;
      if (isKilnError(err) && (err.code === 'STREAM_EXISTS' || err.code === 'APP_NOT_FOUND' || err.code === 'VHOST_NOT_FOUND' || err.code === 'BAD_REQUEST')) {
        this.#options.logger.warn({ stream: `${vhost}/${app}/${name}`, err: (err as Error).message }, 'persistent pull stream not restored');
        return;
      }
      if (this.#closed) return;
      const wait = Math.min(30_000, 1000 * 2 ** attempt);
      this.#options.logger.warn({ stream: `${vhost}/${app}/${name}`, err: (err as Error).message, retryInMs: wait }, 'persistent pull stream: source unavailable, will retry');
      const timer = setTimeout(() => {
        this.#restoring.delete(timer);
        this.#restore(record, attempt + 1);
      }, wait);
      this.#restoring.add(timer);
    });
  }

  /** Stops restoring and every pull still connecting (live streams close through the catalogue). */
  close(): void {
    this.#closed = true;
    for (const t of this.#restoring) clearTimeout(t);
    this.#restoring.clear();
    for (const pull of [...this.#pulls]) pull.session.close('server-stopping');
  }
}
