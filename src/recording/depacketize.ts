/**
 * Turns the RTP packets of one received track back into the codec's frames, for recording: a
 * small reorder window by sequence number, then one frame per RTP timestamp once every packet from
 * its first to its last is there. A frame that can never complete is dropped, and video then waits
 * for the next key frame (what follows a lost frame does not decode).
 *
 * Payload formats: VP8 RFC 7741 §4.2, VP9 draft-ietf-payload-vp9-16 §4.2, H.264 RFC 6184 §5.6–5.8
 * (single NAL unit, STAP-A, FU-A: packetization-mode 1), AV1 "RTP Payload Format For AV1" v1.0 §4.
 *
 * Per packet: no allocation (packets are held in preallocated slots, frame pieces as offsets into
 * the payloads); per frame: one Buffer (two for AV1) and the frame object.
 */

/** The codecs a track can be captured in. */
export type CaptureCodec = 'VP8' | 'VP9' | 'H264' | 'AV1' | 'OPUS';

/** One frame put back together from its packets. */
export interface AssembledFrame {
  /**
   * The frame: a VP8 or VP9 frame as the encoder made it; an H.264 access unit in Annex B (4-byte
   * start codes, SPS and PPS in front of every IDR); an AV1 temporal unit in the low-overhead OBU
   * format (a temporal delimiter, then OBUs with size fields), as IVF carries it; one Opus packet.
   * Video frames are fresh Buffers; an Opus frame is the pushed payload itself.
   */
  data: Buffer;
  /** unwrapped RTP timestamp (monotonic across 32-bit wrap; a JS number) */
  timestamp: number;
  /** A frame the decoder can start from (always true for Opus). */
  key: boolean;
}

/** Packet slots of the reorder window (a power of two). A jump of this many sequence numbers restarts it. */
const CAPACITY = 1024;
const MASK = CAPACITY - 1;
/** Most packets one video frame may span (about 10 MB at 1200 bytes); more breaks the frame. */
export const MAX_FRAME_PARTS = 8192;

/** Packets held behind a missing one before it is declared lost, whatever else happens. */
export const REORDER_MAX_PACKETS = 128;
/** Video: a missing packet is lost once this many later frames have ended (their marker arrived). */
export const REORDER_VIDEO_FRAMES = 3;
/** Audio: a missing packet is lost once this many later packets arrived (100 ms of 20 ms Opus). */
export const REORDER_AUDIO_PACKETS = 5;
/** While video waits for a key frame, `onLoss` is told again every this many frames, in case the request was lost. */
export const KEY_REQUEST_EVERY_FRAMES = 30;

/** Where a packet stands in its frame, from the codec's own bits. */
const NOT_START = -1;
const MAYBE_START = 0;
const START = 1;

/** H.264 piece prefixes (`#partHead`): nothing, a start code, or a start code and this NAL header byte (0..255). */
const HEAD_NONE = -1;
const HEAD_START_CODE = 256;
/** AV1 piece flags (`#partHead`): continues the previous packet's last OBU; continues into the next packet. */
const AV1_CONTINUES_PREVIOUS = 1;
const AV1_CONTINUES_NEXT = 2;

const START_CODE = Buffer.from([0, 0, 0, 1]);

/**
 * Frames of one track from its RTP packets: unwraps sequence numbers and timestamps, reorders within
 * a small window (see `REORDER_*`), drops duplicates, and hands on complete frames in order; after a
 * loss, video resumes at the next key frame, and nothing goes out before the first one.
 */
export class FrameAssembler {
  readonly #codec: CaptureCodec;
  readonly #video: boolean;
  readonly #onFrame: (frame: AssembledFrame) => void;
  readonly #onLoss: () => void;

