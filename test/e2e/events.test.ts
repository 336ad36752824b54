/**
 * Event webhooks end to end: a Kiln process, Chromium publishers and players, and a real HTTP
 * receiver in this process. Every opened event gets exactly one closed, with its reason: a player
 * that closes its tab, one kicked through the MaxScale API, one whose stream is deleted through the
 * OME API. Then the receiver is down for 10 s while Kiln is killed and restarted: every event
 * arrives once or more, none missing, in order per subject, and `GET /v1/events` shows none pending.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { freePort, startKiln, type KilnProcess } from '../helpers/kiln-process.ts';
import { launchChromium, playPage, publishPage, waitFor, type LaunchedBrowser } from '../helpers/browser.ts';
import { signedWith, startWebhookReceiver, type ReceivedEvent, type WebhookReceiver } from '../helpers/webhook-receiver.ts';
import { assertJsonApi } from '../helpers/jsonapi.ts';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

const SECRET = 'webhook-secret';
let kiln: KilnProcess;
let chromium: LaunchedBrowser;
let receiver: WebhookReceiver;
let env: Record<string, string>;
const dataDir = mkdtempSync(join(tmpdir(), 'kiln-events-e2e-'));

before(async () => {
  receiver = await startWebhookReceiver();
  env = {
    KILN_DATA_DIR: dataDir,
    KILN_API_PORT: String(await freePort()),
    KILN_SIGNALING_PORT: String(await freePort()),
    KILN_EVENT_WEBHOOKS: receiver.url,
    KILN_EVENT_SECRET: SECRET,
  };
  [kiln, chromium] = await Promise.all([startKiln(env), launchChromium()]);
});
after(async () => {
  await chromium?.close();
  if (kiln) assert.equal(await kiln.stop(), 0);
  await receiver?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const publish = (stream: string): Promise<Page> => publishPage(chromium, kiln.signalingUrl, stream, kiln.password);
const play = (stream: string, session: string): Promise<Page> => playPage(chromium, kiln.signalingUrl, stream, session);

/** The distinct events received (first copy of each id), in order of arrival. */
function distinct(): ReceivedEvent['event'][] {
  const seen = new Map<string, ReceivedEvent['event']>();
  for (const r of receiver.received) if (!seen.has(r.event.id)) seen.set(r.event.id, r.event);
  return [...seen.values()];
}

const ofSubject = (subject: string, type?: string) => distinct().filter((e) => e.subject === subject && (type === undefined || e.type === type));

async function waitForEvent(subject: string, type: string, timeoutMs = 20_000): Promise<ReceivedEvent['event']> {
  const found = await waitFor(async () => ofSubject(subject, type), (l) => l.length > 0, timeoutMs, 100);
  assert.equal(found.length, 1, `one ${type} of ${subject}: ${JSON.stringify(distinct().filter((e) => e.subject === subject))}`);
  return found[0];
}

async function api(path: string, init: { method?: string; auth?: string | null } = {}): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {};
  if (init.auth !== null) headers.authorization = init.auth ?? kiln.basic;
  const res = await fetch(`${kiln.apiUrl}${path}`, { method: init.method ?? 'GET', headers });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
}

/** Every event of GET /v1/events, oldest first. */
async function listed(): Promise<any[]> {
  const { status, body } = await api('/v1/events?page[size]=1000');
  assert.equal(status, 200);
  assertJsonApi(body, 'GET /v1/events');
  assert.ok(body.meta.total <= 1000, 'one page holds them all');
  return [...body.data].reverse();
}

