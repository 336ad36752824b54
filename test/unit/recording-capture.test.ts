import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFile, copyFile, mkdtemp, open, readFile, rm, stat, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { H264Repacketizer } from '../../src/media/h264-packetizer.ts';
import { FrameAssembler, KEY_REQUEST_EVERY_FRAMES, MAX_FRAME_PARTS, type AssembledFrame, type CaptureCodec } from '../../src/recording/depacketize.ts';
import { IvfWriter, scanIvf } from '../../src/recording/ivf.ts';
import { OggOpusWriter, oggCrc, scanOgg } from '../../src/recording/ogg.ts';

const run = promisify(execFile);
const FFMPEG = '/usr/bin/ffmpeg';
const FFPROBE = '/usr/bin/ffprobe';
/** RTP payload budget of the test packetizers: small enough that key frames span many packets. */
const MTU = 1000;
/** Start the RTP clocks just before they wrap, so every stream crosses both wraps. */
const SEQ0 = 65_500;
const TS0 = 0x1_0000_0000 - 45_000;

interface Rtp {
  seq: number;
  /** Unwrapped; pushed as `ts >>> 0`. */
  ts: number;
  marker: boolean;
  payload: Buffer;
}

/** A frame as the encoder made it; `ts` in RTP clock units from the stream's start. */
interface SourceFrame {
  data: Buffer;
  ts: number;
  key: boolean;
}

interface Assembled {
  frames: AssembledFrame[];
  losses: number;
  dropped: number;
}

function assemble(codec: CaptureCodec, packets: Rtp[], sink?: (f: AssembledFrame) => void): Assembled {
  const frames: AssembledFrame[] = [];
  let losses = 0;
  const a = new FrameAssembler(
    codec,
    (f) => {
      frames.push(f);
      sink?.(f);
    },
    () => losses++,
  );
  for (const p of packets) a.push(p.seq & 0xffff, p.ts >>> 0, p.marker, p.payload);
  a.flush();
  return { frames, losses, dropped: a.droppedFrames };
}

/** Swaps packets two apart now and then and sends some twice, as a network would. */
function disorder(packets: Rtp[]): Rtp[] {
  const out = packets.slice();
  for (let i = 3; i + 2 < out.length; i += 7) [out[i], out[i + 2]] = [out[i + 2], out[i]];
  for (let i = out.length - 4; i > 0; i -= 13) out.splice(i + 3, 0, out[i]);
  return out;
}

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

// ---- packetizers (RFC 7741, VP9 draft, RFC 6184 by way of H264Repacketizer, AV1 RTP, RFC 7587) ----

function vp8Packets(frames: SourceFrame[], mtu = MTU): Rtp[] {
  const out: Rtp[] = [];
  let seq = SEQ0;
  frames.forEach((f, n) => {
    const long = n % 2 === 0; // both descriptor forms: with a 15-bit PictureID, and the 1-byte one
    for (let at = 0; at < f.data.length; at += mtu) {
      const first = at === 0;
      const desc = long ? Buffer.from([0x80 | (first ? 0x10 : 0), 0x80, 0x80 | ((n >> 8) & 0x7f), n & 0xff]) : Buffer.from([first ? 0x10 : 0]);
      out.push({ seq: seq++, ts: TS0 + f.ts, marker: at + mtu >= f.data.length, payload: Buffer.concat([desc, f.data.subarray(at, at + mtu)]) });
    }
  });
  return out;
}

function vp9Packets(frames: SourceFrame[], width: number, height: number): Rtp[] {
  const out: Rtp[] = [];
  let seq = SEQ0;
  frames.forEach((f, n) => {
    for (let at = 0; at < f.data.length; at += MTU) {
      const first = at === 0;
      const last = at + MTU >= f.data.length;
      // I P L F B E V Z, flexible mode: 15-bit picture id, one P_DIFF on inter frames, SS on key frames.
      const desc = [0x80 | (f.key ? 0 : 0x40) | 0x10 | (first ? 0x08 : 0) | (last ? 0x04 : 0) | (f.key && first ? 0x02 : 0), 0x80 | ((n >> 8) & 0x7f), n & 0xff];
      if (!f.key) desc.push(1 << 1);
      if (f.key && first) desc.push(0x10, width >> 8, width & 0xff, height >> 8, height & 0xff);
      out.push({ seq: seq++, ts: TS0 + f.ts, marker: last, payload: Buffer.concat([Buffer.from(desc), f.data.subarray(at, at + MTU)]) });
    }
  });
  return out;
}

function annexBNals(au: Buffer): Buffer[] {
  const nals: Buffer[] = [];
  let start = -1;
  for (let i = 0; i + 2 < au.length; i++) {
    if (au[i] === 0 && au[i + 1] === 0 && au[i + 2] === 1) {
      if (start >= 0) nals.push(au.subarray(start, au[i - 1] === 0 ? i - 1 : i));
      start = i + 3;
      i += 2;
    }
  }
  if (start >= 0) nals.push(au.subarray(start));
  return nals;
}

