/**
 * What every Store implementation must do alike, written once and run against each (the embedded
 * SQLite store in test/unit/sqlite-store.test.ts, PostgreSQL in test/integration/pg-store.test.ts).
 */
import assert from 'node:assert/strict';
import type { RecordingRecord, RoomGrantRecord, Store } from '../../src/store/store.ts';

/** A recording record with a uuid derived from its id. */
export const recordingRecord = (id: string, createdAt: string, status: RecordingRecord['status'], roomSessionId = 'rs-1'): RecordingRecord => ({
  id, uuid: `00000000-0000-4000-8000-${id.padStart(12, '0').slice(-12)}`, roomSessionId, sessionId: `ws://x/${id}`, name: id, status,
  createdAt, updatedAt: createdAt, stoppedAt: null, duration: 0, size: 0, hasAudio: true, hasVideo: true, reason: null,
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
