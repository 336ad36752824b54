/**
 * OpenVidu 2.x's "close session", `DELETE /api/sessions/{id}`, which Kiln adds to its 1.x dialect
 * (the web console ends a room session with it): the participants are told and removed, the room
 * session is completed in the history, and the id is gone.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, startKiln, startKilnInProcess, type InProcessKiln, type KilnProcess } from '../helpers/kiln-process.ts';
import { RoomRpc } from '../helpers/room-rpc.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';

const openvidu = `Basic ${Buffer.from('OPENVIDUAPP:pw').toString('base64')}`;
const admin = `Basic ${Buffer.from('admin:pw').toString('base64')}`;

describe('OpenVidu DELETE /api/sessions/{id}', () => {
  let node: InProcessKiln;
  let api: string;

  before(async () => {
    node = await startKilnInProcess();
    api = `http://127.0.0.1:${node.kiln.api!.port}`;
  });
  after(() => node.stop());

  const call = async (method: string, path: string, body?: unknown, auth = openvidu) => {
    const res = await fetch(`${api}${path}`, {
      method,
      headers: { ...(auth ? { authorization: auth } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  };
  const newSession = async (): Promise<string> => (await call('POST', '/api/sessions')).json.id;
  const assertNotFound = (a: { status: number; json: any }, path: string) => {
    assert.equal(a.status, 404, JSON.stringify(a.json));
    assert.deepEqual(Object.keys(a.json).sort(), ['error', 'message', 'path', 'status', 'timestamp']);
    assert.equal(a.json.status, 404);
    assert.equal(a.json.error, 'Not Found');
    assert.equal(a.json.path, path);
  };
  const roomSessionRecord = async (name: string) => {
    const list = await call('GET', `/api/video/room_sessions?room_name=${name}`, undefined, admin);
    assert.equal(list.status, 200);
    return list.json.data as { id: string; name: string; status: string; end_time: string | null }[];
  };

  test('a session joined by a participant: 204, the participant is told and removed, the session completed', async () => {
    const id = await newSession();
    const name = id.slice(id.lastIndexOf('/') + 1);
    const token = (await call('POST', '/api/tokens', { session: id, role: 'PUBLISHER' })).json.token;
    const rpc = await RoomRpc.connect(`${node.signalingUrl.replace('http', 'ws')}/room`);
    try {
      await rpc.call('joinRoom', { session: id, token, metadata: '', secret: '', recorder: false, dataChannels: false });
      assert.ok((await call('GET', '/api/sessions')).json.includes(id));

      const path = `/api/sessions/${encodeURIComponent(id)}`;
      const closed = await call('DELETE', path);
      assert.equal(closed.status, 204);
      assert.equal(closed.json, undefined);

      assert.equal((await rpc.notification('roomClosed')).params.room, id);
      await rpc.closed();
      assert.ok(!(await call('GET', '/api/sessions')).json.includes(id));
      const [record] = await roomSessionRecord(name);
      assert.equal(record.status, 'completed');
      assert.ok(record.end_time);
      const members = await call('GET', `/api/video/room_sessions/${record.id}/members`, undefined, admin);
      assert.equal(members.json.data.length, 1);
      assert.ok(members.json.data[0].leave_time);
      assert.equal(members.json.data[0].leave_reason, 'session-ended');

      assertNotFound(await call('DELETE', path), path);
      assert.equal((await call('POST', '/api/tokens', { session: id, role: 'PUBLISHER' })).status, 400, 'no token for a closed session');
    } finally {
      rpc.close();
    }
  });

  test('a session nobody joined yet, named by its bare name: 204, then it joins no more', async () => {
    const id = await newSession();
    const name = id.slice(id.lastIndexOf('/') + 1);
    const token = (await call('POST', '/api/tokens', { session: id, role: 'PUBLISHER' })).json.token;
    assert.equal((await call('DELETE', `/api/sessions/${name}`)).status, 204);
    const [record] = await roomSessionRecord(name);
    assert.equal(record.status, 'completed');
    const rpc = await RoomRpc.connect(`${node.signalingUrl.replace('http', 'ws')}/room`);
    try {
      const refused = await rpc.call('joinRoom', { session: id, token, metadata: '' }).then(() => undefined, (e: Error) => e);
      assert.ok(refused, 'the token of a closed session joins no more');
    } finally {
      rpc.close();
    }
    assertNotFound(await call('DELETE', `/api/sessions/${name}`), `/api/sessions/${name}`);
  });

  test('an id no session has is 404; without credentials 401', async () => {
    for (const id of ['nosuchsession000', encodeURIComponent('ws://127.0.0.1:1/nosuchsession000'), '..%2f..%2fnosuchsession000', 'a%20b']) {
      assertNotFound(await call('DELETE', `/api/sessions/${id}`), `/api/sessions/${id}`);
    }
    const id = await newSession();
    const unauthorized = await call('DELETE', `/api/sessions/${encodeURIComponent(id)}`, undefined, '');
    assert.equal(unauthorized.status, 401);
    assert.equal(unauthorized.json.status, 401);
    assert.equal((await call('DELETE', `/api/sessions/${encodeURIComponent(id)}`)).status, 204, 'still open after the refused call');
  });

  test('the OpenAPI document has it', async () => {
    const doc = await (await fetch(`${api}/openapi.json`)).json();
    assert.deepEqual(Object.keys(doc.paths['/api/sessions/{id}'].delete.responses).sort(), ['204', '401', '404']);
  });
});

describe('OpenVidu DELETE /api/sessions/{id} in a cluster', () => {
  let db: TestPostgres;
  const nodes: KilnProcess[] = [];

  before(async () => {
    db = await startPostgres();
    for (const id of ['node-a', 'node-b']) {
      const sigPort = String(await freePort());
      nodes.push(await startKiln({ KILN_DATABASE_URL: db.url, KILN_NODE_ID: id, KILN_SIGNALING_PORT: sigPort, KILN_PUBLIC_URL: `http://127.0.0.1:${sigPort}` }));
    }
  });
  after(async () => {
    for (const node of nodes) await node.stop(15_000);
    await db?.stop();
  });

  test('a session held by another node is closed there', async () => {
    const [a, b] = nodes;
    const auth = `Basic ${Buffer.from(`OPENVIDUAPP:${a.password}`).toString('base64')}`;
    const call = async (node: KilnProcess, method: string, path: string, body?: unknown) => {
      const res = await fetch(`${node.apiUrl}${path}`, {
        method,
        headers: { authorization: auth, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
      const text = await res.text();
      return { status: res.status, json: text ? JSON.parse(text) : undefined };
    };
    const id = (await call(a, 'POST', '/api/sessions')).json.id as string;
    const token = (await call(b, 'POST', '/api/tokens', { session: id, role: 'PUBLISHER' })).json.token;
    const rpc = await RoomRpc.connect(`${a.wsUrl}/room`);
    try {
      await rpc.call('joinRoom', { session: id, token, metadata: '' });
      assert.deepEqual((await call(b, 'GET', '/api/sessions')).json, [id]);
      const path = `/api/sessions/${encodeURIComponent(id)}`;
      assert.equal((await call(b, 'DELETE', path)).status, 204);
      await rpc.notification('roomClosed');
      assert.deepEqual((await call(a, 'GET', '/api/sessions')).json, []);
      assert.deepEqual((await call(b, 'GET', '/api/sessions')).json, []);
      const second = await call(b, 'DELETE', path);
      assert.equal(second.status, 404);
      assert.equal(second.json.path, path);
    } finally {
      rpc.close();
    }
  });
});
