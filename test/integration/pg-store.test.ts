/**
 * The PostgreSQL store on a real PostgreSQL server: the embedded store's behaviours, the same answers
 * as SqliteStore for one scripted sequence of writes and queries, and what only a shared database
 * has to get right (concurrent opens, concurrent writers).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { KilnError } from '../../src/core/errors.ts';
import { PgStore } from '../../src/store/postgres/pg-store.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type {
  ListCursor,
  RecordingRecord,
  RoomGrantRecord,
  RoomMemberRecord,
  RoomRecord,
  RoomSessionQuery,
  RoomSessionRecord,
  Store,
} from '../../src/store/store.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { eventsContract, grantRecord, grantsContract, nodeScopeContract, recordingRecord, recordingsContract } from '../helpers/store-contract.ts';

let server: TestPostgres;
let databases = 0;

before(async () => {
  server = await startPostgres();
});

after(async () => {
  await server?.stop();
});

/**
 * A new, empty database on the test server; its URL. With `icuLocale`, its default collation is that
 * ICU locale's (where 'r-b' < 'R-f', unlike SQLite's bytewise order).
 */
async function freshDatabase(icuLocale?: string): Promise<string> {
  const name = `kiln_t${++databases}`;
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  try {
    await admin.query(icuLocale
      ? `CREATE DATABASE ${name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE '${icuLocale}' LOCALE 'C'`
      : `CREATE DATABASE ${name}`);
    // Not UTC, so that a date read in the session's time zone would show.
    await admin.query(`ALTER DATABASE ${name} SET TimeZone TO 'Asia/Tokyo'`);
  } finally {
    await admin.end();
  }
  return server.url.replace(/\/kiln_test$/, `/${name}`);
}

/** Runs `fn` with a PgStore on a fresh database, closing it after. */
function withPgStore(fn: (store: PgStore, url: string) => Promise<void>, icuLocale?: string): () => Promise<void> {
  return async () => {
    const url = await freshDatabase(icuLocale);
    const store = await PgStore.open(url);
    try {
      await fn(store, url);
    } finally {
      await store.close();
    }
  };
}

/** ISO time `s` seconds after 2026-01-01T00:00:00Z. */
const t = (s: number): string => new Date(Date.UTC(2026, 0, 1) + s * 1000).toISOString();

const recording = recordingRecord;
const grant = grantRecord;

const room = (id: string, name: string, createdAt: string): RoomRecord => ({
  id, name, settings: { max_members: 10, nested: { b: 1, a: [true, null, 'x'] } }, createdAt, updatedAt: createdAt,
});

const session = (id: string, name: string, createdAt: string, status: RoomSessionRecord['status'], roomId: string | null = null): RoomSessionRecord => ({
  id, roomId, name, settings: { z: 1, a: { quality: '720p' } }, openvidu: roomId ? null : { customSessionId: name, mediaMode: 'ROUTED' },
  status, createdAt, updatedAt: createdAt, startTime: status ? createdAt : null, endTime: status === 'completed' ? t(1000) : null,
  endReason: status === 'completed' ? 'room_ended' : null, nodeId: 'node-a',
});

const member = (id: string, roomSessionId: string, joinedAt: string, leftAt: string | null): RoomMemberRecord => ({
  id, roomSessionId, name: `name-${id}`, role: 'PUBLISHER', serverData: `{"s":"${id}"}`, clientData: 'client', remoteAddress: '127.0.0.1',
  joinedAt, leftAt, leaveReason: leftAt ? 'disconnect' : null,
});

test('recordings: by id or uuid, newest first, per room session, unfinished ones, delete; they survive a reopen', withPgStore(async (store, url) => {
  await recordingsContract(store, async () => {
    await store.close();
    return PgStore.open(url);
  });
}));

test('recordings: numbers and booleans come back as written (fractional duration, size over 2^32, no audio)', withPgStore(async (store) => {
  const composed = { ...recording('eee', t(5), 'available'), duration: 12.345, size: 6_000_000_123, hasAudio: false, stoppedAt: t(9), reason: 'why' };
  await store.putRecording(composed);
  assert.deepEqual(await store.getRecording('eee'), composed);
  assert.deepEqual(await store.getRecording(composed.uuid), composed);
}));

