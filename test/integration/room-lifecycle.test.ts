/**
 * Room sessions across the life of the process: a clean stop and a `kill -9` with a session in
 * progress both leave it recorded as ended (with its end time), nothing `in-progress`; a
 * participant that goes silent on the room WebSocket is removed and announced.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { freePort, startKiln, startKilnInProcess } from '../helpers/kiln-process.ts';
import { RoomRpc } from '../helpers/room-rpc.ts';
import type { KilnConfig } from '../../src/config/config.ts';
import { connected, gathered, loopbackPeer } from '../helpers/werift-peer.ts';
import { prepareLocal } from '../../src/media/peer.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function openvidu(apiUrl: string, password: string, path: string, body?: object): Promise<any> {
  const res = await fetch(`${apiUrl}${path}`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`OPENVIDUAPP:${password}`).toString('base64')}` },
    body: body && JSON.stringify(body),
  });
  assert.equal(res.status, 200);
  return res.json();
}

/** The history as the store has it, read while Kiln is stopped. */
function history(dataDir: string) {
  const db = new DatabaseSync(join(dataDir, 'kiln.db'), { readOnly: true });
  try {
    const sessions = db.prepare('SELECT id, name, status, start_time, end_time, end_reason FROM room_sessions ORDER BY created_at').all() as any[];
    const members = db.prepare('SELECT room_session_id, joined_at, left_at, leave_reason FROM room_members ORDER BY joined_at').all() as any[];
    const events = (db.prepare("SELECT type, subject, data FROM events WHERE type LIKE 'room_session.%' OR type LIKE 'participant.%' ORDER BY seq").all() as any[])
      .map((e) => ({ type: e.type as string, subject: e.subject as string, data: JSON.parse(e.data) }));
    return { sessions, members, events };
  } finally {
    db.close();
  }
}

async function sessionWithTwo(env: Record<string, string>) {
  const kiln = await startKiln(env);
  const { id } = await openvidu(kiln.apiUrl, kiln.password, '/api/sessions');
  const clients = [];
  for (const data of ['a', 'b']) {
    const { token } = await openvidu(kiln.apiUrl, kiln.password, '/api/tokens', { session: id, role: 'PUBLISHER', data });
    const rpc = await RoomRpc.connect(`${kiln.wsUrl}/room`);
    await rpc.call('joinRoom', { session: id, token, metadata: '' });
    clients.push(rpc);
  }
  return { kiln, id, clients };
}

