/**
 * A Kiln node: the store, the catalogue, the media engine and both listeners, started and stopped
 * together. `main.ts` builds one from the configuration; tests can too.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import pino, { type Logger } from 'pino';
import type { KilnConfig } from './config/config.ts';
import { Catalog } from './core/catalog.ts';
import { MediaEngine } from './media/engine.ts';
import { PullManager } from './ingest/pulls.ts';
import { Rooms } from './rooms/rooms.ts';
import { GrantSigner } from './rooms/grants.ts';
import { deriveKey } from './core/keys.ts';
import { PageTokens } from './api/signalwire/paging.ts';
import { closingPeers } from './media/peer.ts';
import { SignalingServer } from './protocols/signaling-server.ts';
import { ApiServer } from './api/api-server.ts';
import { Credentials } from './api/credentials.ts';
import { Metrics } from './api/metrics.ts';
import type { Store } from './store/store.ts';
import { SqliteStore } from './store/sqlite/sqlite-store.ts';
import { PgStore } from './store/postgres/pg-store.ts';
import { Cluster, nodeLoad } from './cluster/cluster.ts';
import { OvtServer } from './protocols/ovt/server.ts';
import type { Stream } from './core/stream.ts';
import { errors } from './core/errors.ts';
import { forwardedCallOf } from './api/forward.ts';
import { Recordings } from './recording/recordings.ts';
import { RecordingLinks } from './recording/file-route.ts';
import { join } from 'node:path';
import { EventLog } from './events/event-log.ts';
import { EventDelivery } from './events/delivery.ts';
import { recordingEvent, watchCatalog, watchRoomSession } from './events/sources.ts';

/** The setting holding this node's heartbeat, and how often it is written. */
const ALIVE_KEY = 'node_alive_at';
const HEARTBEAT_MS = 5000;
/** Heartbeats between two prunings of spent room tokens (an hour). */
const GRANT_PRUNE_BEATS = 720;
/** A used room token is kept this long (for the record), ms. */
const USED_GRANT_KEEP_MS = 24 * 3600_000;
/** How often sent events past their retention are deleted, ms. */
const EVENT_PRUNE_MS = 10 * 60_000;
/** How often the delivering node of a cluster closes the events nodes that are gone left open, ms. */
const ORPHAN_SWEEP_MS = 10_000;

export class Kiln {
  readonly config: KilnConfig;
  readonly logger: Logger;
  readonly catalog: Catalog;
  readonly metrics = new Metrics();
  store: Store | undefined;
  /** Cluster mode (KILN_DATABASE_URL): the node registry, the shared live state and the command bus. */
  cluster: Cluster | undefined;
  engine: MediaEngine | undefined;
  pulls: PullManager | undefined;
  rooms: Rooms | undefined;
  recordings: Recordings | undefined;
  signaling: SignalingServer | undefined;
  /** OVT origin side: other nodes (edges) pull this node's streams. */
  ovt: OvtServer | undefined;
  api: ApiServer | undefined;
  /** The server's events (the store's outbox) and their delivery to the webhooks. */
  events: EventLog | undefined;
  delivery: EventDelivery | undefined;
  /** The `user:password` pairs in force (configured or generated). */
  accessTokens: string[] = [];
  #stopping: Promise<void> | undefined;
  #signingKeyValue: Buffer | undefined;
  #eventPruner: NodeJS.Timeout | undefined;
  #orphanSweep: NodeJS.Timeout | undefined;
  #leaderCheck = { at: 0, leader: false };
  readonly #startedAt = new Date();
  #ovtKey: Buffer | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #sampler: NodeJS.Timeout | undefined;

