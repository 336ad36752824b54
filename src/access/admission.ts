/**
 * The client of OvenMediaEngine's AdmissionWebhooks (OME `admission_webhooks.cpp`,
 * docs/access-control/admission-webhooks.md): a JSON POST to the app's control server when a
 * publish or play opens and when it closes, signed with `X-OME-Signature` (base64url without
 * padding of HMAC-SHA1 of the body with the shared secret). The answer to `opening` decides:
 * `allowed` (required), `new_url`, `lifetime` (ms, 0 = no limit), `reason`. `closing` is answered
 * with `{}` and its answer is ignored.
 *
 * Kiln adds the session id (the id the OME and MaxScale session APIs use) to the body, both as
 * `session_id` at the top and as `request.session_id`.
 */
import { createHmac } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

/** OME's `direction`: `incoming` publishes, `outgoing` plays. */
export type AdmissionDirection = 'incoming' | 'outgoing';

/** What a hook call says about one client's request. */
export interface AdmissionRequest {
  direction: AdmissionDirection;
  status: 'opening' | 'closing';
  /** The URL the client requested (scheme, host, port, path and query). */
  url: string;
  /** Where the opening answer sent the client (`closing` only, when redirected). */
  newUrl?: string;
  /** The session's id, as the session APIs list it. */
  sessionId: string;
  client: { address: string; port: number; userAgent?: string };
}

/** The control server's answer to `opening`, or why there is none usable. */
export type AdmissionVerdict =
  | { kind: 'allowed'; newUrl: string | undefined; lifetimeMs: number; reason: string | undefined }
  | { kind: 'denied'; reason: string | undefined }
  /** No usable answer: a time-out, no connection, a status other than 200, or a malformed body. */
  | { kind: 'failed'; reason: string };

/** The body OME sends, with Kiln's session id. */
export function admissionBody(request: AdmissionRequest, now = new Date()): string {
  const client: Record<string, unknown> = { address: request.client.address, port: request.client.port };
  if (request.client.userAgent) client.user_agent = request.client.userAgent;
  const req: Record<string, unknown> = { direction: request.direction, protocol: 'webrtc', status: request.status, url: request.url };
  if (request.newUrl !== undefined) req.new_url = request.newUrl;
  req.time = now.toISOString();
  req.session_id = request.sessionId;
  return JSON.stringify({ client, request: req, session_id: request.sessionId });
}

/** `X-OME-Signature` of `body`: base64url without padding (OME's `ov::Base64::Encode(…, true)`). */
export function admissionSignature(body: string, secretKey: string): string {
  return createHmac('sha1', secretKey).update(body).digest('base64url');
}

/** Reads a 200 answer to `opening` as OME's `ParseResponse` does (an unusable `new_url` is a failure here). */
export function parseAdmissionAnswer(text: string): AdmissionVerdict {
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    return { kind: 'failed', reason: 'the answer is not JSON' };
  }
  if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) return { kind: 'failed', reason: 'the answer is not a JSON object' };
  const a = answer as Record<string, unknown>;
  if (typeof a.allowed !== 'boolean') return { kind: 'failed', reason: '"allowed" is required and must be true or false' };
  const reason = typeof a.reason === 'string' ? a.reason : undefined;
  if (!a.allowed) return { kind: 'denied', reason };
  let newUrl: string | undefined;
  if (a.new_url !== undefined && a.new_url !== null) {
    if (typeof a.new_url !== 'string' || targetOf(a.new_url) === undefined) return { kind: 'failed', reason: `new_url must be a URL of /{app}/{stream}, got ${JSON.stringify(a.new_url).slice(0, 200)}` };
    newUrl = a.new_url;
  }
  // OME takes `lifetime` when it is an unsigned integer and ignores it otherwise.
  const lifetimeMs = typeof a.lifetime === 'number' && Number.isSafeInteger(a.lifetime) && a.lifetime > 0 ? a.lifetime : 0;
  return { kind: 'allowed', newUrl, lifetimeMs, reason };
}

