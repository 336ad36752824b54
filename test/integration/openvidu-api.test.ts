/**
 * The OpenVidu 1.x REST dialect (seed 004: sessions and tokens) over HTTP and over HTTPS, and the
 * room WebSocket's answers to bad input, each a JSON-RPC error on a connection that stays usable.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startKiln, type KilnProcess } from '../helpers/kiln-process.ts';
import { RoomRpc, RpcCallError } from '../helpers/room-rpc.ts';
import { loopbackPeer, gathered } from '../helpers/werift-peer.ts';
import { prepareLocal } from '../../src/media/peer.ts';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  json: any;
}

/** One request over HTTP or HTTPS (the test certificate is self-signed). */
function call(url: string, method: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  if (url.startsWith('http:')) {
    return fetch(url, { method, headers, body }).then(async (res) => {
      const text = await res.text();
      return { status: res.status, headers: Object.fromEntries(res.headers), json: text ? JSON.parse(text) : undefined };
    });
  }
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, rejectUnauthorized: false }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, json: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** Spring Boot's error body, as OpenVidu 1.8 sends it. */
function assertErrorShape(a: Answer, status: number, path: string, message?: RegExp): void {
  assert.equal(a.status, status, JSON.stringify(a.json));
  assert.deepEqual(Object.keys(a.json).sort(), ['error', 'message', 'path', 'status', 'timestamp']);
  assert.equal(a.json.status, status);
  assert.equal(a.json.path, path);
  assert.equal(typeof a.json.timestamp, 'number');
  if (message) assert.match(a.json.message, message);
}

