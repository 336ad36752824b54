/**
 * SignalWire room tokens: JWTs as SignalWire issues them (header `{"typ":"VRT","alg":"HS512"}`;
 * claims `r` room name, `u` user name, `s` permissions, `ja` join_as, `jf`/`ju` join window and
 * `rat`/`rse` removal, as epoch seconds), signed with a key of the store so every node checks them.
 * A token is single-use: its `jti` is recorded when issued and marked when it joins.
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';

export interface GrantClaims {
  /** Token id (single use). */
  jti: string;
  /** Issued at, epoch seconds. */
  iat: number;
  /** The API user that asked for it. */
  sub: string;
  /** Room name. */
  r: string;
  /** User name. */
  u: string;
  /** Permissions. */
  s: string[];
  /** `member` or `audience`. */
  ja: 'member' | 'audience';
  /** The room was made on the fly when missing (auto_create_room). */
  acr: boolean;
  jf?: number;
  ju?: number;
  rat?: number;
  rse?: number;
}

const HEADER = Buffer.from(JSON.stringify({ typ: 'VRT', alg: 'HS512' })).toString('base64url');

/** Signs and checks SignalWire room tokens: JWTs (`typ: VRT`, HS512) carrying the grant's claims. */
export class GrantSigner {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    this.#key = key;
  }

  #signature(input: string): Buffer {
    return createHmac('sha512', this.#key).update(input).digest();
  }

  issue(claims: Omit<GrantClaims, 'jti' | 'iat'>): { token: string; claims: GrantClaims } {
    const full: GrantClaims = { jti: randomUUID(), iat: Math.floor(Date.now() / 1000), ...claims };
    const input = `${HEADER}.${Buffer.from(JSON.stringify(full)).toString('base64url')}`;
    return { token: `${input}.${this.#signature(input).toString('base64url')}`, claims: full };
  }

  /** The claims of a token this server signed, or undefined (not a JWT, another key, tampered). */
  verify(token: string): GrantClaims | undefined {
    const parts = token.split('.');
    if (parts.length !== 3 || parts[0] !== HEADER || token.length > 8192) return undefined;
    const signature = Buffer.from(parts[2], 'base64url');
    const expected = this.#signature(`${parts[0]}.${parts[1]}`);
    if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) return undefined;
    try {
      const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as GrantClaims;
      return typeof claims.jti === 'string' && typeof claims.r === 'string' && typeof claims.u === 'string' && Array.isArray(claims.s) ? claims : undefined;
    } catch {
      return undefined;
    }
  }
}

/** The OpenVidu role SignalWire permissions amount to: audience subscribes; managing others moderates. */
export function roleOfGrant(joinAs: 'member' | 'audience', permissions: string[]): 'SUBSCRIBER' | 'PUBLISHER' | 'MODERATOR' {
  if (joinAs === 'audience') return 'SUBSCRIBER';
  return permissions.some((p) => p.startsWith('room.member.')) ? 'MODERATOR' : 'PUBLISHER';
}
