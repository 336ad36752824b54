/**
 * The event log and its delivery, on a real SQLite store and a real HTTP receiver: order, signatures,
 * retries with back-off after errors and an endpoint that is down, a restart in between, pairs closed
 * once, orphans of a crashed run closed with node-lost.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { EventLog } from '../../src/events/event-log.ts';
import { EventDelivery } from '../../src/events/delivery.ts';
import { signedWith, startWebhookReceiver } from '../helpers/webhook-receiver.ts';
import { waitFor } from '../helpers/browser.ts';

const logger = pino({ level: 'silent' });
const SECRET = 'shh';

function withDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-events-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

function node(dir: string, url: string) {
  const store = new SqliteStore(dir);
  const delivery = new EventDelivery({ store: store.events, webhooks: [{ url, secret: SECRET }], logger, pollMs: 100 });
  const log = new EventLog({ store: store.events, nodeId: 'n1', endpoints: [url], logger, onAppended: () => delivery.wake() });
  delivery.start();
  return {
    store, delivery, log,
    stop: async () => {
      await delivery.stop();
      await log.flush();
      await store.close();
    },
  };
}

test('events arrive signed, once, in order; errors and an endpoint that is down are retried, across a restart', withDir(async (dir) => {
  const receiver = await startWebhookReceiver();
  try {
    let n = node(dir, receiver.url);
    for (let i = 0; i < 20; i++) n.log.open('session.opened', `session:s${i}`, `s${i}`, { i });
    await waitFor(async () => receiver.received.length, (c) => c === 20, 5000, 20);
    assert.deepEqual(receiver.received.map((r) => r.event.data.i), [...Array(20).keys()], 'in order');
    assert.ok(receiver.received.every((r) => signedWith(SECRET, r)), 'every request is signed with the secret');
    assert.ok(!signedWith('other', receiver.received[0]), 'a wrong secret does not verify');
    assert.equal(receiver.received[0].headers['x-kiln-event-id'], receiver.received[0].event.id);
    assert.equal(receiver.received[0].headers['x-kiln-event-type'], 'session.opened');
    assert.equal(receiver.received[0].event.node, 'n1');

    // Three 503s: the same event again after each, with back-off (0.5 + 1 + 2 s), nothing skipped.
    receiver.refuseNext(3);
    const t0 = Date.now();
    n.log.close('session.closed', 'session:s0', 's0', { i: 's0-closed' });
    n.log.close('session.closed', 'session:s0', 's0', { i: 'twice' });
    n.log.close('session.closed', 'session:s1', 's1', { i: 's1-closed' });
    await waitFor(async () => receiver.received.length, (c) => c === 22, 10_000, 20);
    assert.equal(receiver.refused, 3);
    assert.ok(Date.now() - t0 >= 3000, `back-off: ${Date.now() - t0} ms`);
    assert.deepEqual(receiver.received.slice(20).map((r) => r.event.data.i), ['s0-closed', 's1-closed'], 'a pair closes once');
    const failed = (await n.store.events.list({ limit: 50, offset: 0 })).events.find((e) => e.data.i === 's0-closed')!;
    assert.equal(failed.deliveries[0].attempts, 4);
    assert.equal(failed.deliveries[0].lastError, 'HTTP 503');

    // Down; events meanwhile; a restart of the node; more events; up: all arrive, in order.
    await receiver.down();
    for (let i = 2; i < 6; i++) n.log.close('session.closed', `session:s${i}`, `s${i}`, { i: `s${i}-closed` });
    await new Promise((r) => setTimeout(r, 700));
    await n.stop();
    n = node(dir, receiver.url);
    assert.equal((await n.store.events.list({ limit: 100, offset: 0, pending: true })).total, 4, 'what was not sent is pending after the restart');
    n.log.emit('recording.status', 'r1', { i: 'after-restart' });
    await new Promise((r) => setTimeout(r, 1500));
    await receiver.up();
    await waitFor(async () => receiver.received.length, (c) => c >= 27, 40_000, 50);
    const firstSeen = [...new Map(receiver.received.slice(22).map((r) => [r.event.id, r.event.data.i])).values()];
    assert.deepEqual(firstSeen, ['s2-closed', 's3-closed', 's4-closed', 's5-closed', 'after-restart']);
    assert.equal((await n.store.events.list({ limit: 100, offset: 0, pending: true })).total, 0);
    await n.stop();
  } finally {
    await receiver.close();
  }
}));

test('a crashed run leaves pairs open: the next start closes them with node-lost, newest first, once', withDir(async (dir) => {
  const receiver = await startWebhookReceiver();
  try {
    const store = new SqliteStore(dir);
    const log = new EventLog({ store: store.events, nodeId: 'n1', endpoints: [receiver.url], logger });
    log.open('room_session.started', 'room_session:r', 'r', { room_session: { id: 'r' } });
    log.open('participant.joined', 'participant:p', 'p', { participant: { id: 'p' } });
    log.open('session.opened', 'session:other-node', 'x', {});
    await log.flush();
    // "Crash": the store is dropped without closing anything.
    await store.close();

    const again = new SqliteStore(dir);
    const log2 = new EventLog({ store: again.events, nodeId: 'n1', endpoints: [receiver.url], logger });
    assert.equal(await log2.closeOrphans('n1', 'node-lost'), 3);
    assert.equal(await log2.closeOrphans('n1', 'node-lost'), 0, 'closed once');
    const pending = await again.events.pending(receiver.url, 100);
    assert.deepEqual(pending.slice(3).map((e) => [e.type, e.subject, e.data.reason]), [
      ['session.closed', 'x', 'node-lost'],
      ['participant.left', 'p', 'node-lost'],
      ['room_session.ended', 'r', 'node-lost'],
    ]);
    assert.deepEqual(pending[4].data.participant, { id: 'p' }, 'the close repeats what was opened');
    await again.close();
  } finally {
    await receiver.close();
  }
}));

test('an event queued as the pump finishes is written too, and flush waits for it', withDir(async (dir) => {
  const store = new SqliteStore(dir);
  try {
    const log = new EventLog({ store: store.events, nodeId: 'n1', endpoints: [], logger });
    log.emit('recording.status', 'a', {});
    // Queued from microtasks while the first write ends.
    for (let i = 0; i < 5; i++) await Promise.resolve().then(() => log.emit('recording.status', `b${i}`, {}));
    assert.equal(await log.flush(), true);
    assert.equal(log.queued, 0);
    assert.equal((await store.events.list({ limit: 10, offset: 0 })).total, 6);
  } finally {
    await store.close();
  }
}));

test('an event the store refuses (it answers, with an error) is dropped after a few tries; the others are written', withDir(async (dir) => {
  const store = new SqliteStore(dir);
  try {
    const log = new EventLog({ store: store.events, nodeId: 'n1', endpoints: [], logger });
    log.emit('recording.status', 'ok-1', {});
    // Data JSON cannot carry: a BigInt makes JSON.stringify throw inside the store, every time.
    log.emit('recording.status', 'poison', { n: 1n });
    log.emit('recording.status', 'ok-2', {});
    assert.equal(await log.flush(30_000), true);
    assert.deepEqual((await store.events.list({ limit: 10, offset: 0 })).events.map((e) => e.subject).sort(), ['ok-1', 'ok-2']);
  } finally {
    await store.close();
  }
}));
