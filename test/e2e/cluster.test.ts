/**
 * A Kiln cluster (issue 8): three real Kiln processes on one real PostgreSQL (started here), with
 * Chromium as the WHIP publisher and WHEP player. A publishes, B plays through an OVT relay from A,
 * C lists and steers both; then A is killed with SIGKILL, and PostgreSQL is stopped for 5 s.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import type { Page } from 'playwright-core';
import { freePort, startKiln, type KilnProcess } from '../helpers/kiln-process.ts';
import { inboundStats, launchChromium, waitFor, type LaunchedBrowser } from '../helpers/browser.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.ts';
import { assertJsonApi } from '../helpers/jsonapi.ts';
import { startSite, type Site } from '../helpers/site.ts';
import { joinWithOpenVidu } from '../helpers/openvidu-page.ts';
import { RoomRpc } from '../helpers/room-rpc.ts';

let db: TestPostgres;
let chromium: LaunchedBrowser;
let site: Site;
const nodes: Record<'a' | 'b' | 'c', KilnProcess> = {} as never;
/** Receives the cluster's events (one node delivers them at a time). */
let receiver: WebhookReceiver;
/** The events received about `subject` (first copy of each), in order of arrival. */
const eventsOf = (subject: string) => [...new Map(receiver.received.filter((r) => r.event.subject === subject).map((r) => [r.event.id, r.event])).values()];

async function startNode(id: string): Promise<KilnProcess> {
  const sigPort = String(await freePort());
  return startKiln({
    KILN_DATABASE_URL: db.url,
    KILN_EVENT_WEBHOOKS: receiver.url,
    KILN_EVENT_SECRET: 'cluster-events',
    KILN_NODE_ID: id,
    KILN_SIGNALING_PORT: sigPort,
    KILN_PUBLIC_URL: `http://127.0.0.1:${sigPort}`,
  });
}

