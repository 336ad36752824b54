/**
 * Pull streams (OME "Create Stream (Pull)"): creates a stream from source URLs (`rtsp://` cameras,
 * `ovt://` streams of other Kiln nodes), removes unused ones, and keeps persistent ones in the
 * store so that they come back after a restart. Also makes the on-demand OVT relays a cluster
 * asks for (`relay()`).
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
import { OvtPull } from './ovt-pull.ts';
import { OVT_DEFAULT_PORT, parseOvtUrl } from '../protocols/ovt/signaling.ts';

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
  /** A relay (see `relay()`) with no players for this long is dropped, ms. Default 2000. */
  relayGraceMs?: number;
  /** Proves to OVT origins of this cluster that this node is one of its nodes (protected apps). */
  ovtAuth?: (app: string, stream: string) => string;
  /** This node: the persistent pulls it makes are its own to restore. */
  nodeId?: string;
  /** Whether other nodes share the store (cluster mode): a restart restores this node's pulls only. Default false. */
  shared?: boolean;
}

/** What `relay()` pulls, and under which name. */
export interface RelayRequest {
  vhost: string;
  app: string;
  name: string;
  /** `ovt://host[:port]/{app}/{stream}` of the node that has the stream. */
  url: string;
  /** No players for this long drops the relay, ms. Default: the manager's `relayGraceMs`. */
  graceMs?: number;
}

