/**
 * What every Store implementation must do alike, written once and run against each (the embedded
 * SQLite store in test/unit/sqlite-store.test.ts, PostgreSQL in test/integration/pg-store.test.ts).
 */
import assert from 'node:assert/strict';
import type { EventPairChange, RecordingRecord, RoomGrantRecord, Store } from '../../src/store/store.ts';

/** A recording record with a uuid derived from its id. */
export const recordingRecord = (id: string, createdAt: string, status: RecordingRecord['status'], roomSessionId = 'rs-1'): RecordingRecord => ({
  id, uuid: `00000000-0000-4000-8000-${id.padStart(12, '0').slice(-12)}`, roomSessionId, sessionId: `ws://x/${id}`, name: id, status,
  createdAt, updatedAt: createdAt, stoppedAt: null, duration: 0, size: 0, hasAudio: true, hasVideo: true, reason: null, nodeId: 'node-a',
});

/** A room grant of `roomId`. */
export const grantRecord = (token: string, roomId: string, expiresAt: string, usedAt: string | null): RoomGrantRecord => ({
  token, roomId, userName: 'u', role: 'PUBLISHER', permissions: ['room.self.audio_mute', 'room.self.video_mute'],
  createdAt: '2026-01-01T00:00:00.000Z', expiresAt, usedAt,
});

/**
 * Recordings by id or uuid, newest first, per room session, the unfinished ones, delete; then
 * `reopen()` (which closes `store` first and opens the same database again) still has them.
 */
export async function recordingsContract(store: Store, reopen: () => Promise<Store>): Promise<void> {
  await store.putRecording(recordingRecord('aaa', '2026-01-01T00:00:01.000Z', 'available'));
  await store.putRecording(recordingRecord('bbb', '2026-01-01T00:00:03.000Z', 'started'));
  await store.putRecording(recordingRecord('ccc', '2026-01-01T00:00:02.000Z', 'stopped', 'rs-2'));
  await store.putRecording(recordingRecord('ddd', '2026-01-01T00:00:04.000Z', 'failed'));
  assert.deepEqual((await store.listRecordings()).map((r) => r.id), ['ddd', 'bbb', 'ccc', 'aaa']);
  assert.deepEqual((await store.listRecordings('rs-1')).map((r) => r.id), ['ddd', 'bbb', 'aaa']);
  assert.deepEqual((await store.listUnfinishedRecordings()).map((r) => r.id), ['ccc', 'bbb']);
  assert.equal((await store.getRecording('00000000-0000-4000-8000-000000000aaa'))?.id, 'aaa');
  assert.deepEqual(await store.getRecording('aaa'), recordingRecord('aaa', '2026-01-01T00:00:01.000Z', 'available'));
  assert.equal(await store.deleteRecording('aaa'), true);
  assert.equal(await store.deleteRecording('aaa'), false);
  const reopened = await reopen();
  try {
    assert.deepEqual((await reopened.listRecordings()).map((r) => r.id), ['ddd', 'bbb', 'ccc']);
  } finally {
    await reopened.close();
  }
}

