/**
 * The origin side of OVT: a TCP listener (default port 9000) that answers an edge's describe with
 * a local stream's tracks and, on play, frames every RTP packet its forwarder forwards onto the
 * connection (./packet.ts, ./media.ts, ./signaling.ts). Each playing connection is a player
 * session of the stream (kind `player`, protocol `ovt`), so the session APIs list it and a kick
 * or the end of the stream reaches the edge as a `stop`.
 *
 * OVT has no authentication (nor has OME's): the port is for the nodes of one deployment and
 * should not be reachable from elsewhere.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Catalog } from '../../core/catalog.ts';
import { Session, type CloseReason } from '../../core/session.ts';
import type { Stream } from '../../core/stream.ts';
import type { Forwarder, ForwardTrack, MediaPacket, TrackOutput } from '../../media/forwarder.ts';
import type { MediaEngine } from '../../media/engine.ts';
import {
  encodeOvtPackets, OvtParser, OvtProtocolError, OVT_HEADER_SIZE, OVT_MAX_PAYLOAD_SIZE, OVT_MEDIA_PACKET,
  OVT_MESSAGE_REQUEST, OVT_MESSAGE_RESPONSE, writeOvtHeader,
} from './packet.ts';
import { RECORD_HEADER_SIZE, SENDER_REPORT_RECORD_SIZE, writeRtpRecordHeader, writeSenderReportRecord } from './media.ts';
import {
  describeContents, encodeResponse, OvtSignalingError, parseOvtUrl, parseRequest, type OvtRequest, type OvtTrackDescription,
} from './signaling.ts';

export interface OvtServerOptions {
  host: string;
  /** 0 takes a free port (see `port` once started). */
  port: number;
  catalog: Catalog;
  engine: Pick<MediaEngine, 'forwarderOf'>;
  logger: Logger;
  /**
   * Bytes a connection may have waiting to be sent; beyond that its media packets are dropped
   * (the edge's players see a loss and ask for a key frame). Default 1 MiB.
   */
  maxBacklogBytes?: number;
  /** A connection that stays over its backlog limit this long is closed, ms. Default 10000. */
  stallTimeoutMs?: number;
  /** A connection that does not play within this long of connecting (or stopping) is closed, ms. Default 10000. */
  idleTimeoutMs?: number;
  /** Connections accepted at once. Default 1000. */
  maxConnections?: number;
  /** Told of a packet that could not be framed (counted in the metrics). */
  onForwardingError?: (err: unknown) => void;
  /**
   * Whether an edge's `auth` proves it a node of this cluster, for apps whose playback asks for a
   * token (refused to any edge without it).
   */
  authorize?: (app: string, stream: string, auth: string | undefined) => boolean;
}

/** Requests and responses are small: a longer message is a broken or hostile peer. */
const MAX_REQUEST_BYTES = 64 * 1024;
/** What one flush gathers at most (several packets in one socket write). */
const BATCH_BYTES = 64 * 1024;
/** How long a closing connection may take to deliver its last bytes, ms. */
const LINGER_MS = 1000;

export class OvtServer {
  readonly #options: OvtServerOptions;
  readonly #log: Logger;
  readonly #connections = new Set<OvtConnection>();
  #server: Server | undefined;
  #nextSessionId = 1;

  constructor(options: OvtServerOptions) {
    this.#options = options;
    this.#log = options.logger;
  }

  /** The bound port (after `start`). */
  get port(): number {
    const address = this.#server?.address();
    return typeof address === 'object' && address ? address.port : 0;
  }

  /** Open OVT connections. */
  get connections(): number {
    return this.#connections.size;
  }

