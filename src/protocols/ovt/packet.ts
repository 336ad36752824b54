/**
 * OVT (OvenTransport), OvenMediaEngine's origin-edge protocol: its packet framing and a streaming
 * parser that reassembles messages from TCP chunks.
 *
 * Pinned to OvenMediaEngine v0.20.0 (commit 9ba1610a9eaf458a75136da9860fc07b115cbef6):
 * `src/projects/modules/ovt_packetizer/ovt_packet.h` and `.cpp` (header, constants),
 * `ovt_packetizer.cpp` (fragmentation), `ovt_depacketizer.cpp` (reassembly),
 * `ovt_signaling.h` (the describe contents, see ./signaling.ts).
 *
 * The framing and the signaling are OME's; the media payload is Kiln's (the RTP packets a
 * forwarder carries, see ./media.ts), where OME serializes its own MediaPacket. So a Kiln edge
 * talks to a Kiln origin; OME itself as a peer is not a goal.
 *
 * ```
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |V=1|M|Reserved-| Payload Type  |       Sequence Number         |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                     Timestamp (64 bits)                       |
 * |                              ...                              |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                          Session ID                           |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |        Payload Length         |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ```
 *
 * All fields big-endian. A message (request, response) or media payload longer than
 * `OVT_MAX_PAYLOAD_SIZE` is cut into several packets; the marker bit is set on the last one.
 * OME numbers the packets of a message from 0 and those of media on one rolling counter; its
 * timestamp is Unix milliseconds for messages and the media packet's PTS for media.
 */

/** `OVT_VERSION`. */
export const OVT_VERSION = 1;
/** `OVT_FIXED_HEADER_SIZE`. */
export const OVT_HEADER_SIZE = 18;
/** `OVT_DEFAULT_MAX_PACKET_SIZE`: header and payload. */
export const OVT_MAX_PACKET_SIZE = 32768;
/** `OVT_DEFAULT_MAX_PAYLOAD_SIZE`. */
export const OVT_MAX_PAYLOAD_SIZE = OVT_MAX_PACKET_SIZE - OVT_HEADER_SIZE;

/** `OVT_PAYLOAD_TYPE_MESSAGE_REQUEST`: a JSON request, edge → origin. */
export const OVT_MESSAGE_REQUEST = 10;
/** `OVT_PAYLOAD_TYPE_MESSAGE_RESPONSE`: a JSON response, origin → edge. */
export const OVT_MESSAGE_RESPONSE = 20;
/** `OVT_PAYLOAD_TYPE_MEDIA_PACKET`: media, origin → edge. */
export const OVT_MEDIA_PACKET = 30;

const TWO_32 = 0x1_0000_0000;

/** One packet's header, as read by `readOvtHeader`. */
export interface OvtHeader {
  version: number;
  marker: boolean;
  payloadType: number;
  sequenceNumber: number;
  /** The 64-bit timestamp as a number (exact below 2^53, which Unix milliseconds are). */
  timestamp: number;
  sessionId: number;
  payloadLength: number;
}

/**
 * Writes an 18-byte header at `offset` (the reserved bits zero). The caller has checked
 * `payloadLength <= OVT_MAX_PAYLOAD_SIZE`.
 */
export function writeOvtHeader(
  buf: Buffer,
  offset: number,
  marker: boolean,
  payloadType: number,
  sequenceNumber: number,
  timestamp: number,
  sessionId: number,
  payloadLength: number,
): void {
  buf[offset] = (OVT_VERSION << 6) | (marker ? 0x20 : 0);
  buf[offset + 1] = payloadType;
  buf.writeUInt16BE(sequenceNumber & 0xffff, offset + 2);
  buf.writeUInt32BE(Math.floor(timestamp / TWO_32) >>> 0, offset + 4);
  buf.writeUInt32BE(timestamp >>> 0, offset + 8);
  buf.writeUInt32BE(sessionId >>> 0, offset + 12);
  buf.writeUInt16BE(payloadLength, offset + 16);
}

/** Reads the header at `offset`; the caller has checked that 18 bytes are there. */
export function readOvtHeader(buf: Buffer, offset = 0): OvtHeader {
  return {
    version: buf[offset] >> 6,
    marker: (buf[offset] & 0x20) !== 0,
    payloadType: buf[offset + 1],
    sequenceNumber: buf.readUInt16BE(offset + 2),
    timestamp: buf.readUInt32BE(offset + 4) * TWO_32 + buf.readUInt32BE(offset + 8),
    sessionId: buf.readUInt32BE(offset + 12),
    payloadLength: buf.readUInt16BE(offset + 16),
  };
}

