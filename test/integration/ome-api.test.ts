import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { startKiln, type KilnProcess } from '../helpers/kiln-process.ts';

let kiln: KilnProcess;
before(async () => {
  kiln = await startKiln();
});
after(async () => {
  assert.equal(await kiln.stop(), 0, 'Kiln exits 0 after SIGTERM');
});

const api = (path: string, init: RequestInit = {}) =>
  fetch(`${kiln.apiUrl}${path}`, { ...init, headers: { authorization: kiln.basic, ...(init.headers as Record<string, string>) } });

/** Sends a request with a raw, unnormalised path (fetch would resolve `..`). */
function rawGet(base: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path, headers }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('OME REST v1: authentication', () => {
  test('a request without credentials gets the seed 401 with the OvenMediaEngine realm', async () => {
    const res = await fetch(`${kiln.apiUrl}/v1/vhosts/default/apps/app/streams`);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), 'Basic realm="OvenMediaEngine"');
    assert.deepEqual(await res.json(), { message: '[HTTP] Authorization header is required to call API (401)', statusCode: 401 });
  });

  test('wrong credentials get 401 too', async () => {
    const wrong = `Basic ${Buffer.from('admin:nope').toString('base64')}`;
    const res = await fetch(`${kiln.apiUrl}/v1/vhosts`, { headers: { authorization: wrong } });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), 'Basic realm="OvenMediaEngine"');
    const body = await res.json();
    assert.equal(body.statusCode, 401);
    assert.match(body.message, /^\[HTTP\] .+ \(401\)$/);
  });

  test('/healthz needs no credentials and reveals nothing', async () => {
    const res = await fetch(`${kiln.apiUrl}/healthz`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok' });
  });
});

describe('OME REST v1: vhosts, apps, streams', () => {
  test('lists the configured vhost and app', async () => {
    assert.deepEqual(await (await api('/v1/vhosts')).json(), { statusCode: 200, message: 'OK', response: ['default'] });
    assert.deepEqual(await (await api('/v1/vhosts/default/apps')).json(), { statusCode: 200, message: 'OK', response: ['app'] });
    const vhost = await (await api('/v1/vhosts/default')).json();
    assert.equal(vhost.response.name, 'default');
    const app = await (await api('/v1/vhosts/default/apps/app')).json();
    assert.equal(app.response.name, 'app');
  });

  test('an app with no streams lists none', async () => {
    assert.deepEqual(await (await api('/v1/vhosts/default/apps/app/streams')).json(), { statusCode: 200, message: 'OK', response: [] });
  });

  test('an unknown app gets the seed 404 text', async () => {
    const res = await api('/v1/vhosts/default/apps/non-exists/streams');
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { statusCode: 404, message: 'Could not find the application: [default/non-exists] (404)' });
  });

  test('an unknown vhost is a 404 naming it', async () => {
    const res = await api('/v1/vhosts/nohost/apps');
    assert.equal(res.status, 404);
    const body = await res.json();
    assert.equal(body.statusCode, 404);
    assert.match(body.message, /nohost/);
  });

  test('an unknown stream gets the seed 404 text, for info and for sessions', async () => {
    for (const path of ['/v1/vhosts/default/apps/app/streams/nonexistent-stream', '/v1/vhosts/default/apps/app/streams/nonexistent-stream/sessions']) {
      const res = await api(path);
      assert.equal(res.status, 404);
      assert.deepEqual(await res.json(), {
        message: '[HTTP] Could not find the stream: [default/#default#app/nonexistent-stream] (404)',
        statusCode: 404,
      });
    }
    const del = await api('/v1/vhosts/default/apps/app/streams/nonexistent-stream', { method: 'DELETE' });
    assert.equal(del.status, 404);
  });

  test('path segments with .. or NUL are refused and the server keeps serving', async () => {
    const dots = await rawGet(kiln.apiUrl, '/v1/vhosts/default/apps/../../../etc/passwd', { authorization: kiln.basic });
    assert.ok(dots.status >= 400 && dots.status < 500, `status ${dots.status}`);
    const nul = await rawGet(kiln.apiUrl, '/v1/vhosts/default/apps/app%00/streams', { authorization: kiln.basic });
    assert.ok(nul.status >= 400 && nul.status < 500, `status ${nul.status}`);
    assert.equal((await api('/v1/vhosts')).status, 200);
  });
});

