/**
 * CORS on the control API listener, for the web console (served on the signaling port) calling
 * every dialect from the browser: preflights are answered without credentials, and every answer,
 * 401s and errors included, carries Access-Control-Allow-Origin for an allowed origin only.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startKilnInProcess, type InProcessKiln } from '../helpers/kiln-process.ts';

const CONSOLE = 'http://127.0.0.1:3333';
const admin = `Basic ${Buffer.from('admin:pw').toString('base64')}`;

/** A path of each dialect (and /metrics), with the method the console uses on it. */
const DIALECTS: [string, string, string][] = [
  ['OME', 'GET', '/v1/vhosts'],
  ['MaxScale', 'GET', '/v1/sessions'],
  ['OpenVidu', 'POST', '/api/sessions'],
  ['OpenVidu close', 'DELETE', `/api/sessions/${encodeURIComponent('ws://127.0.0.1:3333/nosuchsession0000')}`],
  ['SignalWire', 'GET', '/api/video/rooms'],
  ['metrics', 'GET', '/metrics'],
];

function preflight(api: string, path: string, method: string, origin: string): Promise<Response> {
  return fetch(`${api}${path}`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': 'authorization, content-type' },
  });
}

describe('control API CORS with the default origins (*)', () => {
  let node: InProcessKiln;
  let api: string;

  before(async () => {
    node = await startKilnInProcess((c) => {
      c.metricsRequireAuth = true;
    });
    api = `http://127.0.0.1:${node.kiln.api!.port}`;
  });
  after(() => node.stop());

  for (const [dialect, method, path] of DIALECTS) {
    test(`a preflight to ${dialect} (${method} ${path.split('%')[0]}) is 204 with the allowed methods and headers, without credentials`, async () => {
      const res = await preflight(api, path, method, CONSOLE);
      assert.equal(res.status, 204);
      assert.equal(res.headers.get('access-control-allow-origin'), '*');
      assert.equal(res.headers.get('access-control-allow-methods'), 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS');
      assert.equal(res.headers.get('access-control-allow-headers'), 'Authorization, Content-Type');
      assert.equal(res.headers.get('access-control-max-age'), '600');
      assert.equal(await res.text(), '');
    });

    test(`${dialect}: a 401 without credentials carries Access-Control-Allow-Origin and exposes WWW-Authenticate`, async () => {
      const res = await fetch(`${api}${path}`, { method, headers: { origin: CONSOLE } });
      assert.equal(res.status, 401);
      assert.equal(res.headers.get('access-control-allow-origin'), '*');
      assert.match(res.headers.get('access-control-expose-headers') ?? '', /WWW-Authenticate/);
      assert.ok(res.headers.get('www-authenticate'));
    });
  }

  test('answers with credentials carry it too: 200, 204, and 4xx from the dialects and the root', async () => {
    const call = (method: string, path: string, body?: string) =>
      fetch(`${api}${path}`, { method, headers: { origin: CONSOLE, authorization: admin, ...(body ? { 'content-type': 'application/json' } : {}) }, body });
    const cases: [string, string, number, string?][] = [
      ['GET', '/v1/vhosts', 200],
      ['GET', '/v1/sessions', 200],
      ['GET', '/api/sessions', 200],
      ['GET', '/api/video/rooms', 200],
      ['GET', '/metrics', 200],
      ['GET', '/healthz', 200],
      ['GET', '/v1/vhosts/nope', 404],
      ['GET', '/v1/sessions/nobody', 404],
      ['PATCH', '/v1/sessions/nobody', 405],
      ['POST', '/api/tokens', 400, '{"session":"nope","role":"PUBLISHER"}'],
      ['DELETE', '/api/sessions/nosuchsession0000', 404],
      ['GET', '/api/video/rooms/not-a-uuid', 404],
      ['POST', '/api/video/rooms', 422, '{"name":7}'],
      ['GET', '/no/such/route', 404],
    ];
    for (const [method, path, status, body] of cases) {
      const res = await call(method, path, body);
      assert.equal(res.status, status, `${method} ${path}: ${await res.clone().text()}`);
      assert.equal(res.headers.get('access-control-allow-origin'), '*', `${method} ${path}`);
      assert.match(res.headers.get('access-control-expose-headers') ?? '', /Location, Link/, `${method} ${path}`);
    }
    const created = await call('POST', '/api/video/rooms', JSON.stringify({ name: 'cors-room' }));
    assert.equal(created.status, 200);
    const room = await created.json();
    const deleted = await call('DELETE', `/api/video/rooms/${room.id}`);
    assert.equal(deleted.status, 204);
    assert.equal(deleted.headers.get('access-control-allow-origin'), '*');
  });

  test('a request without Origin gets no CORS headers; OPTIONS that is not a preflight is answered as before', async () => {
    const plain = await fetch(`${api}/v1/vhosts`, { headers: { authorization: admin } });
    assert.equal(plain.status, 200);
    assert.equal(plain.headers.get('access-control-allow-origin'), null);
    // No Access-Control-Request-Method: not a preflight, so it reaches the dialects (no OPTIONS route there).
    const options = await fetch(`${api}/v1/sessions/nobody`, { method: 'OPTIONS', headers: { origin: CONSOLE, authorization: admin } });
    assert.equal(options.status, 404);
    assert.equal(options.headers.get('access-control-allow-methods'), null);
    const noAuth = await fetch(`${api}/api/sessions`, { method: 'OPTIONS' });
    assert.equal(noAuth.status, 401, 'credentials are still asked of a bare OPTIONS');
  });
});

describe('control API CORS with a list of origins', () => {
  let node: InProcessKiln;
  let api: string;
  const ALLOWED = 'https://console.example.com';

  before(async () => {
    node = await startKilnInProcess((c) => {
      c.corsOrigins = [ALLOWED, CONSOLE];
    });
    api = `http://127.0.0.1:${node.kiln.api!.port}`;
  });
  after(() => node.stop());

  test('an allowed origin is reflected, with Vary: Origin, on preflights and answers', async () => {
    const pre = await preflight(api, '/v1/sessions', 'GET', ALLOWED);
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), ALLOWED);
    assert.match(pre.headers.get('vary') ?? '', /Origin/);
    assert.match(pre.headers.get('access-control-allow-methods') ?? '', /DELETE/);
    const denied = await fetch(`${api}/api/video/rooms`, { headers: { origin: CONSOLE } });
    assert.equal(denied.status, 401);
    assert.equal(denied.headers.get('access-control-allow-origin'), CONSOLE);
    assert.match(denied.headers.get('vary') ?? '', /Origin/);
    const ok = await fetch(`${api}/v1/vhosts`, { headers: { origin: ALLOWED, authorization: admin } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('access-control-allow-origin'), ALLOWED);
  });

  test('another origin gets no CORS header: its preflight is 204 without any, its answers too', async () => {
    const other = 'https://evil.example.com';
    const pre = await preflight(api, '/v1/sessions', 'GET', other);
    assert.equal(pre.status, 204);
    for (const h of ['access-control-allow-origin', 'access-control-allow-methods', 'access-control-allow-headers']) assert.equal(pre.headers.get(h), null, h);
    const res = await fetch(`${api}/v1/vhosts`, { headers: { origin: other, authorization: admin } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), null);
    assert.match(res.headers.get('vary') ?? '', /Origin/);
    const unauthorized = await fetch(`${api}/v1/vhosts`, { headers: { origin: other } });
    assert.equal(unauthorized.status, 401);
    assert.equal(unauthorized.headers.get('access-control-allow-origin'), null);
  });
});
