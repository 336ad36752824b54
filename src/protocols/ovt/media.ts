/**
 * Kiln's media payload of OVT media packets (payload type 30). OME serializes its own MediaPacket
 * there (track id, PTS, DTS, duration, flags, then a frame); Kiln keeps the hop lean and carries
 * each RTP packet as its forwarder forwards it, so an edge pushes it into its own forwarder without
 * depacketizing and re-packetizing frames. One record per media payload:
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  Record type  |M|  reserved   |     RTP sequence number       |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                        RTP timestamp                          |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                  Track id (the describe's `id`)               |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |    RTP payload (type 1), or the 64-bit NTP time (type 2) ...  |
 * ```
 *
 * Type 1 is an RTP packet (M its marker bit). Type 2 is the source's latest RTCP sender report for
 * the track: its NTP time, with the matching RTP time in the timestamp field (sequence 0, M 0),
 * so players of the edge keep audio and video in sync as the publisher captured them.
 * Big-endian throughout. A record needs 12 + payload bytes (a padding-only packet has none); the RTP payload of one UDP datagram
 * always fits one OVT packet.
 */

/** A record that carries one RTP packet. */
export const RECORD_RTP = 1;
/** A record that carries a track's sender report (NTP ↔ RTP time). */
export const RECORD_SENDER_REPORT = 2;
/** Bytes before a record's RTP payload or NTP time. */
export const RECORD_HEADER_SIZE = 12;
/** Bytes of a sender-report record. */
export const SENDER_REPORT_RECORD_SIZE = RECORD_HEADER_SIZE + 8;

/** Writes the header of an RTP record at `offset`. */
export function writeRtpRecordHeader(buf: Buffer, offset: number, trackId: number, sequenceNumber: number, timestamp: number, marker: boolean): void {
  buf[offset] = RECORD_RTP;
  buf[offset + 1] = marker ? 0x80 : 0;
  buf.writeUInt16BE(sequenceNumber & 0xffff, offset + 2);
  buf.writeUInt32BE(timestamp >>> 0, offset + 4);
  buf.writeUInt32BE(trackId >>> 0, offset + 8);
}

/** Writes a whole sender-report record (20 bytes) at `offset`. */
export function writeSenderReportRecord(buf: Buffer, offset: number, trackId: number, ntp: bigint, rtp: number): void {
  buf[offset] = RECORD_SENDER_REPORT;
  buf[offset + 1] = 0;
  buf.writeUInt16BE(0, offset + 2);
  buf.writeUInt32BE(rtp >>> 0, offset + 4);
  buf.writeUInt32BE(trackId >>> 0, offset + 8);
  buf.writeBigUInt64BE(BigInt.asUintN(64, ntp), offset + 12);
}

/** A record that does not parse; the peer is broken. */
export class OvtMediaError extends Error {
  override name = 'OvtMediaError';
}

/**
 * Checks a record's shape and returns its type (RECORD_RTP or RECORD_SENDER_REPORT); the fields
 * are then read in place (`record[1] & 0x80`, `readUInt16BE(2)`, …) with no object per packet.
 */
export function recordType(record: Buffer): number {
  if (record.length < RECORD_HEADER_SIZE) throw new OvtMediaError(`media record of ${record.length} bytes, shorter than its ${RECORD_HEADER_SIZE}-byte header`);
  const type = record[0];
  // An RTP record may have no payload: padding-only packets (bandwidth probes) keep their sequence number.
  if (type === RECORD_RTP) return type;
  if (type === RECORD_SENDER_REPORT) {
    if (record.length !== SENDER_REPORT_RECORD_SIZE) throw new OvtMediaError(`sender report record of ${record.length} bytes, expected ${SENDER_REPORT_RECORD_SIZE}`);
    return type;
  }
  throw new OvtMediaError(`unknown media record type ${type}`);
}
