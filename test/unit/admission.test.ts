import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AccessControl, requestedUrl, type AccessRequest } from '../../src/access/access-control.ts';
import { admissionBody, parseAdmissionAnswer } from '../../src/access/admission.ts';
import { signUrl } from '../../src/access/signed-policy.ts';
import type { AdmissionWebhooksConfig } from '../../src/config/config.ts';
import { isKilnError } from '../../src/core/errors.ts';

const SECRET = 'ome-is-the-best';

/** One call the receiver saw. */
interface Call {
  headers: IncomingMessage['headers'];
  body: string;
  json: Record<string, any>;
}

/** A real control server: it records each call and answers with `reply`. */
let server: Server;
let hookUrl: string;
const calls: Call[] = [];
let reply: (call: Call, res: ServerResponse) => void = (_c, res) => res.end('{"allowed": true}');
/** Responses held open by a receiver that never answers (ended at the end). */
const hanging: ServerResponse[] = [];

before(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const call = { headers: req.headers, body, json: JSON.parse(body) };
      calls.push(call);
      reply(call, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  hookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/admission`;
});
after(async () => {
  for (const res of hanging) res.destroy();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const hook = (over: Partial<AdmissionWebhooksConfig> = {}): AdmissionWebhooksConfig => ({
  controlServerUrl: hookUrl,
  secretKey: SECRET,
  timeoutMs: 1000,
  failOpen: false,
  enables: { publish: true, play: true },
  ...over,
});

const access = (rules: { admissionWebhooks?: AdmissionWebhooksConfig; signedPolicy?: { secretKey: string; policyQueryKeyName: string; signatureQueryKeyName: string; enables: { publish: boolean; play: boolean } } }) =>
  new AccessControl({ vhosts: [{ name: 'default', apps: [{ name: 'app', ...rules }, { name: 'open' }] }] });

const request = (over: Partial<AccessRequest> = {}): AccessRequest => ({
  direction: 'play',
  vhost: 'default',
  app: 'app',
  stream: 'cam',
  sessionId: 'viewer-1',
  client: { remoteAddress: '203.0.113.7', remotePort: 50123, userAgent: 'Chrome/140', url: 'http://media.example.com:3333/app/cam?direction=whep&token=abc' },
  ...over,
});

/** The KilnError `promise` rejects with. */
async function refusal(promise: Promise<unknown>): Promise<{ status: number; message: string }> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isKilnError(err), `a KilnError, not ${err}`);
    return { status: err.status, message: err.message };
  }
  assert.fail('the request was admitted');
}

/** Waits until the receiver has seen `n` calls. */
async function callsSeen(n: number): Promise<void> {
  const end = Date.now() + 2000;
  while (calls.length < n && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  assert.equal(calls.length, n);
}

test('the opening call has OME\'s body with the session id, signed with HMAC-SHA1 of the body', async () => {
  calls.length = 0;
  reply = (_c, res) => res.end('{"allowed": true}');
  const control = access({ admissionWebhooks: hook() });
  await control.admit(request());
  control.close();
  assert.equal(calls.length, 1);
  const [call] = calls;
  assert.equal(call.headers['content-type'], 'application/json');
  assert.equal(call.headers.accept, 'application/json');
  // OME's ov::Base64::Encode(…, true): + → -, / → _, the trailing = removed.
  const expected = createHmac('sha1', SECRET).update(call.body).digest('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  assert.equal(call.headers['x-ome-signature'], expected);
  assert.equal(expected.length, 27);
  const { time, ...rest } = call.json.request;
  assert.deepEqual(call.json.client, { address: '203.0.113.7', port: 50123, user_agent: 'Chrome/140' });
  assert.deepEqual(rest, { direction: 'outgoing', protocol: 'webrtc', status: 'opening', url: 'http://media.example.com:3333/app/cam?direction=whep&token=abc', session_id: 'viewer-1' });
  assert.equal(call.json.session_id, 'viewer-1');
  assert.match(time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.ok(Math.abs(Date.parse(time) - Date.now()) < 5000);
});

test('a publisher is "incoming"; a client without a user agent sends none', () => {
  const body = JSON.parse(admissionBody({ direction: 'incoming', status: 'opening', url: 'ws://h:3333/app/s?direction=send', sessionId: 'x', client: { address: '::1', port: 1 } }));
  assert.equal(body.request.direction, 'incoming');
  assert.deepEqual(body.client, { address: '::1', port: 1 });
  assert.equal(body.request.new_url, undefined);
});

test('allowed: the client goes where it asked, with no limit; the closing call follows once', async () => {
  calls.length = 0;
  reply = (call, res) => res.end(call.json.request.status === 'opening' ? '{"allowed": true, "reason": "authorized"}' : '{}');
  const control = access({ admissionWebhooks: hook() });
  const admission = await control.admit(request());
  assert.deepEqual({ app: admission.app, stream: admission.stream, expiresAt: admission.expiresAt }, { app: 'app', stream: 'cam', expiresAt: undefined });
  admission.end();
  admission.end();
  await control.settled();
  control.close();
  await callsSeen(2);
  assert.equal(calls[1].json.request.status, 'closing');
  assert.equal(calls[1].json.session_id, 'viewer-1');
  assert.equal(calls[1].json.request.new_url, undefined);
});

test('denied: FORBIDDEN with the control server\'s reason, or OME\'s text without one; no closing call', async () => {
  calls.length = 0;
  reply = (_c, res) => res.end('{"allowed": false, "reason": "no ticket for this match"}');
  const control = access({ admissionWebhooks: hook() });
  assert.deepEqual(await refusal(control.admit(request())), { status: 403, message: 'no ticket for this match' });
  reply = (_c, res) => res.end('{"allowed": false}');
  const denied = await refusal(control.admit(request()));
  assert.equal(denied.status, 403);
  assert.equal(denied.message, 'The control server denied admission to http://media.example.com:3333/app/cam?direction=whep&token=abc by 203.0.113.7:50123.');
  await control.settled();
  control.close();
  assert.equal(calls.length, 2, 'only the two openings');
});

test('new_url sends the client to another stream; the closing call names it', async () => {
  calls.length = 0;
  reply = (call, res) => res.end(call.json.request.status === 'opening' ? '{"allowed": true, "new_url": "ws://media.example.com:3333/other/sport-3"}' : '{}');
  const control = access({ admissionWebhooks: hook() });
  const admission = await control.admit(request());
  assert.deepEqual([admission.app, admission.stream], ['other', 'sport-3']);
  admission.end();
  await control.settled();
  control.close();
  assert.equal(calls[1].json.request.new_url, 'ws://media.example.com:3333/other/sport-3');
  assert.equal(calls[1].json.request.url, 'http://media.example.com:3333/app/cam?direction=whep&token=abc');
});

test('lifetime (ms) sets the expiry; 0 is no limit; the earlier of lifetime and stream_expire wins', async () => {
  reply = (_c, res) => res.end('{"allowed": true, "lifetime": 3000}');
  const control = access({ admissionWebhooks: hook() });
  const t0 = Date.now();
  const admission = await control.admit(request());
  assert.ok(admission.expiresAt! >= t0 + 3000 && admission.expiresAt! <= Date.now() + 3000, `expires at +${admission.expiresAt! - t0} ms`);
  reply = (_c, res) => res.end('{"allowed": true, "lifetime": 0}');
  assert.equal((await control.admit(request())).expiresAt, undefined);
  control.close();

  const policyKeys = { secretKey: 'p', policyQueryKeyName: 'policy', signatureQueryKeyName: 'signature', enables: { publish: true, play: true } };
  const both = access({ admissionWebhooks: hook(), signedPolicy: policyKeys });
  const url = signUrl('http://media.example.com:3333/app/cam?direction=whep', { url_expire: Date.now() + 60_000, stream_expire: Date.now() + 1000 }, { secretKey: 'p' });
  reply = (_c, res) => res.end('{"allowed": true, "lifetime": 60000}');
  const earlier = await both.admit(request({ client: { ...request().client, url } }));
  assert.ok(earlier.expiresAt! <= Date.now() + 1000, 'stream_expire is the earlier');
  both.close();
});

test('the answer is read as OME reads it', () => {
  assert.deepEqual(parseAdmissionAnswer('{"allowed": true}'), { kind: 'allowed', newUrl: undefined, lifetimeMs: 0, reason: undefined });
  assert.deepEqual(parseAdmissionAnswer('{"allowed": true, "lifetime": "soon"}'), { kind: 'allowed', newUrl: undefined, lifetimeMs: 0, reason: undefined });
  assert.deepEqual(parseAdmissionAnswer('{"allowed": false, "reason": 7}'), { kind: 'denied', reason: undefined });
  assert.equal(parseAdmissionAnswer('{"allowed": "yes"}').kind, 'failed');
  assert.equal(parseAdmissionAnswer('{}').kind, 'failed');
  assert.equal(parseAdmissionAnswer('[true]').kind, 'failed');
  assert.equal(parseAdmissionAnswer('{"allowed": true, "new_url": "ws://h:3333/only-an-app"}').kind, 'failed');
  assert.equal(parseAdmissionAnswer('{"allowed": true, "new_url": 42}').kind, 'failed');
});

test('a control server that never answers: refused after the time-out (fail closed), admitted (fail open)', async () => {
  reply = (_c, res) => hanging.push(res);
  const closed = access({ admissionWebhooks: hook({ timeoutMs: 300 }) });
  const t0 = Date.now();
  const refused = await refusal(closed.admit(request()));
  const waited = Date.now() - t0;
  assert.equal(refused.status, 403);
  assert.match(refused.message, /did not answer in time/);
  assert.ok(waited >= 280 && waited < 1500, `refused after ${waited} ms`);
  closed.close();
  const open = access({ admissionWebhooks: hook({ timeoutMs: 300, failOpen: true }) });
  const admission = await open.admit(request());
  assert.deepEqual([admission.app, admission.stream, admission.expiresAt], ['app', 'cam', undefined]);
  open.close();
});

test('a status other than 200, a body that is not JSON, no "allowed": refused unless failing open', async () => {
  const control = access({ admissionWebhooks: hook() });
  const open = access({ admissionWebhooks: hook({ failOpen: true }) });
  const answers: [string, (res: ServerResponse) => void, RegExp][] = [
    ['500', (res) => res.writeHead(500).end('{"allowed": true}'), /status 500/],
    ['302', (res) => res.writeHead(302, { location: 'http://example.com/' }).end(), /status 302/],
    ['HTML', (res) => res.end('<html>ok</html>'), /not JSON/],
    ['no allowed', (res) => res.end('{"new_url": "ws://h/app/s"}'), /"allowed" is required/],
  ];
  for (const [what, answer, reason] of answers) {
    reply = (_c, res) => answer(res);
    const refused = await refusal(control.admit(request()));
    assert.equal(refused.status, 403, what);
    assert.match(refused.message, reason, what);
    assert.equal((await open.admit(request())).stream, 'cam', `${what}, failing open`);
  }
  control.close();
  open.close();
});

test('an unreachable control server: refused at once, without its address in the reason', async () => {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  const control = access({ admissionWebhooks: hook({ controlServerUrl: `http://127.0.0.1:${port}/hook` }) });
  const t0 = Date.now();
  const refused = await refusal(control.admit(request()));
  assert.equal(refused.status, 403);
  assert.match(refused.message, /could not be reached \(ECONNREFUSED\)/);
  assert.doesNotMatch(refused.message, /127\.0\.0\.1/);
  assert.ok(Date.now() - t0 < 900);
  control.close();
});

