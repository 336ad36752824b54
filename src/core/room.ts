/**
 * Rooms (SPEC.md §1): a Room is a configured conference space; a RoomSession is one instance of it
 * in time (status `null` while created and never joined, `in-progress` from the first join,
 * `completed` at the end), kept as history; a Participant is one member connected to a room
 * session, with the streams it publishes and the ones it receives. Pure domain: no I/O.
 */
import { EventEmitter } from 'node:events';
import { randomBytes, randomUUID } from 'node:crypto';
import type { CloseReason, Session } from './session.ts';
import type { Stream } from './stream.ts';

/** OpenVidu roles (SPEC.md §1 Token). */
export type ParticipantRole = 'SUBSCRIBER' | 'PUBLISHER' | 'MODERATOR';
export const PARTICIPANT_ROLES: readonly ParticipantRole[] = ['SUBSCRIBER', 'PUBLISHER', 'MODERATOR'];

/** What a role may do beyond receiving. */
export function canPublish(role: ParticipantRole): boolean {
  return role !== 'SUBSCRIBER';
}
export function canModerate(role: ParticipantRole): boolean {
  return role === 'MODERATOR';
}

/** A room's settings (SignalWire names in SPEC.md §1); each room session keeps a copy. */
export interface RoomSettings {
  /** Shown instead of the name; null: the name. Default null. */
  displayName: string | null;
  /** Members at a time; the next join is refused. Default 20 (SignalWire's default). */
  maxMembers: number;
  /** The resolution asked of the room. Default `720p`. */
  quality: '720p' | '1080p';
  /** Frames per second asked of the room. Default 20. */
  fps: 20 | 30;
  /** The initial layout's name. Default `grid-responsive`. */
  layout: string;
  /** When true, nobody new may join. Default false. */
  locked: boolean;
  /** No join before this time. Default none. */
  joinFrom: Date | null;
  /** No join from this time on. Default none. */
  joinUntil: Date | null;
  /** Every member is removed at this time. Default none. */
  removeAt: Date | null;
  /** A member is removed this many seconds after it joined. Default none. */
  removeAfterSecondsElapsed: number | null;
  /** Start recording when the room session starts. Default false. */
  recordOnStart: boolean;
  /** SignalWire's client-side settings, kept and reported (Kiln plays no tones, makes no previews). */
  toneOnEntryAndExit: boolean;
  roomJoinVideoOff: boolean;
  userJoinVideoOff: boolean;
  enableRoomPreviews: boolean;
  prioritizeHandraise: boolean;
  syncAudioVideo: boolean;
  /** URL of the image shown while the room is locked. Default ''. */
  lockedCover: string;
}

export function defaultRoomSettings(): RoomSettings {
  return {
    displayName: null, maxMembers: 20, quality: '720p', fps: 20, layout: 'grid-responsive', locked: false,
    joinFrom: null, joinUntil: null, removeAt: null, removeAfterSecondsElapsed: null, recordOnStart: false,
    toneOnEntryAndExit: true, roomJoinVideoOff: false, userJoinVideoOff: false, enableRoomPreviews: false,
    prioritizeHandraise: false, syncAudioVideo: true, lockedCover: '',
  };
}

const isoOrNull = (d: Date | null) => (d ? d.toISOString() : null);

/** Settings as stored (JSON: dates as ISO strings). */
export function roomSettingsToJson(s: RoomSettings): Record<string, unknown> {
  return { ...s, joinFrom: isoOrNull(s.joinFrom), joinUntil: isoOrNull(s.joinUntil), removeAt: isoOrNull(s.removeAt) };
}

