/**
 * A faster `RtpHeader.deSerialize` for werift. werift parses every received RTP header (RFC 3550
 * §5.1) bit field by way of `number.toString(2)`, string slicing and `parseInt` (its `getBit`), and
 * rebuilds the extension array per element: on a room server, where every participant publishes,
 * that was about 5 % of the busy time (bench:rooms profile) plus the garbage it makes. This reads
 * the same fields with bit masks into the same `RtpHeader` object, with werift's behaviour kept
 * field for field (including RFC 8285 one- and two-byte extensions and its fallback for other
 * profiles). werift's own code calls `RtpHeader.deSerialize` through the class, so replacing the
 * static method reaches every caller (RTP packet parsing, SRTP decryption).
 */
import { RtpHeader } from 'werift';

const ONE_BYTE = 0xbede;
const TWO_BYTE = 0x1000;

/** Parses an RTP header as werift does, into a werift `RtpHeader`. */
export function parseRtpHeader(raw: Buffer): RtpHeader {
  const h = new RtpHeader();
  const b0 = raw[0];
  const b1 = raw[1];
  h.version = b0 >> 6;
  h.padding = (b0 & 0x20) !== 0;
  h.extension = (b0 & 0x10) !== 0;
  const cc = b0 & 0x0f;
  h.csrcLength = cc;
  h.marker = (b1 & 0x80) !== 0;
  h.payloadType = b1 & 0x7f;
  h.sequenceNumber = raw.readUInt16BE(2);
  h.timestamp = raw.readUInt32BE(4);
  h.ssrc = raw.readUInt32BE(8);
  let offset = 12;
  if (cc > 0) {
    const csrc: number[] = [];
    for (let i = 0; i < cc; i++, offset += 4) csrc.push(raw.readUInt32BE(offset));
    h.csrc = csrc;
  }
  if (h.extension) {
    const profile = raw.readUInt16BE(offset);
    h.extensionProfile = profile as RtpHeader["extensionProfile"];
    const length = raw.readUInt16BE(offset + 2) * 4;
    h.extensionLength = length;
    offset += 4;
    const end = offset + length;
    const extensions = h.extensions;
    if (profile === ONE_BYTE) {
      while (offset < end) {
        const b = raw[offset];
        if (b === 0) {
          offset++;
          continue;
        }
        const id = b >> 4;
        const len = (b & 0x0f) + 1;
        offset++;
        if (id === 15) break;
        extensions.push({ id, payload: raw.subarray(offset, offset + len) });
        offset += len;
      }
    } else if (profile === TWO_BYTE) {
      while (offset < end) {
        if (raw[offset] === 0) {
          offset++;
          continue;
        }
        const id = raw[offset];
        const len = raw[offset + 1];
        offset += 2;
        extensions.push({ id, payload: raw.subarray(offset, offset + len) });
        offset += len;
      }
    } else {
      const payload = raw.subarray(offset, offset + length);
      extensions.push({ id: 0, payload });
      offset += payload.length;
    }
  }
  h.payloadOffset = offset;
  if (h.padding) h.paddingSize = raw[raw.length - 1];
  return h;
}

/** werift's own parser, kept for comparison (tests). */
export const weriftParseRtpHeader: (raw: Buffer) => RtpHeader = RtpHeader.deSerialize.bind(RtpHeader);

let installed = false;

/** Puts `parseRtpHeader` in place of werift's; idempotent. */
export function useFastRtpHeaderParser(): void {
  if (installed) return;
  installed = true;
  (RtpHeader as unknown as { deSerialize: (raw: Buffer) => RtpHeader }).deSerialize = parseRtpHeader;
}