/** SPS and PPS in a STAP-A, the rest single NAL units or FU-A (what Chrome sends). */
function h264Packets(frames: SourceFrame[]): Rtp[] {
  const out: Rtp[] = [];
  let seq = SEQ0;
  const r = new H264Repacketizer({}, MTU);
  for (const f of frames) {
    const nals = annexBNals(f.data).filter((n) => (n[0] & 0x1f) !== 9);
    const sets = nals.filter((n) => (n[0] & 0x1f) === 7 || (n[0] & 0x1f) === 8);
    const rest = nals.filter((n) => !sets.includes(n));
    const emit = (payload: Buffer, marker: boolean) => out.push({ seq: seq++, ts: TS0 + f.ts, marker, payload: Buffer.from(payload) });
    if (sets.length > 0) {
      const stap: Buffer[] = [Buffer.from([0x78])];
      for (const s of sets) stap.push(Buffer.from([s.length >> 8, s.length & 0xff]), s);
      r.push(Buffer.concat(stap), rest.length === 0, TS0 + f.ts, emit);
    }
    rest.forEach((n, i) => r.push(n, i === rest.length - 1, TS0 + f.ts, emit));
  }
  return out;
}

function leb128(n: number): Buffer {
  const out: number[] = [];
  do {
    out.push((n & 0x7f) | (n >= 0x80 ? 0x80 : 0));
    n = Math.floor(n / 128);
  } while (n > 0);
  return Buffer.from(out);
}

/** OBUs of a low-overhead temporal unit: [type, bytes without the size field]. */
function obus(tu: Buffer): { type: number; element: Buffer }[] {
  const list: { type: number; element: Buffer }[] = [];
  for (let i = 0; i < tu.length; ) {
    const h = tu[i];
    const headerSize = h & 0x04 ? 2 : 1;
    let j = i + headerSize;
    let size = 0;
    for (let shift = 0; ; shift += 7) {
      const b = tu[j++];
      size += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) break;
    }
    const element = Buffer.concat([Buffer.from([h & ~0x02]), tu.subarray(i + 1, i + headerSize), tu.subarray(j, j + size)]);
    list.push({ type: (h >> 3) & 0x0f, element });
    i = j + size;
  }
  return list;
}

/** AV1 RTP §4: OBUs without size fields and temporal delimiters, fragmented with Z/Y, W = count when ≤ 3. */
function av1Packets(frames: SourceFrame[]): Rtp[] {
  const out: Rtp[] = [];
  let seq = SEQ0;
  for (const f of frames) {
    const elements = obus(f.data).filter((o) => o.type !== 2).map((o) => o.element);
    const packets: { z: boolean; y: boolean; parts: Buffer[] }[] = [];
    let cur: { z: boolean; y: boolean; parts: Buffer[] } = { z: false, y: false, parts: [] };
    let used = 1;
    for (const e of elements) {
      let rest = e;
      let continued = false;
      while (rest.length > 0) {
        const room = MTU - used - 3;
        if (room <= 16) {
          packets.push(cur);
          cur = { z: continued, y: false, parts: [] };
          used = 1;
          continue;
        }
        const piece = rest.subarray(0, room);
        rest = rest.subarray(piece.length);
        cur.parts.push(piece);
        used += piece.length + 3;
        if (rest.length > 0) {
          cur.y = true;
          packets.push(cur);
          cur = { z: true, y: false, parts: [] };
          used = 1;
          continued = true;
        }
      }
    }
    if (cur.parts.length > 0) packets.push(cur);
    packets.forEach((p, i) => {
      const w = p.parts.length <= 3 && (i + f.ts / 3000) % 2 === 0 ? p.parts.length : 0; // both ways of sizing elements
      const head = (p.z ? 0x80 : 0) | (p.y ? 0x40 : 0) | (w << 4) | (i === 0 && f.key ? 0x08 : 0);
      const body = p.parts.flatMap((part, k) => (w !== 0 && k === w - 1 ? [part] : [leb128(part.length), part]));
      out.push({ seq: seq++, ts: TS0 + f.ts, marker: i === packets.length - 1, payload: Buffer.concat([Buffer.from([head]), ...body]) });
    });
  }
  return out;
}

function opusPackets(packets: Buffer[], gapAt = -1, gap = 0): Rtp[] {
  return packets.map((payload, i) => ({ seq: SEQ0 + i, ts: TS0 + i * 960 + (gapAt >= 0 && i >= gapAt ? gap : 0), marker: i === 0, payload }));
}

// ---- readers of what ffmpeg encoded ----

function readIvf(file: Buffer): { frames: { data: Buffer; pts: number }[]; rate: number } {
  const rate = file.readUInt32LE(16) / file.readUInt32LE(20);
  const frames: { data: Buffer; pts: number }[] = [];
  for (let at = file.readUInt16LE(6); at + 12 <= file.length; ) {
    const size = file.readUInt32LE(at);
    frames.push({ data: file.subarray(at + 12, at + 12 + size), pts: file.readUInt32LE(at + 4) });
    at += 12 + size;
  }
  return { frames, rate };
}

function readOggPackets(file: Buffer): { packets: Buffer[]; granules: number[] } {
  const packets: Buffer[] = [];
  const granules: number[] = [];
  let cur: Buffer[] = [];
  for (let pos = 0; pos < file.length; ) {
    const n = file[pos + 26];
    let at = pos + 27 + n;
    for (let i = 0; i < n; i++) {
      const l = file[pos + 27 + i];
      cur.push(file.subarray(at, at + l));
      at += l;
      if (l < 255) {
        packets.push(Buffer.concat(cur));
        cur = [];
      }
    }
    granules.push(file.readUInt32LE(pos + 6));
    pos = at;
  }
  return { packets, granules };
}

