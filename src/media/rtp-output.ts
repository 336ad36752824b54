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
import { createCipheriv, type KeyObject } from 'node:crypto';
import { RtpHeader, type GenericNack, type RTCRtpSender } from 'werift';
import type { ForwardTrack, MediaPacket, TrackOutput } from './forwarder.ts';
import type { SessionCounters } from '../core/session.ts';

/** Packets kept for retransmission, per output (a power of two). */
const HISTORY = 512;
/** Seconds from the NTP epoch (1900) to the Unix epoch. */
const NTP_UNIX_OFFSET = 2208988800;

/** The 64-bit NTP time of now (werift's own `ntpTime()` can be off by up to a second). */
export function ntpNow(): bigint {
  const ms = performance.timeOrigin + performance.now();
  const seconds = Math.floor(ms / 1000);
  const fraction = Math.floor(((ms - seconds * 1000) / 1000) * 0x100000000);
  return (BigInt(seconds + NTP_UNIX_OFFSET) << 32n) | BigInt(fraction >>> 0);
}

/** Without a sender report from the source, refresh our own NTP↔RTP mapping at most this often, ms. */
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
    srtp?: SrtpSessionInternals;
    iceTransport: { connection: IceConnectionInternals };
    bytesSent: number;
    packetsSent: number;
  };
}

interface SrtpSessionInternals {
  encrypt(payload: Buffer, header: RtpHeader): Buffer;
  localContext?: { profile: number; cipher?: { srtpSessionKey?: Buffer | KeyObject; srtpSessionSalt?: Buffer } };
}

interface IceConnectionInternals {
  send(data: Buffer): Promise<void>;
  canSendApplicationData(): boolean;
  nominated?: {
    remoteAddr: [string, number];
    packetsSent: number;
    bytesSent: number;
    protocol: { transport?: { type?: string; closed?: boolean; socket?: { send(b: Buffer, port: number, address: string): void } } };
  };
}

/** SRTP protection profile AEAD_AES_128_GCM (RFC 7714), what Chromium and werift agree on. */
const AEAD_AES_128_GCM = 0x0007;
const GCM_TAG = 16;

const MID_URI = 'urn:ietf:params:rtp-hdrext:sdes:mid';

export class RtpOutput implements TrackOutput {
  readonly #sender: SenderInternals;
  readonly #counters: SessionCounters;
  readonly #source: ForwardTrack;
  #relayedReport: ForwardTrack['senderReport'];
  readonly #header = new RtpHeader();
  readonly #history: (MediaPacket | undefined)[] = new Array(HISTORY);
  /** The header this output writes (12 bytes + its extension block); per packet only PT/M, seq, ts change. */
  #template: Buffer | undefined;
  /** AES-GCM key and salt when the transport negotiated AEAD_AES_128_GCM; else werift encrypts. */
  #gcmKey: Buffer | KeyObject | undefined;
  #gcmSalt: Buffer | undefined;
  readonly #iv = Buffer.alloc(12);
  #roc = 0;
  #lastSeq = -1;
  #seqOffset = 0;
  #started = false;
  #lastMapping = 0;
  /** Packets that could not be sent (no SRTP yet, socket errors). */
  errors = 0;
  closed = false;