/** Settings from their stored JSON; what is missing or of the wrong type takes its default. */
export function roomSettingsFromJson(json: Record<string, unknown>): RoomSettings {
  const d = defaultRoomSettings();
  const date = (v: unknown) => (typeof v === 'string' && !Number.isNaN(Date.parse(v)) ? new Date(v) : null);
  const bool = (v: unknown, fallback: boolean) => (typeof v === 'boolean' ? v : fallback);
  return {
    displayName: typeof json.displayName === 'string' ? json.displayName : null,
    maxMembers: typeof json.maxMembers === 'number' ? json.maxMembers : d.maxMembers,
    quality: json.quality === '1080p' ? '1080p' : d.quality,
    fps: json.fps === 30 ? 30 : d.fps,
    layout: typeof json.layout === 'string' ? json.layout : d.layout,
    locked: bool(json.locked, d.locked),
    joinFrom: date(json.joinFrom),
    joinUntil: date(json.joinUntil),
    removeAt: date(json.removeAt),
    removeAfterSecondsElapsed: typeof json.removeAfterSecondsElapsed === 'number' ? json.removeAfterSecondsElapsed : null,
    recordOnStart: bool(json.recordOnStart, d.recordOnStart),
    toneOnEntryAndExit: bool(json.toneOnEntryAndExit, d.toneOnEntryAndExit),
    roomJoinVideoOff: bool(json.roomJoinVideoOff, d.roomJoinVideoOff),
    userJoinVideoOff: bool(json.userJoinVideoOff, d.userJoinVideoOff),
    enableRoomPreviews: bool(json.enableRoomPreviews, d.enableRoomPreviews),
    prioritizeHandraise: bool(json.prioritizeHandraise, d.prioritizeHandraise),
    syncAudioVideo: bool(json.syncAudioVideo, d.syncAudioVideo),
    lockedCover: typeof json.lockedCover === 'string' ? json.lockedCover : d.lockedCover,
  };
}

/** OpenVidu 1.x session properties (seed 004, POST /api/sessions). */
export interface OpenViduProperties {
  archiveMode: 'ALWAYS' | 'MANUAL';
  archiveLayout: 'BEST_FIT';
  mediaMode: 'ROUTED';
}

export type RoomSessionStatus = 'in-progress' | 'completed';

/** Why a participant left; reported with `participantLeft` and kept in the member history. */
export type LeaveReason =
  | 'disconnect'
  | 'evicted'
  | 'network-lost'
  | 'media-failed'
  | 'removed-by-room'
  | 'session-ended'
  | 'server-stopping';

const ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** `n` random lowercase alphanumerics (OpenVidu 1.x ids and tokens). */
export function randomAlnum(n: number): string {
  const bytes = randomBytes(n * 2);
  let out = '';
  // 36 divides 252 evenly 7 times: bytes >= 252 are skipped so every character is equally likely.
  for (let i = 0; i < bytes.length && out.length < n; i++) if (bytes[i] < 252) out += ALNUM[bytes[i] % 36];
  while (out.length < n) out += ALNUM[randomBytes(1)[0] % 36];
  return out;
}

/** `n` random lowercase alphanumerics that `taken` does not hold yet. */
export function uniqueAlnum(n: number, taken: { has: (v: string) => boolean }): string {
  let value = randomAlnum(n);
  while (taken.has(value)) value = randomAlnum(n);
  return value;
}

/**
 * The connection id a stream id starts with: OpenVidu names a participant's stream
 * `<connection id>_<CAMERA|SCREEN|MICRO>`, and clients name senders either way.
 */
export function connectionIdOf(streamId: string): string {
  return streamId.split('_')[0];
}

/** A published stream of a participant, as OpenVidu announces it. */
export interface PublishedStream {
  /** The OpenVidu stream id, also the stream's name in the rooms application. */
  id: string;
  stream: Stream;
  audioActive: boolean;
  videoActive: boolean;
  /** `CAMERA`, `SCREEN` or '' (audio only). */
  typeOfVideo: string;
}

export interface ParticipantOptions {
  id: string;
  /** The member's name: a SignalWire token's user_name, else the token data, client data or id. */
  name: string;
  session: Session;
  role: ParticipantRole;
  /** Data the token carries (server side); ≤ 1000 chars. */
  serverData: string;
  /** Metadata the client gave when joining. */
  clientData: string;
  token: string;
}