export interface OvtEncodeOptions {
  /** Default: now, in Unix milliseconds (what OME puts on messages). */
  timestamp?: number;
  /** Default 0 (OME's on every message but a play response). */
  sessionId?: number;
  /** The first packet's sequence number. Default 0 (OME restarts at 0 for each message). */
  sequenceNumber?: number;
}

/**
 * Frames `payload` as OVT packets of `payloadType`: as many as `OVT_MAX_PAYLOAD_SIZE` needs,
 * consecutive sequence numbers, the marker on the last. Returns them back to back in one buffer.
 */
export function encodeOvtPackets(payloadType: number, payload: Buffer, options: OvtEncodeOptions = {}): Buffer {
  if (payload.length === 0) throw new RangeError('an OVT message cannot be empty');
  const count = Math.ceil(payload.length / OVT_MAX_PAYLOAD_SIZE);
  const out = Buffer.allocUnsafe(payload.length + count * OVT_HEADER_SIZE);
  const timestamp = options.timestamp ?? Date.now();
  const sessionId = options.sessionId ?? 0;
  let seq = options.sequenceNumber ?? 0;
  let at = 0;
  for (let from = 0; from < payload.length; from += OVT_MAX_PAYLOAD_SIZE) {
    const length = Math.min(OVT_MAX_PAYLOAD_SIZE, payload.length - from);
    writeOvtHeader(out, at, from + length === payload.length, payloadType, seq++, timestamp, sessionId, length);
    payload.copy(out, at + OVT_HEADER_SIZE, from, from + length);
    at += OVT_HEADER_SIZE + length;
  }
  return out;
}

/** A peer broke the framing; the connection cannot be read further. */
export class OvtProtocolError extends Error {
  override name = 'OvtProtocolError';
}

export interface OvtParserOptions {
  /**
   * A complete request or response (payload types 10 and 20), reassembled. The buffer is the
   * callee's to keep.
   */
  onMessage: (payloadType: number, message: Buffer) => void;
  /** A complete media payload (type 30), reassembled; the callee's to keep. */
  onMedia: (payload: Buffer, sessionId: number) => void;
  /** The longest message accepted, bytes. Default 1 MiB. */
  maxMessageBytes?: number;
  /** The longest media payload accepted, bytes. Default 256 KiB. */
  maxMediaBytes?: number;
}

/** Reassembly of one kind of payload (messages or media), as OME keeps one buffer for each. */
class Assembly {
  readonly #limit: number;
  readonly #what: string;
  #parts: Buffer[] = [];
  #length = 0;

  constructor(limit: number, what: string) {
    this.#limit = limit;
    this.#what = what;
  }

  /** Adds a fragment; returns the whole payload on the marker, else undefined. */
  add(payload: Buffer, owned: boolean, marker: boolean): Buffer | undefined {
    const length = this.#length + payload.length;
    if (length > this.#limit) throw new OvtProtocolError(`${this.#what} longer than ${this.#limit} bytes`);
    if (marker && this.#length === 0) {
      if (payload.length === 0) throw new OvtProtocolError(`empty ${this.#what}`);
      return owned ? payload : Buffer.from(payload);
    }
    // Empty fragments add nothing (and must not grow the list).
    if (payload.length > 0) this.#parts.push(owned ? payload : Buffer.from(payload));
    this.#length = length;
    if (!marker) return undefined;
    const whole = this.#parts.length === 1 ? this.#parts[0] : Buffer.concat(this.#parts, length);
    this.#parts = [];
    this.#length = 0;
    return whole;
  }

  /** Bytes held for a payload still incomplete. */
  get held(): number {
    return this.#length;
  }
}

/**
 * Reads OVT packets from a byte stream (TCP chunks split anywhere) and hands complete messages and
 * media payloads to its callbacks. Memory stays bounded: one packet's worth of carry-over between
 * chunks, plus the message and media limits for payloads in reassembly. Throws OvtProtocolError
 * on a bad version, an unknown payload type, a payload length beyond OME's maximum, an over-long or
 * empty message; after that (or `close()`) it ignores its input.
 *
 * A packet wholly inside a chunk is handed over as a view of that chunk (no copy); one that
 * straddles chunks is copied.
 */
export class OvtParser {
  readonly #onMessage: OvtParserOptions['onMessage'];
  readonly #onMedia: OvtParserOptions['onMedia'];
  readonly #messages: Assembly;
  readonly #media: Assembly;
  /** The packet that straddles two chunks: its bytes so far. */
  readonly #carry = Buffer.allocUnsafe(OVT_MAX_PACKET_SIZE);
  #carried = 0;
  #closed = false;

