/**
 * The receiving side of RTCP for an RTSP pull (RFC 3550 §6.4, Appendix A): reception statistics
 * per source, receiver reports with SDES CNAME, and the sender reports the camera sends.
 */

/** Reception statistics of one RTP source (RFC 3550 A.1, A.3, A.8), updated per packet without allocation. */
export class ReceptionStats {
  ssrc = 0;
  #started = false;
  #baseSeq = 0;
  #maxSeq = 0;
  #cycles = 0;
  #received = 0;
  #expectedPrior = 0;
  #receivedPrior = 0;
  #transit = 0;
  #jitter = 0;
  readonly #clockRate: number;
  /** Middle 32 bits of the last SR's NTP time, and when it arrived (ms). */
  #lsr = 0;
  #lsrAt = 0;

  constructor(clockRate: number) {
    this.#clockRate = clockRate;
  }

  update(ssrc: number, seq: number, timestamp: number, arrivalMs: number): void {
    if (!this.#started || ssrc !== this.ssrc) {
      this.#started = true;
      this.ssrc = ssrc;
      this.#baseSeq = seq;
      this.#maxSeq = seq;
      this.#cycles = 0;
      this.#received = 0;
      this.#expectedPrior = 0;
      this.#receivedPrior = 0;
      this.#jitter = 0;
      this.#transit = 0;
    }
    const delta = (seq - this.#maxSeq) & 0xffff;
    if (delta > 0 && delta < 0x8000) {
      if (seq < this.#maxSeq) this.#cycles += 0x10000;
      this.#maxSeq = seq;
    }
    this.#received++;
    const arrival = Math.floor((arrivalMs * this.#clockRate) / 1000);
    const transit = (arrival - timestamp) | 0;
    if (this.#received > 1) {
      let d = (transit - this.#transit) | 0;
      if (d < 0) d = -d;
      this.#jitter += (d - this.#jitter) / 16;
    }
    this.#transit = transit;
  }

  onSenderReport(ntpMiddle: number, nowMs: number): void {
    this.#lsr = ntpMiddle >>> 0;
    this.#lsrAt = nowMs;
  }

  /** Writes one 24-byte report block at `offset`. */
  writeBlock(buf: Buffer, offset: number, nowMs: number): void {
    const extendedMax = this.#cycles + this.#maxSeq;
    const expected = extendedMax - this.#baseSeq + 1;
    const lost = Math.max(-0x800000, Math.min(0x7fffff, expected - this.#received));
    const expectedInterval = expected - this.#expectedPrior;
    const receivedInterval = this.#received - this.#receivedPrior;
    this.#expectedPrior = expected;
    this.#receivedPrior = this.#received;
    const lostInterval = expectedInterval - receivedInterval;
    const fraction = expectedInterval <= 0 || lostInterval <= 0 ? 0 : Math.min(255, Math.floor((lostInterval << 8) / expectedInterval));
    buf.writeUInt32BE(this.ssrc >>> 0, offset);
    buf.writeUInt8(fraction, offset + 4);
    buf.writeIntBE(lost, offset + 5, 3);
    buf.writeUInt32BE(extendedMax >>> 0, offset + 8);
    buf.writeUInt32BE(Math.floor(this.#jitter) >>> 0, offset + 12);
    buf.writeUInt32BE(this.#lsr, offset + 16);
    const dlsr = this.#lsrAt === 0 ? 0 : Math.floor(((nowMs - this.#lsrAt) / 1000) * 65536);
    buf.writeUInt32BE(dlsr >>> 0, offset + 20);
  }

  get active(): boolean {
    return this.#started;
  }
}

/** A compound RTCP packet: RR with one report block, then SDES CNAME (RFC 3550 §6.1). */
export function receiverReport(senderSsrc: number, stats: ReceptionStats, cname: string, nowMs: number): Buffer {
  const name = Buffer.from(cname.slice(0, 255), 'utf8');
  // SDES chunk: SSRC, CNAME item (type, length, text), END item, padded to 32 bits.
  const chunk = 4 + 2 + name.length + 1;
  const sdesLength = 4 + Math.ceil(chunk / 4) * 4;
  const buf = Buffer.alloc(32 + sdesLength);
  buf[0] = 0x81; // V=2, RC=1
  buf[1] = 201;
  buf.writeUInt16BE(7, 2);
  buf.writeUInt32BE(senderSsrc >>> 0, 4);
  stats.writeBlock(buf, 8, nowMs);
  buf[32] = 0x81; // V=2, SC=1
  buf[33] = 202;
  buf.writeUInt16BE(sdesLength / 4 - 1, 34);
  buf.writeUInt32BE(senderSsrc >>> 0, 36);
  buf[40] = 1;
  buf[41] = name.length;
  name.copy(buf, 42);
  return buf;
}

/** The sender reports in a compound RTCP packet: each as SSRC, 64-bit NTP time and RTP time. */
export function senderReports(buf: Buffer, each: (ssrc: number, ntp: bigint, rtp: number) => void): void {
  let offset = 0;
  while (offset + 4 <= buf.length) {
    if (buf[offset] >> 6 !== 2) return;
    const type = buf[offset + 1];
    const length = (buf.readUInt16BE(offset + 2) + 1) * 4;
    if (offset + length > buf.length) return;
    if (type === 200 && length >= 28) {
      each(buf.readUInt32BE(offset + 4), buf.readBigUInt64BE(offset + 8), buf.readUInt32BE(offset + 16));
    }
    offset += length;
  }
}
