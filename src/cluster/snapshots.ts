/**
 * The live state a node mirrors into the shared database (cluster mode): a snapshot of each of its
 * streams and sessions, as JSON, and the views other nodes' APIs rebuild from them.
 */
import type { SessionCounters, SessionKind, SessionProtocol, SessionState, SessionView, Session } from '../core/session.ts';
import type { SourceType, Stream, TrackInfo } from '../core/stream.ts';

/** A session as another node reads it. */
export interface SessionSnapshot {
  kind: SessionKind;
  protocol: SessionProtocol;
  remoteAddress: string;
  remotePort: number;
  userAgent: string;
  user: string;
  vhost: string;
  app: string;
  stream: string;
  roomSession: string | null;
  connectedAt: string;
  state: SessionState;
  counters: SessionCounters;
  ioActivity: number;
  memory: number;
}

export function sessionSnapshot(session: Session): SessionSnapshot {
  return {
    kind: session.kind,
    protocol: session.protocol,
    remoteAddress: session.remoteAddress,
    remotePort: session.remotePort,
    userAgent: session.userAgent,
    user: session.user,
    vhost: session.vhost,
    app: session.app,
    stream: session.stream,
    roomSession: session.roomSession ?? null,
    connectedAt: session.connectedAt.toISOString(),
    state: session.state,
    counters: { ...session.counters },
    ioActivity: session.ioActivity,
    memory: session.memoryUsage(),
  };
}

/** Another node's session, as its last snapshot showed it. */
export class RemoteSession implements SessionView {
  readonly id: string;
  /** The node that holds the session. */
  readonly nodeId: string;
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
  readonly connectedAt: Date;
  readonly counters: Readonly<SessionCounters>;
  readonly state: SessionState;
  readonly ioActivity: number;
  readonly #memory: number;

  constructor(id: string, nodeId: string, s: SessionSnapshot) {
    this.id = id;
    this.nodeId = nodeId;
    this.kind = s.kind;
    this.protocol = s.protocol;
    this.remoteAddress = s.remoteAddress;
    this.remotePort = s.remotePort;
    this.userAgent = s.userAgent;
    this.user = s.user;
    this.vhost = s.vhost;
    this.app = s.app;
    this.stream = s.stream;
    this.roomSession = s.roomSession ?? undefined;
    this.connectedAt = new Date(s.connectedAt);
    this.counters = s.counters;
    this.state = s.state;
    this.ioActivity = s.ioActivity;
    this.#memory = s.memory;
  }

  idleSeconds(now: number): number {
    return Math.max(0, now - this.counters.lastActivity) / 1000;
  }

  memoryUsage(): number {
    return this.#memory;
  }
}

/** A stream as another node reads it. */
export interface StreamSnapshot {
  uuid: string;
  sourceType: SourceType;
  sourceUrl: string | null;
  tracks: TrackInfo[];
  createdAt: string;
  /** The id of the stream's source session. */
  source: string;
}

export function streamSnapshot(stream: Stream): StreamSnapshot {
  return {
    uuid: stream.uuid,
    sourceType: stream.sourceType,
    sourceUrl: stream.sourceUrl ?? null,
    tracks: stream.tracks,
    createdAt: stream.createdAt.toISOString(),
    source: stream.source.id,
  };
}

/** Another node's stream, as its last snapshot showed it. */
export class RemoteStream {
  readonly nodeId: string;
  readonly vhost: string;
  readonly app: string;
  readonly name: string;
  readonly uuid: string;
  readonly sourceType: SourceType;
  readonly sourceUrl: string | undefined;
  readonly tracks: TrackInfo[];
  readonly createdAt: Date;
  readonly source: string;

  constructor(nodeId: string, vhost: string, app: string, name: string, s: StreamSnapshot) {
    this.nodeId = nodeId;
    this.vhost = vhost;
    this.app = app;
    this.name = name;
    this.uuid = s.uuid;
    this.sourceType = s.sourceType;
    this.sourceUrl = s.sourceUrl ?? undefined;
    this.tracks = s.tracks;
    this.createdAt = new Date(s.createdAt);
    this.source = s.source;
  }
}