  /** Connections playing a stream. */
  get relays(): number {
    let n = 0;
    for (const c of this.#connections) if (c.playing) n++;
    return n;
  }

  /** Listens; rejects if the port is taken. */
  async start(): Promise<void> {
    const server = createServer((socket) => this.#accept(socket));
    server.maxConnections = this.#options.maxConnections ?? 1000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#options.port, this.#options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.#log.error({ err }, 'ovt listener error'));
    this.#server = server;
    this.#log.info({ host: this.#options.host, port: this.port }, 'ovt listening');
  }

  /** Stops listening and closes every connection (a `stop` to each playing edge); resolves once all are gone. */
  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const c of [...this.#connections]) c.close('server-stopping');
    await closed;
  }

  #accept(socket: Socket): void {
    const connection = new OvtConnection(socket, this.#options, this.#nextSessionId++);
    this.#nextSessionId = this.#nextSessionId > 0x7fffffff ? 1 : this.#nextSessionId;
    this.#connections.add(connection);
    socket.once('close', () => this.#connections.delete(connection));
  }
}

/** One track of a playing connection: frames the forwarder's packets onto the socket. */
class OvtTrackOutput implements TrackOutput {
  readonly track: ForwardTrack;
  readonly #connection: OvtConnection;
  /** The sender report last sent (the forwarder makes a new object per report). */
  relayed: ForwardTrack['senderReport'];

  constructor(connection: OvtConnection, track: ForwardTrack) {
    this.#connection = connection;
    this.track = track;
  }

  send(rtp: MediaPacket): void {
    this.#connection.sendRtp(this, rtp);
  }
}

/** One edge's TCP connection. */
class OvtConnection {
  readonly #socket: Socket;
  readonly #options: OvtServerOptions;
  readonly #log: Logger;
  readonly #parser: OvtParser;
  readonly #sessionId: number;
  /** `address:port` of the edge, for the log. */
  readonly #remote: string;
  readonly #maxBacklog: number;
  readonly #stallMs: number;
  #session: Session | undefined;
  #forwarder: Forwarder | undefined;
  #outputs: OvtTrackOutput[] = [];
  /** Packets gathered until the next flush; copied out at the flush, so it is reused. */
  readonly #batch = Buffer.allocUnsafeSlow(BATCH_BYTES);
  #batched = 0;
  #flushing: NodeJS.Immediate | undefined;
  /** Media packets' sequence number, rolling across the connection (OME's per stream). */
  #seq = 0;
  #overSince = 0;
  #dropping = false;
  #stalled = false;
  /** Media packets dropped for a full backlog. */
  dropped = 0;
  #idle: NodeJS.Timeout | undefined;
  #linger: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(socket: Socket, options: OvtServerOptions, sessionId: number) {
    this.#socket = socket;
    this.#options = options;
    this.#log = options.logger;
    this.#sessionId = sessionId;
    this.#remote = `${socket.remoteAddress}:${socket.remotePort}`;
    this.#maxBacklog = options.maxBacklogBytes ?? 1024 * 1024;
    this.#stallMs = options.stallTimeoutMs ?? 10_000;
    this.#parser = new OvtParser({
      onMessage: (type, message) => this.#onMessage(type, message),
      onMedia: () => {
        throw new OvtProtocolError('media sent to the origin');
      },
      maxMessageBytes: MAX_REQUEST_BYTES,
      maxMediaBytes: 0,
    });
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    socket.on('data', (chunk: Buffer) => {
      try {
        this.#parser.push(chunk);
      } catch (err) {
        this.#log.warn({ remote: this.#remote, err: (err as Error).message }, 'ovt: broken request stream, connection closed');
        this.#respond(0, 'unknown', 500, 'Server Internals Error');
        this.close('error');
      }
    });
    socket.on('error', (err) => this.#log.debug({ remote: this.#remote, err: err.message }, 'ovt socket error'));
    socket.once('close', () => this.#onClose());
    this.#armIdle();
  }

  /** Whether the connection plays a stream. */
  get playing(): boolean {
    return this.#session !== undefined;
  }

  #armIdle(): void {
    clearTimeout(this.#idle);
    const ms = this.#options.idleTimeoutMs ?? 10_000;
    this.#idle = setTimeout(() => {
      this.#log.debug({ remote: this.#remote }, 'ovt: connection idle, closed');
      this.close('timed-out');
    }, ms);
    this.#idle.unref();
  }