before(async () => {
  [db, chromium, site, receiver] = await Promise.all([startPostgres(), launchChromium(), startSite(), startWebhookReceiver()]);
});
after(async () => {
  await receiver?.close();
  await chromium?.close();
  await site?.close();
  for (const node of Object.values(nodes)) await node.stop(15_000).catch(() => {});
  await db?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An API call on a node; the body parsed as JSON when there is one. */
async function call(node: KilnProcess, path: string, method = 'GET', body?: unknown, auth = node.basic): Promise<{ status: number; body: any }> {
  const res = await fetch(`${node.apiUrl}${path}`, {
    method,
    headers: { authorization: auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
}

const metrics = async (node: KilnProcess) => (await fetch(`${node.apiUrl}/metrics`)).text();
const omeStreams = async (node: KilnProcess) => (await call(node, '/v1/vhosts/default/apps/app/streams')).body.response as string[];
const maxscaleSessions = async (node: KilnProcess) => {
  const { body } = await call(node, '/v1/sessions');
  assertJsonApi(body, 'GET /v1/sessions');
  return body.data as any[];
};

async function publish(node: KilnProcess, stream: string): Promise<Page> {
  const page = await chromium.browser.newPage();
  await page.goto(`${node.signalingUrl}/publish.html?autostart=1&stream=${stream}&token=${node.password}`);
  assert.equal(await waitFor(() => page.textContent('#status'), (s) => s === 'connection: connected' || /WHIP|Error/.test(s ?? ''), 15_000), 'connection: connected');
  return page;
}

const pcState = (page: Page, name: string) =>
  page.evaluate((n) => (window as unknown as Record<string, RTCPeerConnection | undefined>)[n]?.connectionState ?? 'none', name);

describe('three nodes on one PostgreSQL', () => {
  let publisher: Page;
  let player: Page;
  let playerId: string;

  test('three nodes starting at once on an empty database all come up, migrated once', async () => {
    const [a, b, c] = await Promise.all([startNode('node-a'), startNode('node-b'), startNode('node-c')]);
    Object.assign(nodes, { a, b, c });
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ id: string; state: string }>('SELECT id, state FROM cluster_nodes ORDER BY id');
      assert.deepEqual(rows, [{ id: 'node-a', state: 'alive' }, { id: 'node-b', state: 'alive' }, { id: 'node-c', state: 'alive' }]);
      const versions = (await client.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version')).rows.map((r) => r.version);
      assert.deepEqual(versions, versions.map((_, i) => i + 1), 'each migration applied once');
    } finally {
      await client.end();
    }
  });

  test('a stream published on A plays on B (frames decoded) and C lists it with both sessions', async () => {
    publisher = await publish(nodes.a, 'cam');
    // Any node sees the stream, with A's tracks.
    const listed = await waitFor(() => omeStreams(nodes.c), (s) => s.includes('cam'), 5_000);
    assert.deepEqual(listed, ['cam']);
    const info = await call(nodes.c, '/v1/vhosts/default/apps/app/streams/cam');
    assert.equal(info.status, 200);
    assert.equal(info.body.response.input.sourceType, 'WebRTC');
    player = await chromium.browser.newPage();
    await player.goto(`${nodes.b.signalingUrl}/play.html?autostart=1&stream=cam&session=viewer-b`);
    const stats = await waitFor(() => inboundStats(player, 'kilnPlayer'), (s) => s.framesDecoded > 10 && s.frameWidth > 0, 20_000);
    assert.ok(stats.framesDecoded > 10 && stats.frameWidth > 0, `B's player decodes: ${JSON.stringify(stats)}`);
    playerId = 'viewer-b';
    // C lists the stream once (B's relay is not a stream of its own), and its publisher and player.
    assert.deepEqual(await omeStreams(nodes.c), ['cam']);
    assert.deepEqual((await call(nodes.c, '/v1/vhosts/default/apps/app/streams/cam/sessions')).body.response, [playerId]);
    const sessions = await maxscaleSessions(nodes.c);
    const kinds = sessions.filter((s) => s.attributes.stream === 'cam').map((s) => `${s.attributes.kind}/${s.attributes.protocol}`).sort();
    assert.ok(kinds.includes('publisher/whip') && kinds.includes('player/whep'), `C lists both sessions: ${kinds.join(', ')}`);
    assert.equal(sessions.find((s) => s.id === playerId)?.attributes.node, 'node-b', 'the player, on node B');
    // One relay on B, one OVT connection to A.
    assert.match(await metrics(nodes.b), /^kiln_relays 1$/m);
    assert.match(await metrics(nodes.a), /^kiln_ovt_connections 1$/m);
    assert.match(await metrics(nodes.a), /^kiln_cluster_database_up 1$/m);
    assert.equal(sessions.find((s) => s.attributes.kind === 'publisher' && s.attributes.stream === 'cam')?.attributes.node, 'node-a');
    // Publishing the name on another node is refused while A has it.
    const taken = await fetch(`${nodes.c.signalingUrl}/app/cam?direction=whip`, {
      method: 'POST', headers: { 'content-type': 'application/sdp', authorization: `Bearer ${nodes.c.password}` }, body: 'v=0\r\n',
    });
    assert.equal(taken.status, 409);
  });

  test("B's player is kicked through C", async () => {
    const kicked = await call(nodes.c, `/v1/vhosts/default/apps/app/streams/cam/sessions/${playerId}`, 'DELETE');
    assert.equal(kicked.status, 200, JSON.stringify(kicked.body));
    // The call returns once it happened: gone from every node's view.
    assert.deepEqual((await call(nodes.c, '/v1/vhosts/default/apps/app/streams/cam/sessions')).body.response, []);
    assert.ok(!(await maxscaleSessions(nodes.a)).some((s) => s.id === playerId));
    assert.equal(await waitFor(() => pcState(player, 'kilnPlayer'), (s) => s === 'closed' || s === 'failed' || s === 'disconnected', 10_000) !== 'connected', true);
    assert.equal((await call(nodes.c, `/v1/sessions/${playerId}`)).status, 404);
    await player.close();
    // The same through MaxScale's API.
    player = await chromium.browser.newPage();
    await player.goto(`${nodes.b.signalingUrl}/play.html?autostart=1&stream=cam&session=viewer-b-2`);
    await waitFor(() => inboundStats(player, 'kilnPlayer'), (s) => s.framesDecoded > 5, 20_000);
    const destroyed = await call(nodes.c, '/v1/sessions/viewer-b-2', 'DELETE');
    assert.equal(destroyed.status, 204);
    assert.equal((await call(nodes.a, '/v1/sessions/viewer-b-2')).status, 404);
    assert.notEqual(await waitFor(() => pcState(player, 'kilnPlayer'), (s) => s !== 'connected', 10_000), 'connected');
    await player.close();
  });

  test('the stream deleted through C: A\'s publisher is closed', async () => {
    const deleted = await call(nodes.c, '/v1/vhosts/default/apps/app/streams/cam', 'DELETE');
    assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
    assert.deepEqual(await omeStreams(nodes.b), []);
    assert.deepEqual(await omeStreams(nodes.a), []);
    const state = await waitFor(() => pcState(publisher, 'kilnPublisher'), (s) => s !== 'connected', 10_000);
    assert.notEqual(state, 'connected');
    assert.equal((await call(nodes.c, '/v1/vhosts/default/apps/app/streams/cam', 'DELETE')).status, 404);
    await publisher.close();
  });

  test('kill -9 A: within 10 s B and C no longer list its stream, and B\'s player sees it end', async () => {
    publisher = await publish(nodes.a, 'cam2');
    await waitFor(() => omeStreams(nodes.c), (s) => s.includes('cam2'), 5_000);
    player = await chromium.browser.newPage();
    await player.goto(`${nodes.b.signalingUrl}/play.html?autostart=1&stream=cam2&session=viewer-b2`);
    await waitFor(() => inboundStats(player, 'kilnPlayer'), (s) => s.framesDecoded > 5, 20_000);
    const killedAt = Date.now();
    nodes.a.child.kill('SIGKILL');
    const gone = await waitFor(async () => [await omeStreams(nodes.b), await omeStreams(nodes.c)], ([b, c]) => !b.includes('cam2') && !c.includes('cam2'), 12_000, 200);
    const took = Date.now() - killedAt;
    assert.deepEqual(gone, [[], []]);
    assert.ok(took <= 10_000, `declared dead and closed in ${took} ms`);
    console.log(`# kill -9: B and C stopped listing the stream ${took} ms after`);
    const ended = await waitFor(() => pcState(player, 'kilnPlayer'), (s) => s !== 'connected', 10_000);
    assert.notEqual(ended, 'connected');
    assert.ok(!(await maxscaleSessions(nodes.c)).some((s) => s.attributes.stream === 'cam2'), 'no session of the stream is left');
    // The registry, as MaxScale servers: A is down.
    const servers = (await call(nodes.c, '/v1/servers')).body.data as any[];
    assert.deepEqual(servers.map((x) => [x.id, x.attributes.state]), [['node-a', 'Down'], ['node-b', 'Running'], ['node-c', 'Running']]);
    // The events: what A left open is closed by another node (node-lost), and delivered by B now
    // that A (the first node, which delivered) is gone; B's player closed as the stream ended.
    const stream = await waitFor(async () => eventsOf('default/app/cam2'), (l) => l.length >= 2, 15_000, 200);
    assert.deepEqual(stream.map((e) => e.type), ['stream.created', 'stream.destroyed']);
    assert.equal(stream[0].node, 'node-a');
    assert.equal(stream[1].data.reason, 'node-lost');
    assert.equal(stream[1].data.lost_node, 'node-a');
    assert.notEqual(stream[1].node, 'node-a');
    const viewer = await waitFor(async () => eventsOf('viewer-b2'), (l) => l.length >= 2, 15_000, 200);
    assert.deepEqual(viewer.map((e) => [e.type, e.node]), [['session.opened', 'node-b'], ['session.closed', 'node-b']]);
    assert.equal(viewer[1].data.reason, 'stream-ended');
    const publisherEvents = await waitFor(async () => eventsOf(stream[0].data.stream.source_session), (l) => l.length >= 2, 15_000, 200);
    assert.deepEqual(publisherEvents.map((e) => [e.type, e.data.reason]), [['session.opened', undefined], ['session.closed', 'node-lost']]);
    await player.close();
    await publisher.close();
  });

  test('a room session lives on the node that made it: its token made through C, joined at B, listed everywhere', async () => {
    const openvidu = `Basic ${Buffer.from(`OPENVIDUAPP:${nodes.b.password}`).toString('base64')}`;
    const created = await call(nodes.b, '/api/sessions', 'POST', {}, openvidu);
    assert.equal(created.status, 200);
    const sessionId = created.body.id as string;
    assert.ok(sessionId.startsWith(nodes.b.wsUrl), `the id points at B: ${sessionId}`);
    const token = await call(nodes.c, '/api/tokens', 'POST', { session: sessionId, role: 'PUBLISHER', data: 'ana' }, openvidu);
    assert.equal(token.status, 200, JSON.stringify(token.body));
    assert.equal(token.body.session, sessionId);
    const ana = await joinWithOpenVidu(chromium.browser, site.url, sessionId, token.body.token, 'ana-meta');
    await ana.publish();
    assert.deepEqual((await call(nodes.c, '/api/sessions', 'GET', undefined, openvidu)).body, [sessionId]);
    const roomSessions = await call(nodes.c, '/api/video/room_sessions?status=in-progress');
    assert.equal(roomSessions.status, 200);
    assert.deepEqual(roomSessions.body.data.map((r: any) => r.name), [sessionId.split('/').pop()]);
    const participant = (await maxscaleSessions(nodes.c)).find((s) => s.attributes.kind === 'participant');
    assert.equal(participant?.attributes.node, 'node-b');
    assert.equal(participant?.relationships.services.data[0].id, sessionId.split('/').pop(), 'its service is its room, on any node');
    const services = (await call(nodes.c, '/v1/services')).body.data as any[];
    assert.ok(services.some((x) => x.id === sessionId.split('/').pop() && x.attributes.kind === 'room'), 'C lists the room as a service');
    // Unknown sessions are still 400 in OpenVidu's shape on any node.
    assert.equal((await call(nodes.c, '/api/tokens', 'POST', { session: 'ws://nowhere/none', role: 'PUBLISHER' }, openvidu)).status, 400);
    // Recorded through C: run on B, whose disk gets the file; C lists it and sends its URL to B.
    const started = await call(nodes.c, '/api/recordings/start', 'POST', { session: sessionId }, openvidu);
    assert.equal(started.status, 200, JSON.stringify(started.body));
    assert.equal(started.body.status, 'started');
    await sleep(2500);
    const stopped = await call(nodes.c, `/api/recordings/stop/${started.body.id}`, 'POST', undefined, openvidu);
    assert.equal(stopped.status, 200, JSON.stringify(stopped.body));
    assert.equal(stopped.body.status, 'stopped');
    assert.ok(stopped.body.size > 0 && stopped.body.duration > 1, JSON.stringify(stopped.body));
    assert.deepEqual((await call(nodes.c, '/api/recordings', 'GET', undefined, openvidu)).body.items.map((r: any) => r.id), [started.body.id]);
    const file = await fetch(`${nodes.c.signalingUrl}/recordings/${started.body.id}.mp4`, { headers: { authorization: nodes.c.basic }, redirect: 'manual' });
    assert.equal(file.status, 307);
    assert.equal(file.headers.get('location'), `${nodes.b.signalingUrl}/recordings/${started.body.id}.mp4`);
    const there = await fetch(file.headers.get('location')!, { headers: { authorization: nodes.c.basic, range: 'bytes=0-99' } });
    assert.equal(there.status, 206);
    await ana.page.close();
  });

  test('a SignalWire room in progress on B: joined there only, changed and deleted through C, history everywhere', async () => {
    const room = await call(nodes.c, '/api/video/rooms', 'POST', { name: 'hall', max_members: 5 });
    assert.equal(room.status, 200);
    const token = async () => (await call(nodes.c, '/api/video/room_tokens', 'POST', { room_name: 'hall', user_name: 'u' })).body.token as string;
    const join = async (node: KilnProcess) => {
      const rpc = await RoomRpc.connect(`${node.wsUrl}/room`);
      try {
        return { rpc, result: await rpc.call('joinRoom', { session: `${node.wsUrl}/hall`, token: await token(), metadata: '' }) };
      } catch (err) {
        rpc.ws.close();
        throw err;
      }
    };
    const first = await join(nodes.b);
    assert.ok(first.result.id, 'joined at B');
    // The room is in progress on B: a member cannot start a second session of it on C.
    await assert.rejects(join(nodes.c), /in progress on node node-b/);
    // Locked through C: the change reaches B's session, which refuses the next join.
    const locked = await call(nodes.c, `/api/video/rooms/${room.body.id}`, 'PUT', { locked: true });
    assert.equal(locked.status, 200, JSON.stringify(locked.body));
    assert.equal(locked.body.locked, true);
    await assert.rejects(join(nodes.b), /lock/i);
    // Deleted through C: B ends the session; its history is kept and seen from C.
    assert.equal((await call(nodes.c, `/api/video/rooms/${room.body.id}`, 'DELETE')).status, 204);
    const ended = await waitFor(() => call(nodes.c, `/api/video/room_sessions?room_id=${room.body.id}`), (r) => r.body.data?.[0]?.status === 'completed', 10_000, 250);
    assert.equal(ended.body.data.length, 1);
    first.rpc.ws.close();
  });

  test('PostgreSQL stopped for 5 s: media flows on, control calls get 503, then recover', async () => {
    publisher = await publish(nodes.b, 'cam3');
    player = await chromium.browser.newPage();
    await player.goto(`${nodes.b.signalingUrl}/play.html?autostart=1&stream=cam3&session=viewer-b3`);
    await waitFor(() => inboundStats(player, 'kilnPlayer'), (s) => s.framesDecoded > 5, 20_000);
    await db.pause();
    const pausedAt = Date.now();
    const refused = await waitFor(() => call(nodes.c, '/v1/sessions'), (r) => r.status === 503, 5_000, 200);
    assert.equal(refused.status, 503);
    assert.ok(Array.isArray(refused.body.errors), 'MaxScale\'s error shape');
    assert.match(await metrics(nodes.c), /^kiln_cluster_database_up 0$/m);
    const ome = await call(nodes.b, '/v1/vhosts/default/apps/app/streams');
    assert.equal(ome.status, 503);
    assert.equal(ome.body.statusCode, 503, 'OME\'s error shape');
    const openvidu = await call(nodes.c, '/api/sessions', 'GET', undefined, `Basic ${Buffer.from(`OPENVIDUAPP:${nodes.c.password}`).toString('base64')}`);
    assert.deepEqual([openvidu.status, openvidu.body.status], [503, 503], 'OpenVidu\'s error shape');
    const signalwire = await call(nodes.c, '/api/video/rooms');
    assert.equal(signalwire.status, 503);
    assert.deepEqual(signalwire.body, { error: 'Service Unavailable' }, 'SignalWire\'s error shape');
    const before = (await inboundStats(player, 'kilnPlayer')).framesDecoded;
    await sleep(Math.max(0, 5_000 - (Date.now() - pausedAt)));
    const during = (await inboundStats(player, 'kilnPlayer')).framesDecoded;
    assert.ok(during > before + 20, `media flowed while the database was down: ${before} → ${during}`);
    await db.resume();
    const back = await waitFor(() => call(nodes.c, '/v1/vhosts/default/apps/app/streams'), (r) => r.status === 200 && r.body.response.includes('cam3'), 15_000, 250);
    assert.deepEqual(back.body.response, ['cam3']);
    const players = await waitFor(() => call(nodes.b, '/v1/vhosts/default/apps/app/streams/cam3/sessions'), (r) => r.status === 200, 10_000, 250);
    assert.deepEqual(players.body.response, ['viewer-b3']);
    const stats = await inboundStats(player, 'kilnPlayer');
    assert.ok(stats.framesDecoded > during, 'and it still flows');
    await player.close();
    await publisher.close();
  });
});