describe('room sessions survive restarts as history', () => {
  test('a clean stop completes the session in progress: roomClosed to the participants, end time and reasons kept', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'kiln-room-stop-'));
    dirs.push(dataDir);
    const port = String(await freePort());
    const { kiln, id, clients } = await sessionWithTwo({ KILN_DATA_DIR: dataDir, KILN_SIGNALING_PORT: port, KILN_PUBLIC_URL: `http://127.0.0.1:${port}` });
    await clients[0].call('leaveRoom', {});
    // A second session nobody joined yet keeps its token over the restart.
    const waiting = await openvidu(kiln.apiUrl, kiln.password, '/api/sessions');
    const { token } = await openvidu(kiln.apiUrl, kiln.password, '/api/tokens', { session: waiting.id, role: 'SUBSCRIBER', data: 'later' });
    const stoppedAt = new Date().toISOString();
    assert.equal(await kiln.stop(), 0);
    const closed = clients[1].notifications.find((n) => n.method === 'roomClosed');
    assert.equal(closed?.params.room, id);

    const { sessions, members } = history(dataDir);
    const ended = sessions.find((s) => id.endsWith(`/${s.name}`));
    assert.equal(ended.status, 'completed');
    assert.equal(ended.end_reason, 'server-stopping');
    assert.ok(ended.end_time >= stoppedAt && ended.end_time >= ended.start_time);
    assert.deepEqual(members.map((m) => m.leave_reason).sort(), ['disconnect', 'server-stopping']);
    assert.ok(members.every((m) => m.left_at && m.left_at >= m.joined_at));
    assert.equal(sessions.filter((s) => s.status === 'in-progress').length, 0);
    // The events: started, two joins, the leave and the rest at the stop, then ended; in pairs.
    const { events } = history(dataDir);
    const ofSession = events.filter((e) => e.subject === ended.id || e.data.participant?.room_session_id === ended.id);
    assert.deepEqual(ofSession.map((e) => [e.type, e.data.reason]), [
      ['room_session.started', undefined], ['participant.joined', undefined], ['participant.joined', undefined],
      ['participant.left', 'disconnect'], ['participant.left', 'server-stopping'], ['room_session.ended', 'server-stopping'],
    ]);
    assert.equal(ofSession[1].data.participant.room_session_name, ended.name);

    const again = await startKiln({ KILN_DATA_DIR: dataDir, KILN_SIGNALING_PORT: port, KILN_PUBLIC_URL: `http://127.0.0.1:${port}` });
    try {
      const rpc = await RoomRpc.connect(`${again.wsUrl}/room`);
      const joined = await rpc.call('joinRoom', { session: waiting.id, token, metadata: '' });
      assert.equal(joined.metadata, 'later');
      rpc.close();
      const stale = await fetch(`${again.apiUrl}/api/tokens`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`OPENVIDUAPP:${again.password}`).toString('base64')}` },
        body: JSON.stringify({ session: id, role: 'PUBLISHER' }),
      });
      assert.equal(stale.status, 400, 'an ended session takes no tokens');
    } finally {
      assert.equal(await again.stop(), 0);
    }
  });

  test('after kill -9 the next start completes the session at the last heartbeat', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'kiln-room-crash-'));
    dirs.push(dataDir);
    const { kiln, id, clients } = await sessionWithTwo({ KILN_DATA_DIR: dataDir });
    const joinedAt = new Date().toISOString();
    // Past one heartbeat (every 5 s), so the end time is a heartbeat after the joins.
    await new Promise((r) => setTimeout(r, 5500));
    kiln.child.kill('SIGKILL');
    const killedAt = new Date().toISOString();
    await kiln.stop();
    for (const c of clients) await c.closed();
    assert.equal(history(dataDir).sessions.find((s) => id.endsWith(`/${s.name}`)).status, 'in-progress', 'the crash left it open');

    const again = await startKiln({ KILN_DATA_DIR: dataDir });
    assert.equal(await again.stop(), 0);
    const { sessions, members } = history(dataDir);
    const ended = sessions.find((s) => id.endsWith(`/${s.name}`));
    assert.equal(ended.status, 'completed');
    assert.equal(ended.end_reason, 'node-lost');
    assert.ok(ended.end_time > joinedAt && ended.end_time <= killedAt, `${joinedAt} < ${ended.end_time} <= ${killedAt}`);
    assert.equal(members.length, 2);
    assert.ok(members.every((m) => m.left_at === ended.end_time && m.leave_reason === 'node-lost'));
    // The events the crash left open are closed at the next start: both leaves, then the end.
    const ofSession = history(dataDir).events.filter((e) => e.subject === ended.id || e.data.participant?.room_session_id === ended.id);
    assert.deepEqual(ofSession.map((e) => [e.type, e.data.reason]), [
      ['room_session.started', undefined], ['participant.joined', undefined], ['participant.joined', undefined],
      ['participant.left', 'node-lost'], ['participant.left', 'node-lost'], ['room_session.ended', 'node-lost'],
    ]);
  });
});

/**
 * An in-process node (`configure`d, credential OPENVIDUAPP:pw) with one session and two joined
 * participants; `pinging` of them ping every 400 ms, as openvidu-browser does every 3 s.
 */
async function twoInRoom(configure: (c: KilnConfig) => void, pinging: (0 | 1)[]) {
  const node = await startKilnInProcess((c) => {
    configure(c);
    c.accessTokens = ['OPENVIDUAPP:pw'];
  });
  const api = `http://127.0.0.1:${node.kiln.api!.port}`;
  const ws = node.signalingUrl.replace('http:', 'ws:');
  const { id } = await openvidu(api, 'pw', '/api/sessions');
  const clients = [await RoomRpc.connect(`${ws}/room`), await RoomRpc.connect(`${ws}/room`)];
  const pings = setInterval(() => {
    for (const i of pinging) void clients[i].call('ping').catch(() => {});
  }, 400);
  const ids: string[] = [];
  for (const rpc of clients) {
    const { token } = await openvidu(api, 'pw', '/api/tokens', { session: id, role: 'PUBLISHER' });
    ids.push((await rpc.call('joinRoom', { session: id, token, metadata: '' })).id);
  }
  return {
    node,
    clients,
    ids,
    stop: async () => {
      clearInterval(pings);
      for (const c of clients) c.close();
      await node.stop();
    },
  };
}

describe('a participant whose room WebSocket goes silent', () => {
  test('is removed after the ping timeout; the others get participantLeft with the reason', async () => {
    const { node, clients: [alive, silent], ids: [, silentId], stop } = await twoInRoom((c) => (c.rooms.pingTimeoutMs = 1500), [0]);
    try {
      const started = Date.now();
      const left = await alive.notification('participantLeft', (p) => p.name === silentId, 5000);
      assert.equal(left.params.reason, 'networkDisconnect');
      assert.ok(Date.now() - started >= 1000, 'not before the timeout');
      await silent.closed();
      assert.equal([...node.kiln.catalog.sessions.values()].filter((s) => s.kind === 'participant').length, 1);
    } finally {
      await stop();
    }
  });
});

describe('a participant whose media connection dies', () => {
  test('is removed when its published media stops, though its WebSocket still pings', async () => {
    const { node, clients: [watcher, publisher], ids, stop } = await twoInRoom((c) => (c.limits.publisherTimeoutMs = 1500), [0, 1]);
    try {
      const pc = loopbackPeer();
      const transceiver = pc.addTransceiver('video', { direction: 'sendonly' });
      prepareLocal(pc, false);
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      const { sdpAnswer } = await publisher.call('publishVideo', { sdpOffer: pc.localDescription!.sdp, audioActive: false, videoActive: true });
      await pc.setRemoteDescription({ type: 'answer', sdp: sdpAnswer });
      await connected(pc);
      await watcher.notification('participantPublished', (p) => p.id === ids[1]);
      // Media flows for a moment, then the peer connection goes away without a word.
      const rtp = Buffer.from([0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 7, 0x10, 0, 0, 0]);
      for (let i = 0; i < 10; i++) {
        rtp.writeUInt16BE(i, 2);
        void transceiver.sender.sendRtp(rtp).catch(() => {});
        await new Promise((r) => setTimeout(r, 30));
      }
      await pc.close();
      const left = await watcher.notification('participantLeft', (p) => p.name === ids[1], 8000);
      assert.equal(left.params.reason, 'networkDisconnect');
      assert.equal(node.kiln.rooms!.participant(ids[1]), undefined);
    } finally {
      await stop();
    }
  });
});
