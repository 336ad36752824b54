/**
 * IVF files of captured video (the container of libvpx's tools, which ffmpeg's `ivf` demuxer
 * reads): a 32-byte file header, then per frame a 12-byte header (size, 64-bit pts) and the frame.
 * The time base here is 1/90000, the RTP clock of every video codec, so a frame's pts is its RTP
 * timestamp less the first one's.
 *
 * fourcc: `VP80`, `VP90`, `AV01`, and `H264` for H.264 in Annex B: ffmpeg's demuxer maps the fourcc
 * through its BMP tag table, where `H264` is H.264, and parses the stream's headers itself.
 *
 * Header bytes 24–27 are the "length": ffmpeg's ivf muxer writes, and its demuxer reads, the
 * duration in time-base units there (not the frame count of the original spec); with 0, ffprobe
 * reports no duration. The writer fills it in on close and `scanIvf` after a crash.
 */
import { open } from 'node:fs/promises';
import { parseH264SpsSize, type PictureSize } from '../media/bitstream.ts';
import { CaptureWriter, ScanWindow } from './capture-file.ts';
import type { AssembledFrame, CaptureCodec } from './depacketize.ts';

/** The video codecs an IVF file carries here. */
export type IvfCodec = Exclude<CaptureCodec, 'OPUS'>;

/** Ticks per second of the pts written: the 90 kHz RTP video clock. */
export const IVF_TIMEBASE = 90_000;
/**
 * Bytes queued for the disk beyond which a writer gives up (`onError`) rather than grow memory:
 * the disk does not keep up. 64 MiB.
 */
export const IVF_MAX_QUEUED_BYTES = 64 * 1024 * 1024;

const FILE_HEADER = 32;
const FRAME_HEADER = 12;
const FOURCC: Record<IvfCodec, string> = { VP8: 'VP80', VP9: 'VP90', AV1: 'AV01', H264: 'H264' };
const TWO_32 = 0x100000000;

/** Writes one track's frames to an IVF file, through a non-blocking fs.WriteStream. */
export class IvfWriter extends CaptureWriter {
  readonly codec: IvfCodec;
  framesWritten = 0;
  /** pts of the last frame written, 90 kHz, relative to the first frame (0 before any). */
  lastPts = 0;
  #firstTs = 0;
  #headerWritten = false;
  #closing: Promise<void> | undefined;

  /**
   * Creates (truncates) the file. The header is written with the first frame (its picture size
   * comes from that key frame: 0×0 when it cannot be read, which ffmpeg copes with).
   * @param onError told once when the file cannot be written (ENOSPC, EACCES…); writes stop then.
   */
  constructor(path: string, codec: IvfCodec, onError: (err: Error) => void) {
    super(path, IVF_MAX_QUEUED_BYTES, onError);
    this.codec = codec;
  }