test('the signed policy is checked first: a bad URL never reaches the control server', async () => {
  calls.length = 0;
  reply = (_c, res) => res.end('{"allowed": true}');
  const control = access({
    admissionWebhooks: hook(),
    signedPolicy: { secretKey: 'p', policyQueryKeyName: 'policy', signatureQueryKeyName: 'signature', enables: { publish: true, play: true } },
  });
  const refused = await refusal(control.admit(request()));
  assert.deepEqual(refused, { status: 403, message: 'Signed policy: There is no signature key (signature) in the URL' });
  assert.equal(calls.length, 0);
  control.close();
});

test('rules apply to their app and enabled directions only', async () => {
  calls.length = 0;
  reply = (_c, res) => res.end('{"allowed": false}');
  const control = access({ admissionWebhooks: hook({ enables: { publish: true, play: false } }) });
  assert.equal((await control.admit(request())).stream, 'cam', 'play is not hooked');
  assert.equal((await control.admit(request({ app: 'open', direction: 'publish' }))).stream, 'cam', 'the app has no rules');
  assert.equal((await refusal(control.admit(request({ direction: 'publish' })))).status, 403);
  assert.equal(calls.length, 1);
  assert.deepEqual(control.queryKeys('default', 'app', 'publish'), 'any');
  assert.deepEqual(control.queryKeys('default', 'app', 'play'), []);
  control.close();
  const signed = access({ signedPolicy: { secretKey: 'p', policyQueryKeyName: 'pol', signatureQueryKeyName: 'sig', enables: { publish: true, play: true } } });
  assert.deepEqual(signed.queryKeys('default', 'app', 'play'), ['pol', 'sig']);
  signed.close();
});

