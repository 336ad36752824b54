/**
 * One pulled camera: an RTSP connection (Kiln's own client) feeding a stream's Forwarder, kept
 * alive across drops. H.264 is re-packetized for WebRTC, Opus and H.265 pass through, AAC and
 * G.711 are transcoded to Opus. The stream's tracks, SSRCs, sequence numbers and timestamps stay
 * the same across reconnects and failovers, so players keep their connection and resume.
 */
import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { RTCRtpCodecParameters, useNACK, usePLI } from 'werift';
import type { Logger } from 'pino';
import { Forwarder, type ForwardTrack, type MediaPacket } from '../media/forwarder.ts';
import { H264Repacketizer, profileLevelId, spropParameterSets } from '../media/h264-packetizer.ts';
import { AudioTranscoder, TRANSCODABLE_AUDIO } from '../media/audio-transcoder.ts';
import { parseH264SpsSize } from '../media/bitstream.ts';
import { rtpPayload } from '../media/rtp-udp.ts';
import type { Session } from '../core/session.ts';
import { maskUrl, RtspClient, RtspError, type RtspTransport } from './rtsp/client.ts';
import type { MediaDescription } from './rtsp/sdp.ts';

export interface PullProperties {
  /** Kept across restarts of Kiln, never removed for want of players. */
  persistent: boolean;
  /** No media for this long on a live connection: drop it and try the next URL, ms. */
  noInputFailoverTimeoutMs: number;
  /** A non-persistent stream with no players for this long is removed, ms. */
  unusedStreamDeletionTimeoutMs: number;
  /** Do not relay the camera's RTCP sender reports (players sync on arrival times instead). */
  ignoreRtcpSRTimestamp: boolean;
  /** Attempts per URL when the stream is created. */
  retryCount: number;
  /** Transport tried first (Kiln's own property `rtspTransport`); the other is the fallback. */
  transport: RtspTransport;
}

export const DEFAULT_PULL_PROPERTIES: PullProperties = {
  persistent: false,
  noInputFailoverTimeoutMs: 3000,
  unusedStreamDeletionTimeoutMs: 60000,
  ignoreRtcpSRTimestamp: false,
  retryCount: 1,
  transport: 'tcp',
};

/** Back-off between reconnection attempts, ms: doubles from the first to the last. */
const BACKOFF_FIRST_MS = 250;
const BACKOFF_MAX_MS = 5000;

const NO_EXTENSIONS: never[] = [];

/** The longest an API request to create a pull waits for a URL that works, ms. */
const OPEN_BUDGET_MS = 30_000;

/**
 * Maps one source timeline onto the track's output timeline: within a connection a fixed offset;
 * on a new connection the output continues from where it stopped, advanced by the wall-clock gap.
 */
class Timeline {
  readonly #clockRate: number;
  #offset = 0;
  #based = false;
  #last = 0;
  #lastAt = 0;

  constructor(clockRate: number) {
    this.#clockRate = clockRate;
  }

  rebase(): void {
    this.#based = false;
  }

