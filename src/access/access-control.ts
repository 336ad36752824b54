/**
 * Access control of an app's WHIP, WHEP and OME-signaling clients, as OvenMediaEngine's
 * `AccessController` runs it when a WebRTC client asks for an offer (`webrtc_provider.cpp`
 * `OnRequestOffer`): first the signed policy of the URL, then the admission webhook; the session
 * ends at the earlier of the policy's `stream_expire` and the hook's `lifetime`. Room participants,
 * OVT relays and API pulls are not subject to it.
 */
import type { Logger } from 'pino';
import type { AccessEnables, AdmissionWebhooksConfig, SignedPolicyConfig } from '../config/config.ts';
import { errors } from '../core/errors.ts';
import { AdmissionClient, targetOf, type AdmissionRequest } from './admission.ts';
import { checkSignedPolicy } from './signed-policy.ts';

/** `publish`: WHIP and OME-signaling publishers; `play`: WHEP and OME-signaling players. */
export type AccessDirection = keyof AccessEnables;

/** An app's rules. */
export interface AppAccess {
  admissionWebhooks?: AdmissionWebhooksConfig;
  signedPolicy?: SignedPolicyConfig;
}

/** The client as the rules see it. */
export interface AccessClient {
  remoteAddress: string;
  remotePort: number;
  userAgent?: string;
  /** The URL it requested (scheme, host, port, path and query, as OME signs it); see `requestedUrl`. */
  url?: string;
}

export interface AccessRequest {
  direction: AccessDirection;
  vhost: string;
  app: string;
  stream: string;
  /** The id the session will have (the id the session APIs list). */
  sessionId: string;
  client: AccessClient;
}

/** A request let in: where it goes, until when, and how to report its end. */
export interface Admission {
  /** The app and stream to publish or play: the requested ones, or where the control server redirected. */
  app: string;
  stream: string;
  /** When the session must end (epoch ms): stream_expire or the admitted lifetime, the earlier. */
  expiresAt: number | undefined;
  /** Tells the control server that the session closed, when a hook call let it in; once, never throws. */
  end(): void;
}

export interface AccessControlOptions {
  /** The configured vhosts, each app with its rules (apps without rules are open). */
  vhosts: { name: string; apps: ({ name: string } & AppAccess)[] }[];
  /** Where failed hook calls are logged. */
  logger?: Logger;
}

const noop = (): void => {};

/** The rules of every app, checked before a WebRTC client gets a session. */
export class AccessControl {
  readonly #apps = new Map<string, AppAccess>();
  readonly #client = new AdmissionClient();
  readonly #logger: Logger | undefined;
  /** Closing calls under way. */
  readonly #closings = new Set<Promise<unknown>>();
  #closed = false;

  constructor(options: AccessControlOptions) {
    this.#logger = options.logger;
    for (const vhost of options.vhosts) {
      for (const app of vhost.apps) {
        if (app.admissionWebhooks || app.signedPolicy) {
          this.#apps.set(`${vhost.name}/${app.name}`, { admissionWebhooks: app.admissionWebhooks, signedPolicy: app.signedPolicy });
        }
      }
    }
  }

  /**
   * The query parameters `direction` of `vhost/app` may carry besides the signaling's own: the
   * signed policy's two, or `any` when a control server judges the request (OME passes the whole
   * URL to it, query included).
   */
  queryKeys(vhost: string, app: string, direction: AccessDirection): readonly string[] | 'any' {
    const rules = this.#apps.get(`${vhost}/${app}`);
    if (rules?.admissionWebhooks?.enables[direction]) return 'any';
    const policy = rules?.signedPolicy;
    return policy?.enables[direction] ? [policy.policyQueryKeyName, policy.signatureQueryKeyName] : [];
  }

