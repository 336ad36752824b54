/**
 * Just enough of each video codec's RTP payload format to tell key frames apart and to read the
 * picture size from them. No allocation on the common (non-key-frame) path.
 */

/** Picture size found in a key frame. */
export interface PictureSize {
  width: number;
  height: number;
}

export type VideoCodecName = 'VP8' | 'VP9' | 'H264' | 'H265' | 'AV1';

/** Whether this RTP payload starts (or carries) a key frame. RFC 7741, RFC 6184, VP9 RTP draft, AV1 RTP spec. */
export function isKeyFrame(codec: VideoCodecName, payload: Uint8Array): boolean {
  switch (codec) {
    case 'VP8':
      return vp8KeyFrameOffset(payload) >= 0;
    case 'VP9':
      return vp9IsKeyFrame(payload);
    case 'H264':
      return h264HasNal(payload, 5) || h264HasNal(payload, 7);
    case 'H265':
      return h265IsKeyFrame(payload);
    case 'AV1':
      // Aggregation header: Z Y W W N - - -; N marks the first packet of a coded video sequence.
      return payload.length > 0 && (payload[0] & 0x08) !== 0;
  }
}

/** Picture size of a key frame's first packet, or undefined when it cannot be read here. */
export function keyFrameSize(codec: VideoCodecName, payload: Uint8Array): PictureSize | undefined {
  switch (codec) {
    case 'VP8': {
      const at = vp8KeyFrameOffset(payload);
      if (at < 0 || payload.length < at + 10) return undefined;
      // Frame tag (3 bytes), start code 9d 01 2a, then 14-bit width and height (RFC 6386 §9.1).
      if (payload[at + 3] !== 0x9d || payload[at + 4] !== 0x01 || payload[at + 5] !== 0x2a) return undefined;
      const width = (payload[at + 6] | (payload[at + 7] << 8)) & 0x3fff;
      const height = (payload[at + 8] | (payload[at + 9] << 8)) & 0x3fff;
      return { width, height };
    }
    case 'VP9':
      return vp9ScalabilitySize(payload);
    case 'H264': {
      const sps = h264FindNal(payload, 7);
      return sps ? parseH264SpsSize(sps) : undefined;
    }
    default:
      return undefined;
  }
}

/** Offset of the VP8 payload in a packet that starts a key frame, or -1. */
function vp8KeyFrameOffset(p: Uint8Array): number {
  if (p.length < 1) return -1;
  const b0 = p[0];
  const start = (b0 & 0x10) !== 0;
  const partition = b0 & 0x07;
  if (!start || partition !== 0) return -1;
  let i = 1;
  if (b0 & 0x80) {
    if (p.length < 2) return -1;
    const x = p[1];
    i = 2;
    if (x & 0x80) i += p.length > i && p[i] & 0x80 ? 2 : 1; // PictureID, 7 or 15 bits
    if (x & 0x40) i += 1; // TL0PICIDX
    if (x & 0x30) i += 1; // TID/KEYIDX
  }
  if (i >= p.length) return -1;
  return (p[i] & 0x01) === 0 ? i : -1; // P bit of the frame tag: 0 = key frame
}

function vp9IsKeyFrame(p: Uint8Array): boolean {
  if (p.length < 1) return false;
  const b0 = p[0];
  // I P L F B E V Z: a key frame is not inter-predicted (P=0) and this packet begins it (B=1).
  return (b0 & 0x40) === 0 && (b0 & 0x08) !== 0;
}

/** Reads the width/height of the first spatial layer from the VP9 scalability structure. */
function vp9ScalabilitySize(p: Uint8Array): PictureSize | undefined {
  if (p.length < 1) return undefined;
  const b0 = p[0];
  const flexible = (b0 & 0x10) !== 0;
  let i = 1;
  if (b0 & 0x80) i += p.length > i && p[i] & 0x80 ? 2 : 1; // picture id
  if (b0 & 0x20) i += flexible ? 1 : 2; // layer indices (+ TL0PICIDX in non-flexible mode)
  if (flexible && b0 & 0x40) {
    while (i < p.length && p[i] & 0x01) i++; // P_DIFF list, N bit continues
    i++;
  }
  if (!(b0 & 0x02) || i >= p.length) return undefined; // no SS
  const ss = p[i++];
  const layers = (ss >> 5) + 1;
  if (!(ss & 0x10) || i + 4 * layers > p.length) return undefined; // Y: sizes present
  // Report the highest spatial layer: that is the picture the viewer gets.
  const at = i + 4 * (layers - 1);
  return { width: (p[at] << 8) | p[at + 1], height: (p[at + 2] << 8) | p[at + 3] };
}

/** Whether an H.264 RTP payload holds (or starts) a NAL unit of `type`. */
function h264HasNal(p: Uint8Array, type: number): boolean {
  if (p.length < 1) return false;
  const nal = p[0] & 0x1f;
  if (nal === type) return true;
  if (nal === 24) {
    // STAP-A: 16-bit sizes followed by NAL units.
    let i = 1;
    while (i + 2 < p.length) {
      const size = (p[i] << 8) | p[i + 1];
      if ((p[i + 2] & 0x1f) === type) return true;
      i += 2 + size;
    }
    return false;
  }
  if (nal === 28 && p.length > 1) return (p[1] & 0x80) !== 0 && (p[1] & 0x1f) === type; // FU-A start
  return false;
}