for (const scheme of ['http', 'https'] as const) {
  describe(`OpenVidu REST over ${scheme.toUpperCase()}`, () => {
    let kiln: KilnProcess;
    let api: string;
    let auth: string;
    let certDir: string | undefined;

    before(async () => {
      const env: Record<string, string> = { KILN_PUBLIC_URL: scheme === 'https' ? 'https://media.example.com:8443' : 'http://localhost:3333' };
      if (scheme === 'https') {
        certDir = mkdtempSync(join(tmpdir(), 'kiln-ov-tls-'));
        execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
          '-subj', '/CN=127.0.0.1', '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem')], { stdio: 'ignore' });
        env.KILN_TLS_CERT = join(certDir, 'cert.pem');
        env.KILN_TLS_KEY = join(certDir, 'key.pem');
      }
      kiln = await startKiln(env);
      api = scheme === 'https' ? kiln.apiUrl.replace('http:', 'https:') : kiln.apiUrl;
      auth = basic('OPENVIDUAPP', kiln.password);
    });
    after(async () => {
      assert.equal(await kiln.stop(), 0);
      if (certDir) rmSync(certDir, { recursive: true, force: true });
    });

    const post = (path: string, body?: string, headers: Record<string, string> = {}) =>
      call(`${api}${path}`, 'POST', { authorization: auth, 'content-type': 'application/json', ...headers }, body);

    test('POST /api/sessions without a body gives {"id": "<ws scheme of KILN_PUBLIC_URL>/<16 lowercase alphanumerics>"}', async () => {
      const a = await post('/api/sessions');
      assert.equal(a.status, 200);
      assert.deepEqual(Object.keys(a.json), ['id']);
      const base = scheme === 'https' ? 'wss://media\\.example\\.com:8443' : 'ws://localhost:3333';
      assert.match(a.json.id, new RegExp(`^${base}/[a-z0-9]{16}$`));
      const again = await post('/api/sessions', '');
      assert.notEqual(again.json.id, a.json.id);
      // OpenVidu 1.8 lists the sessions someone joined.
      const list = await call(`${api}/api/sessions`, 'GET', { authorization: auth });
      assert.equal(list.status, 200);
      assert.ok(Array.isArray(list.json) && !list.json.includes(a.json.id));
    });

    test('POST /api/sessions takes archiveMode, archiveLayout and mediaMode', async () => {
      for (const body of [{}, { archiveMode: 'ALWAYS' }, { archiveMode: 'MANUAL', archiveLayout: 'BEST_FIT', mediaMode: 'ROUTED' }]) {
        const a = await post('/api/sessions', JSON.stringify(body));
        assert.equal(a.status, 200, JSON.stringify(body));
      }
    });

    test('POST /api/sessions: values not available yet and unknown values are 400 with the reason', async () => {
      const cases: [object, RegExp][] = [
        [{ archiveLayout: 'PICTURE_IN_PICTURE' }, /archiveLayout PICTURE_IN_PICTURE is not available yet/],
        [{ archiveLayout: 'VERTICAL_PRESENTATION' }, /not available yet/],
        [{ archiveLayout: 'HORIZONTAL_PRESENTATION' }, /not available yet/],
        [{ mediaMode: 'RELAYED' }, /mediaMode RELAYED is not available yet/],
        [{ archiveMode: 'SOMETIMES' }, /archiveMode SOMETIMES is not defined/],
        [{ mediaMode: 7 }, /mediaMode must be a string/],
      ];
      for (const [body, message] of cases) assertErrorShape(await post('/api/sessions', JSON.stringify(body)), 400, '/api/sessions', message);
      assertErrorShape(await post('/api/sessions', '{"archiveMode":'), 400, '/api/sessions', /JSON parse error/);
      assertErrorShape(await post('/api/sessions', '[1]'), 400, '/api/sessions', /JSON object/);
    });

    test('POST /api/tokens gives token, session, role, data and id as the seed shows', async () => {
      const session = (await post('/api/sessions')).json.id;
      for (const role of ['SUBSCRIBER', 'PUBLISHER', 'MODERATOR']) {
        const a = await post('/api/tokens', JSON.stringify({ session, role, data: 'secure_user_data' }));
        assert.equal(a.status, 200);
        assert.deepEqual(Object.keys(a.json).sort(), ['data', 'id', 'role', 'session', 'token']);
        assert.match(a.json.token, /^[a-z0-9]{16}$/);
        assert.equal(a.json.id, a.json.token);
        assert.equal(a.json.session, session);
        assert.equal(a.json.role, role);
        assert.equal(a.json.data, 'secure_user_data');
      }
      const noData = await post('/api/tokens', JSON.stringify({ session, role: 'PUBLISHER' }));
      assert.equal(noData.status, 200);
      assert.equal(noData.json.data, '');
      const longest = await post('/api/tokens', JSON.stringify({ session, role: 'PUBLISHER', data: 'x'.repeat(1000) }));
      assert.equal(longest.status, 200);
    });

    test('POST /api/tokens: unknown session, bad role, data over 1000 chars, not JSON → 400', async () => {
      const session = (await post('/api/sessions')).json.id;
      const cases: [string | undefined, RegExp][] = [
        [JSON.stringify({ session: `${session.slice(0, -16)}aaaaaaaaaaaaaaaa`, role: 'PUBLISHER' }), /is not a valid sessionId/],
        [JSON.stringify({ role: 'PUBLISHER' }), /"session"/],
        [JSON.stringify({ session, role: 'ADMIN' }), /Role "ADMIN" is not defined/],
        [JSON.stringify({ session }), /Role null is not defined/],
        [JSON.stringify({ session, role: 'PUBLISHER', data: 'x'.repeat(1001) }), /Max length allowed is 1000 chars/],
        [JSON.stringify({ session, role: 'PUBLISHER', data: 42 }), /"data" must be a string/],
        ['role=PUBLISHER', /JSON parse error/],
        [undefined, /Required request body is missing/],
        ['"just a string"', /JSON object/],
      ];
      for (const [body, message] of cases) assertErrorShape(await post('/api/tokens', body), 400, '/api/tokens', message);
    });

    test('the OpenAPI document describes the OpenVidu endpoints with their answers', async () => {
      const doc = (await call(`${api}/openapi.json`, 'GET', {})).json;
      assert.deepEqual(Object.keys(doc.paths['/api/sessions'].post.responses).sort(), ['200', '400', '401']);
      assert.deepEqual(Object.keys(doc.paths['/api/tokens'].post.responses).sort(), ['200', '400', '401']);
      assert.deepEqual(doc.paths['/api/tokens'].post.requestBody.content['application/json'].schema.properties.role.enum, ['SUBSCRIBER', 'PUBLISHER', 'MODERATOR']);
      assert.ok(doc.paths['/v1/vhosts'], 'the OME dialect is there too');
      assert.ok(doc.components.schemas.OpenViduError && doc.components.schemas.Stream);
    });

    test('missing or wrong credentials are 401 in the same shape; OPENVIDUAPP or a configured pair pass', async () => {
      const none = await call(`${api}/api/sessions`, 'POST', {});
      assertErrorShape(none, 401, '/api/sessions', /Full authentication is required/);
      assert.match(String(none.headers['www-authenticate']), /^Basic realm=/);
      assertErrorShape(await post('/api/sessions', undefined, { authorization: basic('OPENVIDUAPP', 'wrong') }), 401, '/api/sessions', /Bad credentials/);
      assertErrorShape(await post('/api/tokens', '{}', { authorization: basic('someone', kiln.password) }), 401, '/api/tokens', /Bad credentials/);
      assert.equal((await post('/api/sessions', undefined, { authorization: kiln.basic })).status, 200);
    });
  });
}

