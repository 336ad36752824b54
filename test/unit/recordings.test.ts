/**
 * The recordings state machine below the APIs: a real store, real room sessions, real forwarders
 * (fed by the test, or not at all) and real ffmpeg; the media engine and the rooms are reduced to
 * the two lookups Recordings makes of them.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { RTCRtpCodecParameters } from 'werift';
import { Participant, RoomSession, defaultRoomSettings } from '../../src/core/room.ts';
import { Session } from '../../src/core/session.ts';
import { Stream } from '../../src/core/stream.ts';
import { isKilnError } from '../../src/core/errors.ts';
import { Forwarder } from '../../src/media/forwarder.ts';
import type { MediaEngine } from '../../src/media/engine.ts';
import type { Rooms } from '../../src/rooms/rooms.ts';
import { Recordings, type RecordingsOptions } from '../../src/recording/recordings.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';

let dir: string;
let store: SqliteStore;
const forwarders = new Map<Stream, Forwarder>();
const engine = { forwarderOf: (s: Stream) => forwarders.get(s) } as unknown as MediaEngine;
const rooms = { watch: () => {}, sessionIdOf: (rs: RoomSession) => `ws://test/${rs.name}` } as unknown as Rooms;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'kiln-recordings-'));
  store = new SqliteStore(dir);
});
after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

function recordings(options: Partial<RecordingsOptions> = {}): Recordings {
  return new Recordings({
    store, engine, rooms, dir: join(dir, 'recordings'), ffmpegPath: 'ffmpeg', width: 320, height: 180, fps: 15,
    stopWaitMs: 60_000, startWaitMs: 1500, nodeId: 'test-node', logger: pino({ level: 'silent' }), ...options,
  });
}

let rooms_ = 0;
/** A room session with one participant; with `video`, it publishes a stream whose video track gets only what the test pushes. */
function roomWithMember(video = false): { rs: RoomSession; forwarder?: Forwarder } {
  const rs = new RoomSession({ roomId: null, name: `unit${++rooms_}`, settings: defaultRoomSettings() });
  const session = (kind: 'participant' | 'publisher') => new Session({ kind, protocol: 'openvidu', remoteAddress: '127.0.0.1', remotePort: 1, vhost: 'default', app: 'rooms', stream: '' });
  const p = new Participant({ id: `p${rooms_}`, name: 'p', session: session('participant'), role: 'PUBLISHER', serverData: '', clientData: '', token: 't' });
  rs.add(p);
  if (!video) return { rs };
  const source = session('publisher');
  const stream = new Stream('default', 'rooms', `p${rooms_}_CAMERA`, 'Room', source);
  const forwarder = new Forwarder({ requestKeyFrame: () => {}, counters: source.counters });
  forwarder.addTrack('video', new RTCRtpCodecParameters({ mimeType: 'video/VP8', clockRate: 90_000 }));
  forwarders.set(stream, forwarder);
  p.addStream({ id: stream.name, stream, audioActive: false, videoActive: true, typeOfVideo: 'CAMERA' });
  return { rs, forwarder };
}

const status = (code: number) => (err: unknown) => isKilnError(err) && err.status === code;

test('start waits for the first media: a stop meanwhile is 406; with none in time it starts anyway, and composes a black file', async () => {
  const r = recordings();
  const { rs } = roomWithMember(true);
  await assert.rejects(r.start(new RoomSession({ roomId: null, name: 'nobody', settings: defaultRoomSettings() }), 'ws://test/nobody'), status(400));
  const t0 = Date.now();
  const starting = r.start(rs, 'ws://test/x');
  await new Promise((res) => setTimeout(res, 300));
  await assert.rejects(r.stop(rs.name), status(406));
  await assert.rejects(r.start(rs, 'ws://test/x'), status(409));
  const started = await starting;
  assert.equal(started.status, 'started');
  assert.ok(Date.now() - t0 >= 1400, 'it waited for the media up to startWaitMs');
  await new Promise((res) => setTimeout(res, 1200));
  const stopped = await r.stop(rs.name);
  assert.equal(stopped.status, 'available');
  assert.ok(stopped.duration > 1 && stopped.duration < 2, `duration ${stopped.duration}`);
  assert.ok(existsSync(r.fileOf(rs.name)));
  await assert.rejects(r.stop(rs.name), status(404));
  await r.close();
});

