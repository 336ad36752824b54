/**
 * One stream pulled from another Kiln node over OVT (src/protocols/ovt/): describe, play, then
 * the origin's RTP packets go into this node's Forwarder as they came, sender reports with them,
 * and this node's key-frame requests (a viewer joins) go back to the origin's source. When the
 * origin goes away (its `stop`, the connection's end, no media for `noInputTimeoutMs`) the session
 * closes, and with it the stream and its players; there is no reconnection.
 */
import { RTCRtpCodecParameters } from 'werift';
import type { Logger } from 'pino';
import { Forwarder, type ForwardTrack, type MediaPacket } from '../media/forwarder.ts';
import type { CloseReason, Session } from '../core/session.ts';
import { OvtClient } from '../protocols/ovt/client.ts';
import { recordType, OvtMediaError, RECORD_HEADER_SIZE, RECORD_RTP } from '../protocols/ovt/media.ts';
import type { OvtStreamDescription } from '../protocols/ovt/signaling.ts';
import { maskUrl } from './rtsp/client.ts';
import { PullError } from './rtsp-pull.ts';

export interface OvtPullOptions {
  /** `ovt://host[:port]/{app}/{stream}` URLs, tried in order until one plays. */
  urls: string[];
  session: Session;
  /** Longest wait for the connection and for each answer of the origin, ms. */
  timeoutMs: number;
  /** No media for this long once playing ends the stream (`timed-out`), ms. */
  noInputTimeoutMs: number;
  logger: Logger;
  onForwardingError?: (err: unknown) => void;
  /** Proves to the origin that this node is of its cluster (see OvtRequest's `auth`). */
  auth?: (app: string, stream: string) => string;
}

const NO_EXTENSIONS: never[] = [];

interface Connection {
  client: OvtClient;
  url: string;
  /** The forwarder's track for each origin track id. */
  tracks: Map<number, ForwardTrack>;
  forwarder: Forwarder | undefined;
  /** Why the connection ended, once it has (it may end before `open()` sees the play answered). */
  ended: string | undefined;
}