  map(ts: number, nowMs: number): number {
    if (!this.#based) {
      this.#based = true;
      const target = this.#lastAt === 0
        ? randomInt(0, 0x7fffffff)
        : (this.#last + Math.max(1, Math.round(((nowMs - this.#lastAt) * this.#clockRate) / 1000))) >>> 0;
      this.#offset = (target - ts) >>> 0;
    }
    const out = (ts + this.#offset) >>> 0;
    if (((out - this.#last) | 0) > 0 || this.#lastAt === 0) {
      this.#last = out;
      this.#lastAt = nowMs;
    }
    return out;
  }

  /** The output time of `ts` on the current connection, or undefined before its first packet. */
  peek(ts: number): number | undefined {
    return this.#based ? (ts + this.#offset) >>> 0 : undefined;
  }
}

/** One track of the stream as players see it. */
interface OutTrack {
  kind: 'video' | 'audio';
  /** H264 / H265 for video; audio is always Opus out. */
  codec: string;
  forward: ForwardTrack;
  timeline: Timeline;
  seq: number;
}

/** How one media of the current connection feeds an OutTrack. */
interface Binding {
  track: OutTrack;
  mode: 'h264' | 'pass' | 'transcode';
  packetizer?: H264Repacketizer;
  transcoder?: AudioTranscoder;
  /** The output timestamp of the packet being re-packetized. */
  outTs: number;
  /** Sends a re-packetized payload at `outTs` (one closure per binding, not per packet). */
  emit: (payload: Buffer, marker: boolean) => void;
  packets: number;
  /** The camera's SSRC and last sequence number, to see restarts, losses and late packets. */
  ssrc: number;
  lastSeq: number;
}

interface Connection {
  client: RtspClient;
  url: string;
  bindings: (Binding | undefined)[];
  lastPacketAt: number;
  /** Bound media that have not delivered a packet yet. */
  pending: number;
  /** Ends the wait of `#connect`: every media has delivered (undefined), or the connection failed. */
  settle: (failure: Error | undefined) => void;
  /** Set once this connection feeds the stream (after its first media). */
  live: boolean;
  transcoders: AudioTranscoder[];
}

export interface RtspPullOptions {
  urls: string[];
  properties: PullProperties;
  session: Session;
  timeoutMs: number;
  ffmpegPath: string;
  logger: Logger;
  onForwardingError?: (err: unknown) => void;
}

/** Raised when no URL could be pulled; the message lists each URL's cause. */
export class PullError extends Error {
  override name = 'PullError';
}

/** The media Kiln takes from an SDP: the first usable video and audio, and a reason when there is none. */
export function selectMedia(media: MediaDescription[]): { video?: number; audio?: number } {
  const out: { video?: number; audio?: number } = {};
  media.forEach((m, i) => {
    if (m.kind === 'video' && out.video === undefined && (m.encoding === 'H264' || m.encoding === 'H265') && m.clockRate === 90000) out.video = i;
    if (m.kind === 'audio' && out.audio === undefined && m.clockRate > 0
      && ((m.encoding === 'OPUS' && m.clockRate === 48000) || TRANSCODABLE_AUDIO.has(m.encoding))) out.audio = i;
  });
  return out;
}

export class RtspPull {
  readonly session: Session;
  readonly forwarder: Forwarder;
  readonly urls: string[];
  readonly properties: PullProperties;
  readonly #options: RtspPullOptions;
  readonly #log: Logger;
  readonly #tracks: { video?: OutTrack; audio?: OutTrack } = {};
  #conn: Connection | undefined;
  /** The connection being made (closed by `close()` too). */
  #attempt: Connection | undefined;
  #urlIndex = 0;
  #backoff = 0;
  #retry: NodeJS.Timeout | undefined;
  #tick: NodeJS.Timeout | undefined;
  #lastInputAt = Date.now();
  #closed = false;
  /** Told the masked URL each time a connection goes live (failovers change it). */
  onLive: ((url: string) => void) | undefined;

  constructor(options: RtspPullOptions) {
    this.#options = options;
    this.session = options.session;
    this.urls = options.urls;
    this.properties = options.properties;
    this.#log = options.logger;
    // A camera cannot be asked for a key frame over RTSP: players wait for the next one.
    this.forwarder = new Forwarder({ requestKeyFrame: () => {}, counters: this.session.counters });
  }

  /** The URL being pulled now, with its password masked. */
  get currentUrl(): string {
    return maskUrl(this.urls[this.#urlIndex]);
  }

  get tracks(): ForwardTrack[] {
    return this.forwarder.tracks;
  }

  /**
   * Connects to the first URL that works (each tried `retryCount` times) and resolves once media
   * flows. Rejects with a PullError naming each URL's cause.
   */
  async open(): Promise<void> {
    const causes: string[] = [];
    const attempts = Math.max(1, this.properties.retryCount);
    // However many URLs and retries, the API caller gets an answer within this budget.
    const deadline = Date.now() + OPEN_BUDGET_MS;
    for (let u = 0; u < this.urls.length && !this.#closed; u++) {
      for (let a = 0; a < attempts && !this.#closed; a++) {
        if (Date.now() > deadline) {
          causes.push(`${maskUrl(this.urls[u])} - not tried: gave up after ${OPEN_BUDGET_MS / 1000} s`);
          break;
        }
        try {
          this.#urlIndex = u;
          await this.#connect(this.urls[u]);
          this.#tick = setInterval(() => this.#onTick(), 1000);
          return;
        } catch (err) {
          const cause = (err as Error).message;
          if (a === attempts - 1) causes.push(`${maskUrl(this.urls[u])} - ${cause}`);
          if (a < attempts - 1) await sleep(BACKOFF_FIRST_MS * 2 ** a);
        }
      }
    }
    throw new PullError(this.#closed ? 'the pull was stopped' : causes.join('; '));
  }

  /** One connection: DESCRIBE, choose media, SETUP/PLAY, wait for the first packets, then go live. */
  async #connect(url: string, transport = this.properties.transport, fallback = true): Promise<void> {
    const bindings: (Binding | undefined)[] = [];
    let settle: (failure: Error | undefined) => void = () => {};
    const settled = new Promise<Error | undefined>((resolve) => (settle = resolve));
    const conn: Connection = { client: undefined as never, url, bindings, lastPacketAt: Date.now(), pending: 0, settle, live: false, transcoders: [] };
    const client = new RtspClient({
      url,
      transport,
      timeoutMs: this.#options.timeoutMs,
      userAgent: 'Kiln',
      onRtp: (index, packet) => this.#onRtp(conn, index, packet),
      onSenderReport: (index, ntp, rtp) => this.#onSenderReport(conn, index, ntp, rtp),
      onClose: (err) => this.#onDrop(conn, err ?? new RtspError('the connection ended')),
    });
    conn.client = client;
    this.#attempt = conn;
    const stopped = () => new RtspError('the pull was stopped');
    let timer: NodeJS.Timeout | undefined;
    try {
      const media = await client.describe();
      if (this.#closed) throw stopped();
      const chosen = selectMedia(media);
      if (chosen.video === undefined && chosen.audio === undefined) {
        const offered = media.map((m) => `${m.kind}/${m.encoding}`).join(', ') || 'nothing';
        throw new RtspError(`no playable track: the source offers ${offered} (Kiln takes H264, H265, Opus, AAC, G.711)`);
      }
      this.#defineTracks(media, chosen);
      for (const kind of ['video', 'audio'] as const) {
        const index = chosen[kind];
        const track = this.#tracks[kind];
        if (index === undefined || !track) continue;
        const binding = await this.#bind(conn, track, media[index]);
        if (this.#closed) throw stopped();
        if (binding) bindings[index] = binding;
      }
      const indices = bindings.map((b, i) => (b ? i : -1)).filter((i) => i >= 0);
      if (indices.length === 0) throw new RtspError('no track matches the stream\'s tracks any more');
      conn.pending = indices.length;
      await client.play(media, indices);
      if (this.#closed) throw stopped();
      conn.lastPacketAt = Date.now();
      const timeout = this.#options.timeoutMs;
      timer = setTimeout(() => settle(undefined), timeout);
      const failure = await settled;
      if (failure) throw failure;
      if (this.#closed) throw stopped();
      if (bindings.every((b) => !b || b.packets === 0)) {
        throw new RtspError(`no media received within ${timeout} ms of PLAY (${client.transport.toUpperCase()})`);
      }
    } catch (err) {
      this.#closeConnection(conn);
      // UDP that brings nothing (a firewall, NAT): try interleaved TCP once.
      if (fallback && client.transport === 'udp' && err instanceof RtspError && /no media received/.test(err.message)) {
        return this.#connect(url, 'tcp', false);
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
    // Live: this connection feeds the stream from now on.
    conn.live = true;
    this.#conn = conn;
    this.#attempt = undefined;
    this.session.activate();
    this.#lastInputAt = Date.now();
    this.#backoff = 0;
    this.#log.info({ session: this.session.id, url: maskUrl(url), transport: client.transport }, 'rtsp pull connected');
    this.onLive?.(maskUrl(url));
  }

  /** The stream's tracks, fixed by the first connection that offers playable media. */
  #defineTracks(media: MediaDescription[], chosen: { video?: number; audio?: number }): void {
    if (this.forwarder.tracks.length > 0) return;
    if (chosen.video !== undefined) {
      const m = media[chosen.video];
      let codec: RTCRtpCodecParameters;
      const feedback = [useNACK(), usePLI(), { type: 'ccm', parameter: 'fir' }];
      let size: { width: number; height: number } | undefined;
      if (m.encoding === 'H264') {
        const sets = spropParameterSets(m.fmtp.get('sprop-parameter-sets'));
        const fromFmtp = m.fmtp.get('profile-level-id');
        const fallback = fromFmtp && /^[0-9a-f]{6}$/i.test(fromFmtp) ? profileLevelId(Buffer.from(`67${fromFmtp}`, 'hex')) : '42e01f';
        codec = new RTCRtpCodecParameters({
          mimeType: 'video/H264',
          clockRate: 90000,
          rtcpFeedback: feedback,
          parameters: `level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=${profileLevelId(sets.sps, fallback)}`,
        });
        if (sets.sps) size = parseH264SpsSize(sets.sps);
      } else {
        codec = new RTCRtpCodecParameters({ mimeType: 'video/H265', clockRate: 90000, rtcpFeedback: feedback });
      }
      const forward = this.forwarder.addTrack('video', codec);
      if (size) {
        forward.info.width = size.width;
        forward.info.height = size.height;
      }
      this.#tracks.video = { kind: 'video', codec: m.encoding, forward, timeline: new Timeline(90000), seq: randomInt(0, 0xffff) };
    }
    if (chosen.audio !== undefined) {
      const m = media[chosen.audio];
      const codec = new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2, parameters: 'minptime=10;useinbandfec=1' });
      const forward = this.forwarder.addTrack('audio', codec);
      if (m.encoding !== 'OPUS') {
        const name = m.encoding === 'MPEG4-GENERIC' || m.encoding === 'MP4A-LATM' ? 'AAC' : m.encoding;
        forward.info.transcodedFrom = { codec: name, clockRate: audioRate(m), channels: Math.max(1, m.channels) };
      }
      this.#tracks.audio = { kind: 'audio', codec: 'OPUS', forward, timeline: new Timeline(48000), seq: randomInt(0, 0xffff) };
    }
  }

  /** Connects a media of this connection to its output track, or undefined when they do not fit. */
  async #bind(conn: Connection, track: OutTrack, m: MediaDescription): Promise<Binding | undefined> {
    track.timeline.rebase();
    track.forward.senderReport = undefined;
    const binding: Binding = {
      track, mode: 'pass', outTs: 0, packets: 0, ssrc: 0, lastSeq: 0,
      emit: (payload, marker) => this.#emit(track, payload, marker, binding.outTs),
    };
    if (track.kind === 'video') {
      if (m.encoding !== track.codec) {
        this.#log.warn({ session: this.session.id, was: track.codec, now: m.encoding }, 'rtsp source changed its video codec: video dropped');
        return undefined;
      }
      if (m.encoding === 'H264') {
        binding.mode = 'h264';
        binding.packetizer = new H264Repacketizer(spropParameterSets(m.fmtp.get('sprop-parameter-sets')));
      }
      return binding;
    }
    if (m.encoding === 'OPUS') return binding;
    binding.mode = 'transcode';
    const transcoder = new AudioTranscoder({
      source: { payloadType: m.payloadType, encoding: m.encoding, clockRate: m.clockRate, channels: m.channels, fmtp: m.fmtp },
      ffmpeg: this.#options.ffmpegPath,
      onOpus: (payload, ts) => {
        if (conn !== this.#conn && conn !== this.#attempt) return;
        this.#emit(track, payload, true, track.timeline.map(ts, Date.now()));
      },
      // A transcoder that dies takes the connection with it: the reconnection starts a new one.
      onExit: (message) => this.#onDrop(conn, new RtspError(`audio transcoder stopped: ${message}`)),
    });
    conn.transcoders.push(transcoder);
    try {
      await transcoder.start();
    } catch (err) {
      this.#log.warn({ session: this.session.id, err: (err as Error).message }, 'audio transcoder did not start: audio dropped');
      return undefined;
    }
    binding.transcoder = transcoder;
    return binding;
  }

  /** A packet from the camera. Never throws: the socket handler is the caller. */
  #onRtp(conn: Connection, index: number, packet: Buffer): void {
    const binding = conn.bindings[index];
    // Late packets of a connection already replaced must not touch the new timeline.
    if (!binding || this.#closed || (conn !== this.#conn && conn !== this.#attempt)) return;
    try {
      const now = Date.now();
      conn.lastPacketAt = now;
      this.#lastInputAt = now;
      if (binding.packets === 0 && --conn.pending === 0) conn.settle(undefined);
      if (binding.mode === 'transcode') {
        binding.packets++;
        binding.transcoder!.push(packet);
        return;
      }
      const seq = packet.readUInt16BE(2);
      const ssrc = packet.readUInt32BE(8);
      const track = binding.track;
      if (binding.packets > 0) {
        if (ssrc !== binding.ssrc) {
          // The camera restarted its stream on this connection: a new timeline.
          track.timeline.rebase();
        } else {
          const delta = (seq - binding.lastSeq) & 0xffff;
          if (delta === 0 || delta > 0xff00) return; // a duplicate, or too late: its place has passed
          if (delta < 0x1000) {
            // Carry a loss to the players (they see the gap, and drop the incomplete frame).
            if (delta > 1) track.seq = (track.seq + delta - 1) & 0xffff;
          } else {
            track.timeline.rebase(); // a jump: the camera renumbered
          }
        }
      }
      binding.packets++;
      binding.ssrc = ssrc;
      binding.lastSeq = seq;
      const payload = rtpPayload(packet);
      if (!payload) return;
      const marker = (packet[1] & 0x80) !== 0;
      const ts = packet.readUInt32BE(4);
      const outTs = track.timeline.map(ts, now);
      if (binding.mode === 'h264') {
        binding.outTs = outTs;
        binding.packetizer!.push(payload, marker, ts, binding.emit);
      } else {
        this.#emit(track, payload, marker, outTs);
      }
    } catch (err) {
      this.#options.onForwardingError?.(err);
    }
  }

  #emit(track: OutTrack, payload: Buffer, marker: boolean, timestamp: number): void {
    track.seq = (track.seq + 1) & 0xffff;
    const packet: MediaPacket = {
      header: { sequenceNumber: track.seq, timestamp, marker, extension: false, extensions: NO_EXTENSIONS },
      payload,
    };
    try {
      this.forwarder.push(track.forward, packet);
    } catch (err) {
      this.#options.onForwardingError?.(err);
    }
  }

  /** Relays the camera's NTP↔RTP mapping, in the output timeline, unless told not to. */
  #onSenderReport(conn: Connection, index: number, ntp: bigint, rtp: number): void {
    if (this.properties.ignoreRtcpSRTimestamp || this.#conn !== conn) return;
    // Mixed clocks would break lip sync: relay only when no track is transcoded.
    if (conn.bindings.some((b) => b?.mode === 'transcode')) return;
    const binding = conn.bindings[index];
    const mapped = binding?.track.timeline.peek(rtp);
    if (binding && mapped !== undefined) binding.track.forward.senderReport = { ntp, rtp: mapped };
  }

  #onTick(): void {
    const now = Date.now();
    this.forwarder.sample(now);
    const conn = this.#conn;
    if (conn && conn.live && now - conn.lastPacketAt > this.properties.noInputFailoverTimeoutMs) {
      this.#log.warn({ session: this.session.id, url: maskUrl(conn.url) }, 'rtsp pull: no input, failing over');
      this.#onDrop(conn, new RtspError('no input'));
    }
  }

  /** The live connection ended: reconnect (next URL once input has been missing long enough). */
  #onDrop(conn: Connection, err: Error): void {
    if (!conn.live) {
      // Still being made: its #connect fails with this cause (and closes it).
      conn.settle(err);
      return;
    }
    if (this.#conn !== conn || this.#closed) {
      this.#closeConnection(conn);
      return;
    }
    this.#conn = undefined;
    this.#closeConnection(conn);
    this.#log.warn({ session: this.session.id, url: maskUrl(conn.url), err: err?.message }, 'rtsp pull lost its source, reconnecting');
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#retry) return;
    const wait = this.#backoff;
    this.#backoff = Math.min(BACKOFF_MAX_MS, Math.max(BACKOFF_FIRST_MS, this.#backoff * 2));
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (this.urls.length > 1 && Date.now() - this.#lastInputAt >= this.properties.noInputFailoverTimeoutMs) {
        this.#urlIndex = (this.#urlIndex + 1) % this.urls.length;
        this.#lastInputAt = Date.now();
      }
      this.#connect(this.urls[this.#urlIndex]).catch((e: Error) => {
        if (this.#closed) return;
        this.#log.debug({ session: this.session.id, err: e.message }, 'rtsp pull reconnect failed');
        this.#scheduleReconnect();
      });
    }, wait);
  }

  #closeConnection(conn: Connection): void {
    if (this.#attempt === conn) this.#attempt = undefined;
    conn.client.close();
    for (const t of conn.transcoders) t.close();
  }

  /** Stops pulling (TEARDOWN to the camera); idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retry);
    clearInterval(this.#tick);
    const conn = this.#conn;
    this.#conn = undefined;
    if (conn) this.#closeConnection(conn);
    if (this.#attempt && this.#attempt !== conn) this.#closeConnection(this.#attempt);
    this.#attempt = undefined;
    this.forwarder.close();
  }
}

/** The sample rate of an audio media as a listener hears it (RFC 3551 G.722 quirk: 8000 on the wire, 16 kHz audio). */
function audioRate(m: MediaDescription): number {
  return m.encoding === 'G722' ? 16000 : m.clockRate;
}