test('a session that ends while the recording starts: start is refused, the recording failed with its reason, nothing stays in progress', async () => {
  const r = recordings({ startWaitMs: 3000 });
  const { rs } = roomWithMember(true);
  const starting = r.start(rs, 'ws://test/y');
  setTimeout(() => rs.end('session-ended'), 200);
  await assert.rejects(starting, status(404));
  assert.equal(r.activeOf(rs), undefined);
  const record = await r.get(rs.name);
  assert.equal(record?.status, 'failed');
  assert.match(record?.reason ?? '', /before any media/);
  await r.close();
});

test('shutdown while a recording starts: start answers 503; the recording is failed, not left starting', async () => {
  const r = recordings({ startWaitMs: 3000 });
  const { rs } = roomWithMember(true);
  const starting = r.start(rs, 'ws://test/z');
  await new Promise((res) => setTimeout(res, 200));
  await r.close();
  await assert.rejects(starting, status(503));
  assert.equal((await r.get(rs.name))?.status, 'failed');
  assert.deepEqual((await store.listUnfinishedRecordings()).filter((x) => x.id === rs.name), []);
});

test('deleting a recording queued for composition does not wait for the composition ahead of it; a failing ffmpeg fails its recording', async () => {
  const slow = join(dir, 'slow-ffmpeg.sh');
  writeFileSync(slow, '#!/bin/sh\nsleep 3\necho "no encoder here" >&2\nexit 1\n');
  chmodSync(slow, 0o755);
  const r = recordings({ ffmpegPath: slow, stopWaitMs: 100 });
  const a = roomWithMember().rs;
  const b = roomWithMember().rs;
  await r.start(a, 'ws://test/a');
  await r.start(b, 'ws://test/b');
  await new Promise((res) => setTimeout(res, 300));
  assert.equal((await r.stop(a.name)).status, 'stopped');
  const stoppedB = await r.stop(b.name);
  assert.equal(stoppedB.status, 'stopped');
  assert.ok(stoppedB.duration > 0.2, 'until composed, the duration is the captured one');
  const t0 = Date.now();
  await r.delete(b.name);
  assert.ok(Date.now() - t0 < 1000, `delete took ${Date.now() - t0} ms`);
  assert.equal(await r.get(b.name), undefined);
  const failed = await waitForStatus(r, a.name, 'failed');
  assert.match(failed.reason ?? '', /exited with code 1[\s\S]*no encoder here/);
  await r.close();
});

test('recover: a recording left started with nothing captured is failed with a reason; one the run holds is left alone', async () => {
  const r = recordings();
  const { rs } = roomWithMember();
  const live = await r.start(rs, 'ws://test/live');
  const now = new Date().toISOString();
  await store.putRecording({ ...live, id: 'orphan', uuid: '00000000-0000-4000-8000-00000000beef', name: 'orphan', createdAt: now, updatedAt: now });
  await r.recover();
  const orphan = await store.getRecording('orphan');
  assert.equal(orphan?.status, 'failed');
  assert.match(orphan?.reason ?? '', /nothing to compose/);
  assert.equal((await r.get(live.id))?.status, 'started');
  await r.close();
});

async function waitForStatus(r: Recordings, id: string, wanted: string, timeoutMs = 15_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const record = await r.get(id);
    if (record?.status === wanted) return record;
    if (Date.now() > end) throw new Error(`recording ${id} is ${record?.status}, not ${wanted}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}