export interface ParticipantEvents {
  streamPublished: [published: PublishedStream];
  streamUnpublished: [published: PublishedStream, reason: CloseReason];
  left: [reason: LeaveReason];
}

export class Participant extends EventEmitter<ParticipantEvents> {
  readonly id: string;
  readonly name: string;
  /** The participant's own session (kind `participant`): its signaling connection. */
  readonly session: Session;
  readonly role: ParticipantRole;
  readonly serverData: string;
  readonly clientData: string;
  readonly token: string;
  readonly joinedAt = new Date();
  readonly streams = new Map<string, PublishedStream>();
  /** The sessions receiving other participants' streams, by the sender's stream id. */
  readonly subscriptions = new Map<string, Session>();
  leftAt: Date | undefined;
  leaveReason: LeaveReason | undefined;

  constructor(options: ParticipantOptions) {
    super();
    this.id = options.id;
    this.name = options.name;
    this.session = options.session;
    this.role = options.role;
    this.serverData = options.serverData;
    this.clientData = options.clientData;
    this.token = options.token;
  }

  get left(): boolean {
    return this.leftAt !== undefined;
  }

  /**
   * OpenVidu's connection metadata as other participants see it: the client's metadata and the
   * token's data, joined by `%/%` when both are set.
   */
  get metadata(): string {
    if (this.clientData && this.serverData) return `${this.clientData}%/%${this.serverData}`;
    return this.clientData || this.serverData;
  }

  /**
   * Any session of this participant that is kicked (an API DELETE) evicts the participant. When its
   * published media fails or times out (`mediaFailure`), the participant goes too; a failed
   * subscription is only dropped.
   */
  #follow(session: Session, mediaFailure: boolean): void {
    session.once('close', (reason) => {
      if (reason === 'kicked') this.leave('evicted');
      else if (mediaFailure && (reason === 'connection-failed' || reason === 'timed-out')) this.leave('media-failed');
    });
  }

  /** Adds a published stream; it is removed (and announced) when its stream closes. */
  addStream(published: PublishedStream): void {
    this.streams.set(published.id, published);
    this.#follow(published.stream.source, true);
    published.stream.once('close', (reason) => {
      if (this.streams.get(published.id) !== published) return;
      this.streams.delete(published.id);
      this.emit('streamUnpublished', published, reason);
    });
    this.emit('streamPublished', published);
  }

  /** Adds a receiving session; it is forgotten when it closes. */
  addSubscription(senderStreamId: string, session: Session): void {
    const previous = this.subscriptions.get(senderStreamId);
    this.subscriptions.set(senderStreamId, session);
    if (previous && previous !== session) previous.close('client-left');
    this.#follow(session, false);
    session.once('close', () => {
      if (this.subscriptions.get(senderStreamId) === session) this.subscriptions.delete(senderStreamId);
    });
  }

  /** Ends the participant's media and session; idempotent. `left` is emitted once. */
  leave(reason: LeaveReason): void {
    if (this.leftAt) return;
    this.leftAt = new Date();
    this.leaveReason = reason;
    const sessionReason: CloseReason = reason === 'evicted' ? 'kicked' : reason === 'server-stopping' ? 'server-stopping'
      : reason === 'network-lost' ? 'timed-out' : reason === 'media-failed' ? 'connection-failed' : 'client-left';
    try {
      for (const sub of [...this.subscriptions.values()]) sub.close(sessionReason);
      for (const published of [...this.streams.values()]) published.stream.close(sessionReason);
      this.session.close(sessionReason);
    } finally {
      // Every join has its one leave, whatever a close threw.
      this.emit('left', reason);
    }
  }
}

export interface RoomSessionOptions {
  /** Default: a random UUID. */
  id?: string;
  /** The room's id, or null for an auto-created room (OpenVidu sessions). */
  roomId: string | null;
  /** The room's name: the last segment of the OpenVidu session id clients join with. */
  name: string;
  settings: RoomSettings;
  openvidu?: OpenViduProperties;
  createdAt?: Date;
}