  // Reorder window: slot = unwrapped sequence number & MASK. NaN marks a free slot.
  readonly #slotSeq = new Float64Array(CAPACITY).fill(Number.NaN);
  readonly #slotTs = new Float64Array(CAPACITY);
  readonly #slotMarker = new Uint8Array(CAPACITY);
  readonly #slotPayload: (Buffer | undefined)[] = new Array<Buffer | undefined>(CAPACITY).fill(undefined);
  #held = 0;
  #markersHeld = 0;
  #started = false;
  /** Until the first packets are handed on: the lowest sequence number seen so far is where the stream starts. */
  #startingUp = true;
  /** The unwrapped sequence number to hand on next; everything before it is decided. */
  #next = 0;
  #highest = 0;
  #lastTs = 0;

  // The frame being gathered, as pieces of payloads (buffer, start, end, codec-specific head).
  #open = false;
  #curTs = 0;
  #curBroken = false;
  #curKey = false;
  #curHasSps = false;
  #curHasPps = false;
  #fuOpen = false;
  #partBuf: (Buffer | undefined)[] = [];
  #partStart: number[] = [];
  #partEnd: number[] = [];
  #partHead: number[] = [];
  #parts = 0;
  /** The previous packet handed on ended a frame, so the next one starts a frame. */
  #synced = false;
  #needKey = true;
  /** Waiting for a key frame because of loss (not the wait before the first one). */
  #recovering = false;
  #waitedFrames = 0;
  #dropped = 0;
  /** Latest H.264 parameter sets, put in front of an IDR that comes without them. */
  #sps: Buffer | undefined;
  #pps: Buffer | undefined;
  /** AV1: OBU boundaries in the frame being built (reused). */
  #obuBounds: number[] = [];

  /**
   * @param onFrame told each complete frame, in sequence order; must not throw (an exception is swallowed).
   * @param onLoss told when video needs a key frame: a frame was lost, or the wait for a key frame
   *   lasted another {@link KEY_REQUEST_EVERY_FRAMES} frames. Never for audio. The caller rate-limits.
   */
  constructor(codec: CaptureCodec, onFrame: (frame: AssembledFrame) => void, onLoss: () => void) {
    this.#codec = codec;
    this.#video = codec !== 'OPUS';
    this.#onFrame = onFrame;
    this.#onLoss = onLoss;
  }

  /** Frames dropped because of loss, for logs (video: also the frames skipped until the next key frame). */
  get droppedFrames(): number {
    return this.#dropped;
  }