describe('WHIP/WHEP: bad input is a clear 4xx', () => {
  const sig = (path: string, init: RequestInit) => fetch(`${kiln.signalingUrl}${path}`, init);
  const whip = (body: string, headers: Record<string, string> = {}) =>
    sig('/app/bad?direction=whip', {
      method: 'POST',
      headers: { 'content-type': 'application/sdp', authorization: `Bearer ${kiln.password}`, ...headers },
      body,
    });

  test('WHIP without a Bearer token is 401', async () => {
    const res = await whip('v=0\r\n', { authorization: '' });
    assert.equal(res.status, 401);
  });

  test('malformed SDP is 400 with the reason', async () => {
    const res = await whip('this is not sdp');
    assert.equal(res.status, 400);
    assert.match(await res.text(), /v=0/);
  });

  test('an SDP with no codec Kiln can forward is refused', async () => {
    const sdp = [
      'v=0', 'o=- 1 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0',
      'm=audio 9 UDP/TLS/RTP/SAVPF 9', 'c=IN IP4 0.0.0.0', 'a=mid:0', 'a=sendonly', 'a=rtcp-mux',
      'a=ice-ufrag:abcd', 'a=ice-pwd:abcdefghijklmnopqrstuvwx',
      'a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF',
      'a=setup:actpass', 'a=rtpmap:9 G722/8000', '',
    ].join('\r\n');
    const res = await whip(sdp);
    assert.ok(res.status === 406 || res.status === 400, `status ${res.status}`);
    assert.match(await res.text(), /codec/i);
    const list = await (await api('/v1/vhosts/default/apps/app/streams')).json();
    assert.deepEqual(list.response, [], 'no stream is left behind');
  });

  test('a body that is not SDP is 415', async () => {
    const res = await whip('{"sdp": "v=0"}', { 'content-type': 'application/json' });
    assert.equal(res.status, 415);
  });

  test('a huge body is 413', async () => {
    const res = await whip('v=0\r\n' + 'a=x\r\n'.repeat(200_000));
    assert.equal(res.status, 413);
  });

  test('unknown query values are 400', async () => {
    const res = await sig('/app/s?direction=sideways', { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: 'v=0\r\n' });
    assert.equal(res.status, 400);
    const res2 = await sig('/app/s?color=blue', { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: 'v=0\r\n' });
    assert.equal(res2.status, 400);
  });

  test('WHEP for a stream that does not exist is 404', async () => {
    const res = await sig('/app/nothing-here?direction=whep', { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: 'v=0\r\n' });
    assert.equal(res.status, 404);
  });

  test('names with .. or NUL are 400', async () => {
    const nul = await sig('/app/a%00b?direction=whep', { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: 'v=0\r\n' });
    assert.equal(nul.status, 400);
    const dots = await rawGet(kiln.signalingUrl, '/app/..');
    assert.ok(dots.status >= 400 && dots.status < 500);
  });

  test('CORS preflight is answered for any origin by default', async () => {
    const res = await sig('/app/s?direction=whip', {
      method: 'OPTIONS',
      headers: { origin: 'https://elsewhere.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, authorization' },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    assert.match(res.headers.get('access-control-allow-methods') ?? '', /POST/);
    assert.match(res.headers.get('access-control-allow-headers') ?? '', /Authorization/i);
    assert.match(res.headers.get('access-control-expose-headers') ?? '', /Location/);
  });

  test('after all that, the server still serves', async () => {
    assert.equal((await fetch(`${kiln.apiUrl}/healthz`)).status, 200);
    assert.equal((await sig('/', { method: 'GET' })).status, 200);
  });
});

describe('metrics', () => {
  test('/metrics is Prometheus text with streams and sessions by kind', async () => {
    const res = await fetch(`${kiln.apiUrl}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    const text = await res.text();
    assert.match(text, /^kiln_streams \d+$/m);
    assert.match(text, /^kiln_sessions\{kind="player"\} \d+$/m);
    assert.match(text, /^kiln_media_bytes_total\{direction="out"\} \d+$/m);
    assert.match(text, /^kiln_forwarding_errors_total \d+$/m);
  });
});

describe('OpenAPI', () => {
  test('the OpenAPI document describes every endpoint of the OME dialect', async () => {
    const res = await fetch(`${kiln.apiUrl}/openapi.json`);
    assert.equal(res.status, 200);
    const doc = await res.json();
    assert.match(doc.openapi, /^3\./);
    for (const path of ['/v1/vhosts', '/v1/vhosts/{vhost}', '/v1/vhosts/{vhost}/apps', '/v1/vhosts/{vhost}/apps/{app}',
      '/v1/vhosts/{vhost}/apps/{app}/streams', '/v1/vhosts/{vhost}/apps/{app}/streams/{stream}',
      '/v1/vhosts/{vhost}/apps/{app}/streams/{stream}/sessions', '/v1/vhosts/{vhost}/apps/{app}/streams/{stream}/sessions/{session}']) {
      assert.ok(doc.paths[path], `${path} is documented`);
    }
    assert.ok(doc.paths['/v1/vhosts/{vhost}/apps/{app}/streams/{stream}'].delete);
    assert.ok(doc.paths['/v1/vhosts/{vhost}/apps/{app}/streams/{stream}/sessions/{session}'].delete);
    const pull = doc.paths['/v1/vhosts/{vhost}/apps/{app}/streams'].post;
    assert.deepEqual(Object.keys(pull.responses).sort(), ['201', '400', '401', '404', '409', '502']);
    assert.deepEqual(pull.requestBody.content['application/json'].schema.required, ['name', 'urls']);
  });
});