async function probe(path: string): Promise<{ codec: string; width?: number; height?: number; duration: number }> {
  const { stdout } = await run(FFPROBE, ['-v', 'error', '-show_entries', 'stream=codec_name,width,height:format=duration', '-of', 'json', path]);
  const j = JSON.parse(stdout) as { streams: { codec_name: string; width?: number; height?: number }[]; format: { duration?: string } };
  return { codec: j.streams[0].codec_name, width: j.streams[0].width, height: j.streams[0].height, duration: Number(j.format.duration) };
}

/** What `ffmpeg -v error` says while decoding the whole file: nothing when it is sound. */
async function decodeErrors(path: string): Promise<string> {
  const { stderr } = await run(FFMPEG, ['-v', 'error', '-i', path, '-f', 'null', '-']);
  return stderr;
}

/** Frames → RTP → FrameAssembler → writer; resolves with what came out once the file is closed. */
async function capture(codec: CaptureCodec, packets: Rtp[], path: string): Promise<Assembled & { bytes: number }> {
  const errors: Error[] = [];
  const writer = codec === 'OPUS' ? new OggOpusWriter(path, (e) => errors.push(e)) : new IvfWriter(path, codec, (e) => errors.push(e));
  const result = assemble(codec, packets, (f) => writer.write(f));
  await writer.close();
  assert.deepEqual(errors, []);
  assert.equal((await stat(path)).size, writer.bytesWritten);
  return { ...result, bytes: writer.bytesWritten };
}

// ---- the clips, encoded once ----

