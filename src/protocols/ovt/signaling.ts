/**
 * OVT signaling: the JSON requests and responses of OvenMediaEngine v0.20.0 (the comment block of
 * `src/projects/modules/ovt_packetizer/ovt_packet.h`, `ovt_signaling.h`, and their use in
 * `src/projects/publishers/ovt/ovt_publisher.cpp`, `ovt_stream.cpp` and
 * `src/projects/providers/ovt/ovt_stream.cpp`).
 *
 * - Request (payload type 10): `{"id": <uint32>, "application": "describe" | "play" | "stop", "target": "ovt://host:port/app/stream"}`.
 * - Response (payload type 20): `{"id", "application", "code": 200 | 404 | 500…, "message", "contents"?}`;
 *   a play response carries the session id in its packet header.
 * - The describe response's `contents`: `{"version": 0x12, "stream": {"appName", "streamName",
 *   "originStreamUUID", "playlists": [], "tracks": [{"id", "name", "codecId", "mediaType",
 *   "timebaseNum", "timebaseDen", "bitrate", "startFrameTime", "lastFrameTime", "videoTrack":
 *   {"framerate", "width", "height"}, "audioTrack": {"samplerate", "sampleFormat", "layout"}}]}}`.
 *   Kiln adds `"kiln": {"mimeType", "clockRate", "channels", "sdpFmtpLine", "rtcpFeedback",
 *   "transcodedFrom"?}` to each track: what an edge needs to recreate the forwarder's track.
 * - A `stop` response with id 0 from the origin, unasked, ends the stream (OME's edge treats any
 *   `stop` message during media as the end).
 * - Kiln addition: a `keyframe` request (same shape) asks the origin's source for a key frame when
 *   a viewer joins the edge; OME has no such message. The origin does not answer it.
 */

/** `OVT_SIGNALING_VERSION` of `ovt_signaling.h`. */
export const OVT_SIGNALING_VERSION = 0x12;
/** The port an `ovt://` URL without one means (OME's default OVT port). */
export const OVT_DEFAULT_PORT = 9000;

export type OvtApplication = 'describe' | 'play' | 'stop' | 'keyframe';
const APPLICATIONS = new Set<string>(['describe', 'play', 'stop', 'keyframe']);

export interface OvtRequest {
  id: number;
  application: OvtApplication;
  target: string;
  /**
   * Kiln's addition: a proof that the edge is a node of the origin's cluster (an HMAC of the
   * target's `app/stream` with a key the cluster shares), needed for apps whose playback asks for
   * a token.
   */
  auth?: string;
}

export interface OvtResponse {
  id: number;
  application: string;
  code: number;
  message: string;
  contents?: unknown;
}

/**
 * A request or response that does not hold together. `code` is what OME answers a bad request
 * with (404 for every malformed request), so the origin can answer with it.
 */
export class OvtSignalingError extends Error {
  override name = 'OvtSignalingError';
  readonly code: number;

  constructor(message: string, code = 404) {
    super(message);
    this.code = code;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isUint32 = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;

function parseJson(message: Buffer): unknown {
  try {
    return JSON.parse(message.toString('utf8'));
  } catch {
    return undefined;
  }
}

export function encodeRequest(request: OvtRequest): Buffer {
  return Buffer.from(JSON.stringify(request));
}

export function encodeResponse(response: OvtResponse): Buffer {
  return Buffer.from(JSON.stringify(response));
}

/** Reads a request as OME's publisher does (application names case-blind); throws OvtSignalingError with OME's texts. */
export function parseRequest(message: Buffer): OvtRequest {
  const json = parseJson(message);
  if (!isObject(json)) throw new OvtSignalingError('An invalid request : Json format');
  const { id, application, target } = json;
  if (!isUint32(id) || typeof application !== 'string' || typeof target !== 'string') {
    throw new OvtSignalingError('An invalid request : id or target or application are invalid');
  }
  const app = application.toLowerCase();
  if (!APPLICATIONS.has(app)) throw new OvtSignalingError('Unknown application');
  const request: OvtRequest = { id, application: app as OvtApplication, target };
  if (typeof json.auth === 'string' && json.auth.length <= 256) request.auth = json.auth;
  return request;
}

/** Reads a response as OME's provider does; throws OvtSignalingError naming what is missing. */
export function parseResponse(message: Buffer): OvtResponse {
  const json = parseJson(message);
  if (!isObject(json)) throw new OvtSignalingError('an invalid response: not a JSON object');
  const { id, application, code, message: text, contents } = json;
  if (!isUint32(id) || typeof application !== 'string' || !isUint32(code) || typeof text !== 'string') {
    throw new OvtSignalingError('an invalid response: id, application, code or message missing or of the wrong type');
  }
  return { id, application: application.toLowerCase(), code, message: text, contents };
}

/** What an `ovt://` URL names. */
export interface OvtTarget {
  host: string;
  port: number;
  app: string;
  stream: string;
}

/** Reads `ovt://host[:port]/{app}/{stream}` (a query is ignored); throws TypeError saying what is wrong. */
export function parseOvtUrl(url: string): OvtTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError('not a URL');
  }
  if (parsed.protocol !== 'ovt:') throw new TypeError(`the scheme is not ovt: "${parsed.protocol.replace(':', '')}"`);
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  if (host === '') throw new TypeError('no host');
  const parts = parsed.pathname.split('/').filter((p) => p !== '');
  if (parts.length !== 2) throw new TypeError('the path must be /{app}/{stream}');
  let app: string;
  let stream: string;
  try {
    app = decodeURIComponent(parts[0]);
    stream = decodeURIComponent(parts[1]);
  } catch {
    throw new TypeError('the path is not valid percent-encoding');
  }
  return { host, port: parsed.port === '' ? OVT_DEFAULT_PORT : Number(parsed.port), app, stream };
}

