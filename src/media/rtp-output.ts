/**
 * The lean send path of one forwarded track to one player. werift's `RTCRtpSender.sendRtp` clones
 * every packet, rebuilds header extensions, computes an NTP time and feeds a bandwidth estimator,
 * with a promise per packet; a forwarder needs none of that. This output rewrites only what differs
 * per peer (SSRC, payload type, sequence number), reuses one header object, encrypts with the
 * transport's SRTP context and writes to the selected ICE pair.
 *
 * It keeps the werift sender's counters up to date, so werift's own RTCP sender reports stay
 * right, and answers the player's NACKs from its own history (references to the source packets, no
 * copies).
 */
import { RtpHeader, ntpTime, type GenericNack, type RTCRtpSender, type RtpPacket } from 'werift';
import type { TrackOutput } from './forwarder.ts';
import type { SessionCounters } from '../core/session.ts';

/** Packets kept for retransmission, per output (a power of two). */
const HISTORY = 512;
/** Refresh the NTP↔RTP mapping used in sender reports at most this often, ms. */
const SR_MAPPING_INTERVAL_MS = 100;

interface SenderInternals {
  ssrc: number;
  codec?: { payloadType: number };
  mid?: string | null;
  headerExtensions: { id: number; uri: string }[];
  sequenceNumber?: number;
  packetCount: number;
  octetCount: number;
  ntpTimestamp: bigint;
  rtpTimestamp: number;
  stopped: boolean;
  runRtcp(): Promise<void>;
  dtlsTransport: {
    srtp?: { encrypt(payload: Buffer, header: RtpHeader): Buffer };
    iceTransport: { connection: { send(data: Buffer): Promise<void> } };
    bytesSent: number;
    packetsSent: number;
  };
}

const MID_URI = 'urn:ietf:params:rtp-hdrext:sdes:mid';

export class RtpOutput implements TrackOutput {
  readonly #sender: SenderInternals;
  readonly #counters: SessionCounters;
  readonly #header = new RtpHeader();
  readonly #history: (RtpPacket | undefined)[] = new Array(HISTORY);
  #seqOffset = 0;
  #started = false;
  #lastMapping = 0;
  /** Packets that could not be sent (no SRTP yet, socket errors). */
  errors = 0;
  closed = false;

  constructor(sender: RTCRtpSender, counters: SessionCounters) {
    this.#sender = sender as unknown as SenderInternals;
    this.#counters = counters;
    sender.onGenericNack.subscribe((nack) => this.#retransmit(nack));
  }

  send(rtp: RtpPacket): void {
    if (this.closed) return;
    const s = this.#sender;
    const srtp = s.dtlsTransport.srtp;
    if (!srtp) {
      this.errors++;
      return;
    }
    const src = rtp.header;
    if (!this.#started) this.#start(src.sequenceNumber);
    const seq = (src.sequenceNumber + this.#seqOffset) & 0xffff;
    this.#history[seq & (HISTORY - 1)] = rtp;
    this.#write(srtp, rtp, seq);
    s.sequenceNumber = seq;
    s.packetCount = (s.packetCount + 1) >>> 0;
    s.octetCount = (s.octetCount + rtp.payload.length) >>> 0;
    const now = Date.now();
    if (now - this.#lastMapping >= SR_MAPPING_INTERVAL_MS) {
      this.#lastMapping = now;
      s.ntpTimestamp = ntpTime();
      s.rtpTimestamp = src.timestamp;
    }
  }

  /** Takes what negotiation settled (payload type, MID extension) and starts werift's RTCP. */
  #start(firstSequenceNumber: number): void {
    this.#started = true;
    const s = this.#sender;
    const header = this.#header;
    header.ssrc = s.ssrc;
    header.payloadType = s.codec?.payloadType ?? 0;
    // The MID extension lets the player route packets before it has seen the SSRC (RFC 8843 §15).
    const mid = s.headerExtensions.find((e) => e.uri === MID_URI);
    if (mid && s.mid) header.extensions = [{ id: mid.id, payload: Buffer.from(s.mid) }];
    // Start where werift's sender would have, so sequence numbers stay unpredictable (RFC 3550 §5.1).
    this.#seqOffset = ((s.sequenceNumber ?? Math.floor(Math.random() * 0xffff)) - firstSequenceNumber) & 0xffff;
    void s.runRtcp();
  }

  #write(srtp: NonNullable<SenderInternals['dtlsTransport']['srtp']>, rtp: RtpPacket, seq: number): void {
    const header = this.#header;
    header.sequenceNumber = seq;
    header.timestamp = rtp.header.timestamp;
    header.marker = rtp.header.marker;
    header.padding = false;
    const transport = this.#sender.dtlsTransport;
    let packet: Buffer;
    try {
      packet = srtp.encrypt(rtp.payload, header);
    } catch {
      this.errors++;
      return;
    }
    transport.bytesSent += packet.length;
    transport.packetsSent++;
    const c = this.#counters;
    c.packetsOut++;
    c.bytesOut += packet.length;
    transport.iceTransport.connection.send(packet).catch(this.#onSendError);
  }

  readonly #onSendError = (): void => {
    this.errors++;
  };

  #retransmit(nack: GenericNack): void {
    const srtp = this.#sender.dtlsTransport.srtp;
    if (!srtp || this.closed) return;
    for (const seq of nack.lost) {
      const rtp = this.#history[seq & (HISTORY - 1)];
      if (rtp && ((rtp.header.sequenceNumber + this.#seqOffset) & 0xffff) === seq) this.#write(srtp, rtp, seq);
    }
  }

  close(): void {
    this.closed = true;
    this.#history.fill(undefined);
  }
}