test('the requested URL is rebuilt as OME signs it: scheme of the listener, host with its port', () => {
  const socket = { localPort: 3333, localAddress: '10.0.0.1' };
  assert.equal(requestedUrl({ headers: { host: 'media.example.com:3333' }, url: '/app/s?direction=whip', socket }, 'http'), 'http://media.example.com:3333/app/s?direction=whip');
  assert.equal(requestedUrl({ headers: { host: 'media.example.com' }, url: '/app/s', socket }, 'ws'), 'ws://media.example.com:3333/app/s');
  assert.equal(requestedUrl({ headers: { host: '[::1]' }, url: '/app/s', socket: { ...socket, encrypted: true } }, 'ws'), 'wss://[::1]:3333/app/s');
  assert.equal(requestedUrl({ headers: {}, url: '/app/s', socket }, 'http'), 'http://10.0.0.1:3333/app/s');
});

test('a kept-alive connection the control server dropped is retried once on a fresh one', async () => {
  // A raw server answering the first request of each connection (keep-alive) and dropping the
  // connection at its second.
  const { createServer: createTcpServer } = await import('node:net');
  const sockets = new Set<import('node:net').Socket>();
  const raw = createTcpServer((socket) => {
    sockets.add(socket);
    let requests = 0;
    let buffered = '';
    socket.on('data', (d) => {
      buffered += d.toString();
      while (buffered.includes('\r\n\r\n')) {
        const head = buffered.slice(0, buffered.indexOf('\r\n\r\n'));
        const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        const end = buffered.indexOf('\r\n\r\n') + 4 + length;
        if (buffered.length < end) return;
        buffered = buffered.slice(end);
        if (++requests > 1) return void socket.destroy();
        const body = '{"allowed": true}';
        socket.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: keep-alive\r\n\r\n${body}`);
      }
    });
  });
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
  const control = access({ admissionWebhooks: hook({ controlServerUrl: `http://127.0.0.1:${(raw.address() as AddressInfo).port}/hook` }) });
  try {
    assert.equal((await control.admit(request())).stream, 'cam');
    assert.equal((await control.admit(request())).stream, 'cam', 'the second call, whose reused connection was dropped, is admitted');
    assert.equal(sockets.size, 2);
  } finally {
    control.close();
    for (const s of sockets) s.destroy();
    await new Promise((r) => raw.close(r));
  }
});
