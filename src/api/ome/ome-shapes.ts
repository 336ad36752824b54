/**
 * Kiln's domain objects in OvenMediaEngine's response shapes (OME `api_server` conversions).
 */
import type { Application, VirtualHost } from '../../core/catalog.ts';
import type { Stream, TrackInfo } from '../../core/stream.ts';

/** OME's time format: ISO 8601 with milliseconds and the UTC offset, e.g. `2021-01-11T03:45:21.879+00:00`. */
export function omeTime(date: Date): string {
  return date.toISOString().replace('Z', '+00:00');
}

export function vhostInfo(vhost: VirtualHost): Record<string, unknown> {
  return {
    name: vhost.name,
    distribution: 'kiln',
    host: { names: ['*'], tls: { certPath: '', chainCertPath: '', keyPath: '' } },
  };
}

export function appInfo(app: Application): Record<string, unknown> {
  return {
    name: app.name,
    dynamic: false,
    type: 'live',
    providers: { webrtc: {}, rtspPull: {}, ovt: {} },
    publishers: { webrtc: {}, ovt: {} },
    outputProfiles: {
      outputProfile: [{ name: 'bypass', outputStreamName: '${OriginStreamName}', encodes: { videos: [{ bypass: true }], audios: [{ bypass: true }] } }],
    },
  };
}

/** A track as OME v0.20 serialises it (json_serdes/stream.cpp); OME itself never emits `timebase`. */
function trackShape(t: TrackInfo, output: boolean): Record<string, unknown> {
  // An input that is transcoded shows its own codec; its output the encoded one (not bypassed).
  const source = !output && t.transcodedFrom ? t.transcodedFrom : t;
  const bypass = output && !t.transcodedFrom;
  if (t.kind === 'video') {
    return {
      id: t.id,
      name: 'Video',
      type: 'Video',
      video: {
        bypass,
        codec: t.codec,
        width: t.width,
        height: t.height,
        bitrate: t.bitrate,
        bitrateAvg: t.bitrateAvg,
        bitrateConf: 0,
        bitrateLatest: t.bitrate,
        framerate: t.frameRate,
        framerateAvg: t.frameRateAvg,
        framerateConf: 0,
        framerateLatest: t.frameRate,
        hasBframes: false,
        keyFrameInterval: t.keyFrameInterval,
        keyFrameIntervalAvg: t.keyFrameInterval,
        keyFrameIntervalConf: 0,
        keyFrameIntervalLatest: t.keyFrameInterval,
        deltaFramesSinceLastKeyFrame: t.framesSinceKeyFrame,
      },
    };
  }
  return {
    id: t.id,
    name: 'Audio',
    type: 'Audio',
    audio: {
      bypass,
      codec: source.codec,
      samplerate: source.clockRate,
      channel: source.channels,
      bitrate: t.bitrate,
      bitrateAvg: t.bitrateAvg,
      bitrateConf: 0,
      bitrateLatest: t.bitrate,
    },
  };
}

const SOURCE_TYPE: Record<Stream['sourceType'], string> = { WebRTC: 'WebRTC', RTSP: 'RtspPull', OVT: 'Ovt', Room: 'WebRTC' };

/** What OME's stream info shows of a stream: a live Stream of this node, or another node's snapshot. */
export type StreamView = Pick<Stream, 'name' | 'createdAt' | 'sourceType' | 'tracks' | 'sourceUrl'>;

export function streamInfo(stream: StreamView): Record<string, unknown> {
  const input: Record<string, unknown> = {
    createdTime: omeTime(stream.createdAt),
    sourceType: SOURCE_TYPE[stream.sourceType],
    tracks: stream.tracks.map((t) => trackShape(t, false)),
  };
  if (stream.sourceUrl) input.sourceUrl = stream.sourceUrl;
  // One output with OME's WebRTC playlist: tracks bypassed, except pulled audio transcoded to Opus.
  const playlist = {
    name: 'webrtc_default',
    fileName: 'webrtc_default',
    options: { webrtcAutoAbr: false, hlsChunklistPathDepth: -1, enableTsPackaging: false },
    renditions: [{ name: 'default', videoVariantName: 'Video', audioVariantName: 'Audio' }],
  };
  return {
    name: stream.name,
    input,
    outputs: [{ name: stream.name, tracks: stream.tracks.map((t) => trackShape(t, true)), playlists: [playlist] }],
  };
}
