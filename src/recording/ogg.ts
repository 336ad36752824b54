/**
 * Ogg Opus files of captured audio (RFC 7845 in Ogg, RFC 3533): an `OpusHead` page, an `OpusTags`
 * page, then audio pages of whole packets as they came over RTP (no decoding).
 *
 * Timing: each packet is placed at its RTP timestamp less the first one's (the Opus RTP clock is
 * 48 kHz, RFC 7587 §4.1), and a page's granule position is where its last packet ends. A jump in
 * the RTP timeline (DTX, lost packets) is filled with packets of zero-length frames, which the
 * decoder conceals as it would lost packets (RFC 6716 §4.4; it fades to silence): the file's
 * timeline stays continuous, so every reader keeps audio where it was in time. A gap carried by
 * granule positions alone is not enough: ffmpeg 5.1 dates the first packet of a page at the
 * previous page's granule position, and its filters join audio end to end whatever the pts say.
 * A page goes to disk once it holds 200 ms of audio, so a crash loses little.
 */
import { open } from 'node:fs/promises';
import { CaptureWriter, ScanWindow } from './capture-file.ts';
import type { AssembledFrame } from './depacketize.ts';

/** Samples the decoder drops at the start (`OpusHead` pre-skip): 0, so audio lines up with video to the sample. */
export const OPUS_PRE_SKIP = 0;
/** Channels announced in `OpusHead`: 2 (WebRTC's `opus/48000/2`; mono packets decode to both). */
export const OPUS_CHANNELS = 2;
/** A page is written once its packets span this many 48 kHz samples: 9600 (200 ms). */
export const OGG_PAGE_SAMPLES = 9_600;
/** Bytes queued for the disk beyond which the writer gives up (`onError`): 16 MiB. */
export const OGG_MAX_QUEUED_BYTES = 16 * 1024 * 1024;
/**
 * The longest jump in the RTP timeline that is filled (12 hours); a longer one is a broken clock,
 * and the packet after it simply follows the one before.
 */
export const OGG_MAX_FILL_SAMPLES = 12 * 3600 * 48_000;
/** A timestamp jump is filled with silence up to the wall time since the last packet plus this, ms. */
const FILL_SLACK_MS = 2000;

/**
 * Zero-length Opus frames, 1 to 6 of 20 ms and 1 to 7 of 2.5 ms (RFC 6716 §3.2.5: code 3, CBR, no
 * padding; TOC configs 31 and 28, CELT fullband). Shared: never changed.
 */
const FILL_20MS = [1, 2, 3, 4, 5, 6].map((m) => Buffer.from([(31 << 3) | 3, m]));
const FILL_2_5MS = [1, 2, 3, 4, 5, 6, 7].map((m) => Buffer.from([(28 << 3) | 3, m]));

/** The largest packet one page can end (255 lacing values). */
const MAX_PACKET = 255 * 254 + 254;
const PAGE_HEADER = 27;
const TWO_32 = 0x100000000;
const FLAG_BOS = 0x02;
const FLAG_EOS = 0x04;

/** RFC 3533 §6: CRC-32, polynomial 0x04c11db7, MSB first, initial value 0, no final XOR. */
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let k = 0; k < 8; k++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    t[i] = r >>> 0;
  }
  return t;
})();

/** The Ogg CRC of `page[start, end)`, the CRC field (bytes 22–25 of the page) counted as zeros. */
export function oggCrc(page: Uint8Array, start = 0, end = page.length): number {
  let crc = 0;
  for (let i = start; i < end; i++) {
    const b = i - start >= 22 && i - start < 26 ? 0 : page[i];
    crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ b) & 0xff]) >>> 0;
  }
  return crc;
}

/** SILK-only frame sizes at 48 kHz: 10, 20, 40, 60 ms. */
const SILK_FRAME = [480, 960, 1920, 2880];
const EMPTY = Buffer.alloc(0);

/** Samples (48 kHz) in an Opus packet, from its TOC byte (RFC 6716 §3.1); 0 when malformed. */
export function opusPacketSamples(p: Uint8Array): number {
  if (p.length < 1) return 0;
  const toc = p[0];
  const config = toc >> 3;
  let frame: number;
  if (config < 12) frame = SILK_FRAME[config & 3];
  else if (config < 16) frame = config & 1 ? 960 : 480;
  else frame = 120 << (config & 3);
  const c = toc & 3;
  const frames = c === 0 ? 1 : c === 3 ? (p.length > 1 ? p[1] & 0x3f : 0) : 2;
  const samples = frame * frames;
  return samples > 5760 ? 0 : samples; // at most 120 ms
}

