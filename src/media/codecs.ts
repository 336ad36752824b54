/**
 * The codecs Kiln forwards without transcoding (SPEC.md §3) and how they are negotiated with werift.
 */
import { RTCRtpCodecParameters, useNACK, usePLI, useREMB } from 'werift';
import type { VideoCodecName } from './bitstream.ts';

const videoFeedback = () => [useNACK(), usePLI(), useREMB(), { type: 'ccm', parameter: 'fir' }];

/**
 * Codecs a publisher may send, in order of preference. H.264 is listed per profile and
 * packetization mode because browsers only decode what the fmtp says.
 */
export function publisherVideoCodecs(): RTCRtpCodecParameters[] {
  const h264 = (profile: string, mode: number) =>
    new RTCRtpCodecParameters({
      mimeType: 'video/H264',
      clockRate: 90000,
      rtcpFeedback: videoFeedback(),
      parameters: `level-asymmetry-allowed=1;packetization-mode=${mode};profile-level-id=${profile}`,
    });
  return [
    new RTCRtpCodecParameters({ mimeType: 'video/VP8', clockRate: 90000, rtcpFeedback: videoFeedback() }),
    new RTCRtpCodecParameters({ mimeType: 'video/VP9', clockRate: 90000, rtcpFeedback: videoFeedback(), parameters: 'profile-id=0' }),
    h264('42e01f', 1),
    h264('42001f', 1),
    h264('4d001f', 1),
    h264('640032', 1),
    h264('42e01f', 0),
    new RTCRtpCodecParameters({ mimeType: 'video/AV1', clockRate: 90000, rtcpFeedback: videoFeedback() }),
  ];
}

export function publisherAudioCodecs(): RTCRtpCodecParameters[] {
  return [
    new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2, parameters: 'minptime=10;useinbandfec=1' }),
  ];
}

/** The codec a player must be offered to receive exactly what the publisher sends. */
export function playerCodec(source: RTCRtpCodecParameters): RTCRtpCodecParameters {
  const video = source.mimeType.toLowerCase().startsWith('video/');
  return new RTCRtpCodecParameters({
    mimeType: source.mimeType,
    clockRate: source.clockRate,
    channels: source.channels,
    parameters: source.parameters,
    rtcpFeedback: video ? [useNACK(), usePLI(), { type: 'ccm', parameter: 'fir' }] : [],
  });
}

/** OvenMediaEngine's codec name for a MIME type (`video/H264` → `H264`, `audio/opus` → `OPUS`). */
export function codecName(mimeType: string): string {
  const sub = mimeType.slice(mimeType.indexOf('/') + 1).toUpperCase();
  return sub;
}

export function videoCodecName(mimeType: string): VideoCodecName | undefined {
  const name = codecName(mimeType);
  return name === 'VP8' || name === 'VP9' || name === 'H264' || name === 'H265' || name === 'AV1' ? name : undefined;
}