/** A track as an edge recreates it: the forwarder's codec parameters and the track's facts. */
export interface OvtTrackDescription {
  /** The id media records carry. */
  id: number;
  kind: 'video' | 'audio';
  mimeType: string;
  clockRate: number;
  channels: number;
  /** The codec's fmtp line (werift's `parameters`). */
  sdpFmtpLine?: string;
  rtcpFeedback: { type: string; parameter?: string }[];
  width: number;
  height: number;
  frameRate: number;
  bitrate: number;
  transcodedFrom?: { codec: string; clockRate: number; channels: number };
}

export interface OvtStreamDescription {
  appName: string;
  streamName: string;
  originStreamUUID: string;
  tracks: OvtTrackDescription[];
}

/** OME's `cmn::MediaCodecId` for the codecs Kiln forwards. */
const CODEC_IDS: Record<string, number> = { 'video/h264': 1, 'video/h265': 2, 'video/vp8': 3, 'video/vp9': 4, 'video/av1': 5, 'audio/opus': 9 };
/** OME's `AudioChannel::Layout` (FFmpeg's channel masks): mono, stereo; 0 when unknown. */
const LAYOUTS: Record<number, number> = { 1: 0x4, 2: 0x3 };

/** The describe response's `contents` for a stream. */
export function describeContents(stream: OvtStreamDescription): Record<string, unknown> {
  return {
    version: OVT_SIGNALING_VERSION,
    stream: {
      appName: stream.appName,
      streamName: stream.streamName,
      originStreamUUID: stream.originStreamUUID,
      playlists: [],
      tracks: stream.tracks.map((t) => ({
        id: t.id,
        name: `${t.kind}_${t.id}`,
        codecId: CODEC_IDS[t.mimeType.toLowerCase()] ?? 0,
        mediaType: t.kind === 'video' ? 0 : 1,
        timebaseNum: 1,
        timebaseDen: t.clockRate,
        bitrate: t.bitrate,
        startFrameTime: 0,
        lastFrameTime: 0,
        videoTrack: { framerate: t.frameRate, width: t.width, height: t.height },
        // The source's sample format is not known without decoding: OME's None (-1).
        audioTrack: { samplerate: t.kind === 'audio' ? t.clockRate : 0, sampleFormat: -1, layout: LAYOUTS[t.channels] ?? 0 },
        kiln: {
          mimeType: t.mimeType,
          clockRate: t.clockRate,
          channels: t.channels,
          ...(t.sdpFmtpLine ? { sdpFmtpLine: t.sdpFmtpLine } : {}),
          rtcpFeedback: t.rtcpFeedback,
          ...(t.transcodedFrom ? { transcodedFrom: t.transcodedFrom } : {}),
        },
      })),
    },
  };
}

const MAX_TRACKS = 16;
const MAX_TEXT = 4096;

/**
 * Reads and checks a describe response's `contents` from a Kiln origin; throws
 * OvtSignalingError naming the first member at fault.
 */