describe('the room WebSocket answers bad input with JSON-RPC errors and survives', () => {
  let kiln: KilnProcess;
  let rpc: RoomRpc;
  let session: string;
  const auth = () => basic('OPENVIDUAPP', kiln.password);
  const token = async (role: string) => {
    const res = await fetch(`${kiln.apiUrl}/api/tokens`, { method: 'POST', headers: { authorization: auth() }, body: JSON.stringify({ session, role, data: role.toLowerCase() }) });
    return ((await res.json()) as { token: string }).token;
  };

  before(async () => {
    const port = String(await freePort());
    kiln = await startKiln({ KILN_SIGNALING_PORT: port, KILN_PUBLIC_URL: `http://127.0.0.1:${port}` });
    const res = await fetch(`${kiln.apiUrl}/api/sessions`, { method: 'POST', headers: { authorization: auth() } });
    session = ((await res.json()) as { id: string }).id;
    rpc = await RoomRpc.connect(`${kiln.wsUrl}/room`);
  });
  after(async () => {
    rpc?.close();
    assert.equal(await kiln.stop(), 0);
  });

  const code = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (err) {
      if (err instanceof RpcCallError) return err.code;
      throw err;
    }
    assert.fail('the call succeeded');
  };

  test('non-JSON, non-objects, batches and wrong envelopes', async () => {
    const parse = await rpc.raw('this is not json');
    assert.equal(parse.id, null);
    assert.equal(parse.error.code, -32700);
    assert.equal((await rpc.raw('[1,2]')).error.code, -32600);
    assert.equal((await rpc.raw('42')).error.code, -32600);
    assert.equal((await rpc.raw('{"id":7,"method":"ping"}')).error.code, -32600, 'jsonrpc is missing');
    assert.equal((await rpc.raw('{"jsonrpc":"2.0","id":8,"method":12}')).error.code, -32600);
    assert.equal((await rpc.raw('{"jsonrpc":"2.0","id":{},"method":"ping"}')).error.code, -32600);
    assert.equal((await rpc.raw('{"jsonrpc":"2.0","id":9,"method":"joinRoom","params":[1]}')).error.code, -32602);
  });

  test('unknown methods, calls before joinRoom, missing params', async () => {
    assert.equal(await code(rpc.call('makeCoffee', {})), -32601);
    for (const method of ['publishVideo', 'receiveVideoFrom', 'onIceCandidate', 'unpublishVideo', 'unsubscribeFromVideo', 'sendMessage', 'leaveRoom', 'forceDisconnect']) {
      assert.equal(await code(rpc.call(method, { sdpOffer: 'v=0', sender: 'x_CAMERA', endpointName: 'x', candidate: 'c', sdpMid: '0', message: '{}', connectionId: 'x' })), 102, method);
    }
    const missing = await rpc.call('joinRoom', {}).catch((e) => e);
    assert.equal(missing.code, -32602);
    assert.match(missing.message, /'session' is missing in method 'joinRoom'/);
    assert.equal(await code(rpc.call('joinRoom', { session, token: 'nosuchtoken00000' })), 401);
    assert.equal(await code(rpc.call('joinRoom', { session: `${session}x`, token: await token('PUBLISHER') })), 401);
    assert.deepEqual((await rpc.call('ping', { interval: 3000 })).value, 'pong');
  });

  test('after joinRoom: a bad SDP offer, bad signals, unknown senders — the connection stays usable', async () => {
    const joined = await rpc.call('joinRoom', { session, token: await token('PUBLISHER'), metadata: 'm', secret: '', recorder: false, dataChannels: false });
    assert.match(joined.id, /^[a-z0-9]{16}$/);
    assert.equal(joined.metadata, 'm%/%publisher');
    assert.deepEqual(joined.value, []);
    assert.equal(await code(rpc.call('joinRoom', { session, token: await token('PUBLISHER') })), 104);
    assert.equal(await code(rpc.call('publishVideo', { sdpOffer: 'this is not SDP' })), 302);
    assert.equal(await code(rpc.call('publishVideo', { sdpOffer: 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n' })), 302);
    assert.equal(await code(rpc.call('publishVideo', { sdpOffer: 'v=0', audioActive: 'yes' })), -32602);
    assert.equal(await code(rpc.call('receiveVideoFrom', { sender: 'nobody_CAMERA', sdpOffer: 'v=0' })), 102);
    assert.equal(await code(rpc.call('receiveVideoFrom', { sender: `${joined.id}_CAMERA`, sdpOffer: 'v=0' })), 105, 'in the session, not publishing');
    const running = await (await fetch(`${kiln.apiUrl}/api/sessions`, { headers: { authorization: auth() } })).json();
    assert.deepEqual(running, [session]);
    assert.equal(await code(rpc.call('unpublishVideo', {})), 105);
    assert.equal(await code(rpc.call('sendMessage', { message: 'not json' })), 600);
    assert.equal(await code(rpc.call('sendMessage', { message: '{"to":["ghost"],"data":"x","type":"t"}' })), 601);
    assert.equal(await code(rpc.call('forceDisconnect', { connectionId: joined.id })), 401, 'a PUBLISHER is no moderator');
    assert.deepEqual(await rpc.call('sendMessage', { message: '{"to":[],"data":"hi","type":"chat"}' }), { sessionId: (await rpc.call('ping')).sessionId });
    assert.deepEqual((await rpc.notification('sendMessage')).params, { data: 'hi', from: joined.id, type: 'chat' });
    assert.equal((await rpc.call('ping')).value, 'pong');
    const health = await fetch(`${kiln.apiUrl}/healthz`);
    assert.equal(health.status, 200);
    await rpc.call('leaveRoom', {});
    assert.equal(await code(rpc.call('unpublishVideo', {})), 102, 'nothing after leaving');
  });

  test('a MODERATOR evicts and force-unpublishes; the others are told', async () => {
    const moderator = await RoomRpc.connect(`${kiln.wsUrl}/room`);
    const publisher = await RoomRpc.connect(`${kiln.wsUrl}/room`);
    const target = await RoomRpc.connect(`${kiln.wsUrl}/room`);
    try {
      const mod = await moderator.call('joinRoom', { session, token: await token('MODERATOR'), metadata: '' });
      const pub = await publisher.call('joinRoom', { session, token: await token('PUBLISHER'), metadata: '' });
      const tgt = await target.call('joinRoom', { session, token: await token('SUBSCRIBER'), metadata: '' });
      assert.equal(mod.value.length, 0);
      assert.deepEqual(tgt.value.map((p: { id: string }) => p.id).sort(), [mod.id, pub.id].sort());
      await moderator.notification('participantJoined', (p) => p.id === tgt.id && p.metadata === 'subscriber');

      // A werift peer publishes through the publisher's connection.
      const pc = loopbackPeer();
      pc.addTransceiver('video', { direction: 'sendonly' });
      prepareLocal(pc, false);
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      const published = await publisher.call('publishVideo', { sdpOffer: pc.localDescription!.sdp, audioActive: false, videoActive: true, typeOfVideo: 'CAMERA', doLoopback: false });
      assert.match(published.sdpAnswer, /^v=0/);
      const announced = await moderator.notification('participantPublished', (p) => p.id === pub.id);
      assert.deepEqual(announced.params.streams, [{ id: `${pub.id}_CAMERA`, audioActive: false, videoActive: true, typeOfVideo: 'CAMERA' }]);
      await publisher.notification('iceCandidate', (p) => p.endpointName === pub.id && typeof p.candidate === 'string');

      await moderator.call('forceUnpublish', { streamId: `${pub.id}_CAMERA` });
      await target.notification('participantUnpublished', (p) => p.name === pub.id);
      const own = await publisher.notification('participantUnpublished', (p) => p.name === pub.id);
      assert.equal(own.params.reason, 'forceUnpublishByUser', 'the owner drops its stream too');

      await moderator.call('forceDisconnect', { connectionId: tgt.id });
      await target.notification('participantEvicted');
      const left = await moderator.notification('participantLeft', (p) => p.name === tgt.id);
      assert.equal(left.params.reason, 'forceDisconnectByServer');
      await target.closed(); // the server closes an evicted participant's connection
      await pc.close();
      // kurento-jsonrpc closes without a status code (1005): a clean leave.
      publisher.ws.close();
      const gone = await moderator.notification('participantLeft', (p) => p.name === pub.id);
      assert.equal(gone.params.reason, 'disconnect');
    } finally {
      for (const c of [moderator, publisher, target]) c.close();
    }
  });
});