  #onMessage(type: number, message: Buffer): void {
    if (type !== OVT_MESSAGE_REQUEST) throw new OvtProtocolError(`payload type ${type} sent to the origin`);
    let request: OvtRequest;
    try {
      request = parseRequest(message);
    } catch (err) {
      if (!(err instanceof OvtSignalingError)) throw err;
      this.#respond(0, 'unknown', err.code, err.message);
      return;
    }
    switch (request.application) {
      case 'describe': return this.#describe(request);
      case 'play': return this.#play(request);
      case 'stop': return this.#stop(request);
      case 'keyframe':
        // Kiln's addition: a viewer joined the edge. Merged and rate-limited by the forwarder.
        this.#forwarder?.requestKeyFrame();
    }
  }

  /** The stream a request targets, or undefined after answering the error. */
  #lookup(request: OvtRequest): { stream: Stream; forwarder: Forwarder } | undefined {
    let target: { app: string; stream: string };
    try {
      target = parseOvtUrl(request.target);
    } catch {
      this.#respond(request.id, request.application, 404, 'An invalid request : Target is not valid');
      return undefined;
    }
    const app = this.#options.catalog.appByName(target.app);
    if (!app) {
      this.#respond(request.id, request.application, 404, `There is no such app (${target.app})`);
      return undefined;
    }
    if (app.settings.rooms) {
      this.#respond(request.id, request.application, 403, `The app ${app.name} holds room media: it is not relayed`);
      return undefined;
    }
    if (app.settings.playbackRequiresToken && !(this.#options.authorize?.(target.app, target.stream, request.auth) ?? false)) {
      this.#respond(request.id, request.application, 403, `The app ${app.name} needs a token for playback: only the nodes of its cluster relay it`);
      return undefined;
    }
    const stream = app.streams.get(target.stream);
    const forwarder = stream ? this.#options.engine.forwarderOf(stream) : undefined;
    if (!stream || !forwarder || forwarder.closed || forwarder.tracks.length === 0) {
      this.#respond(request.id, request.application, 404, `There is no such stream (${target.app}/${target.stream})`);
      return undefined;
    }
    return { stream, forwarder };
  }

  #describe(request: OvtRequest): void {
    const found = this.#lookup(request);
    if (!found) return;
    const { stream, forwarder } = found;
    const tracks = forwarder.tracks.map((t): OvtTrackDescription => ({
      id: t.info.id,
      kind: t.info.kind,
      mimeType: t.codec.mimeType,
      clockRate: t.codec.clockRate,
      channels: t.info.channels,
      sdpFmtpLine: t.codec.parameters,
      rtcpFeedback: (t.codec.rtcpFeedback ?? []).map((f) => (f.parameter ? { type: f.type, parameter: f.parameter } : { type: f.type })),
      width: t.info.width,
      height: t.info.height,
      frameRate: t.info.frameRate,
      bitrate: t.info.bitrate,
      transcodedFrom: t.info.transcodedFrom,
    }));
    const contents = describeContents({ appName: stream.app, streamName: stream.name, originStreamUUID: stream.uuid, tracks });
    this.#respond(request.id, 'describe', 200, 'ok', contents);
  }

  #play(request: OvtRequest): void {
    if (this.#session) {
      this.#respond(request.id, 'play', 409, 'This connection already plays a stream');
      return;
    }
    const found = this.#lookup(request);
    if (!found) return;
    const { stream, forwarder } = found;
    const session = new Session({
      kind: 'player',
      protocol: 'ovt',
      vhost: stream.vhost,
      app: stream.app,
      stream: stream.name,
      remoteAddress: this.#socket.remoteAddress ?? '',
      remotePort: this.#socket.remotePort ?? 0,
      userAgent: 'OVT edge',
    });
    session.setTeardown((reason) => this.#endPlay(reason));
    session.setMemoryProbe(() => this.#socket.writableLength + this.#batched);
    this.#session = session;
    this.#forwarder = forwarder;
    clearTimeout(this.#idle);
    this.#respond(request.id, 'play', 200, 'ok', undefined, this.#sessionId);
    this.#options.catalog.addSession(session);
    stream.addPlayer(session);
    this.#outputs = forwarder.tracks.map((t) => new OvtTrackOutput(this, t));
    for (const output of this.#outputs) output.track.addOutput(output);
    session.activate();
    forwarder.requestKeyFrame();
    this.#log.info({ session: session.id, stream: `${stream.vhost}/${stream.app}/${stream.name}`, remote: this.#remote }, 'ovt relay started');
  }

  #stop(request: OvtRequest): void {
    this.#respond(request.id, 'stop', 200, 'ok', undefined, this.#sessionId);
    this.#session?.close('client-left');
  }

  /** The session ended (stop, kick, end of the stream, shutdown): outputs go, and the edge is told. */
  #endPlay(reason: CloseReason): void {
    for (const output of this.#outputs) output.track.removeOutput(output);
    this.#outputs = [];
    this.#forwarder = undefined;
    const session = this.#session;
    this.#session = undefined;
    this.#log.info({ session: session?.id, reason, remote: this.#remote, dropped: this.dropped }, 'ovt relay ended');
    if (this.#closed) return;
    this.#flush();
    if (reason === 'client-left') {
      // The edge asked to stop: the connection may play again.
      this.#armIdle();
      return;
    }
    // Unasked: a stop message, as the edge takes the end of the stream.
    this.#respond(0, 'stop', 200, reason === 'stream-ended' ? 'The stream ended' : `The relay ended: ${reason}`);
    this.close(reason);
  }

  /** Frames one forwarded packet. Called by the forwarder: never throws. */
  sendRtp(output: OvtTrackOutput, rtp: MediaPacket): void {
    const session = this.#session;
    if (!session) return;
    try {
      const report = output.track.senderReport;
      if (report !== undefined && report !== output.relayed && this.#admit(OVT_HEADER_SIZE + SENDER_REPORT_RECORD_SIZE)) {
        output.relayed = report;
        const at = this.#reserve(OVT_HEADER_SIZE + SENDER_REPORT_RECORD_SIZE);
        writeOvtHeader(this.#batch, at, true, OVT_MEDIA_PACKET, this.#seq++, report.rtp, this.#sessionId, SENDER_REPORT_RECORD_SIZE);
        writeSenderReportRecord(this.#batch, at + OVT_HEADER_SIZE, output.track.info.id, report.ntp, report.rtp);
      }
      const payload = rtp.payload;
      const recordLength = RECORD_HEADER_SIZE + payload.length;
      if (recordLength > OVT_MAX_PAYLOAD_SIZE) {
        this.#sendLarge(output, rtp);
        return;
      }
      const size = OVT_HEADER_SIZE + recordLength;
      if (!this.#admit(size)) return;
      const header = rtp.header;
      const at = this.#reserve(size);
      const batch = this.#batch;
      writeOvtHeader(batch, at, true, OVT_MEDIA_PACKET, this.#seq++, header.timestamp, this.#sessionId, recordLength);
      writeRtpRecordHeader(batch, at + OVT_HEADER_SIZE, output.track.info.id, header.sequenceNumber, header.timestamp, header.marker);
      payload.copy(batch, at + OVT_HEADER_SIZE + RECORD_HEADER_SIZE);
      const c = session.counters;
      c.packetsOut++;
      c.bytesOut += size;
    } catch (err) {
      this.#options.onForwardingError?.(err);
    }
  }

  /** An RTP payload too long for one OVT packet (not from UDP, but possible): fragmented as OME does. */
  #sendLarge(output: OvtTrackOutput, rtp: MediaPacket): void {
    const record = Buffer.allocUnsafe(RECORD_HEADER_SIZE + rtp.payload.length);
    writeRtpRecordHeader(record, 0, output.track.info.id, rtp.header.sequenceNumber, rtp.header.timestamp, rtp.header.marker);
    rtp.payload.copy(record, RECORD_HEADER_SIZE);
    const framed = encodeOvtPackets(OVT_MEDIA_PACKET, record, { timestamp: rtp.header.timestamp, sessionId: this.#sessionId, sequenceNumber: this.#seq });
    if (!this.#admit(framed.length)) return;
    this.#seq += Math.ceil(record.length / OVT_MAX_PAYLOAD_SIZE);
    this.#flush();
    this.#socket.write(framed);
    this.#session!.counters.packetsOut++;
    this.#session!.counters.bytesOut += framed.length;
  }

  /**
   * Whether `bytes` more may be queued. Over the backlog limit media is dropped; a connection that
   * stays over it for `stallTimeoutMs` is closed; when it drains, the source is asked for a key
   * frame so the edge's players recover at once.
   */
  #admit(bytes: number): boolean {
    if (this.#socket.writableLength + this.#batched + bytes <= this.#maxBacklog) {
      if (this.#dropping) {
        this.#dropping = false;
        this.#overSince = 0;
        this.#forwarder?.requestKeyFrame();
      }
      return true;
    }
    this.dropped++;
    const now = Date.now();
    if (!this.#dropping) {
      this.#dropping = true;
      this.#overSince = now;
    } else if (now - this.#overSince > this.#stallMs && !this.#stalled) {
      this.#stalled = true;
      this.#log.warn({ session: this.#session?.id, remote: this.#remote, dropped: this.dropped }, 'ovt: edge too slow, relay closed');
      // Not from inside the forwarder's loop: it is iterating this very output list.
      setImmediate(() => this.#session?.close('timed-out'));
    }
    return false;
  }

  /** Where `bytes` go in the batch (flushing it first when full); schedules the flush. */
  #reserve(bytes: number): number {
    if (this.#batched + bytes > BATCH_BYTES) this.#flush();
    const at = this.#batched;
    this.#batched += bytes;
    this.#flushing ??= setImmediate(() => {
      this.#flushing = undefined;
      this.#flush();
    });
    return at;
  }

  /** Writes what the batch holds, in one socket write (a copy, so the batch is reused). */
  #flush(): void {
    if (this.#batched === 0) return;
    const out = Buffer.allocUnsafe(this.#batched);
    this.#batch.copy(out, 0, 0, this.#batched);
    this.#batched = 0;
    if (!this.#socket.destroyed) this.#socket.write(out);
  }

  /** Sends a response (PT 20), fragmented as needed; a peer that does not read its answers is dropped. */
  #respond(id: number, application: string, code: number, message: string, contents?: unknown, sessionId = 0): void {
    if (this.#socket.destroyed || !this.#socket.writable) return;
    if (this.#socket.writableLength > this.#maxBacklog) {
      this.close('error');
      return;
    }
    this.#flush();
    const body = encodeResponse(contents === undefined ? { id, application, code, message } : { id, application, code, message, contents });
    this.#socket.write(encodeOvtPackets(OVT_MESSAGE_RESPONSE, body, { sessionId }));
  }

  /** Ends the connection (and its session): what is queued is sent, then the socket closes. */
  close(reason: CloseReason): void {
    if (this.#closed) return;
    if (this.#session) {
      // The session's teardown sends the stop, then comes back here.
      this.#session.close(reason);
      if (this.#closed) return;
    }
    this.#closed = true;
    this.#parser.close();
    clearTimeout(this.#idle);
    clearImmediate(this.#flushing);
    this.#flushing = undefined;
    if (reason === 'timed-out' || reason === 'error') {
      this.#socket.destroy();
      return;
    }
    this.#flush();
    this.#socket.end();
    this.#linger = setTimeout(() => this.#socket.destroy(), LINGER_MS);
    this.#linger.unref();
  }

  #onClose(): void {
    this.#closed = true;
    this.#parser.close();
    clearTimeout(this.#idle);
    clearTimeout(this.#linger);
    clearImmediate(this.#flushing);
    this.#session?.close('client-left');
  }
}
