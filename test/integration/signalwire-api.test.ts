/**
 * The SignalWire Video dialect against a Kiln with real room joins (the room JSON-RPC, as
 * openvidu-browser speaks it): rooms, room tokens, the room sessions listing with its filters,
 * paging and errors, members, and the room settings enforced at join. Every room-session response
 * is validated against the seed's OpenAPI (ajv, draft 2020-12, formats).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startKilnInProcess, type InProcessKiln } from '../helpers/kiln-process.ts';
import { RoomRpc, RpcCallError } from '../helpers/room-rpc.ts';
import { assertSpec } from '../helpers/signalwire-spec.ts';

let node: InProcessKiln;
let api: string;
let ws: string;
/** Dollars per member-minute: large, so that a few seconds of members cost dollars a wrong formula cannot hide in. */
const PRICE = 60;

before(async () => {
  node = await startKilnInProcess((c) => {
    c.rooms.emptyTimeoutMs = 200;
    c.rooms.pricePerMemberMinute = PRICE;
  });
  api = `http://127.0.0.1:${node.kiln.api!.port}`;
  ws = node.signalingUrl.replace(/^http/, 'ws');
});
after(async () => {
  for (const rpc of open) rpc.close();
  await node?.stop();
});

const open: RoomRpc[] = [];
const basic = (user = 'admin', password = 'pw') => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

