/**
 * The packet engine of one stream: RTP from the source goes to every output of its track without
 * transcoding. Key-frame requests from players are merged and rate-limited before they reach the
 * source. Per-track statistics (bitrate, frame rate, picture size) are kept with counters only.
 */
import type { RTCRtpCodecParameters, RtpHeader } from 'werift';
import { isKeyFrame, keyFrameSize, type VideoCodecName } from './bitstream.ts';
import { codecName, videoCodecName } from './codecs.ts';
import type { TrackInfo } from '../core/stream.ts';
import type { SessionCounters } from '../core/session.ts';

/**
 * The RTP packet the forwarder carries: werift's RtpPacket from a WebRTC publisher, or a plain
 * object of this shape from a pulled source (no werift header object per packet).
 */
export interface MediaPacket {
  header: Pick<RtpHeader, 'sequenceNumber' | 'timestamp' | 'marker' | 'extension' | 'extensions'>;
  payload: Buffer;
}

/** Where forwarded packets go: one player's sender for one track. Must not throw. */
export interface TrackOutput {
  /** Sends the packet; the output rewrites SSRC/PT/sequence as its peer negotiated. */
  send(rtp: MediaPacket): void;
}

/** One source track and the outputs it feeds. */
export class ForwardTrack {
  readonly info: TrackInfo;
  readonly codec: RTCRtpCodecParameters;
  readonly video: VideoCodecName | undefined;
  outputs: TrackOutput[] = [];
  /** Key frames seen so far. */
  keyFrames = 0;
  /**
   * The source's latest RTCP sender report: its NTP↔RTP mapping, relayed to players so they keep
   * audio and video in sync as the publisher captured them. A new object per report.
   */
  senderReport: { ntp: bigint; rtp: number } | undefined;
  #bytes = 0;
  #frames = 0;
  #lastTimestamp = -1;
  #lastKeyTimestamp = -1;
  #windowStart = Date.now();
  readonly #started = Date.now();
  #totalBytes = 0;
  #totalFrames = 0;

  constructor(index: number, kind: 'video' | 'audio', codec: RTCRtpCodecParameters) {
    this.codec = codec;
    this.video = kind === 'video' ? videoCodecName(codec.mimeType) : undefined;
    this.info = {
      id: index,
      kind,
      codec: codecName(codec.mimeType),
      clockRate: codec.clockRate,
      channels: kind === 'audio' ? codec.channels ?? 1 : 0,
      width: 0,
      height: 0,
      frameRate: 0,
      bitrate: 0,
      bitrateAvg: 0,
      frameRateAvg: 0,
      keyFrameInterval: 0,
      framesSinceKeyFrame: 0,
    };
  }

  /** Counts the packet and forwards it to every output. The hot path: no allocation here. */
  push(rtp: MediaPacket): void {
    const payload = rtp.payload;
    this.#bytes += payload.length;
    const ts = rtp.header.timestamp;
    if (ts !== this.#lastTimestamp) {
      this.#lastTimestamp = ts;
      this.#frames++;
      this.info.framesSinceKeyFrame++;
    }
    // A key frame may be flagged on several of its packets (SPS, then IDR): count it once.
    if (this.video !== undefined && ts !== this.#lastKeyTimestamp && isKeyFrame(this.video, payload)) {
      this.#lastKeyTimestamp = ts;
      if (this.keyFrames > 0) this.info.keyFrameInterval = this.info.framesSinceKeyFrame;
      this.info.framesSinceKeyFrame = 0;
      this.keyFrames++;
      const size = keyFrameSize(this.video, payload);
      if (size) {
        this.info.width = size.width;
        this.info.height = size.height;
      }
    }
    // Header extension ids are per peer: the publisher's must not reach the players.
    rtp.header.extensions.length = 0;
    rtp.header.extension = false;
    const outputs = this.outputs;
    for (let i = 0; i < outputs.length; i++) outputs[i].send(rtp);
  }

  /** Folds the counters of the last window into bitrate and frame rate; call about once a second. */
  sample(now: number): void {
    const seconds = (now - this.#windowStart) / 1000;
    if (seconds <= 0) return;
    this.info.bitrate = Math.round((this.#bytes * 8) / seconds);
    if (this.info.kind === 'video') this.info.frameRate = Math.round((this.#frames / seconds) * 100) / 100;
    this.#totalBytes += this.#bytes;
    this.#totalFrames += this.#frames;
    const total = (now - this.#started) / 1000;
    this.info.bitrateAvg = Math.round((this.#totalBytes * 8) / total);
    if (this.info.kind === 'video') this.info.frameRateAvg = Math.round((this.#totalFrames / total) * 100) / 100;
    this.#bytes = 0;
    this.#frames = 0;
    this.#windowStart = now;
  }

  addOutput(output: TrackOutput): void {
    this.outputs = [...this.outputs, output];
  }

  removeOutput(output: TrackOutput): void {
    this.outputs = this.outputs.filter((o) => o !== output);
  }
}

export interface ForwarderOptions {
  /** Asks the source for a key frame (PLI/FIR). */
  requestKeyFrame: () => void;
  /** Shortest gap between two key-frame requests sent to the source, ms. Default 300. */
  keyFrameIntervalMs?: number;
  /** Counters of the source session, updated per packet. */
  counters: SessionCounters;
}

export class Forwarder {
  readonly tracks: ForwardTrack[] = [];
  readonly #requestKeyFrame: () => void;
  readonly #interval: number;
  readonly #counters: SessionCounters;
  #lastRequest = 0;
  #pending: NodeJS.Timeout | undefined;
  closed = false;

  constructor(options: ForwarderOptions) {
    this.#requestKeyFrame = options.requestKeyFrame;
    this.#interval = options.keyFrameIntervalMs ?? 300;
    this.#counters = options.counters;
  }

  addTrack(kind: 'video' | 'audio', codec: RTCRtpCodecParameters): ForwardTrack {
    const track = new ForwardTrack(this.tracks.length + 1, kind, codec); // OME numbers input tracks from 1
    this.tracks.push(track);
    return track;
  }

  /** Entry point of the source's packets for `track`. */
  push(track: ForwardTrack, rtp: MediaPacket): void {
    const c = this.#counters;
    c.packetsIn++;
    c.bytesIn += rtp.payload.length + 12;
    c.lastActivity = Date.now();
    track.push(rtp);
  }

  /**
   * Asks the source for a key frame, merging requests: at most one per interval; a request
   * inside the interval is sent when it ends.
   */
  requestKeyFrame(): void {
    if (this.closed || this.#pending) return;
    const wait = this.#lastRequest + this.#interval - Date.now();
    if (wait <= 0) {
      this.#lastRequest = Date.now();
      this.#requestKeyFrame();
      return;
    }
    this.#pending = setTimeout(() => {
      this.#pending = undefined;
      if (this.closed) return;
      this.#lastRequest = Date.now();
      this.#requestKeyFrame();
    }, wait);
  }

  sample(now: number): void {
    for (const track of this.tracks) track.sample(now);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.#pending);
    this.#pending = undefined;
    for (const track of this.tracks) track.outputs = [];
  }
}
