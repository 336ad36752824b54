/** The embedded store's recordings and room-token housekeeping, on a real SQLite file. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { RecordingRecord, RoomGrantRecord } from '../../src/store/store.ts';

function withStore(fn: (store: SqliteStore, dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-store-'));
    const store = new SqliteStore(dir);
    try {
      await fn(store, dir);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

const recording = (id: string, createdAt: string, status: RecordingRecord['status'], roomSessionId = 'rs-1'): RecordingRecord => ({
  id, uuid: `00000000-0000-4000-8000-${id.padStart(12, '0').slice(-12)}`, roomSessionId, sessionId: `ws://x/${id}`, name: id, status,
  createdAt, updatedAt: createdAt, stoppedAt: null, duration: 0, size: 0, hasAudio: true, hasVideo: true, reason: null,
});

test('recordings: by id or uuid, newest first, per room session, unfinished ones, delete; they survive a reopen', withStore(async (store, dir) => {
  await store.putRecording(recording('aaa', '2026-01-01T00:00:01.000Z', 'available'));
  await store.putRecording(recording('bbb', '2026-01-01T00:00:03.000Z', 'started'));
  await store.putRecording(recording('ccc', '2026-01-01T00:00:02.000Z', 'stopped', 'rs-2'));
  await store.putRecording(recording('ddd', '2026-01-01T00:00:04.000Z', 'failed'));
  assert.deepEqual((await store.listRecordings()).map((r) => r.id), ['ddd', 'bbb', 'ccc', 'aaa']);
  assert.deepEqual((await store.listRecordings('rs-1')).map((r) => r.id), ['ddd', 'bbb', 'aaa']);
  assert.deepEqual((await store.listUnfinishedRecordings()).map((r) => r.id), ['ccc', 'bbb']);
  const byUuid = await store.getRecording('00000000-0000-4000-8000-000000000aaa');
  assert.equal(byUuid?.id, 'aaa');
  assert.deepEqual(await store.getRecording('aaa'), recording('aaa', '2026-01-01T00:00:01.000Z', 'available'));
  assert.equal(await store.deleteRecording('aaa'), true);
  assert.equal(await store.deleteRecording('aaa'), false);
  await store.close();
  const reopened = new SqliteStore(dir);
  try {
    assert.deepEqual((await reopened.listRecordings()).map((r) => r.id), ['ddd', 'bbb', 'ccc']);
  } finally {
    await reopened.close();
  }
}));

test('room grants: expired and long-used ones are pruned, live ones stay; deleting a room deletes its grants', withStore(async (store) => {
  const grant = (token: string, roomId: string, expiresAt: string, usedAt: string | null): RoomGrantRecord => ({
    token, roomId, userName: 'u', role: 'PUBLISHER', permissions: [], createdAt: '2026-01-01T00:00:00.000Z', expiresAt, usedAt,
  });
  await store.putRoom({ id: 'room-a', name: 'a', settings: {}, createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z' });
  await store.putRoomGrant(grant('expired', 'room-b', '2026-01-01T00:00:00.000Z', null));
  await store.putRoomGrant(grant('used-long-ago', 'room-b', '9999-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z'));
  await store.putRoomGrant(grant('used-recently', 'room-b', '9999-01-01T00:00:00.000Z', '2026-01-05T00:00:00.000Z'));
  await store.putRoomGrant(grant('live', 'room-b', '9999-01-01T00:00:00.000Z', null));
  await store.putRoomGrant(grant('of-room-a', 'room-a', '9999-01-01T00:00:00.000Z', null));
  assert.equal(await store.pruneRoomGrants('2026-01-05T12:00:00.000Z', '2026-01-04T12:00:00.000Z'), 2);
  for (const kept of ['used-recently', 'live', 'of-room-a']) assert.ok(await store.getRoomGrant(kept), kept);
  for (const gone of ['expired', 'used-long-ago']) assert.equal(await store.getRoomGrant(gone), undefined, gone);
  assert.equal(await store.deleteRoom('room-a'), true);
  assert.equal(await store.getRoomGrant('of-room-a'), undefined);
  assert.ok(await store.getRoomGrant('live'));
}));