/** The app and stream a `new_url` names (its first two path segments), or undefined. */
export function targetOf(url: string): { app: string; stream: string } | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  const segments = parsed.pathname.split('/').filter(Boolean);
  if (segments.length < 2) return undefined;
  try {
    return { app: decodeURIComponent(segments[0]), stream: decodeURIComponent(segments[1]) };
  } catch {
    return undefined;
  }
}

/** Why a call failed, in words that name no address (the reason may reach the client). */
function failure(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (err instanceof HookError) return err.message;
  if (err instanceof TypeError && code === 'ERR_INVALID_URL') return 'the control server URL is invalid';
  return `the control server could not be reached${code ? ` (${code})` : ''}`;
}

/** A failure of the call itself (no answer in time, an answer too long), its message fit for the client. */
class HookError extends Error {}

/** The largest answer read, bytes; a longer one is a failure. */
const MAX_ANSWER_BYTES = 64 * 1024;

/**
 * Posts hook calls over kept-alive connections (node:http: about half the latency of `fetch` on
 * loopback). One per access-control instance; `close()` drops its idle connections.
 */
export class AdmissionClient {
  readonly #http = new HttpAgent({ keepAlive: true });
  readonly #https = new HttpsAgent({ keepAlive: true });

  /**
   * Asks `url` about an opening; never rejects. Takes at most `timeoutMs` from the call to the
   * whole answer.
   */
  async open(url: string, secretKey: string, request: AdmissionRequest, timeoutMs: number): Promise<AdmissionVerdict> {
    try {
      const { status, text } = await this.#post(url, secretKey, admissionBody(request), Date.now() + timeoutMs);
      if (status !== 200) return { kind: 'failed', reason: `the control server answered with status ${status}` };
      return parseAdmissionAnswer(text);
    } catch (err) {
      return { kind: 'failed', reason: failure(err) };
    }
  }

  /** Tells `url` of a closing; resolves (never rejects) when it answered or failed. */
  async close(url: string, secretKey: string, request: AdmissionRequest, timeoutMs: number): Promise<{ ok: boolean; reason?: string }> {
    try {
      const { status } = await this.#post(url, secretKey, admissionBody(request), Date.now() + timeoutMs);
      return status === 200 ? { ok: true } : { ok: false, reason: `status ${status}` };
    } catch (err) {
      return { ok: false, reason: failure(err) };
    }
  }

  /** Drops the kept-alive connections. */
  destroy(): void {
    this.#http.destroy();
    this.#https.destroy();
  }

  /** POSTs `body`; rejects on a failure or at `deadline` (epoch ms). */
  #post(url: string, secretKey: string, body: string, deadline: number, retry = true): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const target = new URL(url);
      const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = send(target, {
        method: 'POST',
        agent: target.protocol === 'https:' ? this.#https : this.#http,
        headers: {
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(body),
          Accept: 'application/json',
          'X-OME-Signature': admissionSignature(body, secretKey),
        },
      });
      const timer = setTimeout(() => req.destroy(new HookError('the control server did not answer in time')), Math.max(0, deadline - Date.now()));
      const done = (err: Error | undefined, value?: { status: number; text: string }) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(value!);
      };
      req.on('error', (err: NodeJS.ErrnoException) => {
        // A kept-alive connection the server closed as it was reused: once more on a fresh one
        // (the Node.js documentation's advice), within what is left of the time-out.
        if (retry && req.reusedSocket && err.code === 'ECONNRESET') {
          clearTimeout(timer);
          this.#post(url, secretKey, body, deadline, false).then(resolve, reject);
          return;
        }
        done(err);
      });
      req.on('response', (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) req.destroy(new HookError(`the answer is longer than ${MAX_ANSWER_BYTES} bytes`));
          else chunks.push(chunk);
        });
        res.on('end', () => done(undefined, { status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (err) => done(err));
      });
      req.end(body);
    });
  }
}
