/**
 * Re-packetizes an H.264 RTP stream (RFC 6184) from a camera for WebRTC players: every IDR is
 * preceded by the SPS and PPS (from `sprop-parameter-sets` or the latest seen in band), and no
 * packet is larger than the MTU budget (oversized NAL units and fragments are re-fragmented as
 * FU-A). Packets that need no change pass through as they are, without copying.
 */

/** Payload bytes per packet sent to players: 1200 keeps SRTP over UDP under a 1280-byte path MTU. */
export const MAX_PAYLOAD = 1200;

const STAP_A = 24;
const FU_A = 28;
const IDR = 5;
const SPS = 7;
const PPS = 8;

/** Receives each outgoing payload; `marker` ends the access unit. Must not throw. */
export type EmitPayload = (payload: Buffer, marker: boolean) => void;

/** SPS and PPS from an fmtp `sprop-parameter-sets` value (base64 NAL units, comma-separated). */
export function spropParameterSets(value: string | undefined): { sps?: Buffer; pps?: Buffer } {
  const out: { sps?: Buffer; pps?: Buffer } = {};
  if (!value) return out;
  for (const part of value.split(',')) {
    const nal = Buffer.from(part.trim(), 'base64');
    if (nal.length < 2) continue;
    const type = nal[0] & 0x1f;
    if (type === SPS && !out.sps) out.sps = nal;
    else if (type === PPS && !out.pps) out.pps = nal;
  }
  return out;
}

/**
 * The `profile-level-id` to announce for an SPS, normalised to the profiles browsers list
 * (constrained baseline 42e0, baseline 4200, main 4d00, high 6400) so that the viewer's offer has a
 * matching entry; the level is the SPS's.
 */
export function profileLevelId(sps: Buffer | undefined, fallback = '42e01f'): string {
  if (!sps || sps.length < 4) return fallback;
  const profile = sps[1];
  const constraints = sps[2];
  const level = sps[3].toString(16).padStart(2, '0');
  if (profile === 66) return ((constraints & 0x40) !== 0 ? '42e0' : '4200') + level;
  if (profile === 77) return `4d00${level}`;
  if (profile === 100) return `6400${level}`;
  return sps.subarray(1, 4).toString('hex');
}

export class H264Repacketizer {
  sps: Buffer | undefined;
  pps: Buffer | undefined;
  readonly #max: number;
  /** The access unit (RTP timestamp) being read, and whether its SPS and PPS went out. */
  #timestamp = -1;
  #hadSps = false;
  #hadPps = false;
  /** Packets dropped as not H.264 we can carry (reserved or unsupported NAL unit types). */
  dropped = 0;

  constructor(parameterSets: { sps?: Buffer; pps?: Buffer } = {}, maxPayload = MAX_PAYLOAD) {
    this.sps = parameterSets.sps;
    this.pps = parameterSets.pps;
    this.#max = maxPayload;
  }

  /** Handles one RTP payload of the camera's stream. */
  push(payload: Buffer, marker: boolean, timestamp: number, emit: EmitPayload): void {
    if (payload.length < 1) return;
    if (timestamp !== this.#timestamp) {
      this.#timestamp = timestamp;
      this.#hadSps = false;
      this.#hadPps = false;
    }
    const type = payload[0] & 0x1f;
    if (type >= 1 && type <= 23) {
      this.#see(payload, emit);
      this.#single(payload, marker, emit);
    } else if (type === STAP_A) {
      this.#stapA(payload, marker, emit);
    } else if (type === FU_A) {
      this.#fuA(payload, marker, emit);
    } else {
      this.dropped++;
    }
  }

  /** Notes a parameter set, and puts SPS/PPS ahead of an IDR that lacks them. */
  #see(nal: Buffer, emit: EmitPayload): void {
    const type = nal[0] & 0x1f;
    if (type === SPS) {
      this.sps = Buffer.from(nal);
      this.#hadSps = true;
    } else if (type === PPS) {
      this.pps = Buffer.from(nal);
      this.#hadPps = true;
    } else if (type === IDR) {
      this.#beforeIdr(emit);
    }
  }

  #beforeIdr(emit: EmitPayload): void {
    if (!this.#hadSps && this.sps) {
      this.#hadSps = true;
      emit(this.sps, false);
    }
    if (!this.#hadPps && this.pps) {
      this.#hadPps = true;
      emit(this.pps, false);
    }
  }

  /** One NAL unit: as it is when it fits, else as FU-A fragments. */
  #single(nal: Buffer, marker: boolean, emit: EmitPayload): void {
    if (nal.length <= this.#max) {
      emit(nal, marker);
      return;
    }
    const indicator = (nal[0] & 0xe0) | FU_A;
    const type = nal[0] & 0x1f;
    this.#fragment(indicator, type, nal.subarray(1), true, true, marker, emit);
  }

  /** Writes `data` as FU-A packets of at most the MTU budget. */
  #fragment(indicator: number, type: number, data: Buffer, start: boolean, end: boolean, marker: boolean, emit: EmitPayload): void {
    const chunk = this.#max - 2;
    for (let at = 0; at < data.length; at += chunk) {
      const last = at + chunk >= data.length;
      const part = data.subarray(at, Math.min(at + chunk, data.length));
      const out = Buffer.allocUnsafe(2 + part.length);
      out[0] = indicator;
      out[1] = (start && at === 0 ? 0x80 : 0) | (end && last ? 0x40 : 0) | type;
      part.copy(out, 2);
      emit(out, marker && last);
    }
  }

  #stapA(payload: Buffer, marker: boolean, emit: EmitPayload): void {
    // Validate and look inside first: parameter sets, and an IDR that needs them in front.
    const nals: Buffer[] = [];
    let at = 1;
    while (at + 2 <= payload.length) {
      const size = payload.readUInt16BE(at);
      at += 2;
      if (size === 0 || at + size > payload.length) {
        this.dropped++;
        return;
      }
      nals.push(payload.subarray(at, at + size));
      at += size;
    }
    if (nals.length === 0) return;
    let idr = false;
    for (const nal of nals) {
      const type = nal[0] & 0x1f;
      if (type === SPS) this.sps = Buffer.from(nal);
      else if (type === PPS) this.pps = Buffer.from(nal);
      else if (type === IDR && !idr) {
        idr = true;
        // Parameter sets earlier in this aggregate count as sent.
        const before = nals.slice(0, nals.indexOf(nal)).map((n) => n[0] & 0x1f);
        if (before.includes(SPS)) this.#hadSps = true;
        if (before.includes(PPS)) this.#hadPps = true;
        this.#beforeIdr(emit);
      }
    }
    for (const nal of nals) {
      const type = nal[0] & 0x1f;
      if (type === SPS) this.#hadSps = true;
      if (type === PPS) this.#hadPps = true;
    }
    if (payload.length <= this.#max) {
      emit(payload, marker);
      return;
    }
    for (let i = 0; i < nals.length; i++) this.#single(nals[i], marker && i === nals.length - 1, emit);
  }

  #fuA(payload: Buffer, marker: boolean, emit: EmitPayload): void {
    if (payload.length < 3) {
      this.dropped++;
      return;
    }
    const header = payload[1];
    const start = (header & 0x80) !== 0;
    const type = header & 0x1f;
    if (start && type === IDR) this.#beforeIdr(emit);
    if (payload.length <= this.#max) {
      emit(payload, marker);
      return;
    }
    this.#fragment(payload[0], type, payload.subarray(2), start, (header & 0x40) !== 0, marker, emit);
  }
}
