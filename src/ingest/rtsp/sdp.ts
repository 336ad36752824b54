/**
 * The session description an RTSP server answers to DESCRIBE (RFC 4566, RFC 2326 Appendix C):
 * its media sections with payload type, encoding, clock rate, format parameters and control URL.
 */

export interface MediaDescription {
  kind: 'video' | 'audio' | 'other';
  payloadType: number;
  /** Upper-cased encoding name: H264, H265, OPUS, MPEG4-GENERIC, PCMU, PCMA, … */
  encoding: string;
  clockRate: number;
  channels: number;
  /** `a=fmtp` parameters by lower-cased name. */
  fmtp: Map<string, string>;
  /** The absolute URL to SETUP this media with. */
  control: string;
}

export class SdpError extends Error {
  override name = 'SdpError';
}

/** RFC 3551 static payload types a camera may use without an rtpmap line. */
const STATIC: Record<number, [string, number, number]> = {
  0: ['PCMU', 8000, 1],
  8: ['PCMA', 8000, 1],
  10: ['L16', 44100, 2],
  11: ['L16', 44100, 1],
  14: ['MPA', 90000, 0],
  26: ['JPEG', 90000, 0],
  33: ['MP2T', 90000, 0],
};

/** Resolves a control attribute against the base URL (Content-Base, else the request URL). */
export function resolveControl(control: string | undefined, base: string): string {
  if (control === undefined || control === '' || control === '*') return base;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(control)) return control;
  if (control.startsWith('/')) {
    try {
      return new URL(control, base).toString();
    } catch {
      // fall through to appending
    }
  }
  // Appended as text, as cameras expect (a base such as `…/realmonitor?channel=1&subtype=0` keeps its query).
  return base.endsWith('/') ? base + control : `${base}/${control}`;
}

/** Parses the SDP; throws SdpError when it is not a session description with at least one media. */
export function parseSdp(text: string, baseUrl: string): MediaDescription[] {
  return parseSessionDescription(text, baseUrl).media;
}

/** The media and the aggregate control URL (session-level `a=control`, RFC 2326 C.1.1). */
export function parseSessionDescription(text: string, baseUrl: string): { aggregate: string; media: MediaDescription[] } {
  if (text.length > 256 * 1024) throw new SdpError('SDP too large');
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  if (lines.length === 0 || !/^v=\d+$/.test(lines[0])) throw new SdpError('the DESCRIBE body is not an SDP (no "v=" line)');
  let sessionControl: string | undefined;
  const sections: { m: string; attrs: string[] }[] = [];
  for (const line of lines) {
    if (!/^[a-z]=/.test(line)) throw new SdpError(`malformed SDP line: ${JSON.stringify(line.slice(0, 60))}`);
    if (line.startsWith('m=')) sections.push({ m: line.slice(2), attrs: [] });
    else if (line.startsWith('a=')) {
      if (sections.length > 0) sections[sections.length - 1].attrs.push(line.slice(2));
      else if (line.startsWith('a=control:')) sessionControl = line.slice('a=control:'.length);
    }
  }
  if (sections.length === 0) throw new SdpError('the SDP has no media section');
  const base = resolveControl(sessionControl, baseUrl);
  const out: MediaDescription[] = [];
  for (const section of sections) {
    const m = /^(\w+) (\d+)(?:\/\d+)? (\S+)((?: \S+)+)$/.exec(section.m);
    if (!m) throw new SdpError(`malformed media line: ${JSON.stringify(section.m.slice(0, 60))}`);
    const kindName = m[1].toLowerCase();
    const kind = kindName === 'video' || kindName === 'audio' ? kindName : 'other';
    const formats = m[4].trim().split(' ');
    const payloadType = Number(formats[0]);
    if (!Number.isInteger(payloadType) || payloadType < 0 || payloadType > 127) {
      // Not RTP (e.g. an application section): keep it listed as unusable.
      out.push({ kind: 'other', payloadType: -1, encoding: formats[0].toUpperCase(), clockRate: 0, channels: 0, fmtp: new Map(), control: base });
      continue;
    }
    let encoding: string | undefined;
    let clockRate = 0;
    let channels = kind === 'audio' ? 1 : 0;
    const fmtp = new Map<string, string>();
    let control: string | undefined;
    for (const attr of section.attrs) {
      const rtpmap = /^rtpmap:(\d+) ([^/\s]+)\/(\d+)(?:\/(\d+))?/.exec(attr);
      if (rtpmap && Number(rtpmap[1]) === payloadType) {
        encoding = rtpmap[2].toUpperCase();
        clockRate = Number(rtpmap[3]);
        if (rtpmap[4] !== undefined) channels = Number(rtpmap[4]);
        continue;
      }
      const f = /^fmtp:(\d+) (.*)$/.exec(attr);
      if (f && Number(f[1]) === payloadType) {
        for (const param of f[2].split(';')) {
          const eq = param.indexOf('=');
          if (eq > 0) fmtp.set(param.slice(0, eq).trim().toLowerCase(), param.slice(eq + 1).trim());
        }
        continue;
      }
      if (attr.startsWith('control:')) control = attr.slice('control:'.length);
    }
    if (encoding === undefined) {
      const known = STATIC[payloadType];
      if (known) [encoding, clockRate, channels] = known;
      else encoding = `PT${payloadType}`;
    }
    if (!(clockRate > 0 && clockRate <= 1_000_000)) clockRate = 0;
    if (!(channels >= 0 && channels <= 8)) channels = 0;
    out.push({ kind, payloadType, encoding, clockRate, channels, fmtp, control: resolveControl(control, base) });
  }
  return { aggregate: base, media: out };
}