test('room grants: expired and long-used ones are pruned, live ones stay; deleting a room deletes its grants', withPgStore(async (store) => {
  await grantsContract(store);
}));

test('what a node holds: open room sessions, tokens, completing and unfinished recordings, of one node or all', withPgStore(async (store) => {
  await nodeScopeContract(store);
}));

test('the event outbox: pending deliveries per endpoint, pairs closed once, listing with deliveries, pruning', withPgStore(async (store) => {
  await eventsContract(store);
}));

/** Every page of a listing: newest first with `before` cursors to the end, then back up with `after`. */
async function walkPages<T extends ListCursor>(list: (q: { before?: ListCursor; after?: ListCursor; limit: number }) => Promise<T[]>, limit: number): Promise<string[][]> {
  const pages: string[][] = [];
  const cursor = (r: T): ListCursor => ({ createdAt: r.createdAt, id: r.id });
  let page = await list({ limit });
  let last = page;
  while (page.length > 0) {
    pages.push(page.map((r) => r.id));
    last = page;
    page = await list({ before: cursor(page[page.length - 1]), limit });
  }
  page = last;
  while (page.length > 0) {
    page = await list({ after: cursor(page[0]), limit });
    pages.push(page.map((r) => `after:${r.id}`));
  }
  return pages;
}

/** One scripted step: a label and what it does to a store; its result is compared across stores. */
type Step = [string, (store: Store) => Promise<unknown>];

const sessionQueries: RoomSessionQuery[] = [
  { limit: 100 },
  { limit: 100, roomId: 'room-1' },
  { limit: 100, roomId: 'nope' },
  { limit: 100, name: 'Demo' },
  { limit: 100, name: 'demo' },
  { limit: 100, nameContains: 'emo' },
  { limit: 100, nameContains: 'Demo' },
  { limit: 100, nameContains: 'demo' },
  { limit: 100, nameContains: '%' },
  { limit: 100, nameContains: '_' },
  { limit: 100, status: 'in-progress' },
  { limit: 100, status: 'completed' },
  { limit: 100, roomId: 'room-1', status: 'completed', nameContains: 'o' },
  { limit: 2, before: { createdAt: t(20), id: 'rs-m' } },
  { limit: 3, after: { createdAt: t(20), id: 'rs-m' } },
  { limit: 5, after: { createdAt: t(20), id: 'rs-m' }, status: 'completed' },
  { limit: 5, before: { createdAt: t(99), id: 'zzz' }, roomId: 'room-1' },
];