/** The NAL unit of `type` from a single-NAL or STAP-A payload. */
export function h264FindNal(p: Uint8Array, type: number): Uint8Array | undefined {
  if (p.length < 1) return undefined;
  const nal = p[0] & 0x1f;
  if (nal === type) return p;
  if (nal === 24) {
    let i = 1;
    while (i + 2 < p.length) {
      const size = (p[i] << 8) | p[i + 1];
      if ((p[i + 2] & 0x1f) === type && i + 2 + size <= p.length) return p.subarray(i + 2, i + 2 + size);
      i += 2 + size;
    }
  }
  return undefined;
}

function h265IsKeyFrame(p: Uint8Array): boolean {
  if (p.length < 2) return false;
  const type = (p[0] >> 1) & 0x3f;
  if (type >= 16 && type <= 21) return true; // IRAP
  if (type === 32 || type === 33 || type === 34) return true; // VPS/SPS/PPS
  if (type === 48) {
    // Aggregation packet: 16-bit sizes followed by NAL units.
    let i = 2;
    while (i + 3 < p.length) {
      const size = (p[i] << 8) | p[i + 1];
      const t = (p[i + 2] >> 1) & 0x3f;
      if ((t >= 16 && t <= 21) || t === 32) return true;
      i += 2 + size;
    }
    return false;
  }
  if (type === 49 && p.length > 2) {
    const fu = p[2];
    const t = fu & 0x3f;
    return (fu & 0x80) !== 0 && t >= 16 && t <= 21;
  }
  return false;
}

/** Exp-Golomb reader over an RBSP (emulation prevention bytes removed). */
class BitReader {
  #data: Uint8Array;
  #bit = 0;

  constructor(data: Uint8Array) {
    this.#data = data;
  }

  get exhausted(): boolean {
    return this.#bit >= this.#data.length * 8;
  }

  u(n: number): number {
    let v = 0;
    for (let k = 0; k < n; k++) {
      const byte = this.#data[this.#bit >> 3] ?? 0;
      v = v * 2 + ((byte >> (7 - (this.#bit & 7))) & 1);
      this.#bit++;
    }
    return v;
  }

  ue(): number {
    let zeros = 0;
    while (this.u(1) === 0) {
      if (++zeros > 31 || this.exhausted) throw new RangeError('bad exp-golomb code');
    }
    return zeros === 0 ? 0 : 2 ** zeros - 1 + this.u(zeros);
  }

  se(): number {
    const k = this.ue();
    return k & 1 ? (k + 1) / 2 : -(k / 2);
  }
}

function unescapeRbsp(nal: Uint8Array): Uint8Array {
  const out = new Uint8Array(nal.length);
  let n = 0;
  let zeros = 0;
  for (let i = 0; i < nal.length; i++) {
    const b = nal[i];
    if (zeros >= 2 && b === 3) {
      zeros = 0;
      continue;
    }
    zeros = b === 0 ? zeros + 1 : 0;
    out[n++] = b;
  }
  return out.subarray(0, n);
}

/** Picture size from an H.264 sequence parameter set NAL unit (ITU-T H.264 §7.3.2.1.1). */
export function parseH264SpsSize(nal: Uint8Array): PictureSize | undefined {
  try {
    const r = new BitReader(unescapeRbsp(nal.subarray(1)));
    const profile = r.u(8);
    r.u(16); // constraint flags, level
    r.ue(); // seq_parameter_set_id
    let chromaFormat = 1;
    if ([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135].includes(profile)) {
      chromaFormat = r.ue();
      if (chromaFormat === 3) r.u(1);
      r.ue();
      r.ue();
      r.u(1);
      if (r.u(1)) {
        for (let i = 0; i < (chromaFormat !== 3 ? 8 : 12); i++) {
          if (!r.u(1)) continue;
          let last = 8;
          let next = 8;
          for (let j = 0; j < (i < 6 ? 16 : 64); j++) {
            if (next !== 0) next = (last + r.se() + 256) % 256;
            last = next === 0 ? last : next;
          }
        }
      }
    }
    r.ue(); // log2_max_frame_num_minus4
    const pocType = r.ue();
    if (pocType === 0) r.ue();
    else if (pocType === 1) {
      r.u(1);
      r.se();
      r.se();
      const cycle = r.ue();
      for (let i = 0; i < cycle; i++) r.se();
    }
    r.ue(); // max_num_ref_frames
    r.u(1);
    const widthMbs = r.ue() + 1;
    const heightUnits = r.ue() + 1;
    const frameMbsOnly = r.u(1);
    if (!frameMbsOnly) r.u(1);
    r.u(1);
    let cropLeft = 0;
    let cropRight = 0;
    let cropTop = 0;
    let cropBottom = 0;
    if (r.u(1)) {
      cropLeft = r.ue();
      cropRight = r.ue();
      cropTop = r.ue();
      cropBottom = r.ue();
    }
    const unitX = chromaFormat === 0 || chromaFormat === 3 ? 1 : 2;
    const unitY = (chromaFormat === 1 ? 2 : 1) * (2 - frameMbsOnly);
    const width = widthMbs * 16 - unitX * (cropLeft + cropRight);
    const height = (2 - frameMbsOnly) * heightUnits * 16 - unitY * (cropTop + cropBottom);
    if (width <= 0 || height <= 0 || width > 16384 || height > 16384) return undefined;
    return { width, height };
  } catch {
    return undefined;
  }
}
