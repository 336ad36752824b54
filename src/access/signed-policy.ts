/**
 * OvenMediaEngine's SignedPolicy (issue 9, first step; not wired into the listeners yet): a URL
 * carries `policy` (base64url of a JSON policy) and `signature` (base64url of HMAC-SHA1, with the
 * app's secret key, of the whole URL without the signature parameter). As OME's
 * `signed_policy.cpp` checks them:
 *
 * - `url_expire` (epoch ms) is required and must not have passed;
 * - `url_activate` (epoch ms), when given, must have come;
 * - `stream_expire` (epoch ms), when given, must not have passed (and cuts the session when it does);
 * - `allow_ip` (a CIDR), when given, must hold the client's address.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { BlockList, isIPv4, isIPv6 } from 'node:net';

export interface SignedPolicyKeys {
  /** The app's secret key. */
  secretKey: string;
  /** Query parameter names. Default `policy` and `signature`, as OME's. */
  policyKey?: string;
  signatureKey?: string;
}

/** What the checks found: allowed (with when the stream expires), or why not. */
export type SignedPolicyResult =
  | { allowed: true; streamExpireAt: number | undefined }
  | { allowed: false; reason: string };

/** base64url without padding, as OME writes it. */
const base64url = (data: Buffer): string => data.toString('base64url');

/** The signature OME expects for `baseUrl` (the URL as the client sent it, without the signature parameter). */
export function signPolicyUrl(baseUrl: string, secretKey: string): string {
  return base64url(createHmac('sha1', secretKey).update(baseUrl).digest());
}

/**
 * Makes a signed URL for `url` (any query of its own kept): the policy, then the signature, as
 * OME's signed-policy script does. For tests and tools.
 */
export function signUrl(url: string, policy: Record<string, unknown>, keys: SignedPolicyKeys): string {
  const policyKey = keys.policyKey ?? 'policy';
  const signatureKey = keys.signatureKey ?? 'signature';
  const withPolicy = `${url}${url.includes('?') ? '&' : '?'}${policyKey}=${base64url(Buffer.from(JSON.stringify(policy)))}`;
  return `${withPolicy}&${signatureKey}=${signPolicyUrl(withPolicy, keys.secretKey)}`;
}

/** A query parameter's name, decoded; as written when it is not valid percent-encoding. */
function nameOf(part: string): string {
  const name = part.split('=')[0];
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}

/** Removes `key=…` from a URL's query as written (the other parameters keep their order and text). */
function withoutQueryKey(url: string, key: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const kept = url.slice(q + 1).split('&').filter((part) => nameOf(part) !== key);
  return kept.length === 0 ? url.slice(0, q) : `${url.slice(0, q)}?${kept.join('&')}`;
}

/** The first value of `key` in a URL's query, decoded; undefined when absent. */
function queryValue(url: string, key: string): string | undefined {
  const q = url.indexOf('?');
  if (q < 0) return undefined;
  for (const part of url.slice(q + 1).split('&')) {
    const eq = part.indexOf('=');
    if (nameOf(part) === key) return eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1));
  }
  return undefined;
}

const isEpochMs = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** A CIDR (`a.b.c.d/n`, `x::/n`, or an address alone) as a BlockList; undefined when malformed. */
function cidr(text: string): BlockList | undefined {
  const [address, bits] = text.split('/');
  const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
  if (!family) return undefined;
  const max = family === 'ipv4' ? 32 : 128;
  const prefix = bits === undefined ? max : Number(bits);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (bits !== undefined && !/^\d+$/.test(bits))) return undefined;
  const list = new BlockList();
  list.addSubnet(address, prefix, family);
  return list;
}

/** Whether `client` (an IPv4, IPv6 or IPv4-mapped IPv6 address) is in `range`. */
function inRange(range: BlockList, client: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(client);
  const address = mapped ? mapped[1] : client;
  return range.check(address, isIPv4(address) ? 'ipv4' : 'ipv6');
}

/**
 * Checks the signed policy of `url` (as the client requested it: scheme, host, port, path and
 * query, as OME signs it) for a client at `clientAddress`, at `now` (epoch ms).
 */
export function checkSignedPolicy(url: string, clientAddress: string, keys: SignedPolicyKeys, now = Date.now()): SignedPolicyResult {
  const policyKey = keys.policyKey ?? 'policy';
  const signatureKey = keys.signatureKey ?? 'signature';
  let signature: string | undefined;
  let policyText: string | undefined;
  try {
    signature = queryValue(url, signatureKey);
    policyText = queryValue(url, policyKey);
  } catch {
    return { allowed: false, reason: 'The URL query is malformed' };
  }
  if (signature === undefined) return { allowed: false, reason: `There is no signature key (${signatureKey}) in the URL` };
  if (policyText === undefined) return { allowed: false, reason: `There is no policy key (${policyKey}) in the URL` };
  if (signature === '') return { allowed: false, reason: 'The signature is empty' };
  const expected = Buffer.from(signPolicyUrl(withoutQueryKey(url, signatureKey), keys.secretKey));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { allowed: false, reason: 'The signature is invalid' };
  let policy: unknown;
  try {
    policy = JSON.parse(Buffer.from(policyText, 'base64url').toString('utf8'));
  } catch {
    return { allowed: false, reason: 'The policy is in the wrong format' };
  }
  if (typeof policy !== 'object' || policy === null || Array.isArray(policy)) return { allowed: false, reason: 'The policy is in the wrong format' };
  const p = policy as Record<string, unknown>;
  if (!isEpochMs(p.url_expire)) return { allowed: false, reason: 'url_expire must be epoch milliseconds and is required' };
  if (p.url_expire < now) return { allowed: false, reason: `The URL has expired (now ${now}, url_expire ${p.url_expire})` };
  if (isEpochMs(p.url_activate) && p.url_activate > now) return { allowed: false, reason: `The URL is not active yet (now ${now}, url_activate ${p.url_activate})` };
  const streamExpireAt = isEpochMs(p.stream_expire) ? p.stream_expire : undefined;
  if (streamExpireAt !== undefined && streamExpireAt < now) return { allowed: false, reason: `The stream has expired (now ${now}, stream_expire ${streamExpireAt})` };
  if (typeof p.allow_ip === 'string') {
    const range = cidr(p.allow_ip);
    if (!range) return { allowed: false, reason: `allow_ip ${p.allow_ip} is not a valid CIDR` };
    if (!inRange(range, clientAddress)) return { allowed: false, reason: `${clientAddress} is not allowed (allow_ip ${p.allow_ip})` };
  }
  return { allowed: true, streamExpireAt };
}