export function parseDescribeContents(contents: unknown): OvtStreamDescription {
  const fail = (what: string): never => {
    throw new OvtSignalingError(`an invalid describe response: ${what}`);
  };
  if (!isObject(contents)) fail('no contents');
  const c = contents as Record<string, unknown>;
  if (c.version !== undefined && c.version !== OVT_SIGNALING_VERSION) fail(`signaling version ${String(c.version)}, expected ${OVT_SIGNALING_VERSION}`);
  if (!isObject(c.stream)) fail('no stream');
  const s = c.stream as Record<string, unknown>;
  if (typeof s.appName !== 'string' || typeof s.streamName !== 'string') fail('stream.appName or stream.streamName missing');
  if (!Array.isArray(s.tracks)) fail('stream.tracks is not an array');
  const tracks = s.tracks as unknown[];
  if (tracks.length === 0) fail('the stream has no tracks');
  if (tracks.length > MAX_TRACKS) fail(`more than ${MAX_TRACKS} tracks`);
  const ids = new Set<number>();
  const out = tracks.map((raw, i): OvtTrackDescription => {
    const at = `stream.tracks[${i}]`;
    if (!isObject(raw)) fail(`${at} is not an object`);
    const t = raw as Record<string, unknown>;
    if (!isUint32(t.id)) fail(`${at}.id must be an unsigned 32-bit integer`);
    const id = t.id as number;
    if (ids.has(id)) fail(`${at}.id ${id} is used twice`);
    ids.add(id);
    if (t.mediaType !== 0 && t.mediaType !== 1) fail(`${at}.mediaType must be 0 (video) or 1 (audio)`);
    const kind = t.mediaType === 0 ? 'video' : 'audio';
    if (!isObject(t.kiln)) fail(`${at}.kiln missing: the origin is not a Kiln node`);
    const k = t.kiln as Record<string, unknown>;
    const mimeType = k.mimeType;
    if (typeof mimeType !== 'string' || CODEC_IDS[mimeType.toLowerCase()] === undefined || !mimeType.toLowerCase().startsWith(`${kind}/`)) {
      fail(`${at}.kiln.mimeType must be a ${kind} codec Kiln forwards (${Object.keys(CODEC_IDS).filter((m) => m.startsWith(kind)).join(', ')})`);
    }
    if (!isUint32(k.clockRate) || k.clockRate === 0 || k.clockRate > 1_000_000) fail(`${at}.kiln.clockRate must be a positive integer`);
    if (!isUint32(k.channels) || k.channels > 8) fail(`${at}.kiln.channels must be an integer from 0 to 8`);
    if (k.sdpFmtpLine !== undefined && (typeof k.sdpFmtpLine !== 'string' || k.sdpFmtpLine.length > MAX_TEXT || /[\r\n]/.test(k.sdpFmtpLine))) {
      fail(`${at}.kiln.sdpFmtpLine must be one line of at most ${MAX_TEXT} characters`);
    }
    const feedback = k.rtcpFeedback ?? [];
    if (!Array.isArray(feedback) || feedback.length > 16) fail(`${at}.kiln.rtcpFeedback must be an array of at most 16`);
    const rtcpFeedback = (feedback as unknown[]).map((f, j) => {
      const ok = isObject(f) && typeof f.type === 'string' && f.type.length <= 64 && /^[\w-]+$/.test(f.type)
        && (f.parameter === undefined || (typeof f.parameter === 'string' && f.parameter.length <= 64 && /^[\w -]*$/.test(f.parameter)));
      if (!ok) fail(`${at}.kiln.rtcpFeedback[${j}] must be {type, parameter?} of short words`);
      const e = f as { type: string; parameter?: string };
      return e.parameter === undefined ? { type: e.type } : { type: e.type, parameter: e.parameter };
    });
    const video = isObject(t.videoTrack) ? t.videoTrack : {};
    const num = (v: unknown, max: number) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= max ? v : 0);
    let transcodedFrom: OvtTrackDescription['transcodedFrom'];
    if (k.transcodedFrom !== undefined) {
      const f = k.transcodedFrom;
      if (!isObject(f) || typeof f.codec !== 'string' || f.codec.length > 32 || !isUint32(f.clockRate) || !isUint32(f.channels)) {
        fail(`${at}.kiln.transcodedFrom must be {codec, clockRate, channels}`);
      }
      const g = f as { codec: string; clockRate: number; channels: number };
      transcodedFrom = { codec: g.codec, clockRate: g.clockRate, channels: g.channels };
    }
    const track: OvtTrackDescription = {
      id,
      kind,
      mimeType: mimeType as string,
      clockRate: k.clockRate as number,
      channels: k.channels as number,
      rtcpFeedback,
      width: Math.round(num(video.width, 16384)),
      height: Math.round(num(video.height, 16384)),
      frameRate: num(video.framerate, 1000),
      bitrate: Math.round(num(t.bitrate, 1e10)),
    };
    if (typeof k.sdpFmtpLine === 'string') track.sdpFmtpLine = k.sdpFmtpLine;
    if (transcodedFrom) track.transcodedFrom = transcodedFrom;
    return track;
  });
  return {
    appName: s.appName as string,
    streamName: s.streamName as string,
    originStreamUUID: typeof s.originStreamUUID === 'string' ? s.originStreamUUID : '',
    tracks: out,
  };
}
