/**
 * The MaxScale dialect over live clients of every kind: a WHIP publisher and two WHEP players in
 * Chromium, an RTSP pull from a GStreamer camera, and an openvidu-browser room participant that
 * publishes. Every response is checked against JSON:API; DELETE ends exactly the one client.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as dns } from 'node:dns';
import type { Page } from 'playwright-core';
import { freePort, startKiln, type KilnProcess } from '../helpers/kiln-process.ts';
import { inboundStats, launchChromium, playPage, publishPage, waitFor, type LaunchedBrowser } from '../helpers/browser.ts';
import { startRtspServer, type RtspServer } from '../helpers/rtsp-server.ts';
import { startSite, type Site } from '../helpers/site.ts';
import { joinWithOpenVidu, type OpenViduParticipant } from '../helpers/openvidu-page.ts';
import { assertJsonApi } from '../helpers/jsonapi.ts';

let kiln: KilnProcess;
let chromium: LaunchedBrowser;
let camera: RtspServer;
let site: Site;

before(async () => {
  const sigPort = String(await freePort());
  [kiln, chromium, camera, site] = await Promise.all([
    startKiln({ KILN_SIGNALING_PORT: sigPort, KILN_PUBLIC_URL: `http://127.0.0.1:${sigPort}` }),
    launchChromium(),
    startRtspServer(),
    startSite(),
  ]);
});
after(async () => {
  await chromium?.close();
  await site?.close();
  await camera?.stop();
  assert.equal(await kiln.stop(), 0);
});

type Doc = { links: Record<string, string>; data: any; errors?: { detail: string }[]; meta?: { total: number } };

/** A MaxScale-dialect call; every body is checked to be a JSON:API document. */
async function maxscale(path: string, init: { method?: string; auth?: string | null } = {}): Promise<{ status: number; body: Doc; text: string; headers: Headers }> {
  const headers: Record<string, string> = {};
  if (init.auth !== null) headers.authorization = init.auth ?? kiln.basic;
  const res = await fetch(`${kiln.apiUrl}${path}`, { method: init.method ?? 'GET', headers });
  const text = await res.text();
  const body = text === '' ? undefined : JSON.parse(text);
  if (body !== undefined) assertJsonApi(body, `${init.method ?? 'GET'} ${path}`);
  return { status: res.status, body, text, headers: res.headers };
}

const sessions = async (query = '') => (await maxscale(`/v1/sessions${query}`)).body.data as any[];
const byId = async () => new Map((await sessions()).map((s) => [s.id as string, s]));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const publish = (stream: string): Promise<Page> => publishPage(chromium, kiln.signalingUrl, stream, kiln.password);
const play = (stream: string, session: string): Promise<Page> => playPage(chromium, kiln.signalingUrl, stream, session);

const playerState = (page: Page) =>
  page.evaluate(() => (window as unknown as { kilnPlayer?: RTCPeerConnection }).kilnPlayer?.connectionState ?? 'none');

