/**
 * Interop with OpenVidu 1.x's own browser client, `openvidu-browser` 1.9.0 from npm, unchanged:
 * sessions and tokens from the OpenVidu REST API, then the room signaling at `/room`, with three
 * Chromium participants (two publishers and a subscriber) in one session.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startKiln, freePort, type KilnProcess } from '../helpers/kiln-process.ts';
import { launchChromium, waitFor, type LaunchedBrowser } from '../helpers/browser.ts';
import { startSite, type Site } from '../helpers/site.ts';
import { joinWithOpenVidu, waitForMedia, type OpenViduParticipant } from '../helpers/openvidu-page.ts';

let kiln: KilnProcess;
let chromium: LaunchedBrowser;
let site: Site;
let openvidu: string;

before(async () => {
  const sigPort = String(await freePort());
  kiln = await startKiln({ KILN_SIGNALING_PORT: sigPort, KILN_PUBLIC_URL: `http://127.0.0.1:${sigPort}` });
  openvidu = `Basic ${Buffer.from(`OPENVIDUAPP:${kiln.password}`).toString('base64')}`;
  chromium = await launchChromium();
  site = await startSite();
});
after(async () => {
  await chromium?.close();
  await site?.close();
  assert.equal(await kiln.stop(), 0);
});

async function post(path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${kiln.apiUrl}${path}`, {
    method: 'POST',
    headers: { authorization: openvidu, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() as Record<string, unknown> };
}

async function newToken(session: string, role: string, data: string): Promise<string> {
  const { status, json } = await post('/api/tokens', { session, role, data });
  assert.equal(status, 200, JSON.stringify(json));
  return json.token as string;
}

describe('openvidu-browser 1.9.0 in a three-party session', () => {
  let sessionId: string;
  let alice: OpenViduParticipant;
  let bob: OpenViduParticipant;
  let carol: OpenViduParticipant;

  test('two publishers and a subscriber join; each publisher decodes the other, the subscriber both', async () => {
    const created = await post('/api/sessions');
    assert.equal(created.status, 200);
    sessionId = created.json.id as string;
    assert.match(sessionId, /^ws:\/\/127\.0\.0\.1:\d+\/[a-z0-9]{16}$/);

    alice = await joinWithOpenVidu(chromium.browser, site.url, sessionId, await newToken(sessionId, 'PUBLISHER', 'alice-data'), 'alice-meta');
    await alice.publish();
    bob = await joinWithOpenVidu(chromium.browser, site.url, sessionId, await newToken(sessionId, 'PUBLISHER', 'bob-data'), 'bob-meta');
    await bob.publish();
    carol = await joinWithOpenVidu(chromium.browser, site.url, sessionId, await newToken(sessionId, 'SUBSCRIBER', 'carol-data'), 'carol-meta');

    const aliceStream = `${alice.connectionId}_CAMERA`;
    const bobStream = `${bob.connectionId}_CAMERA`;
    const a = await waitForMedia(alice, bobStream);
    const b = await waitForMedia(bob, aliceStream);
    const c1 = await waitForMedia(carol, aliceStream);
    const c2 = await waitForMedia(carol, bobStream);
    for (const [who, s] of [['alice<-bob', a], ['bob<-alice', b], ['carol<-alice', c1], ['carol<-bob', c2]] as const) {
      assert.ok(s.framesDecoded > 5 && s.frameWidth === 320 && s.audioPackets > 5, `${who}: ${JSON.stringify(s)}`);
    }
    // Token data reaches the others as the connection's metadata (client metadata %/% token data).
    const seen = (await carol.log()).events.filter((e) => e.name === 'connectionCreated');
    assert.ok(seen.some((e) => e.connectionId === alice.connectionId && e.data === 'alice-meta%/%alice-data'), JSON.stringify(seen));
    assert.ok(seen.some((e) => e.connectionId === bob.connectionId && e.data === 'bob-meta%/%bob-data'), JSON.stringify(seen));
  });

  test("the participants' streams and subscriptions are sessions the OME API lists", async () => {
    const get = async (path: string) => (await (await fetch(`${kiln.apiUrl}${path}`, { headers: { authorization: kiln.basic } })).json()) as { response: unknown };
    const streams = (await get('/v1/vhosts/default/apps/rooms/streams')).response as string[];
    assert.deepEqual(streams.sort(), [`${alice.connectionId}_CAMERA`, `${bob.connectionId}_CAMERA`].sort());
    const info = (await get(`/v1/vhosts/default/apps/rooms/streams/${alice.connectionId}_CAMERA`)).response as { input: { sourceType: string } };
    // OME's own word for a WebRTC input (its sourceType enum has nothing for rooms).
    assert.equal(info.input.sourceType, 'WebRTC');
    const players = (await get(`/v1/vhosts/default/apps/rooms/streams/${alice.connectionId}_CAMERA/sessions`)).response as string[];
    assert.equal(players.length, 2, 'bob and carol receive alice');
    // A room's media stays in the room: no WHEP viewer from outside.
    const whep = await fetch(`${kiln.signalingUrl}/rooms/${alice.connectionId}_CAMERA?direction=whep`, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: 'v=0\r\n' });
    assert.equal(whep.status, 403);
  });

  test('a signal reaches every participant with its sender', async () => {
    await bob.page.evaluate(() => (window as any).ovSession.signal({ data: 'hello', type: 'chat' }));
    for (const p of [alice, bob, carol]) {
      const log = await waitFor(() => p.log(), (l) => l.events.some((e) => e.name === 'signal'), 5000);
      const signal = log.events.find((e) => e.name === 'signal');
      assert.equal(signal?.data, 'hello');
      assert.equal(signal?.connectionId, bob.connectionId);
    }
  });

  test("the subscriber's publish attempt fails with an error the client shows", async () => {
    await carol.publish();
    const log = await waitFor(() => carol.log(), (l) => l.errors.some((e) => e.startsWith('Error on publishVideo')), 10_000);
    const error = log.rpc.find((m) => m.error?.code === 401);
    assert.ok(error, JSON.stringify(log.rpc.filter((m) => m.error)));
    assert.match(error.error!.message, /Unable to publish video/);
    assert.ok(log.errors.some((e) => e.startsWith('Error on publishVideo')));
    const streams = ((await (await fetch(`${kiln.apiUrl}/v1/vhosts/default/apps/rooms/streams`, { headers: { authorization: kiln.basic } })).json()) as { response: string[] }).response;
    assert.equal(streams.length, 2, 'no stream of the subscriber');
  });

  test('a used token is refused', async () => {
    const token = await newToken(sessionId, 'PUBLISHER', '');
    const first = await joinWithOpenVidu(chromium.browser, site.url, sessionId, token, '');
    await first.page.close();
    await assert.rejects(joinWithOpenVidu(chromium.browser, site.url, sessionId, token, ''), /401.*not authorized|used already/i);
  });

  test('a participant closing its tab is announced by participantLeft within 15 s', async () => {
    const carolId = carol.connectionId;
    const closedAt = Date.now();
    await carol.page.close();
    for (const p of [alice, bob]) {
      const log = await waitFor(() => p.log(), (l) => l.rpc.some((m) => m.method === 'participantLeft' && m.params?.name === carolId), 15_000);
      assert.ok(log.rpc.some((m) => m.method === 'participantLeft' && m.params?.name === carolId));
    }
    assert.ok(Date.now() - closedAt < 15_000);
  });

  test('kicking a participant through the REST API evicts it: participantEvicted to it and the others', async () => {
    const get = async (path: string) => (await (await fetch(`${kiln.apiUrl}${path}`, { headers: { authorization: kiln.basic } })).json()) as { response: string[] };
    const players = (await get(`/v1/vhosts/default/apps/rooms/streams/${alice.connectionId}_CAMERA/sessions`)).response;
    assert.equal(players.length, 1, 'only bob receives alice now');
    const res = await fetch(`${kiln.apiUrl}/v1/vhosts/default/apps/rooms/streams/${alice.connectionId}_CAMERA/sessions/${players[0]}`, {
      method: 'DELETE',
      headers: { authorization: kiln.basic },
    });
    assert.equal(res.status, 200);
    const bobLog = await waitFor(() => bob.log(), (l) => l.rpc.some((m) => m.method === 'participantEvicted'), 5000);
    assert.ok(bobLog.events.some((e) => e.name === 'participant-evicted'));
    const aliceLog = await waitFor(() => alice.log(), (l) => l.rpc.some((m) => m.method === 'participantLeft' && m.params?.name === bob.connectionId), 5000);
    assert.ok(aliceLog.rpc.some((m) => m.method === 'participantEvicted' && m.params?.name === bob.connectionId));
    assert.ok(aliceLog.events.some((e) => e.name === 'connectionDestroyed' && e.connectionId === bob.connectionId));
    const streams = (await get('/v1/vhosts/default/apps/rooms/streams')).response;
    assert.deepEqual(streams, [`${alice.connectionId}_CAMERA`], "bob's stream ended with him");
  });
});