const script: Step[] = [
  ['no setting', (s) => s.getSetting('credential')],
  ['set setting', (s) => s.setSetting('credential', 'admin:secret')],
  ['set setting again', (s) => s.setSetting('credential', 'admin:other')],
  ['read setting', (s) => s.getSetting('credential')],
  ['pull streams', async (s) => {
    await s.putPullStream({ vhost: 'default', app: 'app', name: 'b', urls: ['rtsp://u:p@h/1'], properties: { retry: 3 }, createdAt: t(2), nodeId: 'node-a' });
    await s.putPullStream({ vhost: 'default', app: 'app', name: 'a', urls: ['rtsp://h/2', 'rtsp://h/3'], properties: {}, createdAt: t(1), nodeId: 'node-a' });
    await s.putPullStream({ vhost: 'default', app: 'app', name: 'c', urls: [], properties: { x: { y: [1] } }, createdAt: t(3), nodeId: 'node-a' });
    await s.putPullStream({ vhost: 'default', app: 'app', name: 'b', urls: ['rtsp://h/replaced'], properties: { retry: 4 }, createdAt: t(4), nodeId: 'node-a' });
    await s.deletePullStream('default', 'app', 'c');
    await s.deletePullStream('default', 'app', 'missing');
    return s.listPullStreams();
  }],
  ['rooms with tied creation times', async (s) => {
    for (const [id, name, at] of [['r-b', 'beta', 5], ['r-a', 'alpha', 5], ['r-C', 'gamma', 5], ['r-d', 'delta', 3], ['r-e', 'epsilon', 7], ['R-f', 'zeta', 5]] as const) {
      await s.putRoom(room(id, name, t(at)));
    }
    return s.listRooms({ limit: 100 });
  }],
  ['room pages', (s) => walkPages((q) => s.listRooms(q), 2)],
  ['room pages of 4', (s) => walkPages((q) => s.listRooms(q), 4)],
  ['room by id and name', async (s) => [await s.getRoom('r-a'), await s.getRoomByName('gamma'), await s.getRoom('none'), await s.getRoomByName('Gamma')]],
  ['rename a room, keep its name on update', async (s) => {
    await s.putRoom({ ...room('r-a', 'alpha2', t(5)), updatedAt: t(50) });
    await s.putRoom({ ...room('r-a', 'alpha2', t(5)), updatedAt: t(51) });
    await s.putRoom(room('r-new', 'alpha', t(52)));
    return [await s.getRoom('r-a'), await s.getRoomByName('alpha')];
  }],
  ['room name conflict', async (s) => {
    try {
      await s.putRoom(room('r-other', 'beta', t(60)));
      return 'no error';
    } catch (err) {
      assert.ok(err instanceof KilnError);
      return { code: err.code, status: err.status, subject: err.subject, message: err.message, room: await s.getRoom('r-other') };
    }
  }],
  ['delete a room', async (s) => [await s.deleteRoom('r-d'), await s.deleteRoom('r-d'), await s.listRooms({ limit: 100 })]],
  ['room sessions', async (s) => {
    const rows: RoomSessionRecord[] = [
      session('rs-a', 'Demo', t(10), 'completed', 'room-1'),
      session('rs-b', 'demo', t(10), 'in-progress', 'room-1'),
      session('rs-C', 'DEMO 2', t(10), null),
      session('rs-m', 'my demo', t(20), 'completed', 'room-2'),
      session('rs-n', '50% off', t(20), 'in-progress', 'room-1'),
      session('rs-o', 'under_score', t(20), 'completed', 'room-1'),
      session('rs-p', 'Demo', t(30), 'completed', 'room-2'),
      session('rs-q', 'other', t(5), 'in-progress'),
      session('rs-r', 'room', t(40), 'completed', 'room-1'),
      session('rs-s', 'demo', t(40), null, 'room-1'),
    ];
    for (const r of rows) await s.putRoomSession(r);
    await s.putRoomSession({ ...session('rs-q', 'other', t(6), 'in-progress'), updatedAt: t(7) });
    return [await s.getRoomSession('rs-a'), await s.getRoomSession('rs-C'), await s.getRoomSession('missing'), await s.listOpenRoomSessions()];
  }],
  ...sessionQueries.map((q): Step => [`room sessions ${JSON.stringify(q)}`, (s) => s.listRoomSessions(q)]),
  ['room session pages', (s) => walkPages((q) => s.listRoomSessions(q), 3)],
  ['room session pages, one room', (s) => walkPages((q) => s.listRoomSessions({ ...q, roomId: 'room-1' }), 2)],
  ['room session pages, by substring', (s) => walkPages((q) => s.listRoomSessions({ ...q, nameContains: 'emo' }), 1)],
  ['members', async (s) => {
    await s.putRoomMember(member('m-2', 'rs-b', t(12), null));
    await s.putRoomMember(member('m-1', 'rs-b', t(11), t(15)));
    await s.putRoomMember(member('m-3', 'rs-b', t(11), null));
    await s.putRoomMember(member('m-4', 'rs-a', t(10), t(13.25)));
    await s.putRoomMember(member('m-5', 'rs-n', t(25), null));
    await s.putRoomMember(member('m-6', 'rs-a', t(100), null));
    await s.putRoomMember({ ...member('m-1', 'rs-b', t(11), t(16)), name: 'renamed' });
    // Dates written by other hands: with an offset, and without one (UTC, as SQLite reads it).
    await s.putRoomMember(member('m-7', 'rs-m', '2026-01-01T02:00:10+02:00', '2026-01-01T00:00:30'));
    await s.putRoomMember(member('m-8', 'rs-p', '2026-01-01T00:00:40.5', '2026-01-01T01:00:41.5+01:00'));
    return [await s.listRoomMembers('rs-b'), await s.listRoomMembers('rs-a'), await s.listRoomMembers('none')];
  }],
  ['member seconds', async (s) => {
    const seconds = await s.memberSeconds(['rs-a', 'rs-b', 'rs-n', 'rs-m', 'rs-p', 'rs-none'], t(30.5));
    const none = await s.memberSeconds([], t(30));
    // node:sqlite computes through julianday() (floating days): compare to the millisecond.
    return [[...seconds].map(([id, v]) => [id, Math.round(v * 1000) / 1000]).sort(), none.size];
  }],
  ['tokens', async (s) => {
    await s.putRoomToken({ token: 'tok-1', roomSessionId: 'rs-b', role: 'PUBLISHER', data: 'd1', createdAt: t(12), usedAt: null });
    await s.putRoomToken({ token: 'tok-2', roomSessionId: 'rs-a', role: 'SUBSCRIBER', data: 'd2', createdAt: t(11), usedAt: null });
    await s.putRoomToken({ token: 'tok-3', roomSessionId: 'rs-C', role: 'MODERATOR', data: '', createdAt: t(13), usedAt: null });
    await s.putRoomToken({ token: 'tok-4', roomSessionId: 'rs-n', role: 'PUBLISHER', data: 'd4', createdAt: t(10), usedAt: t(11) });
    return s.listOpenRoomTokens();
  }],
  ['use a token twice', async (s) => [await s.useRoomToken('tok-1', t(14)), await s.useRoomToken('tok-1', t(15)), await s.useRoomToken('tok-4', t(15)),
    await s.useRoomToken('missing', t(15)), await s.listOpenRoomTokens()]],
  ['complete in-progress room sessions', async (s) => {
    await s.putRoomSession({ ...session('rs-late', 'late', t(200), 'in-progress'), startTime: t(300) });
    await s.putRoomMember(member('m-late', 'rs-late', t(400), null));
    const completed = await s.completeInProgressRoomSessions(t(250), 'restart');
    const sessions = await s.listRoomSessions({ limit: 100 });
    const members = [...await s.listRoomMembers('rs-b'), ...await s.listRoomMembers('rs-late'), ...await s.listRoomMembers('rs-a')];
    // updated_at is the wall clock of the completion: check it, then leave it out of the comparison.
    for (const r of sessions) {
      if (r.endReason === 'restart') {
        assert.ok(Math.abs(Date.parse(r.updatedAt) - Date.now()) < 60_000, r.updatedAt);
        r.updatedAt = '(now)';
      }
    }
    return [completed, sessions, members, await s.listOpenRoomSessions(), await s.listOpenRoomTokens(), await s.completeInProgressRoomSessions(t(260), 'again')];
  }],
  ['grants', async (s) => {
    await s.putRoomGrant(grant('g-1', 'r-b', t(1000), null));
    await s.putRoomGrant(grant('g-2', 'r-b', t(100), null));
    await s.putRoomGrant({ ...grant('g-3', 'r-e', t(1000), t(50)), permissions: [] });
    return [await s.getRoomGrant('g-1'), await s.useRoomGrant('g-1', t(60)), await s.useRoomGrant('g-1', t(61)), await s.useRoomGrant('none', t(61)),
      await s.getRoomGrant('g-1'), await s.pruneRoomGrants(t(200), t(55)), await s.getRoomGrant('g-2'), await s.getRoomGrant('g-3'),
      await s.deleteRoom('r-b'), await s.getRoomGrant('g-1')];
  }],
  ['recordings', async (s) => {
    await s.putRecording(recording('rec-b', t(10), 'started', 'rs-a'));
    await s.putRecording(recording('rec-a', t(10), 'starting', 'rs-a'));
    await s.putRecording({ ...recording('rec-c', t(11), 'available', 'rs-b'), duration: 3.5, size: 1234, hasVideo: false });
    await s.putRecording(recording('rec-d', t(9), 'stopped', 'rs-b'));
    await s.putRecording({ ...recording('rec-b', t(10), 'failed', 'rs-a'), reason: 'disk full' });
    return [await s.listRecordings(), await s.listRecordings('rs-a'), await s.listRecordings('none'), await s.listUnfinishedRecordings(),
      await s.getRecording('rec-c'), await s.getRecording(recording('rec-d', '', 'stopped').uuid), await s.getRecording('nope')];
  }],
  ['a recording put under another id with a taken uuid replaces the old one', async (s) => {
    await s.putRecording({ ...recording('rec-x', t(12), 'started', 'rs-a'), uuid: recording('rec-a', '', 'starting').uuid });
    return [await s.getRecording('rec-a'), await s.listRecordings('rs-a')];
  }],
  ['delete recordings', async (s) => [await s.deleteRecording('rec-c'), await s.deleteRecording('rec-c'), await s.listRecordings()]],
];

