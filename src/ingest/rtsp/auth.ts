/**
 * RTSP client authentication: HTTP Basic (RFC 7617) and Digest with MD5 (RFC 2617 / RFC 7616 §3.4,
 * with or without `qop=auth`), answered to the server's `WWW-Authenticate` challenges.
 */
import { createHash, randomBytes } from 'node:crypto';

export interface Credentials {
  user: string;
  password: string;
}

interface Challenge {
  scheme: 'basic' | 'digest';
  params: Map<string, string>;
}

/** Parses `Digest realm="x", nonce="y", qop="auth"` style parameters. */
export function parseChallenge(value: string): Challenge | undefined {
  const m = /^\s*(\w+)\s*(.*)$/s.exec(value);
  if (!m) return undefined;
  const scheme = m[1].toLowerCase();
  if (scheme !== 'basic' && scheme !== 'digest') return undefined;
  const params = new Map<string, string>();
  const re = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?\s*/gy;
  const rest = m[2];
  re.lastIndex = 0;
  let p: RegExpExecArray | null;
  while (re.lastIndex < rest.length && (p = re.exec(rest)) !== null) {
    params.set(p[1].toLowerCase(), p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]);
  }
  return { scheme, params };
}

const md5 = (s: string) => createHash('md5').update(s, 'utf8').digest('hex');

/**
 * Answers one of `challenges` (Digest preferred). Returns a function giving the Authorization
 * header for a request, or undefined when no challenge can be answered.
 */
export function authorizer(challenges: string[], credentials: Credentials): ((method: string, uri: string) => string) | undefined {
  const parsed = challenges.map(parseChallenge).filter((c): c is Challenge => c !== undefined);
  const digest = parsed.find((c) => c.scheme === 'digest' && (c.params.get('algorithm') ?? 'MD5').toUpperCase() === 'MD5');
  if (digest) {
    const realm = digest.params.get('realm') ?? '';
    const nonce = digest.params.get('nonce') ?? '';
    const opaque = digest.params.get('opaque');
    const qops = (digest.params.get('qop') ?? '').split(',').map((q) => q.trim().toLowerCase());
    const qop = qops.includes('auth') ? 'auth' : undefined;
    const ha1 = md5(`${credentials.user}:${realm}:${credentials.password}`);
    let nc = 0;
    return (method, uri) => {
      const ha2 = md5(`${method}:${uri}`);
      const q = (s: string) => `"${s.replace(/["\\]/g, '\\$&')}"`;
      const parts = [`username=${q(credentials.user)}`, `realm=${q(realm)}`, `nonce=${q(nonce)}`, `uri=${q(uri)}`];
      if (qop) {
        nc++;
        const ncHex = nc.toString(16).padStart(8, '0');
        const cnonce = randomBytes(8).toString('hex');
        parts.push(`response="${md5(`${ha1}:${nonce}:${ncHex}:${cnonce}:${qop}:${ha2}`)}"`, `qop=${qop}`, `nc=${ncHex}`, `cnonce="${cnonce}"`);
      } else {
        parts.push(`response="${md5(`${ha1}:${nonce}:${ha2}`)}"`);
      }
      if (opaque !== undefined) parts.push(`opaque=${q(opaque)}`);
      parts.push('algorithm=MD5');
      return `Digest ${parts.join(', ')}`;
    };
  }
  if (parsed.some((c) => c.scheme === 'basic')) {
    const value = `Basic ${Buffer.from(`${credentials.user}:${credentials.password}`, 'utf8').toString('base64')}`;
    return () => value;
  }
  return undefined;
}
