/**
 * API credentials (SPEC.md §2): `user:password` pairs for HTTP Basic on every REST dialect; their
 * passwords double as Bearer tokens for WHIP. Compared in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

export class Credentials {
  readonly #pairs: Buffer[];
  readonly #passwords: Buffer[];
  readonly users: string[];

  /** `tokens` are `user:password` strings. */
  constructor(tokens: string[]) {
    this.#pairs = tokens.map(digest);
    this.#passwords = tokens.map((t) => digest(t.slice(t.indexOf(':') + 1)));
    this.users = tokens.map((t) => t.slice(0, t.indexOf(':')));
  }

  /**
   * Checks an `Authorization` header value with the Basic scheme. Returns the user name, or
   * undefined for a missing, malformed or wrong credential.
   */
  basic(header: string | undefined): string | undefined {
    if (!header) return undefined;
    const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    if (!m) return undefined;
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    if (!decoded.includes(':')) return undefined;
    const d = digest(decoded);
    let found = -1;
    for (let i = 0; i < this.#pairs.length; i++) if (timingSafeEqual(d, this.#pairs[i]) && found < 0) found = i;
    return found >= 0 ? this.users[found] : undefined;
  }

  /**
   * Checks an `Authorization` Basic value whose user is `user` (OpenVidu's fixed `OPENVIDUAPP`) and
   * whose password is any configured one; returns that password's user.
   */
  basicWithAnyUser(header: string | undefined, user: string): string | undefined {
    const m = header ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header) : null;
    if (!m) return undefined;
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0 || decoded.slice(0, colon) !== user) return undefined;
    return this.password(decoded.slice(colon + 1));
  }

  /** Checks a `Bearer <password>` header value; returns the user whose password it is. */
  bearer(header: string | undefined): string | undefined {
    if (!header) return undefined;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return m ? this.password(m[1]) : undefined;
  }

  /** The user whose password `password` is (an OpenVidu secret, a WHIP token), or undefined. */
  password(password: string): string | undefined {
    const d = digest(password);
    let found = -1;
    for (let i = 0; i < this.#passwords.length; i++) if (timingSafeEqual(d, this.#passwords[i]) && found < 0) found = i;
    return found >= 0 ? this.users[found] : undefined;
  }
}
