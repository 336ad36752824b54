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

function trackShape(t: TrackInfo): Record<string, unknown> {
  const timebase = { num: 1, den: t.clockRate };
  if (t.kind === 'video') {
    return {
      id: t.id,
      name: `${t.codec}_${t.id}`,
      type: 'Video',
      video: {
        bypass: true,
        codec: t.codec,
        width: t.width,
        height: t.height,
        framerate: t.frameRate,
        bitrate: String(t.bitrate),
        hasBframes: false,
        timebase,
      },
    };
  }
  return {
    id: t.id,
    name: `${t.codec}_${t.id}`,
    type: 'Audio',
    audio: {
      bypass: true,
      codec: t.codec,
      samplerate: t.clockRate,
      channel: t.channels,
      bitrate: String(t.bitrate),
      timebase,
    },
  };
}

const SOURCE_TYPE: Record<Stream['sourceType'], string> = { WebRTC: 'WebRTC', RTSP: 'RtspPull', OVT: 'Ovt', Room: 'WebRTC' };

export function streamInfo(stream: Stream): Record<string, unknown> {
  const input: Record<string, unknown> = {
    createdTime: omeTime(stream.createdAt),
    sourceType: SOURCE_TYPE[stream.sourceType],
    tracks: stream.tracks.map(trackShape),
  };
  if (stream.sourceUrl) input.sourceUrl = stream.sourceUrl;
  return {
    name: stream.name,
    input,
    outputs: [{ name: stream.name, tracks: stream.tracks.map(trackShape) }],
  };
}