export interface RoomSessionEvents {
  started: [];
  /** The session is about to end: its participants are still in it. */
  ending: [reason: LeaveReason];
  joined: [participant: Participant];
  left: [participant: Participant, reason: LeaveReason];
  published: [participant: Participant, published: PublishedStream];
  unpublished: [participant: Participant, published: PublishedStream, reason: CloseReason];
  /** A `sendMessage` signal; `to` empty means everyone. */
  signal: [from: Participant, to: string[], type: string, data: string];
  /** A recording of the session has started (its file holds media) or stopped: id and name. */
  recordingStarted: [id: string, name: string];
  recordingStopped: [id: string, name: string];
  ended: [reason: LeaveReason];
}

export class RoomSession extends EventEmitter<RoomSessionEvents> {
  readonly id: string;
  readonly roomId: string | null;
  readonly name: string;
  readonly settings: RoomSettings;
  readonly openvidu: OpenViduProperties | undefined;
  readonly createdAt: Date;
  status: RoomSessionStatus | null = null;
  startTime: Date | undefined;
  endTime: Date | undefined;
  endReason: LeaveReason | undefined;
  readonly participants = new Map<string, Participant>();

  constructor(options: RoomSessionOptions) {
    super();
    this.setMaxListeners(0);
    this.id = options.id ?? randomUUID();
    this.roomId = options.roomId;
    this.name = options.name;
    this.settings = options.settings;
    this.openvidu = options.openvidu;
    this.createdAt = options.createdAt ?? new Date();
  }

  get ended(): boolean {
    return this.status === 'completed';
  }

  /**
   * Why a new member cannot join now (the room's settings), or undefined when it can.
   * `now` is the join time.
   */
  refusal(now: Date): string | undefined {
    const s = this.settings;
    if (this.ended) return 'The session has ended';
    if (s.locked) return 'The room is locked';
    if (s.joinFrom && now < s.joinFrom) return `The room does not accept members before ${s.joinFrom.toISOString()}`;
    if (s.joinUntil && now >= s.joinUntil) return `The room stopped accepting members at ${s.joinUntil.toISOString()}`;
    if (s.removeAt && now >= s.removeAt) return `Members are removed from the room at ${s.removeAt.toISOString()}`;
    if (this.participants.size >= s.maxMembers) return `The room is full (max_members ${s.maxMembers})`;
    return undefined;
  }

  /** Adds a participant (the caller checked `refusal`); starts the session on the first join. */
  add(participant: Participant): void {
    this.participants.set(participant.id, participant);
    if (this.status === null) {
      this.status = 'in-progress';
      this.startTime = participant.joinedAt;
      this.emit('started');
    }
    participant.on('streamPublished', (published) => this.emit('published', participant, published));
    participant.on('streamUnpublished', (published, reason) => this.emit('unpublished', participant, published, reason));
    participant.once('left', (reason) => {
      this.participants.delete(participant.id);
      this.emit('left', participant, reason);
    });
    this.emit('joined', participant);
  }

  /** Every published stream of the session, with its publisher. */
  *publishedStreams(): Generator<[Participant, PublishedStream]> {
    for (const p of this.participants.values()) for (const s of p.streams.values()) yield [p, s];
  }

  /** Finds a published stream by its OpenVidu id. */
  findStream(streamId: string): [Participant, PublishedStream] | undefined {
    for (const entry of this.publishedStreams()) if (entry[1].id === streamId) return entry;
    return undefined;
  }

  /** Ends the session: every participant leaves with `reason`, then `ended`. Idempotent. */
  end(reason: LeaveReason, at = new Date()): void {
    if (this.status === 'completed') return;
    try {
      this.emit('ending', reason);
      for (const p of [...this.participants.values()]) p.leave(reason);
    } finally {
      this.status = 'completed';
      this.startTime ??= at;
      this.endTime = at;
      this.endReason = reason;
      this.emit('ended', reason);
    }
  }
}