/** An OVT pull without media for this long ends, unless `noInputFailoverTimeout` says otherwise, ms. */
const OVT_NO_INPUT_MS = 10_000;
/** A relay waits this long for its first player (the viewer that asked is still negotiating), ms. */
const RELAY_FIRST_PLAYER_MS = 10_000;

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
  readonly #pulls = new Set<RtspPull | OvtPull>();
  /** Relays being opened, by `vhost/app/name`: concurrent callers share one. */
  readonly #relays = new Map<string, Promise<Stream>>();
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
    if (scheme !== 'rtsp:' && scheme !== 'ovt:') {
      const list = request.urls.map(maskUrl).join(', ');
      throw errors.pullFailed(`${list} - unsupported URL scheme "${scheme.replace(':', '')}" (Kiln pulls rtsp:// and ovt:// URLs)`);
    }
    if (scheme === 'ovt:') {
      const given = request.properties.noInputFailoverTimeoutMs !== undefined || request.properties.noInputFailoverTimeout !== undefined;
      return this.#createOvt(request, properties, given ? properties.noInputFailoverTimeoutMs : OVT_NO_INPUT_MS, persist);
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
    const stream = await this.#open(request, pull, 'RTSP');
    // The info follows failovers to the URL in use.
    pull.onLive = (url) => (stream.sourceUrl = url);
    return this.#created(request, stream, properties, persist);
  }

  /** An `ovt://` pull: the stream of another Kiln node. */
  async #createOvt(request: PullRequest, properties: PullProperties, noInputTimeoutMs: number, persist: boolean): Promise<Stream> {
    const pull = this.#ovtPull(request.vhost, request.app, request.name, request.urls, noInputTimeoutMs);
    const stream = await this.#open(request, pull, 'OVT');
    return this.#created(request, stream, properties, persist);
  }

  /** Checks the `ovt://` URLs (BAD_REQUEST naming the one at fault) and makes the pull and its session. */
  #ovtPull(vhost: string, app: string, name: string, urls: string[], noInputTimeoutMs: number, proof = false): OvtPull {
    let first: { host: string; port: number } | undefined;
    for (const url of urls) {
      try {
        const target = parseOvtUrl(url);
        first ??= target;
      } catch (err) {
        throw errors.badRequest(`Invalid OVT URL ${JSON.stringify(maskUrl(url))}: ${(err as Error).message} (ovt://host[:${OVT_DEFAULT_PORT}]/{app}/{stream})`);
      }
    }
    const session = new Session({
      kind: 'pull',
      protocol: 'ovt',
      vhost,
      app,
      stream: name,
      remoteAddress: first!.host,
      remotePort: first!.port,
      userAgent: 'Kiln OVT client',
    });
    const errorCounter = this.#options.errorCounter;
    return new OvtPull({
      urls,
      session,
      // The cluster proof goes only to the nodes of the cluster (relays), never to an origin an
      // operator names in an ovt:// URL.
      auth: proof ? this.#options.ovtAuth : undefined,
      timeoutMs: this.#options.timeoutMs,
      noInputTimeoutMs,
      logger: this.#options.logger,
      onForwardingError: errorCounter ? () => errorCounter.forwardingErrors++ : undefined,
    });
  }

  /**
   * Opens a pull under the stream's name (taken while it connects) and creates the stream once its
   * tracks are known; a failure closes its session and is BAD_GATEWAY with the cause.
   */
  async #open(request: { vhost: string; app: string; name: string }, pull: RtspPull | OvtPull, sourceType: 'RTSP' | 'OVT', relay = false): Promise<Stream> {
    const { catalog } = this.#options;
    const application = catalog.app(request.vhost, request.app);
    const key = `${request.vhost}/${request.app}/${request.name}`;
    if (application.streams.has(request.name) || this.#pending.has(key)) {
      pull.session.close('error');
      throw errors.streamExists(request.vhost, request.app, request.name);
    }
    const session = pull.session;
    session.setTeardown(() => pull.close());
    this.#pending.add(key);
    this.#pulls.add(pull);
    session.once('close', () => this.#pulls.delete(pull));
    let stream: Stream;
    try {
      await pull.open();
      if (this.#closed) throw errors.unavailable('Kiln is stopping');
      if (session.closed) throw errors.pullFailed('The pull was closed while it connected');
      stream = catalog.createStream(application, request.name, sourceType, session, relay);
    } catch (err) {
      session.close('error');
      if (err instanceof PullError) throw errors.pullFailed(err.message);
      throw err;
    } finally {
      this.#pending.delete(key);
    }
    stream.tracks = pull.tracks.map((t) => t.info);
    stream.sourceUrl = pull.currentUrl;
    this.#options.engine.attachSource(stream, pull.forwarder);
    return stream;
  }

  /** What follows the creation of an API-made pull stream: its removal when unused, its record. */
  async #created(request: PullRequest, stream: Stream, properties: PullProperties, persist: boolean): Promise<Stream> {
    if (!properties.persistent) this.#watchUnused(stream, properties.unusedStreamDeletionTimeoutMs);
    if (persist && properties.persistent) {
      await this.#options.store.putPullStream({
        vhost: request.vhost, app: request.app, name: request.name, urls: request.urls, properties: request.properties,
        createdAt: new Date().toISOString(), nodeId: this.#options.nodeId ?? '',
      });
    }
    if (properties.persistent) {
      stream.once('close', (reason) => {
        // Deleted through the API (or ended otherwise): forget it; a shutdown keeps it.
        if (reason !== 'server-stopping' && !this.#closed) void this.#options.store.deletePullStream(request.vhost, request.app, request.name, this.#options.shared ? this.#options.nodeId : undefined).catch(() => {});
      });
    }
    const key = `${request.vhost}/${request.app}/${request.name}`;
    this.#options.logger.info({ stream: key, url: stream.sourceUrl, tracks: stream.tracks.map((t) => t.codec) }, 'pull stream created');
    return stream;
  }

  /**
   * An on-demand relay for the cluster: pulls `url` (another node's stream, over OVT) as the
   * stream `vhost/app/name` of this node, once however many callers ask at the same time, and
   * drops it when it has had no player for `graceMs` (at first, it waits at least 10 s for its
   * first player). The stream is marked `relay`. Resolves with the stream (an existing stream of
   * that name, relay or not, is returned as it is); throws APP_NOT_FOUND, BAD_REQUEST, or
   * BAD_GATEWAY naming why the origin could not be pulled.
   */
  relay(request: RelayRequest): Promise<Stream> {
    const { catalog } = this.#options;
    try {
      checkName('stream', request.name);
      const existing = catalog.app(request.vhost, request.app).streams.get(request.name);
      if (existing && !existing.closed) return Promise.resolve(existing);
    } catch (err) {
      return Promise.reject(err);
    }
    const key = `${request.vhost}/${request.app}/${request.name}`;
    let opening = this.#relays.get(key);
    if (!opening) {
      opening = this.#openRelay(request).finally(() => this.#relays.delete(key));
      this.#relays.set(key, opening);
    }
    return opening;
  }

  async #openRelay(request: RelayRequest): Promise<Stream> {
    if (this.#closed) throw errors.unavailable('Kiln is stopping');
    const pull = this.#ovtPull(request.vhost, request.app, request.name, [request.url], OVT_NO_INPUT_MS, true);
    const stream = await this.#open(request, pull, 'OVT', true);
    const grace = request.graceMs ?? this.#options.relayGraceMs ?? 2000;
    this.#watchUnused(stream, grace, Math.max(grace, RELAY_FIRST_PLAYER_MS));
    this.#options.logger.info({ stream: `${request.vhost}/${request.app}/${request.name}`, url: stream.sourceUrl }, 'relay opened');
    return stream;
  }

  /** Removes a stream that has had no player for `timeoutMs` (`firstTimeoutMs` before its first player). */
  #watchUnused(stream: Stream, timeoutMs: number, firstTimeoutMs = timeoutMs): void {
    let timer: NodeJS.Timeout | undefined;
    let played = false;
    const check = () => {
      clearTimeout(timer);
      timer = undefined;
      if (stream.closed) return;
      if (stream.players.size > 0) {
        played = true;
        return;
      }
      timer = setTimeout(() => {
        if (stream.players.size === 0) {
          this.#options.logger.info({ stream: `${stream.vhost}/${stream.app}/${stream.name}`, relay: stream.relay }, 'pull stream unused: removed');
          stream.close('timed-out');
        }
      }, played ? timeoutMs : firstTimeoutMs);
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
    // In a cluster, each node restores the pulls it made (one pull per source, under one name).
    const records = await this.#options.store.listPullStreams(this.#options.shared ? this.#options.nodeId : undefined);
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
