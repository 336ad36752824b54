/**
 * The server's events (issue 9): each one is appended to the store's outbox, in the order it
 * happened, with a pending delivery to every configured webhook (src/events/delivery.ts sends them).
 *
 * Pairs: an opening event (session opened, stream created, room session started, participant
 * joined) records an open pair in the same transaction; its closing event removes it, and a close
 * with no open pair is not written, so each opened has exactly one closed. The pairs a node leaves
 * open when it dies or restarts are closed for it (`closeOrphans`, reason `node-lost`).
 *
 * `emit` never throws and never waits: it queues. The queue is written in order, what is queued
 * in one transaction (up to a batch); when the store fails (the database is unreachable), it waits and tries again, keeping order.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { isKilnError } from '../core/errors.ts';
import type { EventAppend, EventPairChange, EventStore, NewEventRecord } from '../store/store.ts';

/** The types of event the server emits. */
export type EventType =
  | 'stream.created' | 'stream.destroyed'
  | 'session.opened' | 'session.closed'
  | 'room_session.started' | 'room_session.ended'
  | 'participant.joined' | 'participant.left'
  | 'recording.status';

/** The events that close a pair, by the event that opens it. */
export const CLOSING: Partial<Record<EventType, EventType>> = {
  'stream.created': 'stream.destroyed',
  'session.opened': 'session.closed',
  'room_session.started': 'room_session.ended',
  'participant.joined': 'participant.left',
};

/** Events beyond this many queued (the store unreachable for long) are dropped, and logged. */
const MAX_QUEUED = 100_000;
const RETRY_MIN_MS = 250;
/** Queued events written in one transaction, at most. */
const BATCH = 256;
/** Failed writes of a batch before events are written one at a time. */
const SPLIT_AFTER = 3;
/** Failed writes of one event the store answers about (not "unavailable") before it is dropped. */
const GIVE_UP_AFTER = 6;
const RETRY_MAX_MS = 5000;

export interface EventLogOptions {
  store: EventStore;
  nodeId: string;
  /** The webhook endpoints (URLs) each event gets a pending delivery for. */
  endpoints: string[];
  logger: Logger;
  /** Called after events were appended (the delivery wakes up). */
  onAppended?: () => void;
}


export class EventLog {
  readonly #options: EventLogOptions;
  readonly #queue: EventAppend[] = [];
  #head = 0;
  #pumping: Promise<void> | undefined;
  #failing = false;
  #closed = false;
  #dropped = 0;
  /** Events appended since start (metrics). */
  appended = 0;

  constructor(options: EventLogOptions) {
    this.#options = options;
  }

  /** Events waiting to be written. */
  get queued(): number {
    return this.#queue.length - this.#head;
  }

  /** Queues an event that opens a pair `key` (closed by `close(key, …)`). */
  open(type: EventType, key: string, subject: string, data: Record<string, unknown>): void {
    this.#push(type, subject, data, { open: key, closeType: CLOSING[type] ?? `${type}.closed` });
  }

  /** Queues the closing event of pair `key`; it is written only when the pair is open. */
  close(type: EventType, key: string, subject: string, data: Record<string, unknown>): void {
    this.#push(type, subject, data, { close: key });
  }

  /** Queues an event that is not part of a pair. */
  emit(type: EventType, subject: string, data: Record<string, unknown>): void {
    this.#push(type, subject, data, undefined);
  }

  #push(type: string, subject: string, data: Record<string, unknown>, pair: EventPairChange | undefined): void {
    if (this.#closed) return;
    if (this.queued >= MAX_QUEUED) {
      // The store has been failing for long: this event is dropped (not one of a batch being written).
      if (this.#dropped++ % 1000 === 0) this.#options.logger.error({ dropped: this.#dropped }, 'the event queue is full (the store has been failing): new events dropped');
      return;
    }
    const event: NewEventRecord = { id: randomUUID(), type, time: new Date().toISOString(), nodeId: this.#options.nodeId, subject, data };
    this.#queue.push({ event, pair });
    this.#kick();
  }

  /** Starts the pump unless it runs; one that ends with events queued meanwhile starts again. */
  #kick(): void {
    if (this.#pumping || this.#closed) return;
    this.#pumping = this.#pump().finally(() => {
      this.#pumping = undefined;
      if (this.queued > 0) this.#kick();
    });
  }

  async #pump(): Promise<void> {
    let delay = RETRY_MIN_MS;
    let failures = 0;
    while (this.#head < this.#queue.length && !this.#closed) {
      // What is queued, up to a batch, in one transaction; one at a time after repeated failures,
      // so that one event the store refuses cannot hold back the others.
      const batch = this.#queue.slice(this.#head, this.#head + (failures >= SPLIT_AFTER ? 1 : BATCH));
      try {
        await this.#options.store.append(batch, this.#options.endpoints);
      } catch (err) {
        failures++;
        if (!this.#failing) this.#options.logger.warn({ err, queued: this.queued }, 'events cannot be written yet; retrying');
        this.#failing = true;
        if (batch.length === 1 && failures >= GIVE_UP_AFTER && !(isKilnError(err) && err.code === 'UNAVAILABLE')) {
          // The store answers but refuses this event: it is dropped, the others go on.
          this.#options.logger.error({ err, event: batch[0].event }, 'an event the store refuses is dropped');
          this.#head++;
          failures = 0;
          continue;
        }
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
        delay = Math.min(RETRY_MAX_MS, delay * 2);
        continue;
      }
      if (this.#failing) this.#options.logger.info('events are written again');
      this.#failing = false;
      failures = 0;
      delay = RETRY_MIN_MS;
      this.appended += batch.length;
      this.#head += batch.length;
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue.splice(0, this.#head);
        this.#head = 0;
      }
      this.#options.onAppended?.();
    }
    if (this.#head >= this.#queue.length) {
      this.#queue.length = 0;
      this.#head = 0;
    }
  }

  /** Waits until every queued event is written, or `timeoutMs` passes; true when all were. */
  async flush(timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.#pumping) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.#pumping, new Promise((resolve) => (timer = setTimeout(resolve, left)))]);
      clearTimeout(timer);
    }
    return this.queued === 0;
  }

  /** Stops writing (the store is closing): what is still queued is dropped, and nothing new is queued. */
  stop(): void {
    this.#closed = true;
  }

  /**
   * Writes the closing event of every pair node `nodeId` left open (it died, or this node restarted
   * after a crash; every node's when undefined: a store of its own), newest first (a participant leaves before its room session ends), with `reason`.
   * Safe to run on several nodes at once: each pair is closed once. Returns how many it closed.
   */
  async closeOrphans(nodeId: string | undefined, reason: string): Promise<number> {
    const pairs = await this.#options.store.openPairs(nodeId);
    for (const pair of pairs) {
      this.#push(pair.closeType, pair.subject, { ...pair.data, reason, lost_node: pair.nodeId }, { close: pair.key });
    }
    await this.flush();
    return pairs.length;
  }
}
