/**
 * A Session is one client connection to the media plane (SPEC.md §1): a publisher, a player, a
 * pull (ingress connection) or a room participant. The protocol that owns the connection gives it
 * a teardown; `close(reason)` runs it once and emits `close`.
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';

export type SessionKind = 'publisher' | 'player' | 'pull' | 'participant';
export type SessionProtocol = 'whip' | 'whep' | 'ome-webrtc' | 'rtsp' | 'ovt' | 'openvidu';
export type SessionState = 'connecting' | 'active' | 'closed';

/** Why a session ended; carried by `close` events and reported by the APIs. */
export type CloseReason =
  | 'client-left'
  | 'kicked'
  | 'stream-ended'
  | 'timed-out'
  | 'connection-failed'
  | 'server-stopping'
  /** Its admitted lifetime (admission webhook) or its signed URL's stream_expire ran out. */
  | 'expired'
  /** The node that held it died or restarted (closed for it by another node, or at the next start). */
  | 'node-lost'
  | 'error';

/** Counters a media engine updates in place (no allocation on the packet path). */
export interface SessionCounters {
  bytesIn: number;
  bytesOut: number;
  packetsIn: number;
  packetsOut: number;
  /** Date.now() of the last packet in either direction. */
  lastActivity: number;
}

export interface SessionOptions {
  /** Default: a random UUID. */
  id?: string;
  kind: SessionKind;
  protocol: SessionProtocol;
  remoteAddress: string;
  remotePort: number;
  userAgent?: string;
  /** The credential user, participant name or `anonymous`. Default `anonymous`. */
  user?: string;
  vhost: string;
  app: string;
  stream: string;
  /** The room session (UUID) a room participant's sessions belong to. */
  roomSession?: string;
}

/**
 * What the control APIs read of a session: a live Session of this node, or a snapshot of another
 * node's (cluster mode, src/cluster).
 */
export type SessionView = Pick<Session, 'id' | 'kind' | 'protocol' | 'remoteAddress' | 'remotePort' | 'userAgent' | 'user' | 'vhost' | 'app'
  | 'stream' | 'roomSession' | 'connectedAt' | 'state' | 'ioActivity' | 'idleSeconds' | 'memoryUsage'> & { readonly counters: Readonly<SessionCounters> };

/** Seconds of history kept for `ioActivity` (MaxScale's io_activity window), sampled once a second. */
const ACTIVITY_WINDOW_S = 30;

export interface SessionEvents {
  close: [reason: CloseReason];
  active: [];
}

export class Session extends EventEmitter<SessionEvents> {
  readonly id: string;
  readonly kind: SessionKind;
  readonly protocol: SessionProtocol;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly userAgent: string;
  readonly user: string;
  readonly vhost: string;
  readonly app: string;
  readonly stream: string;
  readonly roomSession: string | undefined;
  readonly connectedAt = new Date();
  readonly counters: SessionCounters = { bytesIn: 0, bytesOut: 0, packetsIn: 0, packetsOut: 0, lastActivity: Date.now() };
  state: SessionState = 'connecting';
  closeReason: CloseReason | undefined;
  /** Who closed it, when someone did (`kicked`): e.g. `ome-api:admin`, `maxscale-api:admin`. */
  closedBy: string | undefined;
  #teardown: ((reason: CloseReason) => void) | undefined;
  #memoryProbe: (() => number) | undefined;
  /** Packets in + out at each of the last samples, a ring (`sampleActivity`). */
  readonly #samples = new Float64Array(ACTIVITY_WINDOW_S + 1);
  #sampleSlot = 0;
  #sampledTotal = 0;
  #sampledActivity = this.counters.lastActivity;

  constructor(options: SessionOptions) {
    super();
    this.id = options.id ?? randomUUID();
    this.kind = options.kind;
    this.protocol = options.protocol;
    this.remoteAddress = options.remoteAddress;
    this.remotePort = options.remotePort;
    this.userAgent = options.userAgent ?? '';
    this.user = options.user ?? 'anonymous';
    this.vhost = options.vhost;
    this.app = options.app;
    this.stream = options.stream;
    this.roomSession = options.roomSession;
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  /**
   * Whether `counters` count media (RTP). A participant's count its signaling messages: its media
   * is counted by the publisher and player sessions of its streams.
   */
  get countsMedia(): boolean {
    return this.kind !== 'participant';
  }

  /** Sets what `close` does to the underlying connection (the protocol's job). */
  setTeardown(teardown: (reason: CloseReason) => void): void {
    this.#teardown = teardown;
  }

  /** Sets how many bytes of buffers the session holds (for the session APIs; called on demand). */
  setMemoryProbe(probe: () => number): void {
    this.#memoryProbe = probe;
  }

  /** Bytes of packet buffers this session holds that Kiln accounts for (0 when none). */
  memoryUsage(): number {
    try {
      return this.#memoryProbe?.() ?? 0;
    } catch {
      return 0;
    }
  }

  /**
   * Takes one activity sample; call once a second. Packets that moved since the last sample while
   * `lastActivity` stood still (paths that do not stamp it per packet: players) mark the session
   * active now.
   */
  sampleActivity(now: number): void {
    const c = this.counters;
    const total = c.packetsIn + c.packetsOut;
    if (total !== this.#sampledTotal && c.lastActivity === this.#sampledActivity && c.lastActivity < now) c.lastActivity = now;
    this.#sampledTotal = total;
    this.#sampledActivity = c.lastActivity;
    this.#sampleSlot = (this.#sampleSlot + 1) % this.#samples.length;
    this.#samples[this.#sampleSlot] = total;
  }

  /** Packets in either direction during the last 30 s (since the start when younger). */
  get ioActivity(): number {
    const c = this.counters;
    const oldest = this.#samples[(this.#sampleSlot + 1) % this.#samples.length];
    return c.packetsIn + c.packetsOut - oldest;
  }

  /** Seconds since the last packet in either direction. */
  idleSeconds(now: number): number {
    return Math.max(0, now - this.counters.lastActivity) / 1000;
  }

  /** Marks the session as carrying media. */
  activate(): void {
    if (this.state !== 'connecting') return;
    this.state = 'active';
    this.emit('active');
  }

  /**
   * Ends the session now; idempotent. The teardown runs once, then `close` is emitted. `by` names
   * who ended it (an API and its user), for the close event.
   */
  close(reason: CloseReason, by?: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.closeReason = reason;
    this.closedBy = by;
    const teardown = this.#teardown;
    this.#teardown = undefined;
    try {
      teardown?.(reason);
    } finally {
      this.emit('close', reason);
      this.removeAllListeners();
    }
  }
}