/** Expired and long-used grants are pruned, live ones stay; deleting a room deletes its grants. */
export async function grantsContract(store: Store): Promise<void> {
  await store.putRoom({ id: 'room-a', name: 'a', settings: {}, createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z' });
  await store.putRoomGrant(grantRecord('expired', 'room-b', '2026-01-01T00:00:00.000Z', null));
  await store.putRoomGrant(grantRecord('used-long-ago', 'room-b', '9999-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z'));
  await store.putRoomGrant(grantRecord('used-recently', 'room-b', '9999-01-01T00:00:00.000Z', '2026-01-05T00:00:00.000Z'));
  await store.putRoomGrant(grantRecord('live', 'room-b', '9999-01-01T00:00:00.000Z', null));
  await store.putRoomGrant(grantRecord('of-room-a', 'room-a', '9999-01-01T00:00:00.000Z', null));
  assert.equal(await store.pruneRoomGrants('2026-01-05T12:00:00.000Z', '2026-01-04T12:00:00.000Z'), 2);
  for (const kept of ['used-recently', 'live', 'of-room-a']) assert.ok(await store.getRoomGrant(kept), kept);
  for (const gone of ['expired', 'used-long-ago']) assert.equal(await store.getRoomGrant(gone), undefined, gone);
  assert.equal(await store.deleteRoom('room-a'), true);
  assert.equal(await store.deleteRoom('room-a'), false);
  assert.equal(await store.getRoomGrant('of-room-a'), undefined);
  assert.ok(await store.getRoomGrant('live'));
}

/**
 * What a node holds (cluster mode): open room sessions, their tokens, completing in-progress ones
 * and unfinished recordings, of one node or of all.
 */
export async function nodeScopeContract(store: Store): Promise<void> {
  const at = '2026-02-01T00:00:00.000Z';
  await store.putPullStream({ vhost: 'default', app: 'app', name: 'cam-a', urls: ['rtsp://a/1'], properties: {}, createdAt: at, nodeId: 'node-a' });
  await store.putPullStream({ vhost: 'default', app: 'app', name: 'cam-b', urls: ['rtsp://b/1'], properties: {}, createdAt: at, nodeId: 'node-b' });
  assert.deepEqual((await store.listPullStreams('node-b')).map((p) => [p.name, p.nodeId]), [['cam-b', 'node-b']]);
  assert.equal((await store.listPullStreams()).length, 2);
  // A claimed setting keeps its first value.
  assert.equal(await store.claimSetting('claimed', 'first'), 'first');
  assert.equal(await store.claimSetting('claimed', 'second'), 'first');
  const session = (id: string, nodeId: string, status: 'in-progress' | null) => ({
    id, roomId: null, name: id, settings: {}, openvidu: null, status, createdAt: at, updatedAt: at,
    startTime: status ? at : null, endTime: null, endReason: null, nodeId,
  });
  await store.putRoomSession(session('rs-a1', 'node-a', 'in-progress'));
  await store.putRoomSession(session('rs-a2', 'node-a', null));
  await store.putRoomSession(session('rs-b1', 'node-b', 'in-progress'));
  await store.putRoomToken({ token: 'tok-a', roomSessionId: 'rs-a2', role: 'PUBLISHER', data: '', createdAt: at, usedAt: null });
  await store.putRoomToken({ token: 'tok-b', roomSessionId: 'rs-b1', role: 'PUBLISHER', data: '', createdAt: at, usedAt: null });
  await store.putRoomMember({ id: 'm-b', roomSessionId: 'rs-b1', name: 'b', role: 'PUBLISHER', serverData: '', clientData: '', remoteAddress: '', joinedAt: at, leftAt: null, leaveReason: null });
  assert.deepEqual((await store.listOpenRoomSessions('node-a')).map((r) => r.id).sort(), ['rs-a1', 'rs-a2']);
  assert.deepEqual((await store.listOpenRoomSessions()).map((r) => r.id).sort(), ['rs-a1', 'rs-a2', 'rs-b1']);
  assert.deepEqual((await store.listOpenRoomTokens('node-b')).map((t) => t.token), ['tok-b']);
  assert.equal((await store.getRoomSession('rs-b1'))?.nodeId, 'node-b');
  // node-b is lost: only its session is completed, with its member.
  assert.equal(await store.completeInProgressRoomSessions('2026-02-01T00:01:00.000Z', 'node-lost', 'node-b'), 1);
  const b = await store.getRoomSession('rs-b1');
  assert.deepEqual([b?.status, b?.endTime, b?.endReason], ['completed', '2026-02-01T00:01:00.000Z', 'node-lost']);
  assert.equal((await store.listRoomMembers('rs-b1'))[0].leaveReason, 'node-lost');
  assert.equal((await store.getRoomSession('rs-a1'))?.status, 'in-progress');
  await store.putRecording({ ...recordingRecord('rec-a', at, 'started'), nodeId: 'node-a' });
  await store.putRecording({ ...recordingRecord('rec-b', at, 'stopped'), nodeId: 'node-b' });
  await store.putRecording({ ...recordingRecord('rec-b2', at, 'started'), nodeId: 'node-b' });
  assert.deepEqual((await store.listUnfinishedRecordings('node-b')).map((r) => r.id).sort(), ['rec-b', 'rec-b2']);
  assert.equal((await store.getRecording('rec-a'))?.nodeId, 'node-a');
  assert.equal((await store.getRecording('rec-a'))?.status, 'started');
}

/**
 * The event outbox: appends with a pending delivery per endpoint, pairs closed once, pending in
 * order, delivered/failed bookkeeping, listing newest first with deliveries, pruning.
 */
export async function eventsContract(store: Store): Promise<void> {
  const ev = (id: string, type: string, subject: string, time = '2026-01-01T00:00:00.000Z', nodeId = 'n1') =>
    ({ id, type, time, nodeId, subject, data: { n: id, nested: { ok: true } } });
  const endpoints = ['http://a.example/hook', 'http://b.example/hook'];
  const append = async (event: ReturnType<typeof ev>, pair?: EventPairChange, to = endpoints) => (await store.events.append([{ event, pair }], to))[0];
  // One batch: in order, in one transaction.
  const [s1, s2] = await store.events.append([
    { event: ev('e1', 'session.opened', 's1'), pair: { open: 'session:s1', closeType: 'session.closed' } },
    { event: ev('e2', 'session.opened', 's2', undefined, 'n2'), pair: { open: 'session:s2', closeType: 'session.closed' } },
  ], endpoints);
  const s3 = await append(ev('e3', 'recording.status', 'r1'));
  assert.ok(s1! < s2! && s2! < s3!, 'seq increases');
  assert.deepEqual((await store.events.openPairs('n1')).map((p) => [p.key, p.subject, p.closeType, p.data]), [['session:s1', 's1', 'session.closed', { n: 'e1', nested: { ok: true } }]]);
  // A close writes its event once: the second close of the same pair is not appended.
  assert.ok(await append(ev('e4', 'session.closed', 's1'), { close: 'session:s1' }));
  assert.equal(await append(ev('e5', 'session.closed', 's1'), { close: 'session:s1' }), undefined);
  assert.deepEqual(await store.events.openPairs('n1'), []);
  assert.equal((await store.events.openPairs('n2')).length, 1);
  assert.deepEqual((await store.events.openPairs()).map((p) => p.nodeId), ['n2'], 'of every node');
  assert.deepEqual(await store.events.pairNodes(), ['n2']);
  // A retry of a write whose outcome was unknown: the event is there once, its pair change once.
  assert.deepEqual(await store.events.append([{ event: ev('e2', 'session.opened', 's2', undefined, 'n2'), pair: { open: 'session:s2', closeType: 'session.closed' } }], endpoints), [undefined]);

  const pendingA = await store.events.pending(endpoints[0], 10);
  assert.deepEqual(pendingA.map((e) => e.id), ['e1', 'e2', 'e3', 'e4']);
  assert.deepEqual(pendingA[0].data, { n: 'e1', nested: { ok: true } });
  assert.equal(pendingA[0].attempts, 0);
  assert.equal((await store.events.pending(endpoints[0], 2)).length, 2);
  await store.events.failed(endpoints[0], s1!, 'HTTP 503', '2026-01-01T00:00:01.000Z');
  assert.equal((await store.events.pending(endpoints[0], 1))[0].attempts, 1);
  await store.events.delivered(endpoints[0], [s1!, s2!], '2026-01-01T00:00:02.000Z');
  assert.deepEqual((await store.events.pending(endpoints[0], 10)).map((e) => e.id), ['e3', 'e4']);
  assert.equal((await store.events.pending(endpoints[1], 10)).length, 4, 'endpoints are independent');

  const all = await store.events.list({ limit: 10, offset: 0 });
  assert.equal(all.total, 4);
  assert.deepEqual(all.events.map((e) => e.id), ['e4', 'e3', 'e2', 'e1'], 'newest first');
  const first = all.events[3];
  assert.deepEqual(first.deliveries.map((d) => [d.endpoint, d.deliveredAt, d.attempts, d.lastError]), [
    [endpoints[0], '2026-01-01T00:00:02.000Z', 2, 'HTTP 503'],
    [endpoints[1], null, 0, null],
  ]);
  const page = await store.events.list({ limit: 2, offset: 2 });
  assert.deepEqual(page.events.map((e) => e.id), ['e2', 'e1']);
  // Pending somewhere: all four (endpoint b has none of them yet).
  assert.equal((await store.events.list({ limit: 10, offset: 0, pending: true })).total, 4);
  await store.events.delivered(endpoints[1], all.events.map((e) => e.seq), '2026-01-01T00:00:03.000Z');
  await store.events.delivered(endpoints[0], all.events.map((e) => e.seq), '2026-01-01T00:00:03.000Z');
  assert.equal((await store.events.list({ limit: 10, offset: 0, pending: true })).total, 0);

  // Pruning: delivered events from before the time go; a pending one stays whatever its age.
  await append(ev('e6', 'recording.status', 'r1', '2026-01-01T00:00:00.000Z'));
  await append(ev('e7', 'recording.status', 'r1', '2026-03-01T00:00:00.000Z'), undefined, []);
  assert.equal(await store.events.prune('2026-02-01T00:00:00.000Z'), 4);
  assert.deepEqual((await store.events.list({ limit: 10, offset: 0 })).events.map((e) => e.id), ['e7', 'e6']);
}