async function sw(method: string, path: string, body?: unknown, auth = basic()): Promise<{ status: number; json: any }> {
  const res = await fetch(`${api}/api/video${path}`, {
    method,
    headers: { authorization: auth, 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

/** A GET of the listing, checked against the spec for its status. */
async function list(query: string): Promise<{ status: number; json: any }> {
  const res = await sw('GET', `/room_sessions${query}`);
  const schema = res.status === 200 ? 'ListRoomSessionsResponse' : res.status === 422 ? 'VideoStatusCode422'
    : res.status === 401 ? 'Types.StatusCodes.StatusCode401' : res.status === 400 ? 'Types.StatusCodes.StatusCode400' : 'Types.StatusCodes.StatusCode500';
  assertSpec(schema, res.json, `GET /room_sessions${query}`);
  return res;
}

/** Joins `room` over the room signaling with a token from `POST /room_tokens`. */
async function join(room: string, token: string): Promise<RoomRpc> {
  const rpc = await RoomRpc.connect(`${ws}/room`);
  open.push(rpc);
  await rpc.call('joinRoom', { session: `${ws}/${room}`, token, metadata: '' });
  return rpc;
}

async function roomToken(body: Record<string, unknown>): Promise<string> {
  const res = await sw('POST', '/room_tokens', body);
  assert.equal(res.status, 200, JSON.stringify(res.json));
  assert.deepEqual(Object.keys(res.json), ['token']);
  return res.json.token;
}

function assert422(res: { status: number; json: any }, attribute: string, what: string): void {
  assert.equal(res.status, 422, `${what}: ${JSON.stringify(res.json)}`);
  assertSpec('VideoStatusCode422', res.json, what);
  assert.equal(res.json.errors[0].attribute, attribute, what);
  assert.equal(res.json.errors[0].type, 'validation_error');
  assert.match(res.json.errors[0].url, /^https:\/\/developer\.signalwire\.com\/rest\/overview\/error-codes\/#/);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('rooms', () => {
  test('create, read by id and by name, update what is given, delete', async () => {
    const created = await sw('POST', '/rooms', { name: 'standup', display_name: 'Daily standup', max_members: 5, quality: '1080p', fps: 30, layout: '2x2', join_from: '2020-01-01', meta: { team: 'a' } });
    assert.equal(created.status, 200);
    const room = created.json;
    assert.match(room.id, /^[0-9a-f-]{36}$/);
    assert.deepEqual(
      { name: room.name, display_name: room.display_name, max_members: room.max_members, quality: room.quality, fps: room.fps, layout: room.layout, join_from: room.join_from, meta: room.meta, locked: room.locked, record_on_start: room.record_on_start },
      { name: 'standup', display_name: 'Daily standup', max_members: 5, quality: '1080p', fps: 30, layout: '2x2', join_from: '2020-01-01T00:00:00Z', meta: { team: 'a' }, locked: false, record_on_start: false },
    );
    assert.deepEqual((await sw('GET', `/rooms/${room.id}`)).json, room);
    assert.deepEqual((await sw('GET', '/rooms/standup')).json, room);
    const updated = await sw('PUT', `/rooms/${room.id}`, { max_members: 7, locked: true });
    assert.equal(updated.status, 200);
    assert.equal(updated.json.max_members, 7);
    assert.equal(updated.json.locked, true);
    assert.equal(updated.json.display_name, 'Daily standup', 'what is not given keeps its value');
    assert.equal(updated.json.quality, '1080p');
    const listed = await sw('GET', '/rooms');
    assert.ok(listed.json.links.self && listed.json.links.first);
    assert.ok(listed.json.data.some((r: any) => r.id === room.id));
    assert.equal((await sw('DELETE', `/rooms/${room.id}`)).status, 204);
    assert.deepEqual(await sw('GET', `/rooms/${room.id}`), { status: 404, json: { error: 'Not Found' } });
    assert.deepEqual(await sw('DELETE', `/rooms/${room.id}`), { status: 404, json: { error: 'Not Found' } });
  });

  test('every field is validated, the error naming it', async () => {
    assert.equal((await sw('POST', '/rooms', { name: 'taken' })).status, 200);
    const dup = await sw('POST', '/rooms', { name: 'taken' });
    assert422(dup, 'name', 'duplicate name');
    assert.equal(dup.json.errors[0].code, 'value_not_unique');
    const cases: [Record<string, unknown>, string][] = [
      [{}, 'name'],
      [{ name: 'two words' }, 'name'],
      [{ name: 'x'.repeat(101) }, 'name'],
      [{ name: 'r1', max_members: 0 }, 'max_members'],
      [{ name: 'r1', max_members: 301 }, 'max_members'],
      [{ name: 'r1', max_members: '5' }, 'max_members'],
      [{ name: 'r1', quality: '4k' }, 'quality'],
      [{ name: 'r1', fps: 25 }, 'fps'],
      [{ name: 'r1', fps: '2e1' }, 'fps'],
      [{ name: 'r1', fps: ' 20' }, 'fps'],
      [{ name: 'r1', join_from: '2024-02-30' }, 'join_from'],
      [{ name: 'r1', join_from: '2023-02-29T10:00:00Z' }, 'join_from'],
      [{ name: 'r1', join_until: '2030-01-01T24:00:00Z' }, 'join_until'],
      [{ name: 'r1', remove_at: '0000-01-01T00:00:00Z' }, 'remove_at'],
      [{ name: 'r1', remove_at: '2030-13-01T00:00:00Z' }, 'remove_at'],
      [{ name: 'r1', remove_at: '2030-01-01T00:00:00+25:00' }, 'remove_at'],
      [{ name: 'r1', layout: 'circle' }, 'layout'],
      [{ name: 'r1', join_from: 'tomorrow' }, 'join_from'],
      [{ name: 'r1', join_from: '2030-01-02T00:00:00Z', join_until: '2030-01-01T00:00:00Z' }, 'join_until'],
      [{ name: 'r1', remove_after_seconds_elapsed: 0 }, 'remove_after_seconds_elapsed'],
      [{ name: 'r1', record_on_start: 'yes' }, 'record_on_start'],
      [{ name: 'r1', locked: 1 }, 'locked'],
      [{ name: 'r1', display_name: 'x'.repeat(201) }, 'display_name'],
      [{ name: 'r1', meta: { big: 'x'.repeat(2000) } }, 'meta'],
    ];
    for (const [body, attribute] of cases) assert422(await sw('POST', '/rooms', body), attribute, JSON.stringify(body).slice(0, 60));
    assert422(await sw('PUT', '/rooms/taken', { max_members: 1000 }), 'max_members', 'PUT');
    assert.deepEqual(await sw('POST', '/rooms', '{"name":'), { status: 400, json: { error: 'Bad Request' } });
    assert.deepEqual(await sw('POST', '/rooms', '[1]'), { status: 400, json: { error: 'Bad Request' } });
    assert.deepEqual(await sw('GET', '/rooms', undefined, basic('admin', 'nope')), { status: 401, json: { error: 'Unauthorized' } });
    assert.deepEqual(await sw('PUT', `/rooms/${randomUUID()}`, { locked: true }), { status: 404, json: { error: 'Not Found' } });
  });
});

describe('room tokens join through the room signaling; the settings hold', () => {
  test('a token joins its room, starting a room session; the members are listed by name', async () => {
    const t1 = await roomToken({ room_name: 'townhall', user_name: 'ana' });
    const room = (await sw('GET', '/rooms/townhall')).json;
    assert.equal(room.name, 'townhall', 'auto_create_room (default true) made the room');
    const a = await join('townhall', t1);
    const b = await join('townhall', await roomToken({ room_name: 'townhall', user_name: 'ben' }));
    await a.notification('participantJoined');
    const inProgress = await list(`?room_id=${room.id}&status=in-progress`);
    assert.equal(inProgress.json.data.length, 1);
    const rs = inProgress.json.data[0];
    assert.equal(rs.name, 'townhall');
    assert.equal(rs.room_id, room.id);
    assert.equal(rs.duration, null);
    assert.ok(rs.start_time);
    const one = await sw('GET', `/room_sessions/${rs.id}`);
    assertSpec('RoomSession', one.json);
    const members = await sw('GET', `/room_sessions/${rs.id}/members`);
    assert.deepEqual(members.json.data.map((m: any) => m.name), ['ana', 'ben']);
    for (const m of members.json.data) {
      assert.match(m.id, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.equal(m.room_session_id, rs.id);
      assert.equal(m.leave_time, null);
    }
    // A token is single-use, and joins only its own room.
    await assert.rejects(join('townhall', t1), RpcCallError);
    await sw('POST', '/rooms', { name: 'other' });
    await assert.rejects(join('other', await roomToken({ room_name: 'townhall' })), RpcCallError);
    assert422(await sw('POST', '/room_tokens', { room_name: 'nowhere', auto_create_room: false }), 'room_name', 'no room, no auto-create');
    assert422(await sw('POST', '/room_tokens', { room_name: 'bad name' }), 'room_name', 'bad room name');
    assert422(await sw('POST', '/room_tokens', { room_name: 'townhall', permissions: 'all' }), 'permissions', 'permissions');
    assert422(await sw('POST', '/room_tokens', { room_name: 'townhall', join_as: 'boss' }), 'join_as', 'join_as');

    // Both leave: the session completes with its duration, members' leave times and a cost.
    a.close();
    b.close();
    const done = await waitForStatus(rs.id, 'completed');
    assert.equal(typeof done.duration, 'number');
    assert.equal(done.end_time !== null, true);
    const left = (await sw('GET', `/room_sessions/${rs.id}/members`)).json.data;
    assert.ok(left.every((m: any) => m.leave_time && typeof m.duration === 'number'));
    // The cost is member time to the millisecond (the store's), times the price, to the hundredth of a cent.
    const stored = await node.kiln.store!.listRoomMembers(rs.id);
    assert.equal(stored.length, left.length);
    const seconds = stored.reduce((s, m) => s + (Date.parse(m.leftAt!) - Date.parse(m.joinedAt)) / 1000, 0);
    const expected = Math.round((seconds / 60) * PRICE * 10_000) / 10_000;
    assert.ok(done.cost_in_dollars > 0, `cost ${done.cost_in_dollars}`);
    assert.ok(Math.abs(done.cost_in_dollars - expected) < 0.00015, `cost ${done.cost_in_dollars} for ${seconds} s (expected ${expected})`);
    // The next token starts a new room session of the same room.
    const again = await join('townhall', await roomToken({ room_name: 'townhall' }));
    const sessions = (await list(`?room_name=townhall`)).json.data;
    assert.equal(sessions.length, 2);
    assert.equal(sessions[0].status, 'in-progress', 'newest first');
    assert.equal(sessions[1].id, rs.id);
    again.close();
  });

  test('one token, two joins at once: one member; a room in session keeps its name', async () => {
    await sw('POST', '/rooms', { name: 'race' });
    const token = await roomToken({ room_name: 'race' });
    const results = await Promise.allSettled([join('race', token), join('race', token)]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    const rs = (await list('?room_name=race')).json.data[0];
    assert.equal((await sw('GET', `/room_sessions/${rs.id}/members`)).json.data.length, 1);
    assert422(await sw('PUT', '/rooms/race', { name: 'renamed' }), 'name', 'rename during a session');
    // A refused join keeps its token: full room, then a free seat.
    await sw('PUT', '/rooms/race', { max_members: 1 });
    const waiting = await roomToken({ room_name: 'race' });
    await assert.rejects(join('race', waiting), (err: RpcCallError) => /full/.test(err.message));
    await sw('PUT', '/rooms/race', { max_members: 2 });
    await join('race', waiting);
    // The session in progress shows the room's new settings.
    assert.equal((await sw('GET', `/room_sessions/${rs.id}`)).json.max_members, 2);
  });

  test('max_members 2 refuses a third join; locked refuses joins', async () => {
    await sw('POST', '/rooms', { name: 'pair', max_members: 2 });
    await join('pair', await roomToken({ room_name: 'pair' }));
    await join('pair', await roomToken({ room_name: 'pair' }));
    await assert.rejects(join('pair', await roomToken({ room_name: 'pair' })), (err: RpcCallError) => /full/.test(err.message));
    await sw('POST', '/rooms', { name: 'closed', locked: true });
    await assert.rejects(join('closed', await roomToken({ room_name: 'closed' })), (err: RpcCallError) => /locked/.test(err.message));
    // A refused first join leaves no session behind.
    assert.deepEqual((await list('?room_name=closed')).json.data, []);
    // A token of a deleted room does not join a new room of the same name.
    const stale = await roomToken({ room_name: 'closed' });
    const { id } = (await sw('GET', '/rooms/closed')).json;
    await sw('DELETE', `/rooms/${id}`);
    await sw('POST', '/rooms', { name: 'closed', locked: true });
    await assert.rejects(join('closed', stale), RpcCallError);
    // Unlocking lets the next one in.
    await sw('PUT', '/rooms/closed', { locked: false });
    await join('closed', await roomToken({ room_name: 'closed' }));
  });

  test('remove_after_seconds_elapsed 5 removes a member 5 s after it joined (±1 s)', async () => {
    await sw('POST', '/rooms', { name: 'brief', remove_after_seconds_elapsed: 5 });
    const joinedAt = Date.now();
    const rpc = await join('brief', await roomToken({ room_name: 'brief' }));
    await rpc.closed();
    const after = (Date.now() - joinedAt) / 1000;
    assert.ok(after > 4 && after < 6, `removed after ${after} s`);
  });

  test('a PUT of remove_after_seconds_elapsed reaches the members already in the room', async () => {
    await sw('POST', '/rooms', { name: 'tightened' });
    const joinedAt = Date.now();
    const rpc = await join('tightened', await roomToken({ room_name: 'tightened' }));
    assert.equal((await sw('PUT', '/rooms/tightened', { remove_after_seconds_elapsed: 2 })).status, 200);
    await Promise.race([rpc.closed(), new Promise((_, reject) => setTimeout(() => reject(new Error('the member was not removed in 6 s')), 6000))]);
    const after = (Date.now() - joinedAt) / 1000;
    assert.ok(after > 1.5 && after < 3.5, `removed after ${after} s`);
  });
});

async function waitForStatus(id: string, status: string): Promise<any> {
  for (let i = 0; i < 50; i++) {
    const r = await sw('GET', `/room_sessions/${id}`);
    if (r.json.status === status) return r.json;
    await sleep(100);
  }
  throw new Error(`room session ${id} never became ${status}`);
}

describe('the OpenAPI document', () => {
  test('describes the SignalWire endpoints', async () => {
    const doc = await (await fetch(`${api}/openapi.json`)).json();
    for (const path of ['/api/video/rooms', '/api/video/rooms/{id}', '/api/video/room_sessions', '/api/video/room_sessions/{id}', '/api/video/room_sessions/{id}/members', '/api/video/room_tokens']) {
      assert.ok(doc.paths[path], path);
    }
    assert.deepEqual(Object.keys(doc.paths['/api/video/room_sessions'].get.responses).sort(), ['200', '400', '401', '422', '500']);
  });
});

describe('GET /room_sessions', () => {
  test('filters: room_id, room_name (exact), room_name_matches (substring), status', async () => {
    const { id: ovSession } = await (await fetch(`${api}/api/sessions`, { method: 'POST', headers: { authorization: basic('OPENVIDUAPP', 'pw') } })).json() as { id: string };
    const ovName = ovSession.split('/').pop()!;
    const all = (await list('?page_size=1000')).json.data;
    const ov = all.find((s: any) => s.name === ovName);
    assert.ok(ov, 'an OpenVidu session is listed');
    assert.equal(ov.room_id, null);
    assertSpec('RoomSession', ov);
    assert.deepEqual((await list(`?room_name=${ovName}`)).json.data.map((s: any) => s.id), [ov.id]);
    assert.deepEqual((await list(`?room_name=${ovName.slice(0, 5)}`)).json.data, []);
    assert.ok((await list(`?room_name_matches=${ovName.slice(3, 9)}`)).json.data.some((s: any) => s.id === ov.id));
    assert.ok((await list('?room_name_matches=own')).json.data.every((s: any) => s.name.includes('own')));
    assert.ok((await list('?room_name_matches=%25')).json.data.every((s: any) => s.name.includes('%')), 'LIKE characters are literal');
    // Names are case sensitive, and so is the match.
    const upper = ovName.toUpperCase();
    assert.ok(upper !== ovName && !(await list(`?room_name_matches=${upper}`)).json.data.some((s: any) => s.id === ov.id), 'case sensitive');
    assert.ok((await list('?status=completed')).json.data.every((s: any) => s.status === 'completed'));
    assert.ok((await list('?status=in-progress')).json.data.every((s: any) => s.status === 'in-progress'));
    assert.deepEqual((await list(`?room_id=${randomUUID()}`)).json.data, []);
  });

  test('every 422 names its parameter; 401 and 404 in the seed\'s shapes', async () => {
    const cases: [string, string][] = [
      ['?page_size=1001', 'page_size'],
      ['?page_size=abc', 'page_size'],
      ['?page_size=0', 'page_size'],
      ['?page_size=-5', 'page_size'],
      ['?status=done', 'status'],
      ['?room_id=not-a-uuid', 'room_id'],
      ['?page_number=1', 'page_token'],
      ['?page_number=x', 'page_number'],
      ['?page_token=forged', 'page_token'],
    ];
    for (const [q, attribute] of cases) assert422(await list(q), attribute, q);
    // A real token with one character changed, and one used with other filters.
    const next = new URL((await list('?page_size=1')).json.links.next);
    const token = next.searchParams.get('page_token')!;
    const tampered = token.slice(0, 10) + (token[10] === 'A' ? 'B' : 'A') + token.slice(11);
    assert422(await list(`?page_size=1&page_number=1&page_token=${tampered}`), 'page_token', 'tampered token');
    assert422(await list(`?page_size=1&page_number=1&status=completed&page_token=${token}`), 'page_token', 'token of other filters');
    const unauthorized = await sw('GET', '/room_sessions', undefined, basic('admin', 'wrong'));
    assert.deepEqual(unauthorized, { status: 401, json: { error: 'Unauthorized' } });
    assertSpec('Types.StatusCodes.StatusCode401', unauthorized.json);
    assert.deepEqual(await sw('GET', `/room_sessions/${randomUUID()}`), { status: 404, json: { error: 'Not Found' } });
    assert.deepEqual(await sw('GET', '/room_sessions/nope/members'), { status: 404, json: { error: 'Not Found' } });
  });

  test('2 500 room sessions page by 999 exactly once each, also while sessions are added; prev links walk back', async () => {
    const store = node.kiln.store!;
    const base = Date.parse('2025-01-01T00:00:00Z');
    const ids = new Set<string>();
    for (let i = 0; i < 2500; i++) {
      const id = randomUUID();
      ids.add(id);
      // Pairs share a creation time: the id breaks the tie (and pages of 999 end inside a pair).
      const at = new Date(base + Math.floor(i / 2) * 1000).toISOString();
      await store.putRoomSession({ id, roomId: null, name: `bulk${i}`, settings: {}, openvidu: null, status: 'completed', createdAt: at, updatedAt: at, startTime: at, endTime: at, endReason: 'session-ended', nodeId: '' });
    }
    const seen: string[] = [];
    let url: string | undefined = '/room_sessions?room_name_matches=bulk&page_size=999';
    const pages: string[][] = [];
    while (url) {
      const res = await list(url.replace(/^.*\/room_sessions/, ''));
      assert.equal(res.status, 200);
      pages.push(res.json.data.map((s: any) => s.id));
      seen.push(...res.json.data.map((s: any) => s.id));
      // New sessions arrive between pages.
      for (let k = 0; k < 3; k++) await store.putRoomSession({ id: randomUUID(), roomId: null, name: `bulk-new${seen.length}-${k}`, settings: {}, openvidu: null, status: 'completed', createdAt: new Date().toISOString(), updatedAt: new Date().toISOString(), startTime: null, endTime: null, endReason: null, nodeId: '' });
      url = res.json.links.next;
      if (url) assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/api\/video\/room_sessions\?/);
    }
    assert.deepEqual(pages.map((p) => p.length), [999, 999, 502]);
    assert.equal(new Set(seen).size, 2500, 'no session twice');
    assert.ok(seen.every((id) => ids.has(id)), 'only the sessions there when paging began');
    // Newest first.
    const names = (await list('?room_name_matches=bulk&page_size=5')).json.data.map((s: any) => s.name);
    assert.ok(names[0].startsWith('bulk-new'));
    // `prev` leads back to the page before; the first page's `prev` is absent.
    const first = (await list('?room_name_matches=bulk&page_size=1000')).json;
    assert.equal(first.links.prev, undefined);
    const second = (await list(new URL(first.links.next).search)).json;
    const back = (await list(new URL(second.links.prev).search)).json;
    assert.deepEqual(back.data.map((s: any) => s.id), first.data.map((s: any) => s.id));
    // Walk forward to the end, then back by `prev` links to the start: the same pages, in reverse.
    const forward: string[][] = [];
    let page = (await list('?room_name_matches=bulk&page_size=999')).json;
    forward.push(page.data.map((s: any) => s.id));
    while (page.links.next) {
      page = (await list(new URL(page.links.next).search)).json;
      forward.push(page.data.map((s: any) => s.id));
    }
    const backward: string[][] = [page.data.map((s: any) => s.id)];
    while (page.links.prev) {
      page = (await list(new URL(page.links.prev).search)).json;
      backward.push(page.data.map((s: any) => s.id));
    }
    assert.equal(forward.length, 3);
    assert.deepEqual(backward.reverse(), forward);
  });
});

describe('a store that fails', () => {
  test('is a 500 in SignalWire\'s shape, without a stack trace, and the server keeps answering', async () => {
    await node.kiln.store!.close();
    const res = await list('');
    assert.deepEqual(res, { status: 500, json: { error: 'Internal Server Error' } });
    assert.deepEqual(await sw('GET', `/room_sessions/${randomUUID()}`), { status: 500, json: { error: 'Internal Server Error' } });
    assert.equal((await fetch(`${api}/healthz`)).status, 200);
  });
});
