/**
 * A SignalWire user's room, end to end: a room and room tokens from the SignalWire dialect, joined
 * by openvidu-browser 1.9.0 in Chromium with the session id `{KILN_PUBLIC_URL as ws}/{room name}`;
 * media flows; the room session is listed in progress and then completed, every response valid
 * against the seed's OpenAPI.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, startKiln, type KilnProcess } from '../helpers/kiln-process.ts';
import { launchChromium, waitFor, type LaunchedBrowser } from '../helpers/browser.ts';
import { startSite, type Site } from '../helpers/site.ts';
import { joinWithOpenVidu, waitForMedia } from '../helpers/openvidu-page.ts';
import { assertSpec } from '../helpers/signalwire-spec.ts';

let kiln: KilnProcess;
let chromium: LaunchedBrowser;
let site: Site;
let publicWs: string;

before(async () => {
  const sigPort = String(await freePort());
  publicWs = `ws://127.0.0.1:${sigPort}`;
  [kiln, chromium, site] = await Promise.all([
    startKiln({ KILN_SIGNALING_PORT: sigPort, KILN_PUBLIC_URL: `http://127.0.0.1:${sigPort}` }),
    launchChromium(),
    startSite(),
  ]);
});
after(async () => {
  await chromium?.close();
  await site?.close();
  assert.equal(await kiln.stop(), 0);
});

async function sw(method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${kiln.apiUrl}/api/video${path}`, {
    method,
    headers: { authorization: kiln.basic, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.equal(res.status, 200, `${method} ${path}`);
  return res.json();
}

describe('a SignalWire room joined by openvidu-browser', () => {
  test('two members join with room tokens, see each other, and the room session is history when they leave', async () => {
    const room = await sw('POST', '/rooms', { name: 'weekly_sync', display_name: 'Weekly sync', max_members: 4 });
    const token = async (user: string) => (await sw('POST', '/room_tokens', { room_name: 'weekly_sync', user_name: user })).token as string;
    const sessionId = `${publicWs}/weekly_sync`;
    const ana = await joinWithOpenVidu(chromium.browser, site.url, sessionId, await token('ana'), 'ana-meta');
    await ana.publish();
    const ben = await joinWithOpenVidu(chromium.browser, site.url, sessionId, await token('ben'), 'ben-meta');
    await ben.publish();
    const media = await waitForMedia(ben, `${ana.connectionId}_CAMERA`);
    assert.ok(media.framesDecoded > 5 && media.frameWidth > 0, JSON.stringify(media));
    assert.ok((await waitForMedia(ana, `${ben.connectionId}_CAMERA`)).framesDecoded > 5);

    const live = await sw('GET', `/room_sessions?room_id=${room.id}`);
    assertSpec('ListRoomSessionsResponse', live);
    assert.equal(live.data.length, 1);
    const rs = live.data[0];
    assert.deepEqual([rs.status, rs.name, rs.display_name, rs.max_members, rs.room_id, rs.cost_in_dollars], ['in-progress', 'weekly_sync', 'Weekly sync', 4, room.id, 0]);
    const members = await sw('GET', `/room_sessions/${rs.id}/members`);
    assert.deepEqual(members.data.map((m: any) => m.name).sort(), ['ana', 'ben']);

    for (const p of [ana, ben]) await p.page.close();
    const done = await waitFor(() => sw('GET', `/room_sessions/${rs.id}`), (s) => s.status === 'completed', 20_000);
    assertSpec('RoomSession', done);
    assert.equal(done.status, 'completed');
    assert.ok(done.duration >= 1, `duration ${done.duration}`);
    assert.equal(done.cost_in_dollars, 0, 'no price configured');
    const history = await sw('GET', `/room_sessions?room_name=weekly_sync&status=completed`);
    assertSpec('ListRoomSessionsResponse', history);
    assert.deepEqual(history.data.map((s: any) => s.id), [rs.id]);
    const left = await sw('GET', `/room_sessions/${rs.id}/members`);
    assert.ok(left.data.every((m: any) => m.leave_time !== null && m.duration >= 0), JSON.stringify(left.data));
  });
});
