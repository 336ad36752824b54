/**
 * A WebRTC publisher: a werift peer connection that receives a client's tracks and feeds them to
 * the stream's Forwarder. Keeps the publisher at its rate with a REMB once a second, and notices a
 * publisher that vanishes (ICE failure or no media for `timeoutMs`).
 */
import {
  ReceiverEstimatedMaxBitrate,
  RtcpPayloadSpecificFeedback,
  RtcpSrPacket,
  type RtpPacket,
  type RTCPeerConnection,
  type RTCRtpTransceiver,
  type MediaStreamTrack,
} from 'werift';
import { Forwarder, type ForwardTrack } from './forwarder.ts';
import { closePeerConnection, createPeerConnection, gatheringComplete, prepareLocal, watchPeer, type IceSettings } from './peer.ts';
import { offeredCodecs, preferOffered, publisherAudioCodecs, publisherVideoCodecs } from './codecs.ts';
import { errors } from '../core/errors.ts';
import type { Session } from '../core/session.ts';
import { isMdnsCandidate, stripMdnsCandidates, validateSdp, type CandidateInit } from './sdp.ts';

export interface PublisherOptions {
  ice: IceSettings;
  session: Session;
  /** Bitrate announced to the publisher in REMB, bits/s. Default 4 Mbps. */
  maxBitrate?: number;
  /** No media for this long closes the session with `timed-out`, ms. Default 10000. */
  timeoutMs?: number;
  /** Called once a second with the time, after track statistics are sampled. */
  onTick?: (now: number) => void;
  /** Told of a packet that could not be forwarded (counted in the metrics). */
  onForwardingError?: (err: unknown) => void;
}

export class WebRtcPublisher {
  readonly pc: RTCPeerConnection;
  readonly forwarder: Forwarder;
  readonly session: Session;
  readonly #maxBitrate: number;
  readonly #timeoutMs: number;
  readonly #trackOf = new Map<RTCRtpTransceiver, ForwardTrack>();
  readonly #receivers: { transceiver: RTCRtpTransceiver; track: MediaStreamTrack }[] = [];
  readonly #onTick: ((now: number) => void) | undefined;
  readonly #onError: (err: unknown) => void;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: PublisherOptions) {
    this.session = options.session;
    this.#maxBitrate = options.maxBitrate ?? 4_000_000;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#onTick = options.onTick;
    this.#onError = options.onForwardingError ?? (() => {});
    this.pc = createPeerConnection({ ice: options.ice, video: publisherVideoCodecs(), audio: publisherAudioCodecs() });
    this.forwarder = new Forwarder({ requestKeyFrame: () => this.#sendPli(), counters: this.session.counters });
    watchPeer(this.pc, () => this.session.activate(), (reason) => this.session.close(reason));
  }

  /**
   * Takes the client's SDP offer and returns the answer (with candidates). Throws BAD_REQUEST for
   * SDP that does not parse and NO_USABLE_CODEC when no offered track can be received.
   */
  async answer(offer: string): Promise<string> {
    validateSdp(offer);
    // Answer with the client's preferred codec among ours.
    const codecs = this.pc.config.codecs;
    codecs.video = preferOffered(codecs.video ?? [], offeredCodecs(offer, 'video'));
    codecs.audio = preferOffered(codecs.audio ?? [], offeredCodecs(offer, 'audio'));
    // werift fires `track` inside setRemoteDescription: subscribe first.
    this.pc.ontrack = ({ track, transceiver }) => this.#onTrack(track, transceiver);
    try {
      await this.pc.setRemoteDescription({ type: 'offer', sdp: stripMdnsCandidates(offer) });
    } catch (err) {
      throw errors.badRequest(`Invalid SDP offer: ${(err as Error).message}`);
    }
    prepareLocal(this.pc, true);
    const answer = await this.pc.createAnswer();
    await this.pc.setLocalDescription(answer);
    this.#collectTracks();
    await gatheringComplete(this.pc);
    this.#start();
    return this.pc.localDescription!.sdp;
  }

  /** Creates the server's offer (OME signaling publishes this way). */
  async offer(): Promise<string> {
    this.pc.ontrack = ({ track, transceiver }) => this.#onTrack(track, transceiver);
    this.pc.addTransceiver('video', { direction: 'recvonly' });
    this.pc.addTransceiver('audio', { direction: 'recvonly' });
    prepareLocal(this.pc, false);
    const offer = await this.pc.createOffer();
    await this.pc.setLocalDescription(offer);
    await gatheringComplete(this.pc);
    return this.pc.localDescription!.sdp;
  }

  /** Applies the client's answer to `offer()`. */
  async accept(answer: string): Promise<void> {
    validateSdp(answer);
    try {
      await this.pc.setRemoteDescription({ type: 'answer', sdp: stripMdnsCandidates(answer) });
    } catch (err) {
      throw errors.badRequest(`Invalid SDP answer: ${(err as Error).message}`);
    }
    this.#collectTracks();
    this.#start();
  }

  /** Adds a trickled remote candidate. */
  async addCandidate(candidate: CandidateInit): Promise<void> {
    if (isMdnsCandidate(candidate.candidate)) return;
    await this.pc.addIceCandidate(candidate as never);
  }

  #collectTracks(): void {
    if (this.forwarder.tracks.length > 0) return;
    for (const transceiver of this.pc.getTransceivers()) {
      const codec = transceiver.codecs[0];
      if (!codec || transceiver.direction === 'inactive') continue;
      this.#trackOf.set(transceiver, this.forwarder.addTrack(transceiver.kind as 'video' | 'audio', codec));
    }
    if (this.forwarder.tracks.length === 0) {
      throw errors.noUsableCodec('No offered track has a codec Kiln can forward (VP8, VP9, H264, AV1, Opus)');
    }
  }

