/**
 * The room signaling of OpenVidu 1.x: JSON-RPC 2.0 over a WebSocket at `/room` (SPEC.md §2), as
 * `openvidu-browser` 1.x speaks it through kurento-jsonrpc. Method and parameter names, result and
 * notification shapes and error codes follow OpenVidu Server 1.8.0 (`ProtocolElements.java`,
 * `RpcHandler.java`, `SessionEventsHandler.java`, `OpenViduException.Code`); `forceDisconnect` and
 * `forceUnpublish` for moderators are OpenVidu 2.0's. Media goes through the media engine: each
 * published stream is a stream of the rooms application, each subscription a player of it.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { WebSocket, RawData } from 'ws';
import type { Logger } from 'pino';
import { isKilnError } from '../../core/errors.ts';
import { canModerate, canPublish, connectionIdOf, type LeaveReason, type Participant, type PublishedStream, type RoomSession } from '../../core/room.ts';
import type { CloseReason, Session } from '../../core/session.ts';
import { clientOf, type ClientInfo, type MediaEngine } from '../../media/engine.ts';
import { sdpCandidates, type CandidateInit } from '../../media/sdp.ts';
import type { Credentials } from '../../api/credentials.ts';
import type { Rooms } from '../../rooms/rooms.ts';

export interface RoomSignalingOptions {
  rooms: Rooms;
  engine: MediaEngine;
  credentials: Credentials;
  /** The application participants' streams are published into. */
  app: string;
  /** A connection that sends nothing (openvidu-browser pings every 3 s) for this long is dropped, ms. */
  pingTimeoutMs: number;
  logger: Logger;
}

/** Error codes: OpenVidu's (OpenViduException.Code) and JSON-RPC 2.0's own (§5.1). */
export const RpcCode = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  USER_GENERIC: 101,
  USER_NOT_FOUND: 102,
  USER_CLOSED: 103,
  EXISTING_USER_IN_ROOM: 104,
  USER_NOT_STREAMING: 105,
  ROOM_CLOSED: 203,
  MEDIA_SDP: 302,
  USER_UNAUTHORIZED: 401,
  USER_METADATA_FORMAT_INVALID: 500,
  SIGNAL_FORMAT_INVALID: 600,
  SIGNAL_TO_INVALID: 601,
  GENERIC: 999,
} as const;

class RpcError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

/** OpenVidu 2's `reason` strings for a participant that left, which 1.x clients ignore. */
const LEFT_REASON: Record<LeaveReason, string> = {
  'disconnect': 'disconnect',
  'evicted': 'forceDisconnectByServer',
  'network-lost': 'networkDisconnect',
  'media-failed': 'networkDisconnect',
  'removed-by-room': 'forceDisconnectByServer',
  'session-ended': 'sessionClosedByServer',
  'server-stopping': 'openviduServerStopped',
};

/** Largest client metadata accepted in joinRoom (OpenVidu: 1000 chars). */
const MAX_METADATA = 1000;
/** Trickled candidates kept per endpoint until its peer connection exists. */
const MAX_QUEUED_CANDIDATES = 64;
/** Endpoints with queued candidates per connection. */
const MAX_QUEUED_ENDPOINTS = 64;

type Params = Record<string, unknown>;

function param(params: Params, key: string, method: string): unknown {
  const v = params[key];
  if (v === undefined || v === null) throw new RpcError(RpcCode.INVALID_PARAMS, `Request element '${key}' is missing in method '${method}'`);
  return v;
}

function stringParam(params: Params, key: string, method: string): string {
  const v = param(params, key, method);
  if (typeof v !== 'string') throw new RpcError(RpcCode.INVALID_PARAMS, `Request element '${key}' of method '${method}' must be a string`);
  return v;
}