/** Writes one track's Opus packets to an Ogg Opus file, through a non-blocking fs.WriteStream. */
export class OggOpusWriter extends CaptureWriter {
  /** Audio packets in pages handed to the file, fillers of timeline jumps included. */
  packetsWritten = 0;
  /** Where the last packet given ends, 48 kHz samples from the first packet's start. */
  durationSamples = 0;
  /** Samples of filling written for jumps in the RTP timeline. */
  filledSamples = 0;
  readonly #serial = (Math.random() * TWO_32) >>> 0;
  #pageSequence = 0;
  #started = false;
  #firstTs = 0;
  /** Wall time of the last packet written (bounds how much silence a jump may fill). */
  #lastWriteAt = 0;
  #pending: Buffer[] = [];
  #pendingCount = 0;
  #pendingSegments = 0;
  #pageStart = 0;
  #closing: Promise<void> | undefined;

  /**
   * Creates (truncates) the file; the two header pages are written with the first packet.
   * @param onError told once when the file cannot be written (ENOSPC, EACCES…); writes stop then.
   */
  constructor(path: string, onError: (err: Error) => void) {
    super(path, OGG_MAX_QUEUED_BYTES, onError);
  }

  /** Adds one Opus packet at its RTP timestamp. Empty or oversized packets are skipped. Never throws. */
  write(frame: AssembledFrame): void {
    if (this.failed || this.#closing) return;
    const data = frame.data;
    if (data.length === 0 || data.length > MAX_PACKET) return;
    try {
      if (!this.#started) {
        this.#started = true;
        this.#firstTs = frame.timestamp;
        this.#writeHeaders();
      }
      // Where the packet belongs; one that would overlap the previous packet follows it.
      const now = Date.now();
      let gap = frame.timestamp - this.#firstTs - this.durationSamples;
      if (gap >= 120) {
        // A jump longer than the time that really passed (plus slack) is a discontinuity of the
        // source's clock, not silence: only the real time is filled, the timeline moves on.
        const real = Math.min(OGG_MAX_FILL_SAMPLES, (now - this.#lastWriteAt + FILL_SLACK_MS) * 48);
        if (gap > real) {
          this.#firstTs += gap - real;
          gap = real;
        }
        this.#fill(gap);
      }
      this.#lastWriteAt = now;
      // A malformed TOC still takes the time up to the next packet: count 20 ms.
      this.#add(data, opusPacketSamples(data) || 960);
      // The first audio page goes out with the first packet: the file holds media at once.
      if (this.durationSamples - this.#pageStart >= OGG_PAGE_SAMPLES || this.packetsWritten === 0) this.#flushPage(0);
    } catch (err) {
      this.file.fail(err as Error);
    }
  }

  #add(packet: Buffer, samples: number): void {
    const segments = Math.floor(packet.length / 255) + 1;
    if (this.#pendingSegments + segments > 255) this.#flushPage(0);
    if (this.#pendingCount === 0) this.#pageStart = this.durationSamples;
    this.#pending[this.#pendingCount++] = packet;
    this.#pendingSegments += segments;
    this.durationSamples += samples;
  }

  /** Fills `samples` (to 2.5 ms; less is dropped) with zero-length frames, up to 120 ms a packet. */
  #fill(samples: number): void {
    this.filledSamples += samples - (samples % 120);
    while (samples >= 960) {
      const m = Math.min(6, Math.floor(samples / 960));
      this.#add(FILL_20MS[m - 1], m * 960);
      samples -= m * 960;
    }
    const m = Math.floor(samples / 120);
    if (m > 0) this.#add(FILL_2_5MS[m - 1], m * 120);
  }

  /** Writes the last page (end of stream), flushes and closes the file. Never rejects; idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (!this.failed) {
      try {
        if (!this.#started) this.#writeHeaders();
        else if (this.#pendingCount > 0) this.#flushPage(FLAG_EOS);
      } catch (err) {
        this.file.fail(err as Error);
      }
    }
    await this.file.end();
  }

  #writeHeaders(): void {
    // RFC 7845 §5.1: magic, version 1, channels, pre-skip, input rate, gain, mapping family 0.
    const head = Buffer.alloc(19);
    head.write('OpusHead', 0, 'latin1');
    head[8] = 1;
    head[9] = OPUS_CHANNELS;
    head.writeUInt16LE(OPUS_PRE_SKIP, 10);
    head.writeUInt32LE(48_000, 12);
    this.#page(FLAG_BOS, 0, [head], 1);
    // §5.2: magic, vendor string, no user comments.
    const vendor = Buffer.from('Kiln', 'latin1');
    const tags = Buffer.alloc(8 + 4 + vendor.length + 4);
    tags.write('OpusTags', 0, 'latin1');
    tags.writeUInt32LE(vendor.length, 8);
    vendor.copy(tags, 12);
    this.#page(0, 0, [tags], 1);
  }

  #flushPage(flags: number): void {
    this.#page(flags, this.durationSamples + OPUS_PRE_SKIP, this.#pending, this.#pendingCount);
    this.packetsWritten += this.#pendingCount;
    for (let i = 0; i < this.#pendingCount; i++) this.#pending[i] = EMPTY; // let the payloads go
    this.#pendingCount = 0;
    this.#pendingSegments = 0;
  }

  /** One page holding `count` whole packets (RFC 3533 §6), in one Buffer. */
  #page(flags: number, granule: number, packets: Buffer[], count: number): void {
    let segments = 0;
    let bytes = 0;
    for (let i = 0; i < count; i++) {
      segments += Math.floor(packets[i].length / 255) + 1;
      bytes += packets[i].length;
    }
    const page = Buffer.allocUnsafe(PAGE_HEADER + segments + bytes);
    page.write('OggS', 0, 'latin1');
    page[4] = 0; // version
    page[5] = flags;
    page.writeUInt32LE(granule % TWO_32, 6);
    page.writeUInt32LE(Math.floor(granule / TWO_32), 10);
    page.writeUInt32LE(this.#serial, 14);
    page.writeUInt32LE(this.#pageSequence++, 18);
    page.writeUInt32LE(0, 22);
    page[26] = segments;
    let lace = PAGE_HEADER;
    let at = PAGE_HEADER + segments;
    for (let i = 0; i < count; i++) {
      const p = packets[i];
      for (let left = p.length; ; left -= 255) {
        page[lace++] = left >= 255 ? 255 : left;
        if (left < 255) break;
      }
      at += p.copy(page, at);
    }
    page.writeUInt32LE(oggCrc(page), 22);
    this.file.write(page);
  }
}

/** What `scanOgg` found. */
export interface OggScan {
  /** Audio packets in whole pages (the two header packets not counted; gap fillers counted). */
  packets: number;
  /** The last page's granule position less the pre-skip: how long the audio plays, 48 kHz. */
  durationSamples: number;
  /** Bytes up to the end of the last whole page: the file's size after the scan. */
  validBytes: number;
}

const SCAN_CHUNK = 1024 * 1024;

/**
 * Walks an Ogg Opus file's pages and cuts it after the last whole, intact page (what a crash
 * mid-write leaves), stopping at the first page that runs past the end or fails its CRC. Rejects
 * when the file does not start as Ogg (it is then left as it is) or cannot be read and written.
 */
export async function scanOgg(path: string): Promise<OggScan> {
  const fh = await open(path, 'r+');
  try {
    const { size } = await fh.stat();
    const window = new ScanWindow(fh, SCAN_CHUNK);
    const chunk = window.buffer;
    const view = (pos: number, n: number) => window.view(pos, n);
    const oggs = Buffer.from('OggS', 'latin1');
    let pos = 0;
    let packets = 0;
    let preSkip = 0;
    let granule = 0;
    let pages = 0;
    while (pos + PAGE_HEADER <= size) {
      let at = await view(pos, PAGE_HEADER);
      if (at < 0 || !chunk.subarray(at, at + 4).equals(oggs) || chunk[at + 4] !== 0) break;
      const segments = chunk[at + 26];
      at = await view(pos, PAGE_HEADER + segments);
      if (at < 0) break;
      let body = 0;
      let completed = 0;
      for (let i = 0; i < segments; i++) {
        const lace = chunk[at + PAGE_HEADER + i];
        body += lace;
        if (lace < 255) completed++;
      }
      const length = PAGE_HEADER + segments + body;
      if (pos + length > size) break;
      at = await view(pos, length);
      if (at < 0 || oggCrc(chunk, at, at + length) !== chunk.readUInt32LE(at + 22)) break;
      const bodyAt = at + PAGE_HEADER + segments;
      if (pages === 0 && body >= 19 && chunk.toString('latin1', bodyAt, bodyAt + 8) === 'OpusHead') {
        preSkip = chunk.readUInt16LE(bodyAt + 10);
      }
      const lo = chunk.readUInt32LE(at + 6);
      const hi = chunk.readUInt32LE(at + 10);
      if (!(lo === 0xffffffff && hi === 0xffffffff) && completed > 0) granule = lo + hi * TWO_32;
      packets += completed;
      pages++;
      pos += length;
    }
    if (pages === 0 && size >= 4) {
      const at = await view(0, 4);
      if (at < 0 || !chunk.subarray(at, at + 4).equals(oggs)) throw new Error(`${path} is not an Ogg file`);
    }
    if (pos < size) await fh.truncate(pos);
    return { packets: Math.max(0, packets - 2), durationSamples: Math.max(0, granule - preSkip), validBytes: pos };
  } finally {
    await fh.close();
  }
}