  constructor(options: OvtParserOptions) {
    this.#onMessage = options.onMessage;
    this.#onMedia = options.onMedia;
    this.#messages = new Assembly(options.maxMessageBytes ?? 1024 * 1024, 'message');
    this.#media = new Assembly(options.maxMediaBytes ?? 256 * 1024, 'media payload');
  }

  /** Bytes held for incomplete packets and payloads. */
  get buffered(): number {
    return this.#carried + this.#messages.held + this.#media.held;
  }

  /** Stops parsing (this chunk's remaining packets too); later input is ignored. */
  close(): void {
    this.#closed = true;
  }

  push(chunk: Buffer): void {
    if (this.#closed) return;
    try {
      this.#push(chunk);
    } catch (err) {
      this.#closed = true;
      throw err;
    }
  }

  #push(chunk: Buffer): void {
    let offset = 0;
    if (this.#carried > 0) {
      offset = this.#fillCarry(chunk);
      if (offset < 0) return;
    }
    while (!this.#closed) {
      const left = chunk.length - offset;
      if (left < OVT_HEADER_SIZE) break;
      const total = OVT_HEADER_SIZE + checkHeader(chunk, offset);
      if (left < total) break;
      this.#packet(chunk, offset, total, true);
      offset += total;
    }
    if (!this.#closed && offset < chunk.length) {
      chunk.copy(this.#carry, 0, offset);
      this.#carried = chunk.length - offset;
      // A header complete in the carry is checked now, not when its payload arrives.
      if (this.#carried >= OVT_HEADER_SIZE) checkHeader(this.#carry, 0);
    }
  }

  /** Completes the carried packet from `chunk`; returns where the rest of it starts, or -1 if used up. */
  #fillCarry(chunk: Buffer): number {
    const carry = this.#carry;
    let offset = 0;
    if (this.#carried < OVT_HEADER_SIZE) {
      const take = Math.min(OVT_HEADER_SIZE - this.#carried, chunk.length);
      chunk.copy(carry, this.#carried, 0, take);
      this.#carried += take;
      offset = take;
      if (this.#carried < OVT_HEADER_SIZE) return -1;
    }
    const total = OVT_HEADER_SIZE + checkHeader(carry, 0);
    const take = Math.min(total - this.#carried, chunk.length - offset);
    chunk.copy(carry, this.#carried, offset, offset + take);
    this.#carried += take;
    offset += take;
    if (this.#carried < total) return -1;
    this.#carried = 0;
    this.#packet(carry, 0, total, false);
    return offset;
  }

  /** One whole packet at `buf[offset, offset + total)`; `owned` when `buf` is not reused. */
  #packet(buf: Buffer, offset: number, total: number, owned: boolean): void {
    const marker = (buf[offset] & 0x20) !== 0;
    const type = buf[offset + 1];
    const payload = buf.subarray(offset + OVT_HEADER_SIZE, offset + total);
    if (type === OVT_MEDIA_PACKET) {
      const whole = this.#media.add(payload, owned, marker);
      if (whole) this.#onMedia(whole, buf.readUInt32BE(offset + 12));
    } else {
      const whole = this.#messages.add(payload, owned, marker);
      if (whole) this.#onMessage(type, whole);
    }
  }
}

/** Checks the header at `offset` (version, payload type, length); returns the payload length. */
function checkHeader(buf: Buffer, offset: number): number {
  const version = buf[offset] >> 6;
  if (version !== OVT_VERSION) throw new OvtProtocolError(`not an OVT packet: version ${version}, expected ${OVT_VERSION}`);
  const type = buf[offset + 1];
  if (type !== OVT_MESSAGE_REQUEST && type !== OVT_MESSAGE_RESPONSE && type !== OVT_MEDIA_PACKET) {
    throw new OvtProtocolError(`unknown OVT payload type ${type}`);
  }
  const length = buf.readUInt16BE(offset + 16);
  if (length > OVT_MAX_PAYLOAD_SIZE) throw new OvtProtocolError(`OVT payload length ${length} exceeds ${OVT_MAX_PAYLOAD_SIZE}`);
  return length;
}