  /**
   * Checks `request` against its app's rules. Resolves with the admission, or rejects with
   * FORBIDDEN and the reason (a bad signed URL, the control server's denial, or its failure unless
   * the app fails open). A request to an app without rules is admitted at once.
   */
  async admit(request: AccessRequest): Promise<Admission> {
    const { direction, app, stream, client } = request;
    const rules = this.#apps.get(`${request.vhost}/${app}`);
    let expiresAt: number | undefined;
    const policy = rules?.signedPolicy;
    if (policy?.enables[direction]) {
      const result = client.url === undefined
        ? { allowed: false as const, reason: 'The request URL is unknown' }
        : checkSignedPolicy(client.url, client.remoteAddress, { secretKey: policy.secretKey, policyKey: policy.policyQueryKeyName, signatureKey: policy.signatureQueryKeyName });
      if (!result.allowed) throw errors.forbidden(`Signed policy: ${result.reason}`);
      expiresAt = result.streamExpireAt;
    }
    const hook = rules?.admissionWebhooks;
    if (!hook?.enables[direction]) return { app, stream, expiresAt, end: noop };

    const opening: AdmissionRequest = {
      direction: direction === 'publish' ? 'incoming' : 'outgoing',
      status: 'opening',
      url: client.url ?? '',
      sessionId: request.sessionId,
      client: { address: client.remoteAddress, port: client.remotePort, userAgent: client.userAgent },
    };
    const verdict = await this.#client.open(hook.controlServerUrl, hook.secretKey, opening, hook.timeoutMs);
    let target = { app, stream };
    let newUrl: string | undefined;
    if (verdict.kind === 'denied') {
      // OME's own text when the control server gives no reason (without the control server's URL).
      throw errors.forbidden(verdict.reason ?? `The control server denied admission to ${opening.url} by ${client.remoteAddress}:${client.remotePort}.`);
    }
    if (verdict.kind === 'failed') {
      this.#logger?.warn({ app: `${request.vhost}/${app}`, session: request.sessionId, reason: verdict.reason, failOpen: hook.failOpen }, 'admission webhook failed');
      if (!hook.failOpen) throw errors.forbidden(`Admission could not be checked: ${verdict.reason}`);
    } else {
      if (verdict.lifetimeMs > 0) expiresAt = Math.min(expiresAt ?? Infinity, Date.now() + verdict.lifetimeMs);
      if (verdict.newUrl !== undefined) {
        target = targetOf(verdict.newUrl)!;
        newUrl = verdict.newUrl;
      }
    }
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      const closing: AdmissionRequest = { ...opening, status: 'closing', newUrl };
      const call = this.#client.close(hook.controlServerUrl, hook.secretKey, closing, hook.timeoutMs).then((r) => {
        if (!r.ok) this.#logger?.warn({ app: `${request.vhost}/${app}`, session: request.sessionId, reason: r.reason }, 'admission webhook (closing) failed');
        this.#closings.delete(call);
        if (this.#closed && this.#closings.size === 0) this.#client.destroy();
      });
      this.#closings.add(call);
    };
    return { ...target, expiresAt, end };
  }

  /**
   * Drops the hook client's connections once the closing calls under way have ended (each within
   * its time-out); `settled()` resolves then.
   */
  close(): void {
    this.#closed = true;
    if (this.#closings.size === 0) this.#client.destroy();
  }

  /** Resolves when every closing call under way has been answered or has failed. */
  async settled(): Promise<void> {
    while (this.#closings.size > 0) await Promise.allSettled([...this.#closings]);
  }
}

/**
 * The URL a client requested, as OME builds it for the signed policy and the hook: the scheme of
 * the listener (`http`/`https` for WHIP/WHEP, `ws`/`wss` for WebSocket signaling), the `Host` with
 * its port (the listener's port when the client left it out, as OME adds it), the path and query
 * as sent.
 */
export function requestedUrl(
  request: { headers: { host?: string }; url?: string; socket: { localPort?: number; localAddress?: string; encrypted?: boolean } },
  kind: 'http' | 'ws',
): string {
  const tls = request.socket.encrypted === true;
  const scheme = kind === 'http' ? (tls ? 'https' : 'http') : (tls ? 'wss' : 'ws');
  let host = request.headers.host;
  if (!host) {
    const address = request.socket.localAddress ?? 'localhost';
    host = address.includes(':') ? `[${address}]` : address;
  }
  const hasPort = host.startsWith('[') ? /\]:\d+$/.test(host) : host.includes(':');
  if (!hasPort && request.socket.localPort) host = `${host}:${request.socket.localPort}`;
  return `${scheme}://${host}${request.url ?? '/'}`;
}