test('gives the same answers as the SQLite store for the same writes and queries, whatever the database collation', withPgStore(async (pgStore) => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-store-'));
  const sqlite = new SqliteStore(dir);
  try {
    for (const [label, step] of script) {
      const expected = await step(sqlite);
      const actual = await step(pgStore);
      assert.deepEqual(actual, expected, label);
    }
  } finally {
    await sqlite.close();
    rmSync(dir, { recursive: true, force: true });
  }
}, 'en-US'));

test('a room name taken by another room is a CONFLICT on name', withPgStore(async (store) => {
  await store.putRoom(room('r-1', 'lobby', t(1)));
  await assert.rejects(store.putRoom(room('r-2', 'lobby', t(2))), (err: unknown) => {
    assert.ok(err instanceof KilnError);
    assert.equal(err.code, 'CONFLICT');
    assert.equal(err.status, 409);
    assert.deepEqual(err.subject, { parameter: 'name', rule: 'value_not_unique' });
    return true;
  });
  assert.equal(await store.getRoom('r-2'), undefined);
}));

test('two nodes creating rooms with one name at once: exactly one succeeds, the other gets CONFLICT', withPgStore(async (store, url) => {
  const other = await PgStore.open(url);
  try {
    for (let i = 0; i < 20; i++) {
      const results = await Promise.allSettled([store.putRoom(room(`a-${i}`, `race-${i}`, t(i))), other.putRoom(room(`b-${i}`, `race-${i}`, t(i)))]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      assert.equal(won.length, 1, `round ${i}`);
      assert.ok(lost[0].reason instanceof KilnError && lost[0].reason.code === 'CONFLICT', String(lost[0].reason));
      assert.ok(await store.getRoomByName(`race-${i}`));
    }
    assert.equal((await store.listRooms({ limit: 100 })).length, 20);
  } finally {
    await other.close();
  }
}));

test('a room token or grant used from many connections at once is used exactly once', withPgStore(async (store) => {
  await store.putRoomToken({ token: 'tok', roomSessionId: 'rs', role: 'PUBLISHER', data: '', createdAt: t(1), usedAt: null });
  await store.putRoomGrant(grant('grant', 'room', t(1000), null));
  const tokenUses = await Promise.all(Array.from({ length: 10 }, (_, i) => store.useRoomToken('tok', t(2 + i))));
  const grantUses = await Promise.all(Array.from({ length: 10 }, (_, i) => store.useRoomGrant('grant', t(2 + i))));
  assert.equal(tokenUses.filter(Boolean).length, 1);
  assert.equal(grantUses.filter(Boolean).length, 1);
}));

test('nodes opening an empty database at once all succeed and the schema is applied once', async () => {
  const url = await freshDatabase();
  const stores = await Promise.all(Array.from({ length: 4 }, () => PgStore.open(url)));
  try {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ version: number; n: string }>('SELECT version, count(*) AS n FROM schema_migrations GROUP BY version ORDER BY version');
      assert.deepEqual(rows.map((r) => [r.version, Number(r.n)]), [[1, 1], [2, 1], [3, 1]]);
    } finally {
      await client.end();
    }
    // Nodes claiming one setting at once (the signing key at first start) all get the same value.
    const claims = await Promise.all(stores.map((s, i) => s.claimSetting('signing_key', `key-${i}`)));
    assert.equal(new Set(claims).size, 1, claims.join(', '));
    await stores[0].setSetting('k', 'v');
    assert.equal(await stores[3].getSetting('k'), 'v');
  } finally {
    await Promise.all(stores.map((s) => s.close()));
  }
});

test('close is idempotent', async () => {
  const store = await PgStore.open(await freshDatabase());
  await store.close();
  await store.close();
  await assert.rejects(store.getSetting('k'));
});