export class OvtPull {
  readonly session: Session;
  readonly urls: string[];
  readonly #options: OvtPullOptions;
  readonly #log: Logger;
  #conn: Connection | undefined;
  #forwarder: Forwarder | undefined;
  #urlIndex = 0;
  #tick: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: OvtPullOptions) {
    this.#options = options;
    this.session = options.session;
    this.urls = options.urls;
    this.#log = options.logger;
  }

  /** The stream's packet engine; there once `open()` has resolved. */
  get forwarder(): Forwarder {
    if (!this.#forwarder) throw new Error('OvtPull: not open');
    return this.#forwarder;
  }

  get tracks(): ForwardTrack[] {
    return this.#forwarder?.tracks ?? [];
  }

  /** The URL being pulled (masked). */
  get currentUrl(): string {
    return maskUrl(this.urls[this.#urlIndex]);
  }

  /**
   * Connects to the first URL whose origin describes and plays the stream; resolves once it
   * plays. Rejects with a PullError naming each URL's cause.
   */
  async open(): Promise<void> {
    const causes: string[] = [];
    for (let u = 0; u < this.urls.length && !this.#closed; u++) {
      try {
        await this.#connect(this.urls[u]);
        this.#urlIndex = u;
        return;
      } catch (err) {
        causes.push(`${maskUrl(this.urls[u])} - ${(err as Error).message}`);
      }
    }
    throw new PullError(this.#closed ? 'the pull was stopped' : causes.join('; '));
  }

  async #connect(url: string): Promise<void> {
    const conn: Connection = { client: undefined as never, url, tracks: new Map(), forwarder: undefined, ended: undefined };
    conn.client = new OvtClient({
      url,
      timeoutMs: this.#options.timeoutMs,
      auth: this.#options.auth,
      onMedia: (record) => this.#onMedia(conn, record),
      onStop: (message) => this.#end(conn, 'stream-ended', `the origin ended the stream: ${message}`),
      onClose: (err) => this.#end(conn, 'connection-failed', err ? err.message : 'the origin closed the connection'),
    });
    this.#conn = conn;
    try {
      await conn.client.connect();
      const description = await conn.client.describe();
      if (this.#closed) throw new PullError('the pull was stopped');
      conn.forwarder = this.#buildForwarder(conn, description);
      await conn.client.play();
      if (this.#closed) throw new PullError('the pull was stopped');
      if (conn.ended) throw new PullError(conn.ended);
    } catch (err) {
      if (this.#conn === conn) this.#conn = undefined;
      conn.client.close();
      conn.forwarder?.close();
      throw err;
    }
    this.#forwarder = conn.forwarder;
    this.session.activate();
    this.#tick = setInterval(() => this.#onTick(), 1000);
    this.#log.info({ session: this.session.id, url: maskUrl(url), tracks: this.tracks.map((t) => t.info.codec) }, 'ovt pull connected');
  }

  /** The forwarder of one connection, with the described tracks and their known facts. */
  #buildForwarder(conn: Connection, description: OvtStreamDescription): Forwarder {
    const forwarder = new Forwarder({
      // A viewer joined here: the origin's source is asked (merged and rate-limited by the forwarder).
      requestKeyFrame: () => conn.client.requestKeyFrame(),
      counters: this.session.counters,
    });
    for (const t of description.tracks) {
      const codec = new RTCRtpCodecParameters({
        mimeType: t.mimeType,
        clockRate: t.clockRate,
        channels: t.kind === 'audio' ? t.channels || undefined : undefined,
        parameters: t.sdpFmtpLine,
        rtcpFeedback: t.rtcpFeedback,
      });
      const track = forwarder.addTrack(t.kind, codec);
      track.info.width = t.width;
      track.info.height = t.height;
      track.info.frameRate = t.frameRate;
      track.info.bitrate = t.bitrate;
      if (t.transcodedFrom) track.info.transcodedFrom = t.transcodedFrom;
      conn.tracks.set(t.id, track);
    }
    return forwarder;
  }

  /** A record from the origin. Never throws: the socket handler is the caller. */
  #onMedia(conn: Connection, record: Buffer): void {
    const forwarder = conn.forwarder;
    if (this.#closed || !forwarder) return;
    try {
      const type = recordType(record);
      const track = conn.tracks.get(record.readUInt32BE(8));
      if (!track) return;
      if (type === RECORD_RTP) {
        const packet: MediaPacket = {
          header: { sequenceNumber: record.readUInt16BE(2), timestamp: record.readUInt32BE(4), marker: (record[1] & 0x80) !== 0, extension: false, extensions: NO_EXTENSIONS },
          payload: record.subarray(RECORD_HEADER_SIZE),
        };
        forwarder.push(track, packet);
      } else {
        track.senderReport = { ntp: record.readBigUInt64BE(RECORD_HEADER_SIZE), rtp: record.readUInt32BE(4) };
      }
    } catch (err) {
      if (err instanceof OvtMediaError) {
        // Not from inside the socket's data handler: the session's close tears the client down.
        setImmediate(() => this.#end(conn, 'error', `broken media from the origin: ${err.message}`));
        return;
      }
      this.#options.onForwardingError?.(err);
    }
  }

  #onTick(): void {
    const now = Date.now();
    this.#forwarder?.sample(now);
    const idle = now - this.session.counters.lastActivity;
    if (idle > this.#options.noInputTimeoutMs) this.#end(this.#conn, 'timed-out', `no media for ${idle} ms`);
  }

  /** The live connection ended: the session closes (and the stream with it). */
  #end(conn: Connection | undefined, reason: CloseReason, why: string): void {
    if (conn) conn.ended ??= why;
    if (this.#closed || !conn || conn !== this.#conn || !this.#forwarder) return;
    this.#log.info({ session: this.session.id, url: maskUrl(conn.url), reason, why }, 'ovt pull ended');
    this.session.close(reason);
  }

  /** Stops pulling (`stop` to the origin); idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#tick);
    const conn = this.#conn;
    this.#conn = undefined;
    conn?.client.close();
    this.#forwarder?.close();
  }
}