describe('MaxScale sessions over live publishers, players, a pull and a room participant', () => {
  let one: Page;
  let two: Page;
  let alice: OpenViduParticipant;
  let roomName: string;

  test('every client is listed exactly once, with its service', async () => {
    await publish('cam');
    one = await play('cam', 'viewer-one');
    two = await play('cam', 'viewer-two');
    const pulled = await fetch(`${kiln.apiUrl}/v1/vhosts/default/apps/app/streams`, {
      method: 'POST',
      headers: { authorization: kiln.basic, 'content-type': 'application/json' },
      // No player ever plays it: keep it past the default 60 s unused-stream deletion.
      body: JSON.stringify({ name: 'cctv', urls: [camera.url('/h264-opus')], properties: { unusedStreamDeletionTimeoutMs: 600_000 } }),
    });
    assert.equal(pulled.status, 201);
    const openvidu = `Basic ${Buffer.from(`OPENVIDUAPP:${kiln.password}`).toString('base64')}`;
    const post = async (path: string, body?: object) => (await fetch(`${kiln.apiUrl}${path}`, {
      method: 'POST', headers: { authorization: openvidu, 'content-type': 'application/json' }, body: body ? JSON.stringify(body) : undefined,
    })).json() as Promise<Record<string, string>>;
    const { id: sessionId } = await post('/api/sessions');
    roomName = sessionId.split('/').pop()!;
    const { token } = await post('/api/tokens', { session: sessionId, role: 'PUBLISHER', data: 'alice' });
    alice = await joinWithOpenVidu(chromium.browser, site.url, sessionId, token, 'alice-meta');
    await alice.publish();
    const cameraStream = `${alice.connectionId}_CAMERA`;
    await waitFor(byId, (m) => [...m.values()].some((s) => s.attributes.stream === cameraStream && s.attributes.state === 'Session started'), 20_000);

    const { status, body } = await maxscale('/v1/sessions');
    assert.equal(status, 200);
    assert.equal(body.links.self, `${kiln.apiUrl}/v1/sessions/`);
    const list = body.data as any[];
    assert.equal(new Set(list.map((s) => s.id)).size, list.length, 'no session twice');
    const find = (pred: (a: any) => boolean) => list.filter((s) => pred(s.attributes));
    const [publisher] = find((a) => a.kind === 'publisher' && a.stream === 'cam');
    const players = find((a) => a.kind === 'player' && a.stream === 'cam');
    const [pull] = find((a) => a.kind === 'pull');
    const [participant] = find((a) => a.kind === 'participant');
    const [roomPublisher] = find((a) => a.kind === 'publisher' && a.stream === cameraStream);
    assert.ok(publisher && pull && participant && roomPublisher, JSON.stringify(list.map((s) => s.attributes.kind)));
    assert.deepEqual(players.map((s) => s.id).sort(), ['viewer-one', 'viewer-two']);
    assert.equal(list.length, 6, 'publisher, two players, the pull, the participant and its camera');
    assert.equal(publisher.attributes.protocol, 'whip');
    assert.equal(players[0].attributes.protocol, 'whep');
    assert.equal(pull.attributes.protocol, 'rtsp');
    assert.equal(pull.attributes.stream, 'cctv');
    assert.equal(participant.attributes.protocol, 'openvidu');
    assert.equal(participant.attributes.user, 'alice', 'the participant name: its token data');
    assert.equal(participant.attributes.room_session, roomPublisher.attributes.room_session);
    assert.match(participant.attributes.room_session, /^[0-9a-f-]{36}$/);
    assert.equal(publisher.attributes.room_session, null);
    assert.equal(publisher.attributes.user, 'admin', 'the WHIP credential');

    // Relationships: the app for the app's clients, the room for the room's.
    const serviceOf = (s: any) => s.relationships.services.data.map((d: any) => `${d.type}:${d.id}`);
    for (const s of [publisher, ...players, pull]) assert.deepEqual(serviceOf(s), ['services:default/app']);
    for (const s of [participant, roomPublisher]) assert.deepEqual(serviceOf(s), [`services:${roomName}`]);
    for (const s of list) {
      assert.equal(s.type, 'sessions');
      assert.equal(s.links.self, `${kiln.apiUrl}/v1/sessions/${s.id}`);
      assert.equal(s.relationships.services.links.self, `${kiln.apiUrl}/v1/services/`);
      // What maxctrl reads.
      for (const key of ['user', 'remote', 'connected', 'idle', 'io_activity']) assert.ok(s.attributes[key] !== undefined, key);
      assert.equal(typeof s.attributes.memory.total, 'number');
      assert.equal(s.attributes.remote, '127.0.0.1');
      assert.ok(Math.abs(new Date(s.attributes.connected).getTime() - Date.now()) < 120_000, s.attributes.connected);
      assert.match(s.attributes.connected, /^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}$/);
    }
    assert.ok(players.every((p) => p.attributes.memory.total > 0), 'players hold packets for retransmission');

    // The services resolve, each listing its sessions.
    const app = await maxscale('/v1/services/default%2Fapp');
    assert.equal(app.status, 200);
    assert.deepEqual(app.body.data.relationships.sessions.data.map((d: any) => d.id).sort(), [publisher.id, ...players.map((p) => p.id), pull.id].sort());
    assert.equal(app.body.data.attributes.connections, 4);
    const room = await maxscale(`/v1/services/${roomName}`);
    assert.equal(room.status, 200);
    assert.deepEqual(room.body.data.relationships.sessions.data.map((d: any) => d.id).sort(), [participant.id, roomPublisher.id].sort());
    assert.equal(room.body.data.attributes.room_session, participant.attributes.room_session);
    const all = await maxscale('/v1/services');
    assert.deepEqual(all.body.data.map((s: any) => s.id).sort(), ['default/app', roomName].sort());
    // The two-segment form of an app's id also resolves; the link (escaped) resolves to the same.
    assert.deepEqual((await maxscale('/v1/services/default/app')).body.data.id, 'default/app');
    assert.equal(app.body.links.self, `${kiln.apiUrl}/v1/services/default%2Fapp`);
  });

  test('counters and io_activity grow; idle stays low while media flows and resets with signaling', async () => {
    const before = await byId();
    const idles: number[] = [];
    const participantId = [...before.values()].find((s) => s.attributes.kind === 'participant').id;
    for (let i = 0; i < 16; i++) {
      await sleep(300);
      idles.push((await maxscale(`/v1/sessions/${participantId}`)).body.data.attributes.idle);
    }
    const later = await byId();
    for (const [id, s] of before) {
      const a = s.attributes;
      const b = later.get(id).attributes;
      const moved = a.kind === 'player' ? b.bytes_out - a.bytes_out : a.kind === 'participant' ? b.bytes_in + b.bytes_out - a.bytes_in - a.bytes_out : b.bytes_in - a.bytes_in;
      assert.ok(moved > 0, `${a.kind} ${id}: bytes moved ${moved}`);
      assert.ok(b.io_activity > 0, `${a.kind} io_activity ${b.io_activity}`);
      assert.ok(b.packets_in + b.packets_out > a.packets_in + a.packets_out, `${a.kind} packets grow`);
      // Players' idle moves with the once-a-second activity sample.
      if (a.kind !== 'participant') assert.ok(b.idle < 2.5, `${a.kind} idle ${b.idle} while media flows`);
      assert.ok(b.seconds_alive > a.seconds_alive);
    }
    // openvidu-browser pings every 3 s: the participant's idle climbs, then drops back.
    assert.ok(Math.max(...idles) > 1, `idle climbs above 1 s between pings: ${idles}`);
    assert.ok(idles.some((v, i) => i > 0 && v < idles[i - 1] - 0.5), `idle drops back when a ping comes: ${idles}`);
  });

  test('pretty, fields, filter, page and rdns', async () => {
    const pretty = await maxscale('/v1/sessions?pretty=true');
    assert.match(pretty.text, /^\{\n {4}"links": \{\n {8}"self"/);
    const compact = await maxscale('/v1/sessions');
    assert.ok(!compact.text.includes('\n'));
    const prettyError = await maxscale('/v1/sessions/nobody?pretty=true');
    assert.match(prettyError.text, /^\{\n {4}"errors"/);

    const sparse = (await maxscale('/v1/sessions?fields[sessions]=kind,memory/total,services')).body.data as any[];
    for (const s of sparse) {
      assert.deepEqual(Object.keys(s.attributes).sort(), ['kind', 'memory']);
      assert.deepEqual(Object.keys(s.attributes.memory), ['total']);
      assert.deepEqual(Object.keys(s.relationships), ['services']);
      assert.ok(s.id && s.type && s.links.self);
    }
    const noRel = (await maxscale('/v1/sessions?fields[sessions]=state')).body.data as any[];
    assert.ok(noRel.every((s) => s.relationships === undefined && Object.keys(s.attributes).join() === 'state'));

    assert.deepEqual((await sessions('?filter=/attributes/kind="player"')).map((s) => s.id).sort(), ['viewer-one', 'viewer-two']);
    assert.deepEqual((await sessions('?filter=/data/attributes/kind=player')).map((s) => s.id).sort(), ['viewer-one', 'viewer-two']);
    assert.equal((await sessions(`?filter=/relationships/services/data/0/id="default/app"`)).length, 4);
    assert.deepEqual((await sessions('?filter[attributes.protocol]=or(eq("rtsp"),eq("whip"))')).map((s) => s.attributes.protocol).sort(), ['rtsp', 'whip']);
    assert.equal((await sessions('?filter=/attributes/kind="nothing"')).length, 0);
    assert.equal((await sessions('?filter=/attributes/room_session=null')).length, 4, 'null is JSON null');
    assert.equal((await sessions('?FILTER=/attributes/kind="pull"&filter=/attributes/kind="player"')).length, 1, 'names are case-blind; the first value wins');
    const badFilter = await maxscale('/v1/sessions?filter=/attributes/idle=lt(1');
    assert.equal(badFilter.status, 400);
    assert.match(badFilter.body.errors![0].detail, /Expected '\)'/);

    const page = await maxscale('/v1/sessions?page[size]=4&page[number]=1');
    assert.equal(page.body.data.length, 2);
    assert.equal(page.body.meta?.total, 6);
    assert.ok(page.body.links.prev && page.body.links.first && page.body.links.last);

    // rdns: the name the resolver gives for the address (as asked here), or the address when it
    // has none or takes longer than Kiln waits.
    const expected = await dns.reverse('127.0.0.1').then((names) => names[0], () => '127.0.0.1');
    const named = (await sessions('?rdns=true')).filter((s) => s.attributes.kind === 'player');
    assert.equal(named.length, 2);
    for (const s of named) assert.ok([expected, '127.0.0.1'].includes(s.attributes.remote), s.attributes.remote);
    assert.ok((await sessions('?rdns=false')).every((s) => s.attributes.remote === '127.0.0.1'));
    const one = await maxscale('/v1/sessions/viewer-one?fields[sessions]=user');
    assert.deepEqual(one.body.data.attributes, { user: 'anonymous' });
  });

  test('401 and 404 in MaxScale\'s shape', async () => {
    const anonymous = await maxscale('/v1/sessions', { auth: null });
    assert.equal(anonymous.status, 401);
    assert.deepEqual(anonymous.body, { errors: [{ detail: 'Access denied' }] });
    assert.equal(anonymous.headers.get('www-authenticate'), 'Basic realm="maxscale"');
    const wrong = await maxscale('/v1/services', { auth: `Basic ${Buffer.from('admin:nope').toString('base64')}` });
    assert.equal(wrong.status, 401);
    for (const path of ['/v1/sessions/nobody', '/v1/services/nothing', '/v1/services/default%2Fnope', '/v1/sessions/a/b']) {
      const res = await maxscale(path);
      assert.equal(res.status, 404, path);
      assert.equal(typeof res.body.errors![0].detail, 'string');
    }
    assert.equal((await maxscale('/v1/sessions/nobody', { method: 'DELETE' })).status, 404);
    const patch = await maxscale('/v1/sessions/viewer-one', { method: 'PATCH' });
    assert.equal(patch.status, 405);
  });

  test('a node alone is one server, Running, with its load', async () => {
    const { status, body } = await maxscale('/v1/servers');
    assert.equal(status, 200);
    assert.equal(body.data.length, 1);
    const [server] = body.data;
    assert.equal(server.type, 'servers');
    assert.equal(server.attributes.state, 'Running');
    assert.equal(server.attributes.parameters.port, Number(new URL(kiln.apiUrl).port));
    assert.ok(server.attributes.load.sessions > 0);
    assert.equal((await maxscale(`/v1/servers/${server.id}`)).body.data.id, server.id);
    assert.equal((await maxscale('/v1/servers/nobody')).status, 404);
  });

  test('the OpenAPI document describes the MaxScale endpoints', async () => {
    const doc = await (await fetch(`${kiln.apiUrl}/openapi.json`)).json();
    assert.deepEqual(Object.keys(doc.paths['/v1/sessions/{id}']).sort(), ['delete', 'get']);
    assert.deepEqual(Object.keys(doc.paths['/v1/sessions/{id}'].get.responses).sort(), ['200', '401', '404']);
    assert.ok(doc.paths['/v1/sessions'].get && doc.paths['/v1/services'].get && doc.paths['/v1/services/{id}'].get);
    assert.ok(doc.components.schemas.MaxScaleSession.properties.attributes.properties.io_activity);
  });

  test('DELETE ends exactly the one client, whatever its kind', async () => {
    const kill = async (id: string, query = '') => {
      const res = await maxscale(`/v1/sessions/${encodeURIComponent(id)}${query}`, { method: 'DELETE' });
      assert.equal(res.status, 204);
      assert.equal(res.text, '');
    };
    // A player: its PeerConnection closes; the other keeps decoding.
    await kill('viewer-one');
    assert.equal((await sessions()).some((s) => s.id === 'viewer-one'), false);
    assert.notEqual(await waitFor(() => playerState(one), (s) => s !== 'connected', 10_000), 'connected');
    const frames = (await inboundStats(two, 'kilnPlayer')).framesDecoded;
    const still = await waitFor(() => inboundStats(two, 'kilnPlayer'), (s) => s.framesDecoded > frames + 10, 10_000);
    assert.ok(still.framesDecoded > frames + 10, 'the other player keeps decoding');
    assert.equal((await sessions()).length, 5);

    // The pull: the stream is gone.
    const pull = (await sessions('?filter=/attributes/kind="pull"'))[0];
    await kill(pull.id);
    const streams = await (await fetch(`${kiln.apiUrl}/v1/vhosts/default/apps/app/streams`, { headers: { authorization: kiln.basic } })).json() as { response: string[] };
    assert.deepEqual(streams.response, ['cam']);

    // The participant: evicted, with its camera.
    const participant = (await sessions('?filter=/attributes/kind="participant"'))[0];
    await kill(participant.id);
    const log = await waitFor(() => alice.log(), (l) => l.rpc.some((m) => m.method === 'participantEvicted'), 10_000);
    assert.ok(log.rpc.some((m) => m.method === 'participantEvicted'));
    const gone = await waitFor(sessions, (l) => l.every((s) => s.attributes.room_session === null), 10_000);
    assert.ok(gone.every((s) => s.attributes.room_session === null), 'its camera went with it');
    // The room closes once empty (after its grace period).
    const room = await waitFor(() => maxscale(`/v1/services/${roomName}`), (r) => r.status === 404, 15_000);
    assert.equal(room.status, 404);

    // ttl: the session stays for its grace period, then goes; a new ttl replaces the pending one.
    await kill('viewer-two', '?ttl=30');
    const killedAt = Date.now();
    await kill('viewer-two', '?ttl=2');
    assert.ok((await sessions()).some((s) => s.id === 'viewer-two'), 'still there during its ttl');
    const closed = await waitFor(sessions, (l) => !l.some((s) => s.id === 'viewer-two'), 10_000);
    assert.ok(!closed.some((s) => s.id === 'viewer-two'));
    const after = (Date.now() - killedAt) / 1000;
    assert.ok(after >= 1.9 && after < 4, `closed after ${after} s`);
    assert.notEqual(await waitFor(() => playerState(two), (s) => s !== 'connected', 10_000), 'connected');
    const left = await sessions();
    assert.deepEqual(left.map((s) => s.attributes.kind), ['publisher'], 'the publisher alone is left');
  });
});
