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

/** The codecs an SDP offers for `kind`, in the offerer's order of preference (RFC 3264 §6.1). */
export function offeredCodecs(sdp: string, kind: 'video' | 'audio'): { name: string; clockRate: number; fmtp: string }[] {
  const out: { name: string; clockRate: number; fmtp: string }[] = [];
  const sections = sdp.split(/\r?\n(?=m=)/);
  for (const section of sections) {
    const m = new RegExp(`^m=${kind} \\S+ \\S+ ([\\d ]+)`).exec(section);
    if (!m) continue;
    for (const pt of m[1].trim().split(/\s+/)) {
      const rtpmap = new RegExp(`^a=rtpmap:${pt} ([^/\\s]+)/(\\d+)`, 'm').exec(section);
      if (!rtpmap) continue;
      const fmtp = new RegExp(`^a=fmtp:${pt} (.*)$`, 'm').exec(section)?.[1]?.trim() ?? '';
      out.push({ name: rtpmap[1].toUpperCase(), clockRate: Number(rtpmap[2]), fmtp });
    }
  }
  return out;
}

function fmtpValue(fmtp: string, key: string): string | undefined {
  return new RegExp(`(?:^|;)\\s*${key}=([^;]*)`, 'i').exec(fmtp)?.[1]?.trim().toLowerCase();
}

/**
 * `supported` reordered to follow the offer's preference, so that the answer picks what the client
 * prefers among what Kiln forwards (werift would otherwise pick by its own order). H.264 entries
 * match on packetization mode and profile (the first four hex digits of profile-level-id).
 */
export function preferOffered(supported: RTCRtpCodecParameters[], offer: { name: string; clockRate: number; fmtp: string }[]): RTCRtpCodecParameters[] {
  const ordered: RTCRtpCodecParameters[] = [];
  for (const o of offer) {
    const match = supported.find((c) => {
      if (ordered.includes(c) || codecName(c.mimeType) !== o.name || c.clockRate !== o.clockRate) return false;
      if (o.name !== 'H264') return true;
      const mode = (f: string) => fmtpValue(f, 'packetization-mode') ?? '0';
      const profile = (f: string) => (fmtpValue(f, 'profile-level-id') ?? '42001f').slice(0, 4);
      return mode(c.parameters ?? '') === mode(o.fmtp) && profile(c.parameters ?? '') === profile(o.fmtp);
    });
    if (match) ordered.push(match);
  }
  return [...ordered, ...supported.filter((c) => !ordered.includes(c))];
}

/**
 * For a viewer of an H.264 stream: drops from the viewer's offer the H.264 payload types whose
 * profile or packetization mode differ from the stream's (and RTX entries bound to them), so the
 * answer names the stream's own format. werift matches codecs by MIME type alone and would take
 * the viewer's first H.264 entry. Leaves the offer as it is when no entry matches.
 */
export function restrictH264(offer: string, stream: RTCRtpCodecParameters): string {
  if (codecName(stream.mimeType) !== 'H264') return offer;
  const want = { mode: fmtpValue(stream.parameters ?? '', 'packetization-mode') ?? '0', profile: (fmtpValue(stream.parameters ?? '', 'profile-level-id') ?? '42001f').slice(0, 4) };
  const sections = offer.split(/(?=\r?\nm=)/);
  return sections.map((section) => {
    const m = /^\r?\nm=video \S+ \S+ ([\d ]+)/.exec(section) ?? /^m=video \S+ \S+ ([\d ]+)/.exec(section);
    if (!m) return section;
    const pts = m[1].trim().split(/\s+/);
    const rtpmap = (pt: string) => new RegExp(`^a=rtpmap:${pt} ([^/\\s]+)`, 'm').exec(section)?.[1]?.toUpperCase();
    const fmtp = (pt: string) => new RegExp(`^a=fmtp:${pt} (.*)$`, 'm').exec(section)?.[1]?.trim() ?? '';
    const h264 = pts.filter((pt) => rtpmap(pt) === 'H264');
    const keep = h264.filter((pt) => (fmtpValue(fmtp(pt), 'packetization-mode') ?? '0') === want.mode
      && (fmtpValue(fmtp(pt), 'profile-level-id') ?? '42001f').slice(0, 4) === want.profile);
    if (keep.length === 0) return section;
    const drop = new Set(h264.filter((pt) => !keep.includes(pt)));
    for (const pt of pts) if (rtpmap(pt) === 'RTX' && drop.has(fmtpValue(fmtp(pt), 'apt') ?? '')) drop.add(pt);
    if (drop.size === 0) return section;
    const lines = section.split(/(?<=\n)/).filter((line) => {
      const a = /^a=(?:rtpmap|fmtp|rtcp-fb):(\d+)[ \r\n]/.exec(line);
      return !(a && drop.has(a[1]));
    });
    const kept = pts.filter((pt) => !drop.has(pt)).join(' ');
    return lines.join('').replace(/(m=video \S+ \S+ )[\d ]+/, `$1${kept}`);
  }).join('');
}
