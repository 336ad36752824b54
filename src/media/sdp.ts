/**
 * A first check of client SDP before werift sees it (RFC 8866 §5): werift accepts much that is
 * not SDP, and a clear 400 is better than a half-built peer connection.
 */
import { errors } from '../core/errors.ts';

/** Largest SDP accepted, bytes. Browsers' offers are 3-10 KB. */
export const MAX_SDP_BYTES = 64 * 1024;

/** Throws BAD_REQUEST naming what is wrong with `sdp`. */
export function validateSdp(sdp: unknown): asserts sdp is string {
  if (typeof sdp !== 'string' || sdp.length === 0) throw errors.badRequest('SDP is missing');
  if (sdp.length > MAX_SDP_BYTES) throw errors.badRequest(`SDP is larger than ${MAX_SDP_BYTES} bytes`);
  if (sdp.includes('\0')) throw errors.badRequest('SDP contains a NUL character');
  const lines = sdp.split(/\r?\n/).filter((l) => l.length > 0);
  if (lines[0] !== 'v=0') throw errors.badRequest('SDP must start with "v=0"');
  for (const line of lines) {
    if (!/^[a-z]=/.test(line)) throw errors.badRequest(`SDP line is not "<type>=<value>": ${JSON.stringify(line.slice(0, 80))}`);
  }
  const media = lines.filter((l) => l.startsWith('m='));
  if (media.length === 0) throw errors.badRequest('SDP has no media section (m=)');
  for (const m of media) {
    if (!/^m=(audio|video|application) \d+(\/\d+)? [A-Z/]+( \S+)+$/.test(m)) {
      throw errors.badRequest(`SDP media line is malformed: ${JSON.stringify(m.slice(0, 80))}`);
    }
  }
  if (!lines.some((l) => l.startsWith('a=ice-ufrag:'))) throw errors.badRequest('SDP has no ICE credentials (a=ice-ufrag)');
  if (!lines.some((l) => l.startsWith('a=fingerprint:'))) throw errors.badRequest('SDP has no DTLS fingerprint (a=fingerprint)');
}

/** Whether an ICE candidate line names an mDNS host (`….local`, RFC 8838-era browser privacy). */
export function isMdnsCandidate(candidate: string): boolean {
  return /^(a=)?candidate:\S+ \d+ \S+ \d+ \S+\.local /i.test(candidate.trim());
}

/**
 * Drops mDNS host candidates from a remote SDP. Resolving them would send multicast queries on the
 * server's network (werift does, through multicast-dns); the browser reaches the server's own
 * candidates anyway and is then learned as a peer-reflexive candidate (RFC 8445 §7.3.1.3).
 */
export function stripMdnsCandidates(sdp: string): string {
  return sdp.split(/(?<=\n)/).filter((line) => !isMdnsCandidate(line)).join('');
}

/** A remote ICE candidate as signaling carries it (RTCIceCandidateInit). */
export interface CandidateInit {
  candidate: string;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
}

/**
 * The `a=candidate` lines of an SDP or SDP fragment (RFC 8840), with the mid and m-line index of
 * their media section (index 0 before any `m=` line).
 */
export function sdpCandidates(sdp: string): { candidate: string; sdpMid: string | null; sdpMLineIndex: number }[] {
  const out: { candidate: string; sdpMid: string | null; sdpMLineIndex: number }[] = [];
  let index = -1;
  let mid: string | null = null;
  for (const raw of sdp.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith('m=')) {
      index++;
      mid = null;
    } else if (line.startsWith('a=mid:')) mid = line.slice(6);
    else if (line.startsWith('a=candidate:')) out.push({ candidate: line.slice(2), sdpMid: mid, sdpMLineIndex: Math.max(index, 0) });
  }
  return out;
}