function optionalBoolean(params: Params, key: string, method: string, fallback: boolean): boolean {
  const v = params[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') throw new RpcError(RpcCode.INVALID_PARAMS, `Request element '${key}' of method '${method}' must be true or false`);
  return v;
}

/** Serves one `/room` WebSocket. */
export function handleRoomSignaling(ws: WebSocket, request: IncomingMessage, options: RoomSignalingOptions): void {
  new RoomConnection(ws, request, options);
}

class RoomConnection {
  readonly #ws: WebSocket;
  readonly #options: RoomSignalingOptions;
  readonly #request: IncomingMessage;
  /** kurento-jsonrpc's session id, echoed in every result. */
  readonly #rpcSessionId = randomUUID();
  #participant: Participant | undefined;
  #roomSession: RoomSession | undefined;
  #joining = false;
  /** The publishVideo being answered, which an unpublishVideo waits for. */
  #publishing: Promise<unknown> | undefined;
  #lastHeard = Date.now();
  readonly #watchdog: NodeJS.Timeout;
  readonly #pendingCandidates = new Map<string, CandidateInit[]>();
  readonly #unsubscribe: (() => void)[] = [];

  constructor(ws: WebSocket, request: IncomingMessage, options: RoomSignalingOptions) {
    this.#ws = ws;
    this.#request = request;
    this.#options = options;
    ws.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
    ws.on('close', (code) => this.#onClose(code));
    this.#watchdog = setInterval(() => {
      if (Date.now() - this.#lastHeard <= options.pingTimeoutMs) return;
      this.#participant?.leave('network-lost');
      ws.terminate();
    }, Math.min(1000, options.pingTimeoutMs));
    this.#watchdog.unref();
  }

  #send(message: object): void {
    if (this.#ws.readyState !== this.#ws.OPEN) return;
    const text = JSON.stringify({ ...message, jsonrpc: '2.0' });
    this.#ws.send(text);
    // A participant's own traffic is its signaling (its media is counted by its stream sessions).
    const c = this.#participant?.session.counters;
    if (c) {
      c.packetsOut++;
      c.bytesOut += Buffer.byteLength(text);
    }
  }

  #notify(method: string, params: object): void {
    this.#send({ method, params });
  }

  #respond(id: unknown, result: object): void {
    if (id === undefined) return;
    this.#send({ id, result: { ...result, sessionId: this.#rpcSessionId } });
  }

  #fail(id: unknown, code: number, message: string): void {
    // A notification (no id) gets no answer (JSON-RPC 2.0 §4.1), except for what makes it unreadable.
    if (id === undefined && code !== RpcCode.PARSE_ERROR && code !== RpcCode.INVALID_REQUEST) return;
    this.#send({ id: id ?? null, error: { code, message } });
  }

  #onMessage(data: RawData, isBinary: boolean): void {
    this.#lastHeard = Date.now();
    const c = this.#participant?.session.counters;
    if (c) {
      c.packetsIn++;
      c.bytesIn += Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;
      c.lastActivity = this.#lastHeard;
    }
    let message: unknown;
    try {
      if (isBinary) throw new Error('binary frames are not JSON-RPC');
      message = JSON.parse(data.toString());
    } catch (err) {
      return this.#fail(null, RpcCode.PARSE_ERROR, `Parse error: ${(err as Error).message}`);
    }
    if (typeof message !== 'object' || message === null || Array.isArray(message)) {
      return this.#fail(null, RpcCode.INVALID_REQUEST, 'Invalid Request: a JSON-RPC 2.0 request object is expected (batches are not supported)');
    }
    const m = message as Record<string, unknown>;
    const id = m.id;
    if (id !== undefined && id !== null && typeof id !== 'number' && typeof id !== 'string') {
      return this.#fail(null, RpcCode.INVALID_REQUEST, 'Invalid Request: "id" must be a number or a string');
    }
    // A response to nothing we asked (the server sends only notifications): ignore it.
    if (m.method === undefined && (m.result !== undefined || m.error !== undefined)) return;
    if (m.jsonrpc !== '2.0') return this.#fail(id ?? null, RpcCode.INVALID_REQUEST, 'Invalid Request: "jsonrpc" must be "2.0"');
    if (typeof m.method !== 'string') return this.#fail(id ?? null, RpcCode.INVALID_REQUEST, 'Invalid Request: "method" must be a string');
    if (m.params !== undefined && m.params !== null && (typeof m.params !== 'object' || Array.isArray(m.params))) {
      return this.#fail(id, RpcCode.INVALID_PARAMS, `Invalid params: the params of '${m.method}' must be an object`);
    }
    const params = (m.params ?? {}) as Params;
    void this.#dispatch(m.method, params).then(
      (result) => this.#respond(id, result),
      (err) => this.#onError(id, m.method as string, err),
    );
  }

  #onError(id: unknown, method: string, err: unknown): void {
    if (err instanceof RpcError) return this.#fail(id, err.code, err.message);
    if (isKilnError(err)) {
      const code = err.code === 'BAD_REQUEST' || err.code === 'NO_USABLE_CODEC' ? RpcCode.MEDIA_SDP
        : err.code === 'UNAUTHORIZED' || err.code === 'FORBIDDEN' || err.code === 'NOT_FOUND' ? RpcCode.USER_UNAUTHORIZED
          : err.code === 'STREAM_EXISTS' ? RpcCode.USER_GENERIC : RpcCode.GENERIC;
      return this.#fail(id, code, err.message);
    }
    this.#options.logger.error({ err, method }, 'room signaling request failed');
    this.#fail(id, RpcCode.INTERNAL_ERROR, 'Internal error');
  }

  #dispatch(method: string, params: Params): Promise<object> {
    switch (method) {
      case 'ping':
        return Promise.resolve({ value: 'pong' });
      case 'joinRoom':
        return this.#joinRoom(params);
      case 'leaveRoom':
        return this.#leaveRoom();
      case 'publishVideo':
        return this.#publishVideo(params);
      case 'unpublishVideo':
        return this.#unpublishVideo();
      case 'receiveVideoFrom':
        return this.#receiveVideoFrom(params);
      case 'unsubscribeFromVideo':
        return this.#unsubscribeFromVideo(params);
      case 'onIceCandidate':
        return this.#onIceCandidate(params);
      case 'sendMessage':
        return this.#sendMessage(params);
      case 'forceDisconnect':
        return this.#forceDisconnect(params);
      case 'forceUnpublish':
        return this.#forceUnpublish(params);
      default:
        return Promise.reject(new RpcError(RpcCode.METHOD_NOT_FOUND, `Method not found: ${method}`));
    }
  }

  /** The joined participant, or USER_NOT_FOUND for a call before joinRoom (or after leaving). */
  #me(method: string): { participant: Participant; roomSession: RoomSession } {
    const participant = this.#participant;
    const roomSession = this.#roomSession;
    if (!participant || !roomSession || participant.left) {
      throw new RpcError(RpcCode.USER_NOT_FOUND, `'${method}' needs a participant in a session: call 'joinRoom' first`);
    }
    return { participant, roomSession };
  }

  async #joinRoom(params: Params): Promise<object> {
    if (this.#participant && !this.#participant.left || this.#joining) {
      throw new RpcError(RpcCode.EXISTING_USER_IN_ROOM, 'This connection has joined a session already');
    }
    const sessionId = stringParam(params, 'session', 'joinRoom');
    const token = stringParam(params, 'token', 'joinRoom');
    const metadata = params.metadata === undefined || params.metadata === null ? '' : params.metadata;
    if (typeof metadata !== 'string' || metadata.length > MAX_METADATA) {
      throw new RpcError(RpcCode.USER_METADATA_FORMAT_INVALID, `Unable to join room. The metadata received has an invalid format: a string of at most ${MAX_METADATA} characters is expected`);
    }
    const secret = typeof params.secret === 'string' && params.secret !== '' ? params.secret : undefined;
    const insecure = secret !== undefined && this.#options.credentials.password(secret) !== undefined;
    this.#joining = true;
    let joined: { roomSession: RoomSession; participant: Participant };
    try {
      joined = await this.#options.rooms.join(sessionId, token, metadata, clientOf(this.#request.socket, this.#request.headers['user-agent'], 'openvidu'), insecure);
    } catch (err) {
      if (isKilnError(err)) throw new RpcError(RpcCode.USER_UNAUTHORIZED, `Unable to join room. ${err.message}`);
      throw err;
    } finally {
      this.#joining = false;
    }
    const { roomSession, participant } = joined;
    if (this.#ws.readyState !== this.#ws.OPEN || participant.left) {
      participant.leave('network-lost');
      throw new RpcError(RpcCode.USER_CLOSED, 'The connection closed while joining');
    }
    this.#participant = participant;
    this.#roomSession = roomSession;
    this.#listen(roomSession, participant);
    const value = [];
    for (const other of roomSession.participants.values()) {
      if (other === participant) continue;
      const entry: Record<string, unknown> = { id: other.id, metadata: other.metadata };
      if (other.streams.size > 0) entry.streams = [...other.streams.values()].map(streamJson);
      value.push(entry);
    }
    return { id: participant.id, metadata: participant.metadata, value };
  }

  /** Turns the room session's events into notifications for this participant. */
  #listen(rs: RoomSession, me: Participant): void {
    const on = <E extends Parameters<RoomSession['on']>[0]>(event: E, fn: (...args: never[]) => void) => {
      rs.on(event, fn as never);
      this.#unsubscribe.push(() => rs.off(event, fn as never));
    };
    on('joined', (p: Participant) => {
      if (p !== me) this.#notify('participantJoined', { id: p.id, metadata: p.metadata });
    });
    on('published', (p: Participant, s: PublishedStream) => {
      if (p !== me) this.#notify('participantPublished', { id: p.id, streams: [streamJson(s)] });
    });
    on('unpublished', (p: Participant, s: PublishedStream, reason: CloseReason) => {
      // A participant that leaves is announced by participantLeft alone, as OpenVidu does. The owner
      // of a stream a moderator unpublished is told too, so its client drops the stream.
      if (p.left) return;
      if (p !== me) this.#notify('participantUnpublished', { name: p.id, streamId: s.id });
      else if (reason === 'stream-ended') this.#notify('participantUnpublished', { name: me.id, streamId: s.id, reason: 'forceUnpublishByUser' });
    });
    on('left', (p: Participant, reason: LeaveReason) => {
      if (p === me) return;
      if (reason === 'evicted') this.#notify('participantEvicted', { name: p.id, reason: LEFT_REASON[reason] });
      this.#notify('participantLeft', { name: p.id, reason: LEFT_REASON[reason] });
    });
    on('signal', (from: Participant, to: string[], type: string, data: string) => {
      if (to.length === 0 || to.includes(me.id)) this.#notify('sendMessage', { data, from: from.id, type });
    });
    on('ending', () => this.#notify('roomClosed', { room: this.#options.rooms.sessionIdOf(rs) }));
    // OpenVidu 1.9 tells every participant of its session's recordings.
    on('recordingStarted', (id: string, name: string) => this.#notify('recordingStarted', { id, name }));
    on('recordingStopped', (id: string, name: string) => this.#notify('recordingStopped', { id, name }));
    me.once('left', (reason) => {
      this.#stopListening();
      // A participant the server removes is told so, and its connection closed, as OpenVidu closes
      // the RPC session of a participant it evicts; one that left by itself closes it itself.
      if (reason === 'network-lost') return this.#ws.terminate();
      if (reason === 'evicted' || reason === 'removed-by-room' || reason === 'media-failed') {
        this.#notify('participantEvicted', { name: me.id, reason: LEFT_REASON[reason] });
      }
      if (reason !== 'disconnect') this.#ws.close(1000, LEFT_REASON[reason]);
    });
  }

  #stopListening(): void {
    for (const off of this.#unsubscribe.splice(0)) off();
    this.#pendingCandidates.clear();
  }

  async #leaveRoom(): Promise<object> {
    const { participant } = this.#me('leaveRoom');
    participant.leave('disconnect');
    return {};
  }

  #client(participant: Participant, roomSession: RoomSession): ClientInfo {
    return { ...clientOf(this.#request.socket, this.#request.headers['user-agent'], 'openvidu', participant.id), roomSession: roomSession.id };
  }

  async #publishVideo(params: Params): Promise<object> {
    const { participant, roomSession } = this.#me('publishVideo');
    if (!canPublish(participant.role)) {
      throw new RpcError(RpcCode.USER_UNAUTHORIZED, 'Unable to publish video. The user does not have a valid token');
    }
    const sdpOffer = stringParam(params, 'sdpOffer', 'publishVideo');
    const audioActive = optionalBoolean(params, 'audioActive', 'publishVideo', true);
    const videoActive = optionalBoolean(params, 'videoActive', 'publishVideo', true);
    const typeOfVideo = params.typeOfVideo === 'SCREEN' ? 'SCREEN' : videoActive ? 'CAMERA' : '';
    if (this.#publishing || participant.streams.size > 0) {
      throw new RpcError(RpcCode.USER_GENERIC, 'The participant is publishing already: unpublishVideo first');
    }
    // OpenVidu names a participant's one stream `<connection id>_<CAMERA|SCREEN|MICRO>`.
    const streamId = `${participant.id}_${typeOfVideo === 'SCREEN' ? 'SCREEN' : videoActive ? 'CAMERA' : audioActive ? 'MICRO' : 'CAMERA'}`;
    const publishing = this.#options.engine.publish(this.#options.app, streamId, sdpOffer, this.#client(participant, roomSession), 'Room');
    this.#publishing = publishing;
    try {
      const { session, answer, stream } = await publishing;
      if (participant.left) {
        session.close('client-left');
        throw new RpcError(RpcCode.USER_CLOSED, 'The participant left while publishing');
      }
      participant.addStream({ id: streamId, stream, audioActive, videoActive, typeOfVideo });
      this.#afterNegotiation(participant.id, session, answer);
      return { sdpAnswer: answer };
    } finally {
      this.#publishing = undefined;
    }
  }

  /** Sends the server's candidates as `iceCandidate` too (they are in the answer as well), then applies queued ones. */
  #afterNegotiation(endpointName: string, session: Session, answer: string): void {
    setImmediate(() => {
      for (const c of sdpCandidates(answer)) this.#notify('iceCandidate', { endpointName, ...c });
    });
    const queued = this.#pendingCandidates.get(endpointName);
    this.#pendingCandidates.delete(endpointName);
    for (const c of queued ?? []) void this.#options.engine.addCandidate(session, c).catch(() => {});
  }

  async #unpublishVideo(): Promise<object> {
    const { participant } = this.#me('unpublishVideo');
    // An unpublish sent while its publish is being answered applies to that publish.
    await this.#publishing?.catch(() => {});
    if (participant.streams.size === 0) throw new RpcError(RpcCode.USER_NOT_STREAMING, 'The participant is not publishing');
    for (const s of [...participant.streams.values()]) s.stream.close('client-left');
    return {};
  }

  /** The published stream `sender` names: a stream id, or (as OpenVidu reads it) the publisher's connection id before `_`. */
  #findSender(roomSession: RoomSession, sender: string): [Participant, PublishedStream] | undefined {
    const exact = roomSession.findStream(sender);
    if (exact) return exact;
    const publisher = roomSession.participants.get(connectionIdOf(sender));
    const first = publisher?.streams.values().next().value;
    return publisher && first ? [publisher, first] : undefined;
  }

  async #receiveVideoFrom(params: Params): Promise<object> {
    const { participant, roomSession } = this.#me('receiveVideoFrom');
    const sender = stringParam(params, 'sender', 'receiveVideoFrom');
    const sdpOffer = stringParam(params, 'sdpOffer', 'receiveVideoFrom');
    const found = this.#findSender(roomSession, sender);
    if (!found) {
      if (!roomSession.participants.has(connectionIdOf(sender))) throw new RpcError(RpcCode.USER_NOT_FOUND, `Participant '${connectionIdOf(sender)}' is not in this session`);
      throw new RpcError(RpcCode.USER_NOT_STREAMING, `Participant stream '${sender}' is not being published in this session`);
    }
    const [publisher, published] = found;
    participant.subscriptions.get(published.id)?.close('client-left');
    const { session, answer } = await this.#options.engine.play(this.#options.app, published.stream.name, sdpOffer, undefined, this.#client(participant, roomSession));
    if (participant.left) {
      session.close('client-left');
      throw new RpcError(RpcCode.USER_CLOSED, 'The participant left while subscribing');
    }
    participant.addSubscription(published.id, session);
    this.#afterNegotiation(publisher.id, session, answer);
    return { sdpAnswer: answer };
  }

  async #unsubscribeFromVideo(params: Params): Promise<object> {
    const { participant } = this.#me('unsubscribeFromVideo');
    const sender = stringParam(params, 'sender', 'unsubscribeFromVideo');
    const entry = [...participant.subscriptions].find(([streamId]) => streamId === sender || connectionIdOf(streamId) === connectionIdOf(sender));
    if (!entry) throw new RpcError(RpcCode.USER_NOT_STREAMING, `Not subscribed to '${sender}'`);
    entry[1].close('client-left');
    return {};
  }

  async #onIceCandidate(params: Params): Promise<object> {
    const { participant } = this.#me('onIceCandidate');
    const endpointName = stringParam(params, 'endpointName', 'onIceCandidate');
    const candidate = stringParam(params, 'candidate', 'onIceCandidate');
    const sdpMid = typeof params.sdpMid === 'string' ? params.sdpMid : null;
    const sdpMLineIndex = typeof params.sdpMLineIndex === 'number' ? params.sdpMLineIndex : null;
    if (sdpMid === null && sdpMLineIndex === null) {
      throw new RpcError(RpcCode.INVALID_PARAMS, "Request element 'sdpMid' or 'sdpMLineIndex' is missing in method 'onIceCandidate'");
    }
    const init: CandidateInit = { candidate, sdpMid, sdpMLineIndex };
    if (candidate === '') return {}; // end of candidates
    let session: Session | undefined;
    if (endpointName === participant.id) {
      session = participant.streams.values().next().value?.stream.source;
    } else {
      for (const [streamId, sub] of participant.subscriptions) if (connectionIdOf(streamId) === endpointName) session = sub;
    }
    if (session) {
      await this.#options.engine.addCandidate(session, init).catch(() => {});
    } else {
      // The publish or subscribe this candidate belongs to is still being answered: kept for it,
      // for endpoints that exist (this participant and the others of its session).
      const known = endpointName === participant.id || this.#roomSession?.participants.has(endpointName);
      if (!known || (!this.#pendingCandidates.has(endpointName) && this.#pendingCandidates.size >= MAX_QUEUED_ENDPOINTS)) return {};
      const queue = this.#pendingCandidates.get(endpointName) ?? [];
      if (queue.length < MAX_QUEUED_CANDIDATES) queue.push(init);
      this.#pendingCandidates.set(endpointName, queue);
    }
    return {};
  }

  async #sendMessage(params: Params): Promise<object> {
    const { participant, roomSession } = this.#me('sendMessage');
    const raw = stringParam(params, 'message', 'sendMessage');
    let message: unknown;
    try {
      message = JSON.parse(raw);
    } catch {
      throw new RpcError(RpcCode.SIGNAL_FORMAT_INVALID, 'Signal format invalid: "message" must hold a JSON object');
    }
    if (typeof message !== 'object' || message === null || Array.isArray(message)) {
      throw new RpcError(RpcCode.SIGNAL_FORMAT_INVALID, 'Signal format invalid: "message" must hold a JSON object');
    }
    const { to = [], data = '', type = '' } = message as Record<string, unknown>;
    if (!Array.isArray(to) || typeof data !== 'string' || typeof type !== 'string') {
      throw new RpcError(RpcCode.SIGNAL_FORMAT_INVALID, 'Signal format invalid: "to" must be an array, "data" and "type" strings');
    }
    for (const target of to) {
      if (typeof target !== 'string') throw new RpcError(RpcCode.SIGNAL_TO_INVALID, `Signal "to" field invalid format: ${JSON.stringify(target)}`);
      if (!roomSession.participants.has(target)) throw new RpcError(RpcCode.SIGNAL_TO_INVALID, `Signal "to" field invalid format: Connection [${target}] does not exist`);
    }
    roomSession.emit('signal', participant, to as string[], type, data);
    return {};
  }

  #moderator(method: string): { participant: Participant; roomSession: RoomSession } {
    const me = this.#me(method);
    if (!canModerate(me.participant.role)) {
      throw new RpcError(RpcCode.USER_UNAUTHORIZED, `Unable to ${method}. The user does not have a MODERATOR token`);
    }
    return me;
  }

  async #forceDisconnect(params: Params): Promise<object> {
    const { roomSession } = this.#moderator('forceDisconnect');
    const connectionId = stringParam(params, 'connectionId', 'forceDisconnect');
    const target = roomSession.participants.get(connectionId);
    if (!target) throw new RpcError(RpcCode.USER_NOT_FOUND, `Connection '${connectionId}' is not in this session`);
    target.leave('evicted');
    return {};
  }

  async #forceUnpublish(params: Params): Promise<object> {
    const { roomSession } = this.#moderator('forceUnpublish');
    const streamId = stringParam(params, 'streamId', 'forceUnpublish');
    const found = roomSession.findStream(streamId);
    if (!found) throw new RpcError(RpcCode.USER_NOT_STREAMING, `Stream '${streamId}' is not published in this session`);
    found[1].stream.close('stream-ended');
    return {};
  }

  #onClose(code: number): void {
    clearInterval(this.#watchdog);
    const participant = this.#participant;
    // 1005: closed with no status code, as kurento-jsonrpc's client closes.
    if (participant && !participant.left) participant.leave(code === 1000 || code === 1001 || code === 1005 ? 'disconnect' : 'network-lost');
    this.#stopListening();
  }
}

function streamJson(s: PublishedStream): object {
  return { id: s.id, audioActive: s.audioActive, videoActive: s.videoActive, typeOfVideo: s.typeOfVideo };
}