  /**
   * One RTP packet (may arrive reordered/duplicated). Never throws. The payload is held (not
   * copied) until its frame is complete: it must not be changed afterwards.
   */
  push(sequenceNumber: number, timestamp: number, marker: boolean, payload: Buffer): void {
    try {
      const seq = this.#unwrapSeq(sequenceNumber & 0xffff);
      const ts = this.#unwrapTs(timestamp >>> 0);
      if (!this.#started) {
        this.#started = true;
        this.#next = seq;
        this.#highest = seq;
      } else if (seq < this.#next) {
        if (this.#startingUp && this.#highest - seq < REORDER_MAX_PACKETS) this.#next = seq; // came first, arrived later
        else if (this.#next - seq <= CAPACITY) return; // duplicate or too late
        else this.#restart(seq);
      } else if (seq - this.#next >= CAPACITY) {
        this.#restart(seq);
      }
      const slot = seq & MASK;
      if (this.#slotSeq[slot] === seq) return; // duplicate
      this.#slotSeq[slot] = seq;
      this.#slotTs[slot] = ts;
      this.#slotMarker[slot] = marker ? 1 : 0;
      this.#slotPayload[slot] = payload;
      this.#held++;
      if (marker) this.#markersHeld++;
      if (seq > this.#highest) this.#highest = seq;
      if (this.#startingUp) {
        // The first packets wait as long as a gap would, for any that were sent before them.
        if (!this.#gapExpired()) return;
        this.#startingUp = false;
      }
      this.#drain(false);
    } catch {
      this.#recover();
    }
  }

  /** Emits what can still be emitted (end of capture): held packets in order, gaps skipped; an unfinished frame is dropped. */
  flush(): void {
    try {
      this.#startingUp = false;
      this.#drain(true);
      if (this.#open) this.#discardFrame();
    } catch {
      this.#recover();
    }
  }

  #unwrapSeq(seq: number): number {
    if (!this.#started) return seq + 0x10000; // kept positive when an older packet comes next
    const low = ((this.#highest % 0x10000) + 0x10000) % 0x10000;
    let d = seq - low;
    if (d > 0x7fff) d -= 0x10000;
    else if (d < -0x8000) d += 0x10000;
    return this.#highest + d;
  }

  #unwrapTs(ts: number): number {
    if (!this.#started) {
      this.#lastTs = ts;
      return ts;
    }
    const low = ((this.#lastTs % 0x100000000) + 0x100000000) % 0x100000000;
    let d = ts - low;
    if (d > 0x7fffffff) d -= 0x100000000;
    else if (d < -0x80000000) d += 0x100000000;
    const ext = this.#lastTs + d;
    if (ext > this.#lastTs) this.#lastTs = ext;
    return ext;
  }

  /** The sequence jumped out of the window (a restarted source): hand on what is held, then start over at `seq`. */
  #restart(seq: number): void {
    this.#startingUp = false;
    this.#drain(true);
    this.#lost(1, true);
    this.#next = seq;
    this.#highest = seq;
  }

  /** Hands on held packets in sequence order; a gap is waited for until it is declared lost (or `force`). */
  #drain(force: boolean): void {
    while (this.#held > 0) {
      const slot = this.#next & MASK;
      if (this.#slotSeq[slot] === this.#next) {
        this.#take(slot);
        this.#next++;
        continue;
      }
      if (!force && !this.#gapExpired()) return;
      // Every held packet lies in [next, next + CAPACITY): this stops at the first of them.
      let missing = 0;
      while (this.#slotSeq[this.#next & MASK] !== this.#next) {
        this.#next++;
        missing++;
      }
      this.#lost(missing, !force);
    }
  }

  #gapExpired(): boolean {
    if (this.#held >= REORDER_MAX_PACKETS) return true;
    return this.#video ? this.#markersHeld >= REORDER_VIDEO_FRAMES : this.#held >= REORDER_AUDIO_PACKETS;
  }

  #take(slot: number): void {
    const payload = this.#slotPayload[slot] as Buffer;
    const marker = this.#slotMarker[slot] === 1;
    const ts = this.#slotTs[slot];
    this.#slotPayload[slot] = undefined;
    this.#slotSeq[slot] = Number.NaN;
    this.#held--;
    if (marker) this.#markersHeld--;
    if (payload.length === 0) return; // padding only
    if (!this.#video) {
      this.#emit(payload, ts, true);
      return;
    }
    if (this.#open && ts !== this.#curTs) this.#finish(); // the frame ended without a marker
    switch (this.#codec) {
      case 'VP8':
        this.#vp8(payload, ts, marker);
        break;
      case 'VP9':
        this.#vp9(payload, ts, marker);
        break;
      case 'H264':
        this.#h264(payload, ts, marker);
        break;
      case 'AV1':
        this.#av1(payload, ts, marker);
        break;
    }
  }

  /** `missing` packets will never come. */
  #lost(missing: number, tell: boolean): void {
    if (!this.#video) {
      this.#dropped += missing;
      return;
    }
    if (this.#open) this.#curBroken = true;
    this.#synced = false;
    if (!this.#needKey || this.#recovering) {
      this.#recovering = true;
      if (!this.#open) this.#dropped++; // a frame between the ones we see, at least
    }
    this.#needKey = true;
    this.#waitedFrames = 0;
    if (tell) this.#tellLoss();
  }

  #tellLoss(): void {
    try {
      this.#onLoss();
    } catch {
      // a listener's trouble stays out of the packet path
    }
  }

  /** Starts the frame of `ts` at this packet, or continues it; `kind` is what the codec bits say of this packet. */
  #begin(ts: number, kind: number): void {
    if (this.#open) {
      if (kind === START) this.#curBroken = true; // a second start in one frame
      return;
    }
    this.#open = true;
    this.#curTs = ts;
    this.#curBroken = kind === NOT_START || (kind === MAYBE_START && !this.#synced);
    this.#curKey = false;
    this.#curHasSps = false;
    this.#curHasPps = false;
    this.#fuOpen = false;
    this.#parts = 0;
  }

  #part(buf: Buffer, start: number, end: number, head: number): void {
    // A frame that never ends (no marker, no new timestamp) is not held without bound: it breaks.
    if (this.#parts >= MAX_FRAME_PARTS) {
      this.#curBroken = true;
      return;
    }
    const i = this.#parts++;
    this.#partBuf[i] = buf;
    this.#partStart[i] = start;
    this.#partEnd[i] = end;
    this.#partHead[i] = head;
  }

  /** RFC 7741 §4.2: X R N S R PID, then optional I L T K byte, PictureID, TL0PICIDX, TID/KEYIDX. */
  #vp8(p: Buffer, ts: number, marker: boolean): void {
    const b0 = p[0];
    let i = 1;
    if (b0 & 0x80) {
      const x = p[1] ?? 0;
      i = 2;
      if (x & 0x80) i += (p[i] ?? 0) & 0x80 ? 2 : 1;
      if (x & 0x40) i++;
      if (x & 0x30) i++;
    }
    const start = (b0 & 0x10) !== 0 && (b0 & 0x07) === 0;
    this.#begin(ts, start ? START : NOT_START);
    if (i >= p.length) this.#curBroken = true;
    else {
      if (start) this.#curKey = (p[i] & 0x01) === 0; // frame tag P bit (RFC 6386 §9.1)
      this.#part(p, i, p.length, HEAD_NONE);
    }
    if (marker) this.#finish();
  }

  /**
   * draft-ietf-payload-vp9-16 §4.2: I P L F B E V Z, picture id, layer indices, P_DIFFs, scalability
   * structure. Only spatial layer 0 is kept (its frames end at E); a single-layer stream is all of it.
   */
  #vp9(p: Buffer, ts: number, marker: boolean): void {
    const b0 = p[0];
    const flexible = (b0 & 0x10) !== 0;
    let i = 1;
    if (b0 & 0x80) i += (p[i] ?? 0) & 0x80 ? 2 : 1;
    let sid = 0;
    if (b0 & 0x20) {
      sid = ((p[i] ?? 0) >> 1) & 0x07;
      i += flexible ? 1 : 2;
    }
    if (flexible && b0 & 0x40) {
      for (let n = 0; n < 3 && i < p.length; n++) if (!(p[i++] & 0x01)) break;
    }
    if (b0 & 0x02) {
      const ss = p[i++] ?? 0;
      if (ss & 0x10) i += 4 * ((ss >> 5) + 1);
      if (ss & 0x08) {
        const groups = p[i++] ?? 0;
        for (let g = 0; g < groups && i < p.length; g++) i += 1 + ((p[i] >> 2) & 0x03);
      }
    }
    if (sid !== 0) {
      if (this.#open) this.#finish(); // layer 0 of this picture ended without E: treat as ended
      return;
    }
    const start = (b0 & 0x08) !== 0;
    this.#begin(ts, start ? START : NOT_START);
    if (i >= p.length) this.#curBroken = true;
    else {
      if (start) this.#curKey = (b0 & 0x40) === 0;
      this.#part(p, i, p.length, HEAD_NONE);
    }
    if (b0 & 0x04 || marker) this.#finish();
  }

  /** RFC 6184: single NAL unit (1–23), STAP-A (24), FU-A (28). Anything else breaks the frame. */
  #h264(p: Buffer, ts: number, marker: boolean): void {
    const type = p[0] & 0x1f;
    // An access unit that carries an AUD or SPS begins with it (Chrome: STAP-A of SPS, PPS first).
    const first = type === 24 ? (p[3] ?? 0) & 0x1f : type;
    let kind = first === 9 || first === 7 ? START : MAYBE_START;
    if (type === 28 && p.length > 1 && !(p[1] & 0x80)) kind = NOT_START;
    this.#begin(ts, this.#open ? MAYBE_START : kind);
    if (this.#fuOpen && type !== 28) this.#curBroken = true;
    if (type >= 1 && type <= 23) {
      this.#h264Nal(p, 0, p.length);
    } else if (type === 24) {
      let i = 1;
      while (i + 2 < p.length) {
        const size = (p[i] << 8) | p[i + 1];
        i += 2;
        if (size === 0 || i + size > p.length) {
          this.#curBroken = true;
          break;
        }
        this.#h264Nal(p, i, i + size);
        i += size;
      }
    } else if (type === 28 && p.length > 2) {
      const fu = p[1];
      const nalType = fu & 0x1f;
      if (fu & 0x80) {
        if (this.#fuOpen) this.#curBroken = true;
        this.#fuOpen = true;
        if (nalType === 5) this.#curKey = true;
        this.#part(p, 2, p.length, (p[0] & 0xe0) | nalType);
      } else {
        if (!this.#fuOpen) this.#curBroken = true;
        this.#part(p, 2, p.length, HEAD_NONE);
      }
      if (fu & 0x40) this.#fuOpen = false;
    } else {
      this.#curBroken = true;
    }
    if (marker) this.#finish();
  }

  #h264Nal(p: Buffer, start: number, end: number): void {
    const type = p[start] & 0x1f;
    if (type === 5) this.#curKey = true;
    else if (type === 7) {
      this.#curHasSps = true;
      if (!this.#sps || !this.#sps.equals(p.subarray(start, end))) this.#sps = Buffer.from(p.subarray(start, end));
    } else if (type === 8) {
      this.#curHasPps = true;
      if (!this.#pps || !this.#pps.equals(p.subarray(start, end))) this.#pps = Buffer.from(p.subarray(start, end));
    }
    this.#part(p, start, end, HEAD_START_CODE);
  }

  /** AV1 RTP §4.4: aggregation header Z Y W W N - - -, then OBU elements (LEB128 sizes but the W-th). */
  #av1(p: Buffer, ts: number, marker: boolean): void {
    const agg = p[0];
    const z = (agg & 0x80) !== 0;
    const y = (agg & 0x40) !== 0;
    const w = (agg >> 4) & 0x03;
    // N: this packet starts a coded video sequence, so a temporal unit too.
    this.#begin(ts, z ? NOT_START : agg & 0x08 && !this.#open ? START : MAYBE_START);
    if (this.#parts === 0 && agg & 0x08) this.#curKey = true;
    let i = 1;
    let element = 0;
    while (i < p.length) {
      element++;
      let end = p.length;
      if (w === 0 || element < w) {
        let size = 0;
        let b = 0x80;
        for (let n = 0, shift = 0; b & 0x80 && n < 8 && i < p.length; n++, shift += 7) {
          b = p[i++];
          size += (b & 0x7f) * 2 ** shift;
        }
        end = i + size;
        if (b & 0x80 || end > p.length) {
          this.#curBroken = true;
          break;
        }
      }
      let flags = 0;
      if (element === 1 && z) flags |= AV1_CONTINUES_PREVIOUS;
      if (end === p.length && y) flags |= AV1_CONTINUES_NEXT;
      if (end > i || flags !== 0) this.#part(p, i, end, flags);
      i = end;
      if (w !== 0 && element === w) break;
    }
    if (marker) this.#finish();
  }

  /** The frame's last packet was handed on. */
  #finish(): void {
    this.#open = false;
    this.#synced = true;
    if (this.#curBroken || this.#parts === 0 || this.#fuOpen) {
      this.#drop(true);
      return;
    }
    let data: Buffer | undefined;
    let key = this.#curKey;
    switch (this.#codec) {
      case 'VP8':
      case 'VP9':
        if (this.#needKey && !key) break;
        data = this.#joined();
        break;
      case 'H264':
        if (key && (!this.#sps || !this.#pps)) key = false; // an IDR nobody can decode yet
        if (this.#needKey && !key) break;
        data = this.#annexB(key);
        break;
      case 'AV1': {
        data = this.#temporalUnit();
        key = this.#av1Key;
        if (data === undefined) {
          this.#drop(true);
          return;
        }
        if (this.#needKey && !key) data = undefined;
        break;
      }
    }
    if (data === undefined) {
      this.#drop(false);
      return;
    }
    this.#clearParts();
    this.#needKey = false;
    this.#recovering = false;
    this.#waitedFrames = 0;
    this.#emit(data, this.#curTs, key);
  }

  /** The frame goes: it was broken, or video waits for a key frame. */
  #drop(broken: boolean): void {
    this.#clearParts();
    this.#fuOpen = false;
    if (this.#recovering || (broken && !this.#needKey)) this.#dropped++;
    if (broken && !this.#needKey) {
      // Broken without a reported gap (malformed packets): wait for a key frame all the same.
      this.#needKey = true;
      this.#recovering = true;
      this.#waitedFrames = 0;
      this.#tellLoss();
      return;
    }
    if (++this.#waitedFrames % KEY_REQUEST_EVERY_FRAMES === 0) this.#tellLoss();
  }

  /** The frame in progress at the end of the capture never completed. */
  #discardFrame(): void {
    this.#open = false;
    this.#clearParts();
    this.#fuOpen = false;
  }

  #clearParts(): void {
    for (let i = 0; i < this.#parts; i++) this.#partBuf[i] = undefined;
    this.#parts = 0;
  }

  #emit(data: Buffer, timestamp: number, key: boolean): void {
    try {
      this.#onFrame({ data, timestamp, key });
    } catch {
      // a listener's trouble stays out of the packet path
    }
  }

  /** An internal fault: forget the frame in progress and, for video, wait for a key frame. */
  #recover(): void {
    this.#open = false;
    this.#clearParts();
    this.#fuOpen = false;
    this.#synced = false;
    if (this.#video) this.#needKey = true;
  }

  /** VP8, VP9: the pieces end to end. */
  #joined(): Buffer {
    let size = 0;
    for (let i = 0; i < this.#parts; i++) size += this.#partEnd[i] - this.#partStart[i];
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    for (let i = 0; i < this.#parts; i++) at += (this.#partBuf[i] as Buffer).copy(out, at, this.#partStart[i], this.#partEnd[i]);
    return out;
  }

  /** H.264: Annex B with 4-byte start codes; SPS and PPS put in front of an IDR that lacks them. */
  #annexB(key: boolean): Buffer {
    const sps = key && !this.#curHasSps ? this.#sps : undefined;
    const pps = key && !this.#curHasPps ? this.#pps : undefined;
    let size = (sps ? 4 + sps.length : 0) + (pps ? 4 + pps.length : 0);
    for (let i = 0; i < this.#parts; i++) {
      const head = this.#partHead[i];
      size += this.#partEnd[i] - this.#partStart[i] + (head === HEAD_NONE ? 0 : head === HEAD_START_CODE ? 4 : 5);
    }
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    if (sps) at += START_CODE.copy(out, at) + sps.copy(out, at + 4);
    if (pps) at += START_CODE.copy(out, at) + pps.copy(out, at + 4);
    for (let i = 0; i < this.#parts; i++) {
      const head = this.#partHead[i];
      if (head !== HEAD_NONE) {
        at += START_CODE.copy(out, at);
        if (head !== HEAD_START_CODE) out[at++] = head;
      }
      at += (this.#partBuf[i] as Buffer).copy(out, at, this.#partStart[i], this.#partEnd[i]);
    }
    return out;
  }

  /** Set by #temporalUnit: the unit holds a sequence header and starts with a key frame (or N was set). */
  #av1Key = false;

  /**
   * AV1: the OBU elements joined into OBUs, then written as IVF carries AV1 (low-overhead format,
   * AV1 spec §5.2): a temporal delimiter first, every OBU with `obu_has_size_field`; temporal
   * delimiters, tile lists and padding from the packets are left out. Undefined when malformed.
   */
  #temporalUnit(): Buffer | undefined {
    let size = 0;
    for (let i = 0; i < this.#parts; i++) size += this.#partEnd[i] - this.#partStart[i];
    const raw = Buffer.allocUnsafe(size);
    const bounds = this.#obuBounds;
    let obus = 0;
    let at = 0;
    let open = false;
    for (let i = 0; i < this.#parts; i++) {
      const flags = this.#partHead[i];
      const continues = (flags & AV1_CONTINUES_PREVIOUS) !== 0;
      if (continues !== open) return undefined; // a fragment without its other half
      if (!continues) bounds[obus++] = at;
      at += (this.#partBuf[i] as Buffer).copy(raw, at, this.#partStart[i], this.#partEnd[i]);
      open = (flags & AV1_CONTINUES_NEXT) !== 0;
    }
    if (open) return undefined;
    bounds[obus] = at;
    // First pass: sizes, and what the unit holds.
    let outSize = 2;
    let hasSequenceHeader = false;
    let reducedStill = false;
    let firstFrameKey = -1;
    for (let k = 0; k < obus; k++) {
      const s = bounds[k];
      const e = bounds[k + 1];
      const obu = parseObu(raw, s, e);
      if (obu === undefined) return undefined;
      if (obu.skip) continue;
      const payloadSize = obu.payloadEnd - obu.payloadStart;
      outSize += obu.headerSize + lebSize(payloadSize) + payloadSize;
      if (obu.type === 1 && payloadSize > 0) {
        hasSequenceHeader = true;
        reducedStill = ((raw[obu.payloadStart] >> 3) & 0x01) === 1;
      } else if ((obu.type === 3 || obu.type === 6) && firstFrameKey < 0 && payloadSize > 0) {
        const b = raw[obu.payloadStart];
        // uncompressed_header(): show_existing_frame f(1), frame_type f(2); KEY_FRAME = 0 (AV1 §5.9.2).
        firstFrameKey = reducedStill || ((b & 0x80) === 0 && ((b >> 5) & 0x03) === 0) ? 1 : 0;
      }
    }
    this.#av1Key = hasSequenceHeader && (this.#curKey || firstFrameKey === 1);
    const out = Buffer.allocUnsafe(outSize);
    out[0] = 0x12; // OBU_TEMPORAL_DELIMITER with obu_has_size_field
    out[1] = 0x00;
    let o = 2;
    for (let k = 0; k < obus; k++) {
      const obu = parseObu(raw, bounds[k], bounds[k + 1]) as Obu;
      if (obu.skip) continue;
      out[o++] = raw[bounds[k]] | 0x02;
      if (obu.headerSize === 2) out[o++] = raw[bounds[k] + 1];
      o = writeLeb(out, o, obu.payloadEnd - obu.payloadStart);
      o += raw.copy(out, o, obu.payloadStart, obu.payloadEnd);
    }
    return out;
  }
}

interface Obu {
  type: number;
  headerSize: number;
  payloadStart: number;
  payloadEnd: number;
  skip: boolean;
}

/** One OBU in `raw[s, e)` (AV1 §5.3.1), with or without its size field. */
function parseObu(raw: Buffer, s: number, e: number): Obu | undefined {
  if (e <= s) return undefined;
  const h = raw[s];
  if (h & 0x80) return undefined; // obu_forbidden_bit
  const type = (h >> 3) & 0x0f;
  const headerSize = h & 0x04 ? 2 : 1;
  let i = s + headerSize;
  if (i > e) return undefined;
  let payloadEnd = e;
  if (h & 0x02) {
    let size = 0;
    let b = 0x80;
    for (let n = 0, shift = 0; b & 0x80; n++, shift += 7) {
      if (n === 8 || i >= e) return undefined;
      b = raw[i++];
      size += (b & 0x7f) * 2 ** shift;
    }
    payloadEnd = i + size;
    if (payloadEnd > e) return undefined;
  }
  // Temporal delimiter, tile list and padding OBUs are not carried over (RTP §5; AV1 §7.5).
  return { type, headerSize, payloadStart: i, payloadEnd, skip: type === 2 || type === 8 || type === 15 };
}

function lebSize(n: number): number {
  let bytes = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    bytes++;
  }
  return bytes;
}

function writeLeb(out: Buffer, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  out[at++] = n;
  return at;
}
