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
  /** The node that pulls it (and restores it after a restart). */
  nodeId: string;
}

/** One room session as kept in history (SPEC.md §1); dates are ISO 8601 strings. */
export interface RoomSessionRecord {
  id: string;
  roomId: string | null;
  name: string;
  /** The room's settings when the session was created (JSON object). */
  settings: Record<string, unknown>;
  /** OpenVidu session properties, for sessions made through POST /api/sessions. */
  openvidu: Record<string, unknown> | null;
  status: 'in-progress' | 'completed' | null;
  createdAt: string;
  updatedAt: string;
  startTime: string | null;
  endTime: string | null;
  endReason: string | null;
  /** The node that holds the session ('' in the embedded single-node store's old rows). */
  nodeId: string;
}

/** A room (SignalWire): a named, configured conference space; dates are ISO 8601 strings. */
export interface RoomRecord {
  id: string;
  /** Unique among rooms. */
  name: string;
  /** The room's settings (JSON object, the same shape room sessions copy). */
  settings: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}

/** A position in a newest-first listing: (created_at, id) of a row. */
export interface ListCursor {
  createdAt: string;
  id: string;
}

/** One page of a newest-first listing: rows older than `before`, or newer than `after`. */
export interface PageQuery {
  before?: ListCursor;
  /** Rows newer than this (the previous page); still returned newest first. */
  after?: ListCursor;
  limit: number;
}

/** Which room sessions a listing wants (SignalWire's filters). */
export interface RoomSessionQuery extends PageQuery {
  roomId?: string;
  /** Exact name. */
  name?: string;
  /** Substring of the name. */
  nameContains?: string;
  status?: 'in-progress' | 'completed';
}

/** A SignalWire room token: joins the room's session in progress, or starts one. */
export interface RoomGrantRecord {
  token: string;
  roomId: string;
  userName: string;
  /** The OpenVidu role the permissions amount to. */
  role: string;
  permissions: string[];
  createdAt: string;
  expiresAt: string;
  usedAt: string | null;
}

/** One participant's stay in a room session. */
export interface RoomMemberRecord {
  id: string;
  roomSessionId: string;
  /** The member's name (a SignalWire token's user_name; else the token data or client data). */
  name: string;
  role: string;
  /** The token's data. */
  serverData: string;
  /** The metadata the client joined with. */
  clientData: string;
  remoteAddress: string;
  joinedAt: string;
  leftAt: string | null;
  leaveReason: string | null;
}

/** A single-use token to join one room session. */
export interface RoomTokenRecord {
  token: string;
  roomSessionId: string;
  role: string;
  data: string;
  createdAt: string;
  usedAt: string | null;
}

/** Where a recording is in its life (OpenVidu 1.x statuses, SPEC.md §1). */
export type RecordingStatus = 'starting' | 'started' | 'stopped' | 'available' | 'failed';

/** A recording of a room session; dates are ISO 8601 strings. */
export interface RecordingRecord {
  /** OpenVidu's id: the room session's name, then `-1`, `-2`… when taken. Also the file's name. */
  id: string;
  /** The SignalWire dialect's id. */
  uuid: string;
  roomSessionId: string;
  /** The OpenVidu session id the recording was started for (`wss://…/<name>`). */
  sessionId: string;
  name: string;
  /**
   * `starting` until the file holds media, `started`, `stopped` once stopped (while its file is
   * composed), `available` once composed (whatever the dialects show of it), `failed`.
   */
  status: RecordingStatus;
  createdAt: string;
  updatedAt: string;
  stoppedAt: string | null;
  /** Seconds of the composed file (0 until composed). */
  duration: number;
  /** Bytes of the composed file (0 until composed). */
  size: number;
  hasAudio: boolean;
  hasVideo: boolean;
  /** Why it failed, for logs and operators. */
  reason: string | null;
  /** The node that records it and keeps its files. */
  nodeId: string;
}

/** An event of the server, as appended to the outbox (src/events). */
export interface NewEventRecord {
  /** A UUID, unique to this event (receivers deduplicate by it). */
  id: string;
  /** e.g. `session.opened`, `stream.destroyed`, `participant.left`, `recording.status`. */
  type: string;
  /** ISO 8601. */
  time: string;
  /** The node that wrote it. */
  nodeId: string;
  /** What it is about (a session id, a stream, a room session…): delivery keeps each subject's order. */
  subject: string;
  data: Record<string, unknown>;
}

/** An event in the outbox, with its place in it. */
export interface EventRecord extends NewEventRecord {
  /** Increases with each event appended; deliveries follow it. */
  seq: number;
}

/** Where one event stands with one endpoint. */
export interface EventDeliveryRecord {
  endpoint: string;
  attempts: number;
  lastError: string | null;
  lastAttemptAt: string | null;
  /** Null while pending. */
  deliveredAt: string | null;
}

/**
 * What an event does to its pair: opens one (`key`, and the type of the event that will close it),
 * or closes the open one of `key`.
 */
export type EventPairChange = { open: string; closeType: string } | { close: string };

/** One event to append, with what it does to its pair. */
export interface EventAppend {
  event: NewEventRecord;
  pair?: EventPairChange;
}

/** An opened event without its closing one yet (e.g. a session opened and not closed). */
export interface OpenEventPair {
  key: string;
  subject: string;
  closeType: string;
  /** The opening event's data (the closing one repeats it, with a reason). */
  data: Record<string, unknown>;
  nodeId: string;
  openedSeq: number;
}

