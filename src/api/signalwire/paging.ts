/**
 * SignalWire's paging: `page_size` (default 50, at most 1000), `page_number`, and an opaque
 * `page_token` cursor in the `next`/`prev` links. Listings are newest first over (created_at, id),
 * so a cursor stays exact while rows are added between pages. Tokens are signed (HMAC-SHA256 with a
 * key kept in the store, so every node of a cluster reads them), bound to the listing's filters,
 * and expire.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { ListCursor } from '../../store/store.ts';
import { invalidParameter } from './errors.ts';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 1000;
/** How long a page token is good for. */
const TOKEN_TTL_MS = 60 * 60 * 1000;

/** What a page token carries. */
interface TokenPayload {
  /** `n`: rows older than the cursor; `p`: rows newer than it (the previous page). */
  d: 'n' | 'p';
  c: string;
  i: string;
  /** The page number it leads to. */
  n: number;
  /** The listing's filters, hashed into the signature's input. */
  f: string;
  /** Expiry, ms since the epoch. */
  e: number;
}

/** A validated page request. */
export interface PageRequest {
  size: number;
  number: number;
  before?: ListCursor;
  after?: ListCursor;
}

const int = /^\d+$/;

/** Orders rows by (createdAt, id), the key of every cursor: negative when `a` comes first. */
export function compareCursor(a: ListCursor, b: ListCursor): number {
  return a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * Issues and reads SignalWire `page_token`s: a cursor (the row a page ended at), the page number,
 * the listing's filters and an expiry, signed with HMAC so a client can neither forge nor re-aim one.
 */
export class PageTokens {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    this.#key = key;
  }

  #sign(body: string): Buffer {
    return createHmac('sha256', this.#key).update(body).digest().subarray(0, 16);
  }

  /** A token leading to the page `number` from `cursor`, for the listing with `filters`. */
  issue(direction: 'n' | 'p', cursor: ListCursor, number: number, filters: string): string {
    const payload: TokenPayload = { d: direction, c: cursor.createdAt, i: cursor.id, n: number, f: filters, e: Date.now() + TOKEN_TTL_MS };
    const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
    return `${body}.${this.#sign(body).toString('base64url')}`;
  }

  /**
   * Reads `page_size`, `page_number` and `page_token` of a listing with `filters`; 422 naming the
   * parameter when one is not acceptable.
   */
  read(query: Record<string, string | undefined>, filters: string): PageRequest {
    const sizeText = query.page_size;
    let size = DEFAULT_PAGE_SIZE;
    if (sizeText !== undefined) {
      if (!int.test(sizeText)) throw invalidParameter('page_size', 'page_size must be an integer');
      size = Number(sizeText);
      if (size < 1) throw invalidParameter('page_size', 'page_size must be greater than or equal to 1');
      if (size > MAX_PAGE_SIZE) throw invalidParameter('page_size', `page_size must be less than or equal to ${MAX_PAGE_SIZE}`);
    }
    const numberText = query.page_number;
    let number = 0;
    if (numberText !== undefined) {
      if (!int.test(numberText) || !Number.isSafeInteger(Number(numberText))) throw invalidParameter('page_number', 'page_number must be an integer greater than or equal to 0');
      number = Number(numberText);
    }
    const token = query.page_token;
    if (token === undefined || token === '') {
      if (number > 0) throw invalidParameter('page_token', 'page_token is required when page_number is greater than 0', 'page_token_required');
      return { size, number: 0 };
    }
    const payload = this.#verify(token);
    if (payload.f !== filters) throw invalidParameter('page_token', 'page_token belongs to a listing with other filters', 'page_token_is_invalid');
    if (payload.e < Date.now()) throw invalidParameter('page_token', 'page_token has expired', 'page_token_is_invalid');
    if (numberText !== undefined && number !== payload.n) throw invalidParameter('page_number', `page_number does not match page_token (page ${payload.n})`);
    const cursor = { createdAt: payload.c, id: payload.i };
    return payload.d === 'n' ? { size, number: payload.n, before: cursor } : { size, number: payload.n, after: cursor };
  }

  #verify(token: string): TokenPayload {
    const invalid = () => invalidParameter('page_token', 'page_token is not valid', 'page_token_is_invalid');
    const dot = token.indexOf('.');
    if (dot <= 0 || token.length > 2048) throw invalid();
    const body = token.slice(0, dot);
    const signature = Buffer.from(token.slice(dot + 1), 'base64url');
    const expected = this.#sign(body);
    if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) throw invalid();
    let payload: unknown;
    try {
      payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      throw invalid();
    }
    const p = payload as Partial<TokenPayload>;
    if ((p.d !== 'n' && p.d !== 'p') || typeof p.c !== 'string' || typeof p.i !== 'string' || typeof p.n !== 'number' || typeof p.f !== 'string' || typeof p.e !== 'number') throw invalid();
    return p as TokenPayload;
  }
}

/**
 * The `links` of a page: `self` and `first` always; `next` when rows older than the last exist
 * (`more`), `prev` after the first page. `url` is the request's absolute URL, its paging
 * parameters replaced.
 */
export function pageLinks(
  url: URL,
  tokens: PageTokens,
  page: PageRequest,
  rows: { createdAt: string; id: string }[],
  more: boolean,
  filters: string,
): { self: string; first: string; next?: string; prev?: string } {
  const at = (number: number | undefined, token: string | undefined) => {
    const u = new URL(url);
    for (const k of ['page_number', 'page_token', 'page_size']) u.searchParams.delete(k);
    u.searchParams.set('page_size', String(page.size));
    if (number !== undefined) u.searchParams.set('page_number', String(number));
    if (token !== undefined) u.searchParams.set('page_token', token);
    return u.toString();
  };
  const links: { self: string; first: string; next?: string; prev?: string } = { self: url.toString(), first: at(undefined, undefined) };
  const last = rows[rows.length - 1];
  if (more && last) links.next = at(page.number + 1, tokens.issue('n', last, page.number + 1, filters));
  const first = rows[0];
  if (page.number > 0) {
    links.prev = page.number === 1 || !first
      ? at(undefined, undefined)
      : at(page.number - 1, tokens.issue('p', first, page.number - 1, filters));
  }
  return links;
}