  constructor(sender: RTCRtpSender, counters: SessionCounters, source: ForwardTrack) {
    this.#sender = sender as unknown as SenderInternals;
    this.#counters = counters;
    this.#source = source;
    sender.onGenericNack.subscribe((nack) => this.#retransmit(nack));
  }

  send(rtp: MediaPacket): void {
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
    // Sender reports: relay the source's NTP↔RTP mapping (timestamps pass through unchanged), so
    // players sync audio and video as captured; until the source reports, map arrival times.
    const report = this.#source.senderReport;
    if (report !== undefined) {
      if (report !== this.#relayedReport) {
        this.#relayedReport = report;
        s.ntpTimestamp = report.ntp;
        s.rtpTimestamp = report.rtp;
      }
    } else {
      const now = Date.now();
      if (now - this.#lastMapping >= SR_MAPPING_INTERVAL_MS) {
        this.#lastMapping = now;
        s.ntpTimestamp = ntpNow();
        s.rtpTimestamp = src.timestamp;
      }
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
    this.#template = header.serialize(header.serializeSize);
    const local = s.dtlsTransport.srtp?.localContext;
    // werift derives a 14-byte session salt for every profile; GCM uses its first 12 (RFC 7714 §8.1).
    const salt = local?.cipher?.srtpSessionSalt;
    if (local?.profile === AEAD_AES_128_GCM && local.cipher?.srtpSessionKey && salt && salt.length >= 12) {
      this.#gcmKey = local.cipher.srtpSessionKey;
      this.#gcmSalt = salt.subarray(0, 12);
    }
    // Start where werift's sender would have, so sequence numbers stay unpredictable (RFC 3550 §5.1).
    this.#seqOffset = ((s.sequenceNumber ?? Math.floor(Math.random() * 0xffff)) - firstSequenceNumber) & 0xffff;
    void s.runRtcp();
  }

  #write(srtp: SrtpSessionInternals, rtp: MediaPacket, seq: number): void {
    let packet: Buffer;
    try {
      packet = this.#gcmKey ? this.#encryptGcm(rtp, seq) : this.#encryptWerift(srtp, rtp, seq);
    } catch {
      this.errors++;
      return;
    }
    const transport = this.#sender.dtlsTransport;
    transport.bytesSent += packet.length;
    transport.packetsSent++;
    const c = this.#counters;
    c.packetsOut++;
    c.bytesOut += packet.length;
    this.#transmit(transport.iceTransport.connection, packet);
  }

  /** Writes to the selected pair's UDP socket directly (werift's path is three promises deep). */
  #transmit(connection: IceConnectionInternals, packet: Buffer): void {
    const pair = connection.nominated;
    const udp = pair?.protocol.transport;
    if (!pair || !udp || udp.type !== 'udp' || !udp.socket) {
      connection.send(packet).catch(this.#onSendError);
      return;
    }
    // RFC 7675: no application data once consent has expired.
    if (udp.closed || !connection.canSendApplicationData()) {
      this.errors++;
      return;
    }
    try {
      udp.socket.send(packet, pair.remoteAddr[1], pair.remoteAddr[0]);
      pair.packetsSent++;
      pair.bytesSent += packet.length;
    } catch {
      this.errors++;
    }
  }

  /** The rollover counter for `seq` (RFC 3711 §3.3.1); `advance` for new packets, not resends. */
  #rolloverFor(seq: number, advance: boolean): number {
    if (this.#lastSeq < 0) {
      this.#lastSeq = seq;
      return this.#roc;
    }
    const last = this.#lastSeq;
    const delta = ((seq - last + 0x8000) & 0xffff) - 0x8000;
    let roc = this.#roc;
    if (delta > 0 && seq < last) roc = (roc + 1) >>> 0;
    else if (delta < 0 && seq > last) roc = (roc - 1) >>> 0;
    if (advance && delta > 0) {
      this.#roc = roc;
      this.#lastSeq = seq;
    }
    return roc;
  }

  /** SRTP AEAD_AES_128_GCM (RFC 7714 §8): header as AAD, IV from SSRC, ROC and sequence number. */
  #encryptGcm(rtp: MediaPacket, seq: number): Buffer {
    const template = this.#template!;
    const hlen = template.length;
    const payload = rtp.payload;
    const out = Buffer.allocUnsafe(hlen + payload.length + GCM_TAG);
    template.copy(out, 0);
    out[1] = (rtp.header.marker ? 0x80 : 0) | (template[1] & 0x7f);
    out.writeUInt16BE(seq, 2);
    out.writeUInt32BE(rtp.header.timestamp >>> 0, 4);
    const roc = this.#rolloverFor(seq, true);
    const iv = this.#iv;
    const salt = this.#gcmSalt!;
    iv.writeUInt16BE(0, 0);
    iv.writeUInt32BE(this.#header.ssrc >>> 0, 2);
    iv.writeUInt32BE(roc, 6);
    iv.writeUInt16BE(seq, 10);
    for (let i = 0; i < 12; i++) iv[i] ^= salt[i];
    const cipher = createCipheriv('aes-128-gcm', this.#gcmKey!, iv);
    cipher.setAAD(out.subarray(0, hlen));
    const enc = cipher.update(payload);
    enc.copy(out, hlen);
    cipher.final();
    cipher.getAuthTag().copy(out, hlen + payload.length);
    return out;
  }

  #encryptWerift(srtp: SrtpSessionInternals, rtp: MediaPacket, seq: number): Buffer {
    const header = this.#header;
    header.sequenceNumber = seq;
    header.timestamp = rtp.header.timestamp;
    header.marker = rtp.header.marker;
    return srtp.encrypt(rtp.payload, header);
  }

  readonly #onSendError = (): void => {
    this.errors++;
  };

  #retransmit(nack: GenericNack): void {
    const srtp = this.#sender.dtlsTransport.srtp;
    if (!srtp || this.closed) return;
    for (const lost of nack.lost) {
      // werift's NACK parser does not wrap past 65535.
      const seq = lost & 0xffff;
      const rtp = this.#history[seq & (HISTORY - 1)];
      if (rtp && ((rtp.header.sequenceNumber + this.#seqOffset) & 0xffff) === seq) this.#write(srtp, rtp, seq);
    }
  }

  /** Bytes of the packets kept for retransmission (references to the source's packets). */
  heldBytes(): number {
    let bytes = 0;
    for (const rtp of this.#history) if (rtp) bytes += rtp.payload.length + 12;
    return bytes;
  }

  close(): void {
    this.closed = true;
    this.#history.fill(undefined);
  }
}
