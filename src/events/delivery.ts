/**
 * Sends the outbox's events to the configured webhooks: one loop per endpoint, each event POSTed
 * as JSON in outbox order, the next only after the endpoint answered 2xx (so each subject's events
 * arrive in order). A failure is retried with back-off (0.5 s doubling to 30 s) until it succeeds:
 * at least once, nothing skipped. The deliveries are rows in the store, so what was not sent before a
 * restart is sent after it. In a cluster one node delivers at a time (`active`).
 *
 * Each request carries `X-Kiln-Signature: sha256=<hex HMAC-SHA256 of the body with the endpoint's
 * secret>`, `X-Kiln-Event-Id` and `X-Kiln-Event-Type`.
 */
import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';
import type { EventRecord, EventStore } from '../store/store.ts';
import type { EventWebhookConfig } from '../config/config.ts';

const BATCH = 200;
/** Deliveries recorded in one write, at most. */
const RECORD_EVERY = 32;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30_000;
/** An endpoint that does not answer within this long has failed this attempt. */
const REQUEST_TIMEOUT_MS = 10_000;

export interface EventDeliveryOptions {
  store: EventStore;
  webhooks: EventWebhookConfig[];
  logger: Logger;
  /** Whether this node delivers now (cluster mode: one node does). Default always. */
  active?: () => boolean | Promise<boolean>;
  /** How often an idle loop looks for events other nodes appended, ms. Default 1000. */
  pollMs?: number;
}

/** The body an endpoint receives for an event. */
export function eventBody(event: EventRecord): string {
  return JSON.stringify({ id: event.id, seq: event.seq, type: event.type, time: event.time, node: event.nodeId, subject: event.subject, data: event.data });
}

/** The `X-Kiln-Signature` of a body. */
export function eventSignature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export class EventDelivery {
  readonly #options: EventDeliveryOptions;
  readonly #agents = { http: new http.Agent({ keepAlive: true, maxSockets: 1 }), https: new https.Agent({ keepAlive: true, maxSockets: 1 }) };
  readonly #loops: Promise<void>[] = [];
  readonly #inFlight = new Set<http.ClientRequest>();
  #running = false;
  readonly #wake = new Set<() => void>();
  /** Ends every sleep (stop). */
  readonly #stoppers = new Set<() => void>();
  /** Events delivered since start (metrics). */
  delivered = 0;
  /** Failed attempts since start (metrics). */
  failures = 0;

  constructor(options: EventDeliveryOptions) {
    this.#options = options;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    for (const webhook of this.#options.webhooks) this.#loops.push(this.#loop(webhook));
  }

  /** New events were appended: idle loops look now. */
  wake(): void {
    for (const resolve of [...this.#wake]) resolve();
  }

  /** Stops every loop; a request in flight is abandoned (its event stays pending). */
  async stop(): Promise<void> {
    this.#running = false;
    this.wake();
    for (const stop of [...this.#stoppers]) stop();
    for (const request of this.#inFlight) request.destroy();
    await Promise.allSettled(this.#loops);
    this.#agents.http.destroy();
    this.#agents.https.destroy();
  }

  /** Sleeps `ms`, or until woken (when `wakeable`) or stopped. */
  #sleep(ms: number, wakeable: boolean): Promise<void> {
    return new Promise((resolve) => {
      if (!this.#running) return resolve();
      const done = () => {
        clearTimeout(timer);
        this.#stoppers.delete(done);
        this.#wake.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      this.#stoppers.add(done);
      if (wakeable) this.#wake.add(done);
    });
  }

  async #loop(webhook: EventWebhookConfig): Promise<void> {
    const pollMs = this.#options.pollMs ?? 1000;
    const state = { backoff: 0 };
    while (this.#running) {
      try {
        if (!(await this.#round(webhook, state))) await this.#sleep(pollMs, false);
      } catch (err) {
        // Nothing may end the loop but stop(): what went wrong is logged, and tried again.
        this.#options.logger.error({ err, endpoint: webhook.url }, 'event delivery failed unexpectedly; retrying');
        await this.#sleep(pollMs, false);
      }
    }
  }

  /**
   * Sends what is pending for `webhook`, in order, until a failure (then backs off) or the end of a
   * batch. False when the loop should wait a poll interval first (not delivering now, the store
   * failing).
   */
  async #round(webhook: EventWebhookConfig, state: { backoff: number }): Promise<boolean> {
    const { store, logger } = this.#options;
    const pollMs = this.#options.pollMs ?? 1000;
    let batch: EventRecord[];
    try {
      if (this.#options.active && !(await this.#options.active())) return false;
      batch = await store.pending(webhook.url, BATCH);
    } catch (err) {
      logger.debug({ err }, 'pending events cannot be read');
      return false;
    }
    if (batch.length === 0) {
      await this.#sleep(pollMs, true);
      return true;
    }
    // Deliveries are recorded a few at a time; not recorded (a crash, the store failing) means
    // sent again later: at least once. When recording fails, the loop waits rather than resend
    // the same events at once.
    const sent: number[] = [];
    let recorded = true;
    const record = async () => {
      if (sent.length === 0) return;
      await store.delivered(webhook.url, sent.splice(0), new Date().toISOString()).catch((err: Error) => {
        recorded = false;
        logger.debug({ err }, 'deliveries cannot be recorded');
      });
    };
    for (const event of batch) {
      if (!this.#running) break;
      const error = await this.#post(webhook, event);
      const at = new Date().toISOString();
      if (error === undefined) {
        this.delivered++;
        state.backoff = 0;
        sent.push(event.seq);
        if (sent.length >= RECORD_EVERY) await record();
        continue;
      }
      await record();
      this.failures++;
      state.backoff = state.backoff === 0 ? BACKOFF_MIN_MS : Math.min(BACKOFF_MAX_MS, state.backoff * 2);
      if (state.backoff === BACKOFF_MIN_MS) logger.warn({ endpoint: webhook.url, error }, 'an event webhook failed; retrying with back-off');
      await store.failed(webhook.url, event.seq, error, at).catch(() => {});
      await this.#sleep(state.backoff, false);
      return true;
    }
    await record();
    return recorded;
  }

  /** POSTs one event; undefined when the endpoint answered 2xx, else what went wrong. */
  #post(webhook: EventWebhookConfig, event: EventRecord): Promise<string | undefined> {
    const body = eventBody(event);
    const url = new URL(webhook.url);
    const secure = url.protocol === 'https:';
    return new Promise((resolve) => {
      const request = (secure ? https : http).request(url, {
        method: 'POST',
        agent: secure ? this.#agents.https : this.#agents.http,
        timeout: REQUEST_TIMEOUT_MS,
        headers: {
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(body),
          'User-Agent': 'Kiln',
          'X-Kiln-Signature': eventSignature(webhook.secret, body),
          'X-Kiln-Event-Id': event.id,
          'X-Kiln-Event-Type': event.type,
        },
      });
      this.#inFlight.add(request);
      const finish = (error: string | undefined) => {
        this.#inFlight.delete(request);
        resolve(error);
      };
      request.once('response', (response) => {
        response.resume();
        response.once('end', () => finish(response.statusCode! >= 200 && response.statusCode! < 300 ? undefined : `HTTP ${response.statusCode}`));
        response.once('error', (err) => finish(err.message));
      });
      request.once('timeout', () => request.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
      request.once('error', (err) => finish(err.message || String(err)));
      request.end(body);
    });
  }
}