let dir = '';
const clip = {
  vp8: [] as SourceFrame[],
  vp9: [] as SourceFrame[],
  av1: [] as SourceFrame[],
  h264: [] as SourceFrame[],
  opus: [] as Buffer[],
};

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-capture-'));
  const src = ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=30', '-t', '2'];
  const rtc = ['-g', '30', '-b:v', '400k'];
  await Promise.all([
    run(FFMPEG, [...src, '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', ...rtc, '-f', 'ivf', join(dir, 'src-vp8.ivf')]),
    run(FFMPEG, [...src, '-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-cpu-used', '8', ...rtc, '-f', 'ivf', join(dir, 'src-vp9.ivf')]),
    run(FFMPEG, [...src, '-c:v', 'libaom-av1', '-usage', 'realtime', '-cpu-used', '8', ...rtc, '-f', 'ivf', join(dir, 'src-av1.ivf')]),
    run(FFMPEG, [...src, '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', ...rtc, '-x264-params', 'aud=1', '-bsf:v', 'h264_mp4toannexb', '-f', 'h264', join(dir, 'src.h264')]),
    run(FFMPEG, ['-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '2', '-ac', '2', '-c:a', 'libopus', '-b:a', '48k', '-f', 'ogg', join(dir, 'src.ogg')]),
  ]);
  const ivf = async (name: string, isKey: (d: Buffer) => boolean) => {
    const { frames, rate } = readIvf(await readFile(join(dir, name)));
    return frames.map((f) => ({ data: f.data, ts: Math.round((f.pts * 90_000) / rate), key: isKey(f.data) }));
  };
  clip.vp8 = await ivf('src-vp8.ivf', (d) => (d[0] & 0x01) === 0);
  clip.vp9 = await ivf('src-vp9.ivf', (d) => (d[0] & 0x0c) === 0); // profile 0: show_existing_frame 0, frame_type KEY
  clip.av1 = await ivf('src-av1.ivf', (d) => obus(d).some((o) => o.type === 1));
  const h264 = await readFile(join(dir, 'src.h264'));
  const aus: Buffer[] = [];
  let start = -1;
  for (let i = 0; i + 4 < h264.length; i++) {
    if (h264[i] === 0 && h264[i + 1] === 0 && h264[i + 2] === 1 && (h264[i + 3] & 0x1f) === 9) {
      if (start >= 0) aus.push(h264.subarray(start, i));
      start = i + 3;
    }
  }
  aus.push(h264.subarray(start));
  clip.h264 = aus.map((au, n) => ({ data: Buffer.from(au), ts: n * 3000, key: annexBNals(Buffer.concat([Buffer.from([0, 0, 1]), au])).some((x) => (x[0] & 0x1f) === 5) }));
  clip.opus = readOggPackets(await readFile(join(dir, 'src.ogg'))).packets.slice(2);
  for (const [name, frames] of Object.entries(clip)) assert.ok(frames.length >= 60, `${name}: ${frames.length} frames encoded`);
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

// ---- depacketizing, hand-built payloads ----

test('VP8: reordered and duplicated packets come out as the frames sent, byte for byte, with unwrapped timestamps', () => {
  const frames: SourceFrame[] = [0, 1, 2, 3, 4, 5].map((n) => {
    const data = bytes(n === 0 ? 2500 : 400 + n * 300, n);
    data[0] = n === 0 ? 0x00 : 0x01; // frame tag: P bit
    return { data, ts: n * 30_000, key: n === 0 };
  });
  const packets = vp8Packets(frames);
  assert.ok(packets.length >= 10);
  const shuffled = [...packets.slice(0, 3).reverse(), packets[1], ...packets.slice(3, 6), packets[7], packets[6], packets[7], ...packets.slice(8)];

  const { frames: out, losses, dropped } = assemble('VP8', shuffled);

  assert.equal(out.length, 6);
  out.forEach((f, n) => {
    assert.deepEqual(f.data, frames[n].data, `frame ${n}`);
    assert.equal(f.timestamp, TS0 + frames[n].ts, `frame ${n} timestamp`);
    assert.equal(f.key, n === 0);
  });
  assert.ok(out[out.length - 1].timestamp > 0xffffffff, 'the timestamps crossed 2^32 and kept growing');
  assert.equal(losses, 0);
  assert.equal(dropped, 0);
});

test('VP8: a lost packet drops its frame and every frame until the next key frame, and asks for a key frame', () => {
  const frames: SourceFrame[] = Array.from({ length: 12 }, (_, n) => {
    const data = bytes(2200, n);
    data[0] = n === 0 || n === 8 ? 0x00 : 0x01;
    return { data, ts: n * 3000, key: n === 0 || n === 8 };
  });
  const packets = vp8Packets(frames); // 3 packets a frame
  const lost = packets.findIndex((p) => p.ts === TS0 + 3 * 3000) + 1; // the middle packet of frame 3

  const { frames: out, losses, dropped } = assemble('VP8', packets.filter((_, i) => i !== lost));

  assert.deepEqual(
    out.map((f) => f.timestamp - TS0),
    [0, 1, 2, 8, 9, 10, 11].map((n) => n * 3000),
  );
  assert.deepEqual(out[3].data, frames[8].data);
  assert.equal(losses, 1);
  assert.equal(dropped, 5, 'frames 3 to 7');
});

test('video: nothing is emitted before the first key frame, and the wait asks again for one', () => {
  const frames: SourceFrame[] = Array.from({ length: KEY_REQUEST_EVERY_FRAMES + 3 }, (_, n) => {
    const data = bytes(300, n);
    data[0] = n === KEY_REQUEST_EVERY_FRAMES + 1 ? 0x00 : 0x01;
    return { data, ts: n * 3000, key: false };
  });

  const { frames: out, losses, dropped } = assemble('VP8', vp8Packets(frames));

  assert.deepEqual(
    out.map((f) => f.key),
    [true, false],
  );
  assert.equal(out[0].timestamp, TS0 + (KEY_REQUEST_EVERY_FRAMES + 1) * 3000);
  assert.equal(losses, 1, 'one more key-frame request after waiting KEY_REQUEST_EVERY_FRAMES frames');
  assert.equal(dropped, 0, 'waiting for the first key frame is not loss');
});

test('a gap waits for its packet: a late retransmission fills it and nothing is lost', () => {
  const frames: SourceFrame[] = Array.from({ length: 4 }, (_, n) => {
    const data = bytes(1500, n);
    data[0] = n === 0 ? 0 : 1;
    return { data, ts: n * 3000, key: n === 0 };
  });
  const packets = vp8Packets(frames); // 2 packets a frame
  const late = packets.splice(1, 1)[0];
  packets.splice(4, 0, late); // after frame 1 and half of frame 2 have arrived

  const { frames: out, losses } = assemble('VP8', packets);

  assert.equal(out.length, 4);
  assert.equal(losses, 0);
});

test('VP9 with two spatial layers: spatial layer 0 is recorded, its frames ending at the E bit', () => {
  const rtp: Rtp[] = [];
  const layer0: Buffer[] = [];
  let seq = 100;
  for (let n = 0; n < 4; n++) {
    const key = n === 0;
    // I P L F B E V Z, non-flexible: picture id, TID U SID D, TL0PICIDX.
    const desc = (sid: number, b: boolean, e: boolean) =>
      Buffer.from([0x80 | (key ? 0 : 0x40) | 0x20 | (b ? 0x08 : 0) | (e ? 0x04 : 0), 0x80, n, (sid << 1) | (sid > 0 ? 1 : 0), n]);
    const base = bytes(1500, n);
    layer0.push(base);
    rtp.push({ seq: seq++, ts: n * 3000, marker: false, payload: Buffer.concat([desc(0, true, false), base.subarray(0, 800)]) });
    rtp.push({ seq: seq++, ts: n * 3000, marker: false, payload: Buffer.concat([desc(0, false, true), base.subarray(800)]) });
    rtp.push({ seq: seq++, ts: n * 3000, marker: false, payload: Buffer.concat([desc(1, true, false), bytes(900, 50 + n)]) });
    rtp.push({ seq: seq++, ts: n * 3000, marker: true, payload: Buffer.concat([desc(1, false, true), bytes(900, 60 + n)]) });
  }

  const { frames, losses } = assemble('VP9', rtp);

  assert.equal(losses, 0);
  assert.deepEqual(
    frames.map((f) => f.data),
    layer0,
  );
  assert.deepEqual(
    frames.map((f) => f.key),
    [true, false, false, false],
  );
});

const nal = (type: number, size: number, seed = type): Buffer => {
  const b = bytes(size, seed);
  b[0] = 0x60 | type;
  return b;
};
const annexB = (...nals: Buffer[]) => Buffer.concat(nals.flatMap((n) => [Buffer.from([0, 0, 0, 1]), n]));
const stapA = (...nals: Buffer[]) => Buffer.concat([Buffer.from([0x78]), ...nals.flatMap((n) => [Buffer.from([n.length >> 8, n.length & 0xff]), n])]);
const fuA = (n: Buffer, from: number, to: number) =>
  Buffer.concat([Buffer.from([(n[0] & 0xe0) | 28, (from === 1 ? 0x80 : 0) | (to === n.length ? 0x40 : 0) | (n[0] & 0x1f)]), n.subarray(from, to)]);

test('H.264: single NAL units, STAP-A and FU-A become one Annex B access unit per timestamp', () => {
  const sps = nal(7, 12);
  const pps = nal(8, 4);
  const idr = nal(5, 2500);
  const sei = nal(6, 20);
  const p1 = nal(1, 800, 11);
  const p2a = nal(1, 300, 12);
  const p2b = nal(1, 1800, 13);
  const rtp: Rtp[] = [
    { seq: 1, ts: 0, marker: false, payload: stapA(sps, pps) },
    { seq: 2, ts: 0, marker: false, payload: sei },
    { seq: 3, ts: 0, marker: false, payload: fuA(idr, 1, 1000) },
    { seq: 4, ts: 0, marker: false, payload: fuA(idr, 1000, 2000) },
    { seq: 5, ts: 0, marker: true, payload: fuA(idr, 2000, 2500) },
    { seq: 6, ts: 3000, marker: true, payload: p1 },
    { seq: 7, ts: 6000, marker: false, payload: p2a },
    { seq: 8, ts: 6000, marker: false, payload: fuA(p2b, 1, 900) },
    { seq: 9, ts: 6000, marker: true, payload: fuA(p2b, 900, 1800) },
  ];
  const order = [2, 0, 1, 4, 3, 3, 5, 8, 7, 6].map((i) => rtp[i]);

  const { frames, losses } = assemble('H264', order);

  assert.equal(losses, 0);
  assert.deepEqual(
    frames.map((f) => [f.timestamp, f.key]),
    [
      [0, true],
      [3000, false],
      [6000, false],
    ],
  );
  assert.deepEqual(frames[0].data, annexB(sps, pps, sei, idr));
  assert.deepEqual(frames[1].data, annexB(p1));
  assert.deepEqual(frames[2].data, annexB(p2a, p2b));
});

test('H.264: an IDR sent without SPS and PPS gets the latest ones in front; one before any SPS is not a key frame', () => {
  const sps = nal(7, 12);
  const pps = nal(8, 4);
  const idr1 = nal(5, 200, 1);
  const idr2 = nal(5, 200, 2);
  const rtp: Rtp[] = [
    { seq: 10, ts: 0, marker: true, payload: idr1 }, // nobody can decode this one
    { seq: 11, ts: 3000, marker: false, payload: stapA(sps, pps) },
    { seq: 12, ts: 3000, marker: true, payload: idr1 },
    { seq: 13, ts: 6000, marker: true, payload: nal(1, 100) },
    { seq: 14, ts: 9000, marker: true, payload: idr2 },
  ];

  const { frames } = assemble('H264', rtp);

  assert.deepEqual(
    frames.map((f) => f.timestamp),
    [3000, 6000, 9000],
  );
  assert.deepEqual(frames[2].data, annexB(sps, pps, idr2));
  assert.equal(frames[2].key, true);
});

test('H.264: a lost FU-A fragment loses the access unit; decoding resumes at the next IDR', () => {
  const sps = nal(7, 12);
  const pps = nal(8, 4);
  const big = nal(1, 2000);
  const rtp: Rtp[] = [
    { seq: 65534, ts: 0, marker: true, payload: stapA(sps, pps, nal(5, 100)) },
    { seq: 65535, ts: 3000, marker: false, payload: fuA(big, 1, 700) },
    // 0 is lost
    { seq: 1, ts: 3000, marker: true, payload: fuA(big, 1400, 2000) },
    { seq: 2, ts: 6000, marker: true, payload: nal(1, 50) },
    { seq: 3, ts: 9000, marker: true, payload: nal(1, 50) },
    { seq: 4, ts: 12000, marker: true, payload: nal(1, 50) },
    { seq: 5, ts: 15000, marker: true, payload: stapA(sps, pps, nal(5, 100)) },
    { seq: 6, ts: 18000, marker: true, payload: nal(1, 50) },
  ];

  const { frames, losses, dropped } = assemble('H264', rtp);

  assert.deepEqual(
    frames.map((f) => f.timestamp),
    [0, 15000, 18000],
  );
  assert.equal(losses, 1);
  assert.equal(dropped, 4);
});

test('Opus: one frame per packet in sequence order; a lost packet is skipped and counted without asking for a key frame', () => {
  const payloads = Array.from({ length: 20 }, (_, i) => bytes(60 + i, i));
  const rtp = opusPackets(payloads).filter((_, i) => i !== 7);
  [rtp[3], rtp[4]] = [rtp[4], rtp[3]];
  rtp.splice(10, 0, rtp[9]);

  const { frames, losses, dropped } = assemble('OPUS', rtp);

  assert.equal(frames.length, 19);
  assert.deepEqual(
    frames.map((f) => f.data),
    payloads.filter((_, i) => i !== 7),
  );
  assert.deepEqual(
    frames.map((f) => f.timestamp - TS0),
    payloads.map((_, i) => i * 960).filter((_, i) => i !== 7),
  );
  assert.ok(frames.every((f) => f.key));
  assert.equal(losses, 0);
  assert.equal(dropped, 1);
});

test('push never throws, whatever the payload', () => {
  for (const codec of ['VP8', 'VP9', 'H264', 'AV1', 'OPUS'] as const) {
    const a = new FrameAssembler(
      codec,
      () => {
        throw new Error('listener');
      },
      () => {
        throw new Error('listener');
      },
    );
    for (let i = 0; i < 3000; i++) a.push((i * 7919) & 0xffff, (i * 104729) >>> 0, i % 3 === 0, bytes(i % 40, i));
    a.flush();
  }
});

// ---- end to end with real encoders and ffmpeg ----

async function assertPlays(path: string, codec: string, duration: number, size?: [number, number]): Promise<void> {
  const p = await probe(path);
  assert.equal(p.codec, codec);
  if (size) assert.deepEqual([p.width, p.height], size);
  assert.ok(Math.abs(p.duration - duration) <= 0.1, `duration ${p.duration}, expected ${duration}`);
  assert.equal(await decodeErrors(path), '');
}

test('VP8 from libvpx, packetized with reordering and duplicates, is written to an IVF ffmpeg plays', async () => {
  const path = join(dir, 'vp8.ivf');
  const { frames, losses } = await capture('VP8', disorder(vp8Packets(clip.vp8)), path);

  assert.equal(losses, 0);
  assert.equal(frames.length, clip.vp8.length);
  frames.forEach((f, n) => assert.ok(f.data.equals(clip.vp8[n].data), `frame ${n}`));
  await assertPlays(path, 'vp8', 2, [320, 240]);
});

test('VP8 with a packet lost mid-stream: frames up to the next key frame are left out and the file still decodes cleanly', async () => {
  const path = join(dir, 'vp8-loss.ivf');
  const packets = vp8Packets(clip.vp8);
  const lostFrame = 10;
  const nextKey = clip.vp8.findIndex((f, n) => n > lostFrame && f.key);
  assert.ok(nextKey > lostFrame && !clip.vp8[lostFrame].key);
  const lost = packets.findIndex((p) => p.ts === TS0 + clip.vp8[lostFrame].ts);

  const { frames, losses, dropped } = await capture('VP8', packets.filter((_, i) => i !== lost), path);

  assert.equal(losses, 1);
  assert.equal(dropped, nextKey - lostFrame);
  assert.equal(frames.length, clip.vp8.length - (nextKey - lostFrame));
  assert.equal((await scanIvf(path)).frames, frames.length);
  await assertPlays(path, 'vp8', 2, [320, 240]);
});

test('VP9 from libvpx-vp9 (flexible mode descriptors) is written to an IVF ffmpeg plays', async () => {
  const path = join(dir, 'vp9.ivf');
  const { frames, losses } = await capture('VP9', disorder(vp9Packets(clip.vp9, 320, 240)), path);

  assert.equal(losses, 0);
  assert.equal(frames.length, clip.vp9.length);
  frames.forEach((f, n) => assert.ok(f.data.equals(clip.vp9[n].data), `frame ${n}`));
  await assertPlays(path, 'vp9', 2, [320, 240]);
});

test('H.264 from libx264 (STAP-A, single NAL, FU-A) is written as Annex B in an IVF (fourcc H264) ffmpeg plays', async () => {
  const path = join(dir, 'h264.ivf');
  const { frames, losses } = await capture('H264', disorder(h264Packets(clip.h264)), path);

  assert.equal(losses, 0);
  assert.equal(frames.length, clip.h264.length);
  frames.forEach((f, n) => {
    const sent = annexBNals(Buffer.concat([Buffer.from([0, 0, 1]), clip.h264[n].data])).filter((x) => (x[0] & 0x1f) !== 9);
    assert.ok(f.data.equals(annexB(...sent)), `access unit ${n}`);
    assert.equal(f.key, clip.h264[n].key);
  });
  const header = await readFile(path);
  assert.equal(header.toString('latin1', 8, 12), 'H264');
  assert.deepEqual([header.readUInt16LE(12), header.readUInt16LE(14)], [320, 240], 'picture size read from the SPS');
  await assertPlays(path, 'h264', 2, [320, 240]);
});

test('AV1 from libaom (OBU elements fragmented across packets) is written to an IVF ffmpeg plays', async () => {
  const path = join(dir, 'av1.ivf');
  const packets = av1Packets(clip.av1);
  assert.ok(packets.some((p) => p.payload[0] & 0x80) && packets.some((p) => (p.payload[0] & 0x30) === 0) && packets.some((p) => (p.payload[0] & 0x30) !== 0), 'fragments, W = 0 and W > 0 all used');

  const { frames, losses } = await capture('AV1', disorder(packets), path);

  assert.equal(losses, 0);
  assert.equal(frames.length, clip.av1.length);
  frames.forEach((f, n) => {
    assert.equal(f.key, clip.av1[n].key, `frame ${n} key`);
    assert.deepEqual(
      obus(f.data).map((o) => o.element),
      obus(clip.av1[n].data).map((o) => o.element),
      `temporal unit ${n}`,
    );
  });
  const header = await readFile(path);
  assert.deepEqual([header.readUInt16LE(12), header.readUInt16LE(14)], [320, 240], 'picture size read from the sequence header');
  await assertPlays(path, 'av1', 2, [320, 240]);
});

test('Opus from libopus, one packet per RTP packet, is written to an Ogg Opus file ffmpeg plays', async () => {
  const path = join(dir, 'opus.ogg');
  const { frames, losses } = await capture('OPUS', disorder(opusPackets(clip.opus)), path);

  assert.equal(losses, 0);
  assert.equal(frames.length, clip.opus.length);
  const written = readOggPackets(await readFile(path));
  assert.deepEqual(written.packets.slice(2), clip.opus);
  assert.equal(written.packets[0].toString('latin1', 0, 8), 'OpusHead');
  assert.equal(written.packets[1].toString('latin1', 0, 8), 'OpusTags');
  await assertPlays(path, 'opus', (clip.opus.length * 960) / 48_000);
});

test('Ogg Opus: a jump in the RTP timeline (DTX, loss) is filled so the audio after it stays in place; pages hold at most 200 ms of audio', async () => {
  const path = join(dir, 'opus-gap.ogg');
  const gap = 48_000 + 2 * 960 + 240; // a second and 45 ms not sent
  const rtp = opusPackets(clip.opus, 50, gap).filter((_, i) => i !== 20); // and one packet lost
  await capture('OPUS', rtp, path);

  const { stdout } = await run(FFPROBE, ['-v', 'error', '-show_entries', 'packet=pts,size', '-of', 'csv=p=0', path]);
  const packets = stdout.trim().split('\n').map((line) => line.split(',').map(Number));
  const real = packets.filter(([, size]) => size > 2).map(([pts]) => pts);
  assert.equal(real.length, clip.opus.length - 1);
  assert.equal(real[19], 19 * 960);
  assert.equal(real[20], 21 * 960, 'after the lost packet');
  assert.equal(real[49 - 1], 49 * 960);
  assert.equal(real[50 - 1], 50 * 960 + gap, 'after the jump');
  const { granules } = readOggPackets(await readFile(path));
  const spans = granules.slice(2).map((g, i) => g - granules[i + 1]);
  assert.deepEqual(
    spans.filter((n) => n > 9_600 + 960),
    [spans.find((n) => n > gap)],
    `pages of ${spans.join(', ')} samples: only the one with the filling is longer than 200 ms`,
  );
  const total = clip.opus.length * 960 + gap;
  assert.equal((await scanOgg(path)).durationSamples, total);
  await assertPlays(path, 'opus', total / 48_000);
  // Decoded, the audio is as long as the timeline: the gap is in the samples, not only in the pts.
  const { stdout: pcm } = await run(FFMPEG, ['-v', 'error', '-i', path, '-f', 's16le', '-ac', '1', '-'], { encoding: 'buffer', maxBuffer: 1 << 24 });
  assert.equal(pcm.length / 2, total);
});

// ---- after a crash ----

test('scanIvf cuts a file that ends mid-frame after its last whole frame, fixes the header duration, and ffmpeg then reads it cleanly', async () => {
  const whole = join(dir, 'vp8.ivf');
  const path = join(dir, 'vp8-cut.ivf');
  await copyFile(whole, path);
  const { frames } = readIvf(await readFile(whole));
  const size = (await stat(whole)).size;
  const lastFrame = 12 + frames[frames.length - 1].data.length;
  await truncate(path, size - 7);
  const fh = await open(path, 'r+');
  await fh.write(Buffer.alloc(4), 0, 4, 24); // the length a crashed writer never filled in
  await fh.close();

  const scan = await scanIvf(path);

  assert.equal(scan.frames, frames.length - 1);
  assert.equal(scan.validBytes, size - lastFrame);
  assert.equal((await stat(path)).size, size - lastFrame);
  assert.equal(scan.durationPts, frames[frames.length - 2].pts);
  await assertPlays(path, 'vp8', 2 - 1 / 30, [320, 240]);
  assert.deepEqual(await scanIvf(path), scan, 'a second scan finds the same and changes nothing');
});

test('scanIvf stops at garbage after the last frame, and at a header-only file', async () => {
  const path = join(dir, 'h264-garbage.ivf');
  await copyFile(join(dir, 'h264.ivf'), path);
  const size = (await stat(path)).size;
  await appendFile(path, Buffer.alloc(100, 0xff));

  const scan = await scanIvf(path);

  assert.equal(scan.validBytes, size);
  assert.equal((await stat(path)).size, size);
  assert.equal(scan.frames, clip.h264.length);

  await truncate(path, 40);
  assert.deepEqual(await scanIvf(path), { frames: 0, durationPts: 0, validBytes: 32 });
  await truncate(path, 20);
  assert.deepEqual(await scanIvf(path), { frames: 0, durationPts: 0, validBytes: 0 });
  await assert.rejects(scanIvf(join(dir, 'src.ogg')), /not an IVF file/);
});

test('scanOgg cuts a file that ends mid-page after its last whole page, and ffmpeg then reads it cleanly', async () => {
  const whole = join(dir, 'opus.ogg');
  const path = join(dir, 'opus-cut.ogg');
  await copyFile(whole, path);
  const file = await readFile(whole);
  const pageStarts: number[] = [];
  for (let i = file.indexOf('OggS'); i >= 0; i = file.indexOf('OggS', i + 4)) pageStarts.push(i);
  const lastPage = pageStarts[pageStarts.length - 1];
  const lastPagePackets = file[lastPage + 26];
  const prevGranule = file.readUInt32LE(pageStarts[pageStarts.length - 2] + 6);
  await truncate(path, file.length - 10);

  const scan = await scanOgg(path);

  assert.equal(scan.validBytes, lastPage);
  assert.equal((await stat(path)).size, lastPage);
  assert.equal(scan.packets, clip.opus.length - lastPagePackets);
  assert.equal(scan.durationSamples, prevGranule);
  await assertPlays(path, 'opus', prevGranule / 48_000);

  // A page whose bytes changed fails its CRC: the file ends before it.
  const bad = join(dir, 'opus-bad.ogg');
  const corrupt = Buffer.from(file);
  corrupt[pageStarts[5] + 40] ^= 0x55;
  await appendFile(bad, corrupt);
  assert.equal((await scanOgg(bad)).validBytes, pageStarts[5]);
  assert.equal(oggCrc(file.subarray(pageStarts[5], pageStarts[6])), file.readUInt32LE(pageStarts[5] + 22));
});

// ---- write errors ----

test('a full disk (ENOSPC) is reported once through onError, and close() still resolves', async () => {
  const errors: Error[] = [];
  const ivf = new IvfWriter('/dev/full', 'VP8', (e) => errors.push(e));
  for (const f of clip.vp8.slice(0, 5)) ivf.write({ data: f.data, timestamp: f.ts, key: f.key });
  await ivf.close();
  assert.equal(errors.length, 1);
  assert.equal((errors[0] as NodeJS.ErrnoException).code, 'ENOSPC');

  const oggErrors: Error[] = [];
  const ogg = new OggOpusWriter('/dev/full', (e) => oggErrors.push(e));
  for (let i = 0; i < 30; i++) ogg.write({ data: clip.opus[i], timestamp: i * 960, key: true });
  await ogg.close();
  assert.equal(oggErrors.length, 1);
  assert.equal((oggErrors[0] as NodeJS.ErrnoException).code, 'ENOSPC');
});

test('a file that cannot be created is reported through onError, never thrown', async () => {
  const errors: Error[] = [];
  const w = new IvfWriter(join(dir, 'no-such-dir', 'x.ivf'), 'H264', (e) => errors.push(e));
  w.write({ data: clip.h264[0].data, timestamp: 0, key: true });
  await w.close();
  await w.close();
  assert.equal(errors.length, 1);
  assert.equal((errors[0] as NodeJS.ErrnoException).code, 'ENOENT');
});

test('Ogg: a timestamp jump far beyond the time that passed is a discontinuity, not hours of silence', async () => {
  const path = join(dir, 'jump.ogg');
  const errors: Error[] = [];
  const writer = new OggOpusWriter(path, (e) => errors.push(e));
  // 20 ms packets (TOC 0xfc: CELT fullband 20 ms, one frame), then a jump of one hour, written at once.
  const packet = Buffer.from([0xfc, 1, 2, 3]);
  const started = performance.now();
  for (let i = 0; i < 10; i++) writer.write({ data: packet, timestamp: 1000 + i * 960, key: true });
  for (let i = 0; i < 10; i++) writer.write({ data: packet, timestamp: 1000 + 3600 * 48_000 + i * 960, key: true });
  const took = performance.now() - started;
  await writer.close();
  assert.deepEqual(errors, []);
  // 20 packets of 20 ms plus at most the slack (2 s) of filled silence.
  assert.ok(writer.durationSamples >= 20 * 960 && writer.durationSamples <= 20 * 960 + 2.1 * 48_000, `${writer.durationSamples} samples`);
  assert.ok(took < 50, `${took} ms in write()`);
  assert.equal(await decodeErrors(path), '');
});

test('a video frame that never ends is not held without bound: past MAX_FRAME_PARTS it is dropped', () => {
  const frames: AssembledFrame[] = [];
  let losses = 0;
  const a = new FrameAssembler('VP8', (f) => frames.push(f), () => losses++);
  // A key frame start (S bit, PID 0; frame tag P bit 0) and then endless continuation packets of one timestamp.
  const first = Buffer.concat([Buffer.from([0x10, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00]), Buffer.alloc(1000)]);
  const more = Buffer.concat([Buffer.from([0x00]), Buffer.alloc(1000)]);
  a.push(1, 90_000, false, first);
  for (let i = 0; i < MAX_FRAME_PARTS + 500; i++) a.push((2 + i) & 0xffff, 90_000, false, more);
  // The next frame (a key frame) completes; the broken one was never emitted.
  a.push((MAX_FRAME_PARTS + 502) & 0xffff, 93_000, true, first);
  a.flush();
  assert.ok(frames.every((f) => f.data.length < 2_000_000), frames.map((f) => f.data.length).join(','));
  assert.ok(frames.length <= 1);
});
