import { randomBytes } from 'node:crypto';
import { GrantSigner } from '../../src/rooms/grants.ts';
/**
 * Room sessions, tokens and participants without media: single-use tokens, the room's settings
 * (max_members, locked, join_from/join_until, remove_at, remove_after_seconds_elapsed), the end of
 * an empty session after its grace period, and the history each step writes to the store.
 */
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../helpers/browser.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Catalog } from '../../src/core/catalog.ts';
import { randomAlnum, type LeaveReason } from '../../src/core/room.ts';
import { Rooms } from '../../src/rooms/rooms.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';

const OPENVIDU = { archiveMode: 'MANUAL', archiveLayout: 'BEST_FIT', mediaMode: 'ROUTED' } as const;
const CLIENT = { remoteAddress: '127.0.0.1', remotePort: 50000 };

let dir: string;
let store: SqliteStore;
let catalog: Catalog;
let rooms: Rooms;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kiln-rooms-'));
  store = new SqliteStore(dir);
  catalog = new Catalog([{ name: 'default', apps: [{ name: 'rooms', playbackRequiresToken: false }] }]);
  rooms = new Rooms({ catalog, store, grants: new GrantSigner(randomBytes(32)), publicUrl: 'https://media.example.com:8443', vhost: 'default', app: 'rooms', emptyTimeoutMs: 100, nodeId: 'test-node', logger: pino({ level: 'silent' }) });
});
afterEach(async () => {
  await rooms.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('tokens', () => {
  test('a token joins its own session once; another session or a second use is refused', async () => {
    const a = await rooms.createOpenViduSession(OPENVIDU);
    const b = await rooms.createOpenViduSession(OPENVIDU);
    assert.equal(rooms.sessionIdOf(a), `wss://media.example.com:8443/${a.name}`);
    const token = await rooms.createToken(a, 'PUBLISHER', 'data');
    await assert.rejects(rooms.join(rooms.sessionIdOf(b), token.token, '', CLIENT), { code: 'UNAUTHORIZED' });
    const { participant } = await rooms.join(rooms.sessionIdOf(a), token.token, 'meta', CLIENT);
    assert.equal(participant.metadata, 'meta%/%data');
    await assert.rejects(rooms.join(rooms.sessionIdOf(a), token.token, '', CLIENT), { code: 'UNAUTHORIZED', message: /used already/ });
    assert.equal(catalog.sessions.get(participant.session.id)?.kind, 'participant');
    assert.equal(participant.session.roomSession, a.id);
  });

  test('session ids are found by their last segment, whatever host the client used', async () => {
    const rs = await rooms.createOpenViduSession(OPENVIDU);
    assert.equal(rooms.find(`ws://127.0.0.1:3333/${rs.name}`), rs);
    assert.equal(rooms.find(`${rooms.sessionIdOf(rs)}?secret=x`), rs);
    assert.equal(rooms.find(rs.name), rs);
    assert.equal(rooms.find('wss://media.example.com:8443/nosuchsession0000'), undefined);
  });

  test('data longer than 1000 characters is refused', async () => {
    const rs = await rooms.createOpenViduSession(OPENVIDU);
    await assert.rejects(rooms.createToken(rs, 'PUBLISHER', 'x'.repeat(1001)), { code: 'BAD_REQUEST' });
  });

  test('random ids are lowercase alphanumerics of the asked length', () => {
    for (let i = 0; i < 200; i++) assert.match(randomAlnum(16), /^[a-z0-9]{16}$/);
  });
});

describe("a room's settings", () => {
  async function joinAll(n: number, adjust: (s: ReturnType<typeof Object>) => void = () => {}) {
    const rs = await rooms.createOpenViduSession(OPENVIDU);
    adjust(rs.settings);
    const out = [];
    for (let i = 0; i < n; i++) out.push(await rooms.join(rs.name, (await rooms.createToken(rs, 'PUBLISHER', '')).token, '', CLIENT));
    return { rs, participants: out.map((j) => j.participant) };
  }

  test('max_members: the next join is refused', async () => {
    const { rs } = await joinAll(2, (s) => (s.maxMembers = 2));
    const token = await rooms.createToken(rs, 'PUBLISHER', '');
    await assert.rejects(rooms.join(rs.name, token.token, '', CLIENT), { code: 'FORBIDDEN', message: /full \(max_members 2\)/ });
    assert.equal(rs.participants.size, 2);
    assert.equal(token.usedAt, undefined, 'a refused join does not use the token');
  });

  test('locked, join_from in the future and join_until in the past refuse joins', async () => {
    const cases: [(s: any) => void, RegExp][] = [
      [(s) => (s.locked = true), /locked/],
      [(s) => (s.joinFrom = new Date(Date.now() + 60_000)), /before/],
      [(s) => (s.joinUntil = new Date(Date.now() - 1000)), /stopped accepting/],
      [(s) => (s.removeAt = new Date(Date.now() - 1000)), /removed/],
    ];
    for (const [adjust, message] of cases) {
      const rs = await rooms.createOpenViduSession(OPENVIDU);
      adjust(rs.settings);
      await assert.rejects(rooms.join(rs.name, (await rooms.createToken(rs, 'PUBLISHER', '')).token, '', CLIENT), { code: 'FORBIDDEN', message });
    }
  });

  test('remove_at and remove_after_seconds_elapsed remove members when their time is up', async () => {
    const left: LeaveReason[] = [];
    const a = await joinAll(1, (s) => (s.removeAt = new Date(Date.now() + 200)));
    const b = await joinAll(1, (s) => (s.removeAfterSecondsElapsed = 0.3));
    for (const p of [...a.participants, ...b.participants]) p.once('left', (r) => left.push(r));
    await sleep(100);
    assert.deepEqual(left, []);
    await sleep(400);
    assert.deepEqual(left, ['removed-by-room', 'removed-by-room']);
  });
});

describe('history', () => {
  test('started at the first join, ended after the grace period once empty, with every join and leave kept', async () => {
    const rs = await rooms.createOpenViduSession(OPENVIDU);
    assert.equal(rs.status, null);
    assert.equal((await store.getRoomSession(rs.id))?.status, null);
    const a = await rooms.join(rs.name, (await rooms.createToken(rs, 'PUBLISHER', 'a')).token, '', CLIENT);
    const b = await rooms.join(rs.name, (await rooms.createToken(rs, 'SUBSCRIBER', 'b')).token, '', CLIENT);
    assert.equal(rs.status, 'in-progress');
    a.participant.leave('disconnect');
    b.participant.leave('network-lost');
    assert.equal(rs.status, 'in-progress', 'the grace period runs');
    const late = await rooms.createToken(rs, 'PUBLISHER', 'late');
    await rooms.join(rs.name, late.token, '', CLIENT).then(({ participant }) => participant.leave('disconnect'));
    await sleep(250);
    assert.equal(rs.status, 'completed');
    assert.equal(rooms.find(rs.name), undefined, 'an ended session takes no more tokens');
    const record = await store.getRoomSession(rs.id);
    assert.equal(record?.status, 'completed');
    assert.ok(record?.startTime && record.endTime && record.endTime >= record.startTime);
    const members = await store.listRoomMembers(rs.id);
    assert.equal(members.length, 3);
    // Members joined within the same millisecond are listed in id order: compare as a set.
    assert.deepEqual(members.map((m) => m.leaveReason).sort(), ['disconnect', 'disconnect', 'network-lost']);
    for (const m of members) assert.ok(m.leftAt && m.leftAt >= m.joinedAt);
  });

  test('a leave and an end written while the store fails are written, in order, once it answers again', async () => {
    let failing = false;
    const flaky = new Proxy(store, {
      get(target, key) {
        const value = Reflect.get(target, key) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          if (failing && (key === 'putRoomMember' || key === 'putRoomSession')) return Promise.reject(new Error('connection refused'));
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const own = new Rooms({ catalog, store: flaky, grants: new GrantSigner(randomBytes(32)), publicUrl: 'http://localhost:3333', vhost: 'default', app: 'rooms', emptyTimeoutMs: 50, nodeId: 'test-node', logger: pino({ level: 'silent' }) });
    try {
      const rs = await own.createOpenViduSession(OPENVIDU);
      const { participant } = await own.join(rs.name, (await own.createToken(rs, 'PUBLISHER', 'a')).token, '', CLIENT);
      failing = true;
      participant.leave('disconnect');
      await sleep(300);
      assert.equal(rs.status, 'completed');
      assert.equal((await store.getRoomSession(rs.id))?.status, 'in-progress', 'not written while the store fails');
      failing = false;
      const record = await waitFor(() => store.getRoomSession(rs.id), (r) => r?.status === 'completed', 10_000, 100);
      assert.equal(record?.status, 'completed');
      assert.equal((await store.listRoomMembers(rs.id))[0].leaveReason, 'disconnect');
    } finally {
      await own.close();
    }
  });

  test('a restart completes what was in progress at the last heartbeat and keeps unjoined sessions with their tokens', async () => {
    const live = await rooms.createOpenViduSession(OPENVIDU);
    await rooms.join(live.name, (await rooms.createToken(live, 'PUBLISHER', '')).token, '', CLIENT);
    const waiting = await rooms.createOpenViduSession(OPENVIDU);
    const token = await rooms.createToken(waiting, 'PUBLISHER', 'kept');
    // A crash: the store is left as it was, with no close.
    const lastAlive = new Date();
    const restarted = new Rooms({ catalog, store, grants: new GrantSigner(randomBytes(32)), publicUrl: 'http://localhost:3333', vhost: 'default', app: 'rooms', nodeId: 'test-node', logger: pino({ level: 'silent' }) });
    await restarted.restore(lastAlive);
    const record = await store.getRoomSession(live.id);
    assert.equal(record?.status, 'completed');
    assert.equal(record?.endTime, lastAlive.toISOString());
    assert.equal(record?.endReason, 'node-lost');
    const [member] = await store.listRoomMembers(live.id);
    assert.equal(member.leftAt, lastAlive.toISOString());
    assert.equal(member.leaveReason, 'node-lost');
    assert.equal(restarted.find(live.name), undefined);
    const again = restarted.find(waiting.name);
    assert.ok(again);
    const { participant } = await restarted.join(waiting.name, token.token, '', CLIENT);
    assert.equal(participant.serverData, 'kept');
    await restarted.close();
  });
});
