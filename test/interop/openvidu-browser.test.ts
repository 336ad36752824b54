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
});