  /** Appends a frame; its pts is its timestamp less the first frame's (kept increasing). Never throws. */
  write(frame: AssembledFrame): void {
    if (this.failed || this.#closing) return;
    try {
      if (!this.#headerWritten) {
        this.#firstTs = frame.timestamp;
        this.#writeHeader(frame.key ? ivfPictureSize(this.codec, frame.data) : undefined);
      }
      let pts = frame.timestamp - this.#firstTs;
      if (this.framesWritten > 0 && pts <= this.lastPts) pts = this.lastPts + 1;
      const head = Buffer.allocUnsafe(FRAME_HEADER);
      head.writeUInt32LE(frame.data.length, 0);
      head.writeUInt32LE(pts % TWO_32, 4);
      head.writeUInt32LE(Math.floor(pts / TWO_32), 8);
      this.file.write(head);
      this.file.write(frame.data);
      this.framesWritten++;
      this.lastPts = pts;
    } catch (err) {
      this.file.fail(err as Error);
    }
  }

  /** Flushes and closes the file, then writes its duration in the header. Never rejects; idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (!this.failed && !this.#headerWritten) {
      try {
        this.#writeHeader(undefined);
      } catch (err) {
        this.file.fail(err as Error);
      }
    }
    await this.file.end();
    if (this.failed || this.framesWritten === 0) return;
    try {
      const fh = await open(this.path, 'r+');
      try {
        const length = Buffer.allocUnsafe(4);
        length.writeUInt32LE(ivfLength(this.framesWritten, this.lastPts), 0);
        await fh.write(length, 0, 4, 24);
      } finally {
        await fh.close();
      }
    } catch (err) {
      this.file.fail(err as Error);
    }
  }

  #writeHeader(size: PictureSize | undefined): void {
    const h = Buffer.alloc(FILE_HEADER);
    h.write('DKIF', 0, 'latin1');
    h.writeUInt16LE(0, 4); // version
    h.writeUInt16LE(FILE_HEADER, 6);
    h.write(FOURCC[this.codec], 8, 'latin1');
    h.writeUInt16LE(size ? Math.min(size.width, 0xffff) : 0, 12);
    h.writeUInt16LE(size ? Math.min(size.height, 0xffff) : 0, 14);
    h.writeUInt32LE(IVF_TIMEBASE, 16); // time base denominator
    h.writeUInt32LE(1, 20); // numerator
    this.#headerWritten = true;
    this.file.write(h);
  }
}

/** The header's length field: the last pts plus one average frame interval, as ffmpeg's muxer does. */
function ivfLength(frames: number, lastPts: number): number {
  const length = frames > 1 ? Math.round((lastPts * frames) / (frames - 1)) : lastPts;
  return Math.min(length, 0xffffffff);
}

/** What `scanIvf` found. */
export interface IvfScan {
  /** Whole frames in the file. */
  frames: number;
  /** Last pts less the first, in 90 kHz ticks. */
  durationPts: number;
  /** Bytes up to the end of the last whole frame: the file's size after the scan. */
  validBytes: number;
}

const SCAN_CHUNK = 1024 * 1024;
/** A frame header claiming more than this is garbage. */
const MAX_FRAME = 256 * 1024 * 1024;

/**
 * Walks an IVF file's frame headers and cuts it after the last whole frame (what a crash
 * mid-write leaves), stopping at the first header that runs past the end or makes no sense; then
 * writes the duration in the file header when it was missing or wrong. Rejects when the file is not
 * IVF (it is then left as it is) or cannot be read and written.
 */
export async function scanIvf(path: string): Promise<IvfScan> {
  const fh = await open(path, 'r+');
  try {
    const { size } = await fh.stat();
    const window = new ScanWindow(fh, SCAN_CHUNK);
    const chunk = window.buffer;
    const dkif = Buffer.from('DKIF', 'latin1');
    if ((await window.view(0, FILE_HEADER)) < 0) {
      // A crash before the header was on disk: nothing to keep.
      const got = Math.min(4, window.available);
      if (!chunk.subarray(0, got).equals(dkif.subarray(0, got))) {
        throw new Error(`${path} is not an IVF file`);
      }
      if (size > 0) await fh.truncate(0);
      return { frames: 0, durationPts: 0, validBytes: 0 };
    }
    if (!chunk.subarray(0, 4).equals(dkif)) throw new Error(`${path} is not an IVF file`);
    const headerSize = Math.max(FILE_HEADER, chunk.readUInt16LE(6));
    const den = chunk.readUInt32LE(16);
    const num = chunk.readUInt32LE(20);
    const lengthField = chunk.readUInt32LE(24);
    if (den === 0 || num === 0) throw new Error(`${path}: IVF header without a time base`);
    let pos = headerSize;
    let frames = 0;
    let firstPts = 0;
    let lastPts = 0;
    while (pos + FRAME_HEADER <= size) {
      const at = await window.view(pos, FRAME_HEADER);
      if (at < 0) break;
      const frameSize = chunk.readUInt32LE(at);
      const pts = chunk.readUInt32LE(at + 4) + chunk.readUInt32LE(at + 8) * TWO_32;
      if (frameSize > MAX_FRAME || pos + FRAME_HEADER + frameSize > size) break;
      if (frames > 0 && pts < lastPts) break; // pts only grow in a file written here
      if (frames === 0) firstPts = pts;
      lastPts = pts;
      frames++;
      pos += FRAME_HEADER + frameSize;
    }
    if (frames === 0) pos = Math.min(headerSize, size);
    if (pos < size) await fh.truncate(pos);
    const length = frames > 0 ? ivfLength(frames, lastPts - firstPts) : 0;
    if (frames > 0 && length !== lengthField) {
      const field = Buffer.allocUnsafe(4);
      field.writeUInt32LE(length, 0);
      await fh.write(field, 0, 4, 24);
    }
    return { frames, durationPts: Math.round(((lastPts - firstPts) * IVF_TIMEBASE * num) / den), validBytes: pos };
  } finally {
    await fh.close();
  }
}

/**
 * Picture size of a key frame as `FrameAssembler` gives it (VP8 RFC 6386 §9.1, VP9 uncompressed
 * header §6.2, H.264 SPS in Annex B, AV1 sequence header OBU §5.5), or undefined.
 */
export function ivfPictureSize(codec: IvfCodec, data: Buffer): PictureSize | undefined {
  try {
    switch (codec) {
      case 'VP8':
        if (data.length < 10 || data[0] & 0x01 || data[3] !== 0x9d || data[4] !== 0x01 || data[5] !== 0x2a) return undefined;
        return { width: data.readUInt16LE(6) & 0x3fff, height: data.readUInt16LE(8) & 0x3fff };
      case 'VP9':
        return vp9Size(data);
      case 'H264':
        return h264Size(data);
      case 'AV1':
        return av1Size(data);
    }
  } catch {
    return undefined;
  }
}

/** MSB-first bit reader; reads past the end give zeros (callers check `over`). */
class Bits {
  readonly #data: Uint8Array;
  #bit: number;

  constructor(data: Uint8Array, byteOffset = 0) {
    this.#data = data;
    this.#bit = byteOffset * 8;
  }

  get over(): boolean {
    return this.#bit > this.#data.length * 8;
  }

  f(n: number): number {
    let v = 0;
    for (let k = 0; k < n; k++, this.#bit++) v = v * 2 + (((this.#data[this.#bit >> 3] ?? 0) >> (7 - (this.#bit & 7))) & 1);
    return v;
  }

  uvlc(): number {
    let zeros = 0;
    while (this.f(1) === 0) if (++zeros >= 32 || this.over) return 0xffffffff;
    return this.f(zeros) + 2 ** zeros - 1;
  }
}

function vp9Size(data: Buffer): PictureSize | undefined {
  const r = new Bits(data);
  if (r.f(2) !== 2) return undefined; // frame_marker
  const low = r.f(1);
  const profile = (r.f(1) << 1) | low;
  if (profile === 3) r.f(1);
  if (r.f(1)) return undefined; // show_existing_frame
  if (r.f(1) !== 0) return undefined; // frame_type: not a key frame
  r.f(2); // show_frame, error_resilient_mode
  if (r.f(8) !== 0x49 || r.f(8) !== 0x83 || r.f(8) !== 0x42) return undefined;
  if (profile >= 2) r.f(1); // ten_or_twelve_bit
  const colorSpace = r.f(3);
  if (colorSpace !== 7) {
    r.f(1); // color_range
    if (profile === 1 || profile === 3) r.f(3);
  } else if (profile === 1 || profile === 3) r.f(1);
  const width = r.f(16) + 1;
  const height = r.f(16) + 1;
  return r.over ? undefined : { width, height };
}

function h264Size(data: Buffer): PictureSize | undefined {
  for (let i = 0; i + 3 < data.length; i++) {
    if (data[i] !== 0 || data[i + 1] !== 0 || data[i + 2] !== 1) continue;
    const start = i + 3;
    if ((data[start] & 0x1f) !== 7) continue;
    let end = start + 1;
    while (end + 2 < data.length && !(data[end] === 0 && data[end + 1] === 0 && data[end + 2] <= 1)) end++;
    return parseH264SpsSize(data.subarray(start, end + 2 < data.length ? end : data.length));
  }
  return undefined;
}

/** The sequence header of a temporal unit in the low-overhead format (every OBU with a size). */
function av1Size(data: Buffer): PictureSize | undefined {
  let i = 0;
  while (i < data.length) {
    const h = data[i];
    const type = (h >> 3) & 0x0f;
    i += h & 0x04 ? 2 : 1;
    if (!(h & 0x02)) return undefined;
    let size = 0;
    let b = 0x80;
    for (let n = 0, shift = 0; b & 0x80 && n < 8; n++, shift += 7) {
      b = data[i++] ?? 0;
      size += (b & 0x7f) * 2 ** shift;
    }
    if (type === 1) return av1SequenceHeaderSize(new Bits(data.subarray(i, i + size)));
    i += size;
  }
  return undefined;
}

/** sequence_header_obu() up to max_frame_width/height (AV1 §5.5.1). */
function av1SequenceHeaderSize(r: Bits): PictureSize | undefined {
  r.f(3); // seq_profile
  r.f(1); // still_picture
  const reduced = r.f(1);
  if (reduced) r.f(5);
  else {
    let decoderModelInfo = 0;
    let bufferDelayLength = 0;
    if (r.f(1)) {
      // timing_info()
      r.f(32);
      r.f(32);
      if (r.f(1)) r.uvlc();
      decoderModelInfo = r.f(1);
      if (decoderModelInfo) {
        bufferDelayLength = r.f(5) + 1;
        r.f(32);
        r.f(10);
      }
    }
    const initialDisplayDelay = r.f(1);
    const points = r.f(5) + 1;
    for (let k = 0; k < points; k++) {
      r.f(12); // operating_point_idc
      if (r.f(5) > 7) r.f(1); // seq_level_idx, seq_tier
      if (decoderModelInfo && r.f(1)) r.f(2 * bufferDelayLength + 1);
      if (initialDisplayDelay && r.f(1)) r.f(4);
    }
  }
  const widthBits = r.f(4) + 1;
  const heightBits = r.f(4) + 1;
  const width = r.f(widthBits) + 1;
  const height = r.f(heightBits) + 1;
  return r.over ? undefined : { width, height };
}
