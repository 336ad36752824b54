/**
 * A WebRTC player: a werift peer connection that sends a stream's tracks to one viewer. Each of
 * its senders is an output of the stream's Forwarder; the viewer's PLI/FIR become merged
 * key-frame requests, its NACKs are answered from werift's send history.
 */
import type { RTCPeerConnection } from 'werift';
import type { Forwarder, ForwardTrack } from './forwarder.ts';
import { RtpOutput } from './rtp-output.ts';
import { closePeerConnection, createPeerConnection, gatheringComplete, prepareLocal, watchPeer, type IceSettings } from './peer.ts';
import { playerCodec, restrictH264 } from './codecs.ts';
import { errors } from '../core/errors.ts';
import type { Session } from '../core/session.ts';
import { isMdnsCandidate, stripMdnsCandidates, validateSdp, type CandidateInit } from './sdp.ts';

export interface PlayerOptions {
  ice: IceSettings;
  session: Session;
  forwarder: Forwarder;
  /** Told, on close, how many packets could not be sent to this player. */
  onForwardingErrors?: (count: number) => void;
}

export class WebRtcPlayer {
  readonly pc: RTCPeerConnection;
  readonly session: Session;
  readonly #forwarder: Forwarder;
  readonly #outputs: { track: ForwardTrack; output: RtpOutput }[] = [];
  readonly #onErrors: ((count: number) => void) | undefined;
  /** Date.now() when the viewer was last heard from (RTCP); starts at creation. */
  lastHeard = Date.now();
  #attached = false;
  #closed = false;

  constructor(options: PlayerOptions) {
    this.session = options.session;
    this.#forwarder = options.forwarder;
    this.#onErrors = options.onForwardingErrors;
    const tracks = this.#forwarder.tracks;
    const video = tracks.filter((t) => t.info.kind === 'video').map((t) => playerCodec(t.codec));
    const audio = tracks.filter((t) => t.info.kind === 'audio').map((t) => playerCodec(t.codec));
    this.pc = createPeerConnection({ ice: options.ice, video, audio });
    for (const track of tracks) {
      const transceiver = this.pc.addTransceiver(track.info.kind, { direction: 'sendonly' });
      // One MediaStream id for all tracks (a=msid): players such as OvenPlayer need `streams[0]`.
      transceiver.sender.streamId = `kiln-${this.session.stream}`;
      const output = new RtpOutput(transceiver.sender, this.session.counters, track);
      transceiver.sender.onPictureLossIndication.subscribe(() => this.#forwarder.requestKeyFrame());
      this.#outputs.push({ track, output });
    }
    this.session.setMemoryProbe(() => this.#outputs.reduce((sum, o) => sum + o.output.heldBytes(), 0));
    watchPeer(this.pc, () => {
      this.session.activate();
      // Viewers send receiver reports about once a second: their silence means they are gone.
      for (const t of this.pc.dtlsTransports) t.onRtcp.subscribe(() => (this.lastHeard = Date.now()));
      this.#attach();
    }, (reason) => this.session.close(reason));
  }

  /** WHEP: answers the viewer's offer. NO_USABLE_CODEC when it cannot receive any track. */
  async answer(offer: string): Promise<string> {
    validateSdp(offer);
    let remote = stripMdnsCandidates(offer);
    for (const track of this.#forwarder.tracks) remote = restrictH264(remote, track.codec);
    try {
      await this.pc.setRemoteDescription({ type: 'offer', sdp: remote });
    } catch (err) {
      throw errors.badRequest(`Invalid SDP offer: ${(err as Error).message}`);
    }
    prepareLocal(this.pc, true);
    const answer = await this.pc.createAnswer();
    await this.pc.setLocalDescription(answer);
    this.#checkNegotiated();
    await gatheringComplete(this.pc);
    return this.pc.localDescription!.sdp;
  }

  /** OME signaling: the server offers, the viewer answers. */
  async offer(): Promise<string> {
    prepareLocal(this.pc, false);
    const offer = await this.pc.createOffer();
    await this.pc.setLocalDescription(offer);
    await gatheringComplete(this.pc);
    return this.pc.localDescription!.sdp;
  }

  async accept(answer: string): Promise<void> {
    validateSdp(answer);
    try {
      await this.pc.setRemoteDescription({ type: 'answer', sdp: stripMdnsCandidates(answer) });
    } catch (err) {
      throw errors.badRequest(`Invalid SDP answer: ${(err as Error).message}`);
    }
    this.#checkNegotiated();
  }

  async addCandidate(candidate: CandidateInit): Promise<void> {
    if (isMdnsCandidate(candidate.candidate)) return;
    await this.pc.addIceCandidate(candidate as never);
  }

  #checkNegotiated(): void {
    const sending = this.pc.getTransceivers().filter((t) => t.mid != null && !t.stopped && t.codecs.length > 0
      && (t.currentDirection === 'sendonly' || t.currentDirection === 'sendrecv'));
    if (sending.length === 0) {
      const codecs = this.#forwarder.tracks.map((t) => t.codec.mimeType).join(', ');
      throw errors.noUsableCodec(`The viewer cannot receive any track of this stream (${codecs})`);
    }
  }

  /** Starts forwarding once the connection is up, then asks the source for a key frame. */
  #attach(): void {
    if (this.#attached || this.#closed) return;
    this.#attached = true;
    for (const { track, output } of this.#outputs) track.addOutput(output);
    this.#forwarder.requestKeyFrame();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    let errors = 0;
    for (const { track, output } of this.#outputs) {
      track.removeOutput(output);
      output.close();
      errors += output.errors;
    }
    if (errors > 0) this.#onErrors?.(errors);
    void closePeerConnection(this.pc);
  }
}