/** The event outbox (issue 9): events, their deliveries to each endpoint, and open pairs. */
export interface EventStore {
  /**
   * Appends events in order, in one transaction, each with a pending delivery to each endpoint and
   * its pair change. Returns each event's seq; undefined (nothing appended) for a close of a pair
   * that is not open, so each opened event has one closing event, and for an event whose id is
   * there already (a retry of a write whose outcome was unknown).
   */
  append(events: EventAppend[], endpoints: string[]): Promise<(number | undefined)[]>;
  /** The open pairs of a node (of every node when undefined), newest first. */
  openPairs(nodeId?: string): Promise<OpenEventPair[]>;
  /** The nodes that have open pairs. */
  pairNodes(): Promise<string[]>;
  /** The endpoint's pending events, oldest first. */
  pending(endpoint: string, limit: number): Promise<(EventRecord & { attempts: number })[]>;
  delivered(endpoint: string, seqs: number[], at: string): Promise<void>;
  failed(endpoint: string, seq: number, error: string, at: string): Promise<void>;
  /** Events newest first, with their deliveries; only those still pending somewhere when `pending`. */
  list(query: { limit: number; offset: number; pending?: boolean }): Promise<{ total: number; events: (EventRecord & { deliveries: EventDeliveryRecord[] })[] }>;
  /** Deletes events from before `before` that no endpoint waits for. Returns how many. */
  prune(before: string): Promise<number>;
}

export interface Store {
  /** The event outbox. */
  readonly events: EventStore;
  /** A named setting (e.g. the generated credential), or undefined. */
  getSetting(key: string): Promise<string | undefined>;
  setSetting(key: string, value: string): Promise<void>;
  /**
   * Sets `key` to `value` unless it is set already; returns the value in force, so that nodes doing
   * this at once all get the first one's.
   */
  claimSetting(key: string, value: string): Promise<string>;
  /** Persistent pulls; of one node when given. */
  listPullStreams(nodeId?: string): Promise<PullStreamRecord[]>;
  /** Inserts or replaces the record of (vhost, app, name). */
  putPullStream(record: PullStreamRecord): Promise<void>;
  /** Deletes the record of (vhost, app, name); only node `nodeId`'s when given. */
  deletePullStream(vhost: string, app: string, name: string, nodeId?: string): Promise<void>;
  /** Inserts or replaces a room session. */
  putRoomSession(record: RoomSessionRecord): Promise<void>;
  getRoomSession(id: string): Promise<RoomSessionRecord | undefined>;
  /** Room sessions not completed (created or in progress), oldest first; of one node when given. */
  listOpenRoomSessions(nodeId?: string): Promise<RoomSessionRecord[]>;
  /** Inserts or replaces a member record. */
  putRoomMember(record: RoomMemberRecord): Promise<void>;
  listRoomMembers(roomSessionId: string): Promise<RoomMemberRecord[]>;
  putRoomToken(record: RoomTokenRecord): Promise<void>;
  /** Tokens of room sessions not completed; of one node's sessions when given. */
  listOpenRoomTokens(nodeId?: string): Promise<RoomTokenRecord[]>;
  /** Marks a token used; false when it was used already or does not exist (single use, atomic). */
  useRoomToken(token: string, at: string): Promise<boolean>;
  /**
   * Completes every in-progress room session (after a restart or a crash), or those of one node when
   * `nodeId` is given: `endTime` for the session and for members still in, with `reason`. Returns
   * how many sessions it completed.
   */
  completeInProgressRoomSessions(endTime: string, reason: string, nodeId?: string): Promise<number>;
  /** Inserts or replaces a room; CONFLICT (a KilnError) when another room has its name. */
  putRoom(record: RoomRecord): Promise<void>;
  getRoom(id: string): Promise<RoomRecord | undefined>;
  getRoomByName(name: string): Promise<RoomRecord | undefined>;
  /** Rooms newest first, one page. */
  listRooms(query: PageQuery): Promise<RoomRecord[]>;
  /** False when there was no such room. */
  deleteRoom(id: string): Promise<boolean>;
  /** Room sessions newest first (created_at, then id), filtered, one page. */
  listRoomSessions(query: RoomSessionQuery): Promise<RoomSessionRecord[]>;
  /** Seconds members spent in each of these room sessions (members still in count until `now`). */
  memberSeconds(roomSessionIds: string[], now: string): Promise<Map<string, number>>;
  putRoomGrant(record: RoomGrantRecord): Promise<void>;
  getRoomGrant(token: string): Promise<RoomGrantRecord | undefined>;
  /** Marks a grant used; false when it was used already or does not exist (single use, atomic). */
  useRoomGrant(token: string, at: string): Promise<boolean>;
  /** Deletes grants that can never join again: expired before `now`, or used before `usedBefore`. Returns how many. */
  pruneRoomGrants(now: string, usedBefore: string): Promise<number>;
  /** Inserts or replaces a recording. */
  putRecording(record: RecordingRecord): Promise<void>;
  /** By OpenVidu id, or by uuid. */
  getRecording(id: string): Promise<RecordingRecord | undefined>;
  /** Every recording, newest first; of one room session when given. */
  listRecordings(roomSessionId?: string): Promise<RecordingRecord[]>;
  /** Recordings whose file is not final: starting, started, or stopped (not composed yet); of one node when given. */
  listUnfinishedRecordings(nodeId?: string): Promise<RecordingRecord[]>;
  /** False when there was no such recording. */
  deleteRecording(id: string): Promise<boolean>;
  /** Releases the database; idempotent. */
  close(): Promise<void>;
}