  constructor(config: KilnConfig, logger?: Logger) {
    this.config = config;
    this.logger = logger ?? pino({ level: config.logLevel });
    // Room participants' streams live in an application of the first vhost, added (unlisted) when
    // missing, so the configured apps are what the OME API lists.
    const vhosts = config.vhosts.map((v, i) => i > 0 ? v : {
      ...v,
      apps: v.apps.some((a) => a.name === config.rooms.app)
        ? v.apps.map((a) => (a.name === config.rooms.app ? { ...a, rooms: true } : a))
        : [...v.apps, { name: config.rooms.app, playbackRequiresToken: false, listed: false, rooms: true }],
    });
    this.catalog = new Catalog(vhosts);
    this.metrics.watch(this.catalog);
  }

  /** Opens the store, then the listeners. Rejects (after cleaning up) if a port is in use. */
  async start(): Promise<void> {
    const config = this.config;
    this.store = config.databaseUrl ? await openShared(config.databaseUrl) : new SqliteStore(config.dataDir);
    try {
      await this.#startServices(config, this.store);
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  async #startServices(config: KilnConfig, store: Store): Promise<void> {
    let lastAlive: Date | undefined;
    if (config.databaseUrl) {
      this.cluster = new Cluster({
        url: config.databaseUrl,
        nodeId: config.nodeId,
        publicUrl: config.publicUrl,
        apiUrl: advertisedUrl(config.tls ? 'https' : 'http', config.api.host, config.api.port, config.publicUrl),
        ovtUrl: advertisedUrl('ovt', config.ovt.host, config.ovt.port, config.publicUrl),
        catalog: this.catalog,
        store,
        logger: this.logger,
      });
      lastAlive = (await this.cluster.start()) ?? new Date();
    }
    await this.#startEvents(config, store);
    this.accessTokens = config.accessTokens.length > 0 ? config.accessTokens : [await this.#generatedToken(store)];
    const credentials = new Credentials(this.accessTokens);
    const signingKey = await this.#signingKey(store);
    this.#signingKeyValue = signingKey;
    this.engine = new MediaEngine({
      catalog: this.catalog,
      ice: config.ice,
      publisherTimeoutMs: config.limits.publisherTimeoutMs,
      errorCounter: this.metrics,
      access: { vhosts: config.vhosts, logger: this.logger },
    });
    this.pulls = new PullManager({
      catalog: this.catalog,
      engine: this.engine,
      store: store,
      timeoutMs: config.limits.pullTimeoutMs,
      ffmpegPath: config.ffmpegPath,
      logger: this.logger,
      errorCounter: this.metrics,
      nodeId: config.nodeId,
      shared: config.databaseUrl !== undefined,
      ovtAuth: (app, stream) => this.#ovtProof(app, stream),
    });
    this.rooms = new Rooms({
      catalog: this.catalog,
      store: store,
      grants: new GrantSigner(deriveKey(signingKey, 'room-tokens')),
      publicUrl: config.publicUrl,
      vhost: config.vhosts[0].name,
      app: config.rooms.app,
      emptyTimeoutMs: config.rooms.emptyTimeoutMs,
      nodeId: config.nodeId,
      shared: config.databaseUrl !== undefined,
      logger: this.logger,
    });
    this.rooms.watch((rs) => watchRoomSession(this.events!, rs));
    this.recordings = new Recordings({
      store: store,
      engine: this.engine,
      rooms: this.rooms,
      dir: join(config.dataDir, 'recordings'),
      ffmpegPath: config.ffmpegPath,
      width: config.recordings.width,
      height: config.recordings.height,
      fps: config.recordings.fps,
      stopWaitMs: config.recordings.stopWaitMs,
      nodeId: config.nodeId,
      shared: config.databaseUrl !== undefined,
      onStatus: (record) => recordingEvent(this.events!, record),
      logger: this.logger,
    });
    const recordingLinks = new RecordingLinks(deriveKey(signingKey, 'recording-links'));
    await this.rooms.restore(lastAlive ?? await this.#lastAlive(store));
    let beats = 0;
    const clustered = this.cluster !== undefined;
    this.#heartbeat = setInterval(() => {
      // In a cluster, the node registry holds the heartbeat.
      if (!clustered) void store?.setSetting(ALIVE_KEY, new Date().toISOString()).catch(() => {});
      // About hourly (and at the first beat): room tokens that can never join again are dropped.
      if (beats++ % GRANT_PRUNE_BEATS === 0) void this.#pruneGrants();
    }, HEARTBEAT_MS);
    this.#heartbeat.unref();
    this.#sampler = setInterval(() => this.catalog.sampleActivity(Date.now()), 1000);
    this.#sampler.unref();
    this.signaling = new SignalingServer({
      host: config.signaling.host,
      port: config.signaling.port,
      tls: config.tls,
      corsOrigins: config.corsOrigins,
      bodyLimit: config.limits.bodyBytes,
      wsMessageBytes: config.limits.wsMessageBytes,
      engine: this.engine,
      credentials,
      rooms: this.rooms,
      roomsApp: config.rooms.app,
      roomPingTimeoutMs: config.rooms.pingTimeoutMs,
      recordingFiles: {
        recordings: this.recordings,
        credentials,
        links: recordingLinks,
        freeAccess: config.recordings.freeAccess,
        nodeId: config.nodeId,
        publicUrlOf: this.cluster && (async (id) => {
          const node = await this.cluster?.node(id);
          return node?.state === 'alive' ? node.publicUrl : undefined;
        }),
      },
      console: {
        dir: config.consoleDir,
        // The API listens after this is built: its port is asked per request (the bound one with port 0).
        config: () => ({ apiPort: this.api?.port ?? config.api.port, apiTls: config.tls !== undefined, apiUrl: config.consoleApiUrl ?? null }),
      },
      logger: this.logger,
    });
    this.api = new ApiServer({
      host: config.api.host,
      port: config.api.port,
      tls: config.tls,
      corsOrigins: config.corsOrigins,
      bodyLimit: config.limits.bodyBytes,
      catalog: this.catalog,
      credentials,
      pulls: this.pulls,
      rooms: this.rooms,
      recordings: this.recordings,
      recordingLinks,
      recordingFreeAccess: config.recordings.freeAccess,
      publicUrl: config.publicUrl,
      store: store,
      pageTokens: new PageTokens(deriveKey(signingKey, 'page-tokens')),
      pricePerMemberMinute: config.rooms.pricePerMemberMinute,
      metrics: this.metrics,
      metricsRequireAuth: config.metricsRequireAuth,
      cluster: this.cluster,
      nodeId: config.nodeId,
      ovtConnections: () => this.ovt?.connections ?? 0,
      servers: async () => this.cluster ? this.cluster.nodes() : [this.#selfView(config)],
      eventMetrics: () => ({
        appended: this.events?.appended ?? 0,
        queued: this.events?.queued ?? 0,
        delivered: this.delivery?.delivered ?? 0,
        failures: this.delivery?.failures ?? 0,
      }),
      logger: this.logger,
    });
    this.#handleCommands();
    await this.api.start();
    await this.signaling.start();
    await this.#startOvt(config, this.engine);
    if (this.cluster) {
      const cluster = this.cluster;
      const pulls = this.pulls;
      // Where other nodes reach this one, with the ports as bound (0 in the configuration takes any).
      await cluster.advertise(
        advertisedUrl(config.tls ? 'https' : 'http', config.api.host, this.api.port, config.publicUrl),
        advertisedUrl('ovt', config.ovt.host, this.ovt!.port, config.publicUrl),
      );
      // A viewer of a stream another node has: pulled here over OVT, once, while it has viewers.
      // A relay from a node declared dead ends at once (its connection may not have broken yet).
      const relayOrigins = new WeakMap<Stream, string>();
      cluster.onNodesDead((ids) => {
        for (const stream of [...this.catalog.allStreams()]) if (stream.relay && ids.includes(relayOrigins.get(stream) ?? '')) stream.close('connection-failed');
        // What they left open is closed in the events now, by the delivering node (which may be
        // another now that they are gone).
        this.#leaderCheck.at = 0;
        void this.#closeOrphansOfGoneNodes();
      });
      this.engine.setRemoteStreams({
        // Without its database a node goes on publishing and playing its own streams: names are
        // not checked against other nodes, and streams of other nodes are not found.
        has: async (vhost, app, name) => cluster.available && (await cluster.remoteStreams(vhost, app, name).catch(() => [])).length > 0,
        hasSession: async (id) => cluster.available && (await cluster.remoteSession(id).catch(() => undefined)) !== undefined,
        bring: async (vhost, app, name) => {
          if (!cluster.available) return;
          const [origin] = await cluster.remoteStreams(vhost, app, name);
          const node = origin && await cluster.node(origin.nodeId);
          if (!node || node.state !== 'alive') return;
          const relay = await pulls.relay({ vhost, app, name, url: `${node.ovtUrl}/${encodeURIComponent(app)}/${encodeURIComponent(name)}` });
          relayOrigins.set(relay, node.id);
        },
      });
    }
    await this.pulls.restore();
    // What a crash left unfinished is composed in the background; the node serves meanwhile.
    void this.recordings.recover().catch((err) => this.logger.error({ err }, 'unfinished recordings could not be recovered'));
  }

  /**
   * The event log and its delivery. What a previous run of this node left open (it crashed) is
   * closed first, with `node-lost`, before anything new opens.
   */
  async #startEvents(config: KilnConfig, store: Store): Promise<void> {
    const endpoints = config.events.webhooks.map((w) => w.url);
    const delivery = new EventDelivery({
      store: store.events,
      webhooks: config.events.webhooks,
      logger: this.logger,
      active: this.cluster && (() => this.#deliversEvents()),
    });
    this.delivery = delivery;
    this.events = new EventLog({ store: store.events, nodeId: config.nodeId, endpoints, logger: this.logger, onAppended: () => delivery.wake() });
    // A store of its own: whatever is open is a previous run's (whatever its node id then).
    const orphans = await this.events.closeOrphans(this.cluster ? config.nodeId : undefined, 'node-lost');
    if (orphans > 0) this.logger.info({ closed: orphans }, 'events left open by the last run are closed (node-lost)');
    watchCatalog(this.events, this.catalog);
    delivery.start();
    const retentionMs = config.events.retentionHours * 3600_000;
    this.#eventPruner = setInterval(() => {
      store.events.prune(new Date(Date.now() - retentionMs).toISOString()).catch((err: Error) => this.logger.debug({ err }, 'events could not be pruned'));
    }, EVENT_PRUNE_MS);
    this.#eventPruner.unref();
    if (this.cluster) {
      // The delivering node closes what nodes not alive left open: at a death (onNodesDead), and
      // now and then for a death it missed, a close that failed, a node that stopped without
      // writing its closes.
      this.#orphanSweep = setInterval(() => void this.#closeOrphansOfGoneNodes(), ORPHAN_SWEEP_MS);
      this.#orphanSweep.unref();
    }
  }