  #onTrack(track: MediaStreamTrack, transceiver: RTCRtpTransceiver): void {
    this.#receivers.push({ transceiver, track });
    const forwarder = this.forwarder;
    let forwardTrack: ForwardTrack | undefined;
    const forward = (rtp: RtpPacket) => {
      if (forwardTrack === undefined) {
        // The first packet binds the werift track to the forwarder's track of its transceiver.
        forwardTrack = this.#trackOf.get(transceiver);
        if (forwardTrack === undefined) return;
        if (track.kind === 'video') this.#sendPli();
      }
      forwarder.push(forwardTrack, rtp);
    };
    // werift runs subscribers in turn and an exception skips the rest: nothing may escape here.
    track.onReceiveRtp.subscribe((rtp) => {
      try {
        forward(rtp);
      } catch (err) {
        this.#onError(err);
      }
    });
    transceiver.receiver.onRtcp.subscribe((packet) => {
      if (packet.type !== RtcpSrPacket.type || !forwardTrack) return;
      const sr = packet as RtcpSrPacket;
      if (sr.ssrc === track.ssrc) forwardTrack.senderReport = { ntp: sr.senderInfo.ntpTimestamp, rtp: sr.senderInfo.rtpTimestamp };
    });
  }

  /** SSRCs of the video tracks that have started (werift learns a track's SSRC from its packets). */
  #videoSsrcs(): number[] {
    const ssrcs: number[] = [];
    for (const { track } of this.#receivers) if (track.kind === 'video' && track.ssrc !== undefined) ssrcs.push(track.ssrc);
    return ssrcs;
  }

  #sendPli(): void {
    for (const { transceiver, track } of this.#receivers) {
      if (track.kind === 'video' && track.ssrc !== undefined) transceiver.receiver.sendRtcpPLI(track.ssrc).catch(() => {});
    }
  }

  #sendRemb(): void {
    const ssrcs = this.#videoSsrcs();
    if (ssrcs.length === 0) return;
    let exp = 0;
    let mantissa = this.#maxBitrate;
    while (mantissa >= 1 << 18) {
      mantissa = Math.floor(mantissa / 2);
      exp++;
    }
    const remb = new ReceiverEstimatedMaxBitrate({
      senderSsrc: 1,
      mediaSsrc: 0,
      brExp: exp,
      brMantissa: mantissa,
      ssrcNum: ssrcs.length,
      ssrcFeedbacks: ssrcs,
    });
    const packet = new RtcpPayloadSpecificFeedback({ feedback: remb });
    this.pc.dtlsTransports[0]?.sendRtcp([packet]).catch(() => {});
  }

  #start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      const now = Date.now();
      this.forwarder.sample(now);
      this.#sendRemb();
      if (now - this.session.counters.lastActivity > this.#timeoutMs) this.session.close('timed-out');
      this.#onTick?.(now);
    }, 1000);
  }

  /** Stops media and the peer connection; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.forwarder.close();
    void closePeerConnection(this.pc);
  }
}