describe('event webhooks', () => {
  test('opened and closed come in pairs with their reasons: tab closed, kicked through MaxScale, stream deleted through OME', async () => {
    const publisher = await publish('ev');
    const tab = await play('ev', 'p-tab');
    await play('ev', 'p-kick');
    await play('ev', 'p-del');

    const created = await waitForEvent('default/app/ev', 'stream.created');
    assert.equal(created.data.stream.source_type, 'WebRTC');
    const publisherId = created.data.stream.source_session as string;
    const opened = await waitForEvent('p-kick', 'session.opened');
    assert.equal(opened.data.session.kind, 'player');
    assert.equal(opened.data.session.protocol, 'whep');
    assert.equal(opened.data.session.remote_address, '127.0.0.1');
    const maxscaleIds = (await api('/v1/sessions')).body.data.map((s: { id: string }) => s.id);
    assert.ok(maxscaleIds.includes('p-kick') && maxscaleIds.includes(publisherId), 'the events carry the ids the session APIs use');

    await tab.close();
    const tabClosed = await waitForEvent('p-tab', 'session.closed', 25_000);
    assert.ok(['client-left', 'connection-failed', 'timed-out'].includes(tabClosed.data.reason), `tab closed: ${tabClosed.data.reason}`);

    assert.equal((await api('/v1/sessions/p-kick', { method: 'DELETE' })).status, 204);
    const kicked = await waitForEvent('p-kick', 'session.closed');
    assert.equal(kicked.data.reason, 'kicked');
    assert.equal(kicked.data.closed_by, 'maxscale-api:admin');
    assert.ok(kicked.data.bytes_out > 0, 'the close carries the counters');

    assert.equal((await api('/v1/vhosts/default/apps/app/streams/ev', { method: 'DELETE' })).status, 200);
    const destroyed = await waitForEvent('default/app/ev', 'stream.destroyed');
    assert.equal(destroyed.data.reason, 'kicked');
    assert.equal(destroyed.data.closed_by, 'ome-api:admin');
    assert.equal((await waitForEvent('p-del', 'session.closed')).data.reason, 'stream-ended');
    const publisherClosed = await waitForEvent(publisherId, 'session.closed');
    assert.equal(publisherClosed.data.reason, 'kicked');
    assert.equal(publisherClosed.data.closed_by, 'ome-api:admin');
    await publisher.close();

    for (const subject of ['p-tab', 'p-kick', 'p-del', publisherId]) {
      assert.deepEqual(ofSubject(subject).map((e) => e.type), ['session.opened', 'session.closed'], subject);
    }
    assert.deepEqual(ofSubject('default/app/ev').map((e) => e.type), ['stream.created', 'stream.destroyed']);
    assert.ok(receiver.received.every((r) => signedWith(SECRET, r)), 'every request is signed');
    const ids = distinct().map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length);
  });

  test('GET /v1/events: newest first, paged, with each delivery; bad paging is 400 and no credentials 401, in MaxScale shape', async () => {
    await waitFor(async () => (await api('/v1/events?pending=true')).body.meta.total, (n) => n === 0, 10_000);
    const { status, body } = await api('/v1/events?page[size]=2&page[number]=1');
    assert.equal(status, 200);
    assertJsonApi(body, 'GET /v1/events');
    assert.equal(body.data.length, 2);
    assert.ok(body.meta.total >= 10);
    assert.ok(body.links.next && body.links.prev && body.links.first && body.links.last);
    const [a, b] = body.data;
    assert.ok(a.attributes.seq > b.attributes.seq, 'newest first');
    assert.equal(a.type, 'events');
    assert.match(a.attributes.event, /^(stream|session|room_session|participant|recording)\./);
    assert.equal(a.attributes.status, 'sent');
    assert.equal(a.attributes.deliveries[0].endpoint, receiver.url);
    assert.equal(a.attributes.deliveries[0].status, 'sent');
    // As the OpenAPI document describes them (nullable is OpenAPI's: dropped for plain JSON Schema).
    const doc = await fetch(`${kiln.apiUrl}/openapi.json`).then((r) => r.json());
    assert.ok(doc.paths['/v1/events'].get);
    const eventSchema = JSON.parse(JSON.stringify(doc.components.schemas.KilnEvent).replaceAll('"nullable":true', '"type":["string","null"]').replaceAll('"type":"string","type"', '"type"'));
    const ajv = new Ajv({ strict: false });
    addFormats(ajv);
    const valid = ajv.compile(eventSchema);
    for (const e of body.data) assert.ok(valid(e), JSON.stringify(valid.errors));
    const next = await fetch(body.links.next, { headers: { authorization: kiln.basic } }).then((r) => r.json());
    assert.equal(next.data[0].attributes.seq, b.attributes.seq - 1, 'next continues where the page ended');
    const bad = await api('/v1/events?page[size]=0');
    assert.equal(bad.status, 400);
    assert.match(bad.body.errors[0].detail, /page\[size\]/);
    assert.equal((await api('/v1/events?pending=maybe')).status, 400);
    const metrics = await fetch(`${kiln.apiUrl}/metrics`).then((r) => r.text());
    assert.equal(Number(/^kiln_events_total (\d+)$/m.exec(metrics)?.[1]), body.meta.total);
    assert.equal(Number(/^kiln_event_deliveries_total (\d+)$/m.exec(metrics)?.[1]), body.meta.total);
    assert.match(metrics, /^kiln_events_queued 0$/m);
    const anonymous = await api('/v1/events', { auth: null });
    assert.equal(anonymous.status, 401);
    assert.ok(anonymous.body.errors[0].detail);
  });

  test('the receiver down for 10 s and Kiln killed and restarted meanwhile: every event arrives, none missing, in order per subject', async () => {
    await receiver.down();
    const downAt = Date.now();
    const before = receiver.received.length;
    const publisher = await publish('ev2');
    const player = await play('ev2', 'p-crash');
    // Killed: what was open (the publisher, the player, the stream) is closed at the next start.
    kiln.child.kill('SIGKILL');
    await new Promise((resolve) => kiln.child.once('exit', resolve));
    await Promise.all([publisher.close(), player.close()]);
    kiln = await startKiln(env);
    const third = await publish('ev3');
    await play('ev3', 'p-after');
    await third.close();
    await waitFor(async () => (await api('/v1/sessions')).body.data.length, (n) => n === 0, 25_000);
    const pending = (await api('/v1/events?pending=true')).body.meta.total;
    assert.ok(pending >= 10, `events wait while the receiver is down: ${pending}`);
    assert.equal(receiver.received.length, before, 'nothing was received while down');
    await sleep(Math.max(0, 10_000 - (Date.now() - downAt)));
    await receiver.up();

    await waitFor(async () => (await api('/v1/events?pending=true')).body.meta.total, (n) => n === 0, 45_000, 250);
    const all = await listed();
    const received = distinct();
    const receivedIds = new Set(received.map((e) => e.id));
    const missing = all.filter((e) => !receivedIds.has(e.id));
    assert.deepEqual(missing.map((e) => `${e.attributes.event} ${e.attributes.subject}`), [], 'none missing');
    // In order per subject: the first arrival of each event follows the outbox order.
    const bySubject = new Map<string, number[]>();
    for (const e of received) bySubject.set(e.subject, [...(bySubject.get(e.subject) ?? []), e.seq]);
    for (const [subject, seqs] of bySubject) assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), `order of ${subject}`);

    const crashed = ofSubject('p-crash');
    assert.deepEqual(crashed.map((e) => e.type), ['session.opened', 'session.closed']);
    assert.equal(crashed[1].data.reason, 'node-lost');
    assert.deepEqual(ofSubject('default/app/ev2').map((e) => [e.type, e.data.reason]), [['stream.created', undefined], ['stream.destroyed', 'node-lost']]);
    assert.deepEqual(ofSubject('p-after').map((e) => e.type), ['session.opened', 'session.closed']);
    // Every opened has exactly one closed, over the whole run.
    const opens = received.filter((e) => e.type === 'session.opened' || e.type === 'stream.created');
    for (const o of opens) {
      const closes = received.filter((e) => e.subject === o.subject && (e.type === 'session.closed' || e.type === 'stream.destroyed') && e.seq > o.seq);
      assert.ok(closes.length >= 1, `${o.type} ${o.subject} is closed`);
    }
    const closes = received.filter((e) => e.type === 'session.closed' || e.type === 'stream.destroyed');
    assert.equal(closes.length, opens.length, 'as many closes as opens');
    assert.ok(receiver.received.every((r) => signedWith(SECRET, r)));
  });
});