  async #closeOrphansOfGoneNodes(): Promise<void> {
    const cluster = this.cluster!;
    try {
      if (!cluster.available || !(await this.#deliversEvents())) return;
      const alive = new Set((await cluster.nodes()).filter((n) => n.state === 'alive').map((n) => n.id));
      for (const node of await this.store!.events.pairNodes()) {
        if (!alive.has(node)) await this.events!.closeOrphans(node, 'node-lost');
      }
    } catch (err) {
      this.logger.debug({ err }, 'open events of nodes that are gone could not be closed yet');
    }
  }

  /** Cluster mode: the first alive node (by id) delivers the events; checked every few seconds. */
  async #deliversEvents(): Promise<boolean> {
    const now = Date.now();
    if (now - this.#leaderCheck.at > 3000) {
      const cluster = this.cluster!;
      const first = cluster.available ? (await cluster.nodes().catch(() => [])).find((n) => n.state === 'alive') : undefined;
      this.#leaderCheck = { at: now, leader: first?.id === this.config.nodeId };
    }
    return this.#leaderCheck.leader;
  }

  /**
   * The OVT listener. The default port (9000) taken by another program is replaced by a free port,
   * with a warning: other nodes learn this node's OVT address from the cluster. A chosen port in use
   * stops Kiln, as for the other listeners.
   */
  async #startOvt(config: KilnConfig, engine: MediaEngine): Promise<void> {
    const server = (port: number) => new OvtServer({
      host: config.ovt.host,
      port,
      catalog: this.catalog,
      engine,
      logger: this.logger,
      onForwardingError: () => this.metrics.forwardingErrors++,
      authorize: (app, stream, auth) => {
        if (auth === undefined) return false;
        const given = Buffer.from(auth);
        const wanted = Buffer.from(this.#ovtProof(app, stream));
        return given.length === wanted.length && timingSafeEqual(given, wanted);
      },
    });
    this.ovt = server(config.ovt.port);
    try {
      await this.ovt.start();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || config.ovt.portSet) throw err;
      this.ovt = server(0);
      await this.ovt.start();
      this.logger.warn({ port: this.ovt.port }, `OVT port ${config.ovt.port} is in use: listening on ${this.ovt.port} instead (KILN_OVT_PORT chooses one)`);
    }
  }

  /** This node as the registry would show it (the `servers` of a node running alone). */
  #selfView(config: KilnConfig) {
    return {
      id: config.nodeId,
      state: 'alive' as const,
      publicUrl: config.publicUrl,
      apiUrl: advertisedUrl(config.tls ? 'https' : 'http', config.api.host, this.api?.port ?? config.api.port, config.publicUrl),
      ovtUrl: advertisedUrl('ovt', config.ovt.host, this.ovt?.port ?? config.ovt.port, config.publicUrl),
      startedAt: this.#startedAt,
      heartbeatAt: new Date(),
      load: nodeLoad(this.catalog),
    };
  }

  /**
   * Proves this node is one of its cluster to OVT origins (apps whose playback needs a token): an
   * HMAC of `app/stream` with a key derived from the signing key the cluster's nodes share.
   */
  #ovtProof(app: string, stream: string): string {
    this.#ovtKey ??= deriveKey(this.#signingKeyValue!, 'ovt-relay');
    return createHmac('sha256', this.#ovtKey).update(`${app}/${stream}`).digest('base64url');
  }

  /** What other nodes of the cluster ask of this one: closing what it holds. */
  #handleCommands(): void {
    const cluster = this.cluster;
    if (!cluster) return;
    // Taken for dead while it ran (cut off): what the others closed of it is written again.
    cluster.onRevived(() => {
      this.rooms?.rewriteHeld();
      this.recordings?.rewriteActive().catch((err: Error) => this.logger.error({ err }, 'recordings in progress could not be written again'));
    });
    cluster.handle('kick-session', async (args) => {
      const session = this.catalog.sessions.get(String(args.id));
      if (!session) throw errors.sessionNotFound(String(args.id));
      session.close('kicked', typeof args.by === 'string' ? args.by : undefined);
      return { kicked: session.id };
    });
    cluster.handle('api', async (args) => {
      const call = forwardedCallOf(args);
      if (!call || !this.api) throw errors.badRequest('Not a forwarded control call');
      return this.api.runForwarded(call);
    });
    cluster.handle('delete-stream', async (args) => {
      const stream = this.catalog.stream(String(args.vhost), String(args.app), String(args.name));
      stream.close('kicked', typeof args.by === 'string' ? args.by : undefined);
      return { deleted: stream.name };
    });
  }

  /**
   * When this node was last known alive: its heartbeat, written every few seconds. After a crash
   * that is when room sessions left in progress ended.
   */
  async #lastAlive(store: Store): Promise<Date> {
    const alive = await store.getSetting(ALIVE_KEY);
    const at = alive ? new Date(alive) : new Date();
    await store.setSetting(ALIVE_KEY, new Date().toISOString());
    return Number.isNaN(at.getTime()) ? new Date() : at;
  }

  async #pruneGrants(): Promise<void> {
    const now = Date.now();
    try {
      const pruned = await this.store?.pruneRoomGrants(new Date(now).toISOString(), new Date(now - USED_GRANT_KEEP_MS).toISOString());
      if (pruned) this.logger.info({ pruned }, 'spent room tokens dropped');
    } catch (err) {
      this.logger.warn({ err }, 'spent room tokens could not be dropped');
    }
  }

  /**
   * The node's signing key (room tokens, page tokens): made at first start and kept in the store,
   * so tokens outlive a restart and every node sharing the store reads them.
   */
  async #signingKey(store: Store): Promise<Buffer> {
    const kept = await store.getSetting('signing_key');
    if (kept && /^[0-9a-f]{64}$/.test(kept)) return Buffer.from(kept, 'hex');
    // A kept value that is not a key (edited by hand): a key derived from it, the same on every node.
    if (kept) return createHash('sha256').update(kept).digest();
    // Claimed, not set: nodes starting together on an empty database all get the first one's key.
    return Buffer.from(await store.claimSetting('signing_key', randomBytes(32).toString('hex')), 'hex');
  }

  async #generatedToken(store: Store): Promise<string> {
    const existing = await store.getSetting('generated_access_token');
    if (existing) return existing;
    return store.claimSetting('generated_access_token', `kiln:${randomBytes(18).toString('base64url')}`);
  }

  /** Closes every session, then the listeners and the store; resolves when all are gone. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      clearInterval(this.#heartbeat);
      clearInterval(this.#sampler);
      this.pulls?.close();
      await this.recordings?.close();
      await this.rooms?.close();
      this.catalog.closeAll('server-stopping');
      // The admission webhooks' `closing` calls of those sessions (each within its time-out).
      await this.engine?.access?.settled();
      this.engine?.close();
      await closingPeers();
      await Promise.allSettled([this.signaling?.stop(), this.api?.stop(), this.ovt?.stop()]);
      clearInterval(this.#eventPruner);
      clearInterval(this.#orphanSweep);
      await this.delivery?.stop();
      // The closes of every session, stream and room session go to the store before this node
      // leaves the cluster (others would close them as node-lost) and before the store closes.
      if (this.events && !(await this.events.flush(10_000))) this.logger.error({ queued: this.events.queued }, 'events could not be written before stopping');
      await this.cluster?.stop();
      await this.events?.flush(2000);
      this.events?.stop();
      await this.store?.close();
    })();
    return this.#stopping;
  }
}

/**
 * The URL other nodes reach a listener of this node at: its host when bound to one, else the host
 * of the public URL (`localhost` as 127.0.0.1).
 */
function advertisedUrl(scheme: string, host: string, port: number, publicUrl: string): string {
  let name = host;
  if (host === '0.0.0.0' || host === '::' || host === '') {
    name = new URL(publicUrl).hostname;
    if (name === 'localhost') name = '127.0.0.1';
  }
  if (name.includes(':') && !name.startsWith('[')) name = `[${name}]`;
  return `${scheme}://${name}:${port}`;
}

/** The shared store of cluster mode; an unreachable database is said as such (Kiln does not start). */
async function openShared(url: string): Promise<Store> {
  try {
    return await PgStore.open(url);
  } catch (err) {
    throw new Error(`the cluster database (KILN_DATABASE_URL) cannot be used: ${(err as Error).message}`, { cause: err });
  }
}
