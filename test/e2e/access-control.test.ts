/**
 * OvenMediaEngine-style access control over real clients: a Kiln process whose app `hooked` asks a
 * control server (a node:http receiver in this process) and whose app `signed` wants signed URLs;
 * Chromium publishes with WHIP and plays with WHEP, a `ws` client speaks OME signaling.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { WebSocket } from 'ws';
import { startKiln, type KilnProcess } from '../helpers/kiln-process.ts';
import { inboundStats, launchChromium, waitFor, type LaunchedBrowser } from '../helpers/browser.ts';
import { signUrl } from '../../src/access/signed-policy.ts';

const HOOK_SECRET = 'ome-is-the-best';
const POLICY_SECRET = 'aKq#1kj';

/** What the control server received: each body, with whether its signature held. */
interface HookCall {
  at: number;
  signed: boolean;
  body: {
    session_id: string;
    client: { address: string; port: number; user_agent?: string };
    request: { direction: string; protocol: string; status: string; url: string; new_url?: string; time: string; session_id: string };
  };
}

let kiln: KilnProcess;
let chromium: LaunchedBrowser;
let control: Server;
let configDir: string;
const hookCalls: HookCall[] = [];

before(async () => {
  // The control server: denies `deny-me` and `ws-denied`, gives `short-lived` 3 s, sends stream `a` to `cam`.
  control = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (text += d));
    req.on('end', () => {
      const expected = createHmac('sha1', HOOK_SECRET).update(text).digest('base64url');
      const call: HookCall = { at: Date.now(), signed: req.headers['x-ome-signature'] === expected, body: JSON.parse(text) };
      hookCalls.push(call);
      const { request } = call.body;
      const path = new URL(request.url).pathname;
      let answer: object = { allowed: true };
      if (request.status === 'closing') answer = {};
      else if (path === '/hooked/deny-me') answer = { allowed: false, reason: 'No ticket for deny-me' };
      else if (path === '/hooked/ws-denied') answer = { allowed: false, reason: 'This match is sold out' };
      else if (call.body.session_id === 'short-lived') answer = { allowed: true, lifetime: 3000 };
      else if (path === '/hooked/a') answer = { allowed: true, new_url: request.url.replace('/hooked/a', '/hooked/cam') };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    });
  });
  await new Promise<void>((r) => control.listen(0, '127.0.0.1', r));
  configDir = mkdtempSync(join(tmpdir(), 'kiln-access-'));
  const config = join(configDir, 'kiln.jsonc');
  writeFileSync(config, JSON.stringify({
    vhosts: [{ name: 'default', apps: [
      { name: 'app' },
      { name: 'hooked', admissionWebhooks: { controlServerUrl: `http://127.0.0.1:${(control.address() as AddressInfo).port}/v1/admission`, secretKey: HOOK_SECRET, timeoutMs: 2000 } },
      { name: 'signed', signedPolicy: { secretKey: POLICY_SECRET, enables: { publish: false, play: true } } },
    ] }],
  }));
  [kiln, chromium] = await Promise.all([startKiln({ KILN_CONFIG: config }), launchChromium()]);
});
after(async () => {
  await chromium?.close();
  const code = await kiln?.stop();
  control?.closeAllConnections();
  await new Promise((r) => control?.close(r));
  rmSync(configDir, { recursive: true, force: true });
  assert.equal(code, 0);
  assert.doesNotMatch(kiln.output(), /uncaught exception|unhandled rejection/);
});

const api = async (path: string) => (await fetch(`${kiln.apiUrl}${path}`, { headers: { authorization: kiln.basic } })).json();
const players = async (app: string, stream: string): Promise<string[]> => (await api(`/v1/vhosts/default/apps/${app}/streams/${stream}/sessions`)).response ?? [];
const calls = (sessionId: string, status: string) => hookCalls.filter((c) => c.body.session_id === sessionId && c.body.request.status === status);

/** A Chromium WHIP publisher of `app/stream` (the publish page); resolves with the page and its status line. */
async function publish(app: string, stream: string): Promise<{ page: Page; status: string }> {
  const page = await chromium.browser.newPage();
  await page.goto(`${kiln.signalingUrl}/publish.html?autostart=1&app=${app}&stream=${stream}&token=${kiln.password}`);
  const status = await waitFor(() => page.textContent('#status'), (s) => s === 'connection: connected' || /WHIP|Error/.test(s ?? ''), 15_000);
  return { page, status: status ?? '' };
}

/** An empty page of the signaling origin, for WHEP players made by `whep`. */
async function blankPage(): Promise<Page> {
  const page = await chromium.browser.newPage();
  await page.goto(`${kiln.signalingUrl}/play.html`);
  return page;
}

/**
 * A WHEP player in `page` posting its offer to `url` (absolute, as given: signed URLs must reach
 * Kiln unchanged), kept at `window[name]`. Resolves with the answer's status and text and, on 201,
 * the time of the answer (epoch ms).
 */
function whep(page: Page, url: string, name = 'player'): Promise<{ status: number; text: string; answeredAt: number }> {
  return page.evaluate(async ({ url, name }) => {
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise<void>((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      const t = setTimeout(resolve, 2000);
      pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); } });
    });
    const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription!.sdp });
    const text = await res.text();
    const answeredAt = Date.now();
    if (res.status === 201) {
      await pc.setRemoteDescription({ type: 'answer', sdp: text });
      (window as unknown as Record<string, unknown>)[name] = pc;
      (window as unknown as Record<string, unknown>)[`${name}Resource`] = new URL(res.headers.get('Location')!, location.href).href;
    } else {
      pc.close();
    }
    return { status: res.status, text, answeredAt };
  }, { url, name });
}

const decoded = (page: Page, name = 'player') => inboundStats(page, name);

/** The cut player decodes no new frame (from 0.5 s after the cut, over 1.5 s). */
async function assertNoMoreFrames(page: Page, name = 'player'): Promise<void> {
  await new Promise((r) => setTimeout(r, 500));
  const frozen = (await decoded(page, name)).framesDecoded;
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal((await decoded(page, name)).framesDecoded, frozen, 'no frame after the cut');
}

describe('admission webhooks', () => {
  let publisher: Page;
  let publisherId: string;

  test('allowed: a WHIP publish proceeds; the control server saw its opening with the session id the APIs list', async () => {
    const published = await publish('hooked', 'cam');
    publisher = published.page;
    assert.equal(published.status, 'connection: connected');
    const openings = hookCalls.filter((c) => c.body.request.status === 'opening' && c.body.request.direction === 'incoming' && c.body.request.url.includes('/hooked/cam'));
    assert.equal(openings.length, 1);
    const [opening] = openings;
    assert.ok(opening.signed, 'X-OME-Signature is HMAC-SHA1 of the body with the secret');
    assert.equal(opening.body.request.protocol, 'webrtc');
    assert.equal(opening.body.request.url, `${kiln.signalingUrl}/hooked/cam?direction=whip`);
    assert.equal(opening.body.client.address, '127.0.0.1');
    assert.match(opening.body.client.user_agent ?? '', /Chrome/);
    publisherId = opening.body.session_id;
    assert.equal(opening.body.request.session_id, publisherId);
    const maxscale = (await api('/v1/sessions')).data as { id: string; attributes: { kind?: string } }[];
    assert.ok(maxscale.some((s) => s.id === publisherId), `MaxScale lists ${publisherId}: ${maxscale.map((s) => s.id).join(', ')}`);
  });

  test('allowed: a WHEP player plays; opening and closing carry the id the OME players list shows', async () => {
    const page = await blankPage();
    const answer = await whep(page, `${kiln.signalingUrl}/hooked/cam?direction=whep&session=viewer-1&ticket=abc`);
    assert.equal(answer.status, 201, answer.text);
    await waitFor(() => decoded(page), (s) => s.framesDecoded > 5);
    assert.deepEqual(await players('hooked', 'cam'), ['viewer-1']);
    const [opening] = calls('viewer-1', 'opening');
    assert.equal(opening.body.request.direction, 'outgoing');
    assert.equal(opening.body.request.url, `${kiln.signalingUrl}/hooked/cam?direction=whep&session=viewer-1&ticket=abc`, 'any query reaches the control server');
    assert.equal(calls('viewer-1', 'closing').length, 0);
    await page.evaluate(async () => fetch((window as unknown as { playerResource: string }).playerResource, { method: 'DELETE' }));
    const closings = await waitFor(async () => calls('viewer-1', 'closing'), (c) => c.length > 0, 5000);
    assert.equal(closings.length, 1);
    assert.ok(closings[0].signed);
    assert.equal(closings[0].body.request.url, opening.body.request.url);
    await page.close();
  });

  test('denied: the Chromium WHIP publisher gets 403 with the control server\'s reason', async () => {
    const denied = await publish('hooked', 'deny-me');
    assert.equal(denied.status, 'WHIP 403: No ticket for deny-me\n');
    assert.deepEqual((await api('/v1/vhosts/default/apps/hooked/streams')).response, ['cam']);
    await denied.page.close();
  });

  test('lifetime 3000: the WHEP player is cut 3 s ± 1 after its answer; the closing call follows', async () => {
    const page = await blankPage();
    const answer = await whep(page, `${kiln.signalingUrl}/hooked/cam?direction=whep&session=short-lived`);
    assert.equal(answer.status, 201, answer.text);
    await waitFor(() => decoded(page), (s) => s.framesDecoded > 0);
    const gone = await waitFor(() => players('hooked', 'cam'), (p) => !p.includes('short-lived'), 6000, 50);
    const cutAfter = Date.now() - answer.answeredAt;
    assert.ok(!gone.includes('short-lived'));
    assert.ok(cutAfter >= 2000 && cutAfter <= 4000, `cut ${cutAfter} ms after the answer`);
    await assertNoMoreFrames(page);
    const closing = await waitFor(async () => calls('short-lived', 'closing'), (c) => c.length > 0, 3000);
    assert.equal(closing.length, 1);
    await page.close();
  });

  test('new_url: a WHEP play of hooked/a plays stream cam, listed under cam', async () => {
    const page = await blankPage();
    const answer = await whep(page, `${kiln.signalingUrl}/hooked/a?direction=whep&session=redirected`);
    assert.equal(answer.status, 201, answer.text);
    const stats = await waitFor(() => decoded(page), (s) => s.framesDecoded > 10);
    assert.ok(stats.framesDecoded > 10, `frames decoded: ${stats.framesDecoded}`);
    assert.ok((await players('hooked', 'cam')).includes('redirected'));
    const maxscale = (await api('/v1/sessions')).data as { id: string; attributes: { stream?: string } }[];
    assert.ok(maxscale.some((s) => s.id === 'redirected'));
    await page.evaluate(async () => fetch((window as unknown as { playerResource: string }).playerResource, { method: 'DELETE' }));
    const closing = await waitFor(async () => calls('redirected', 'closing'), (c) => c.length > 0, 5000);
    assert.equal(closing[0].body.request.new_url, `${kiln.signalingUrl}/hooked/cam?direction=whep&session=redirected`);
    await page.close();
  });

  test('OME WebSocket denied: the error message, then the socket closes with 4403 and the reason', async () => {
    const ws = new WebSocket(`${kiln.wsUrl}/hooked/ws-denied`);
    const messages: { code?: number; error?: string }[] = [];
    ws.on('message', (data) => messages.push(JSON.parse(data.toString())));
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ command: 'request_offer' }));
    const [code, reason] = await new Promise<[number, string]>((r) => ws.once('close', (c, why) => r([c, why.toString()])));
    assert.equal(code, 4403);
    assert.equal(reason, 'Cannot create offer: This match is sold out');
    assert.deepEqual(messages, [{ code: 403, error: 'Cannot create offer: This match is sold out' }]);
    const [opening] = hookCalls.filter((c) => c.body.request.url === `${kiln.wsUrl}/hooked/ws-denied`);
    assert.equal(opening.body.request.direction, 'outgoing');
  });

  test('the publisher\'s closing call carries its session id', async () => {
    await publisher.click('#stop');
    const closing = await waitFor(async () => calls(publisherId, 'closing'), (c) => c.length > 0, 5000);
    assert.equal(closing.length, 1);
    assert.equal(closing[0].body.request.direction, 'incoming');
    await publisher.close();
  });
});

describe('signed URLs', () => {
  let publisher: Page;
  const keys = { secretKey: POLICY_SECRET };
  const base = () => `${kiln.signalingUrl}/signed/cam?direction=whep`;

  /** A WHEP POST from this process (a real offer from Chromium). */
  const post = async (url: string) => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: offer });
    return { status: res.status, text: await res.text() };
  };
  let offer: string;

  before(async () => {
    const published = await publish('signed', 'cam');
    publisher = published.page;
    assert.equal(published.status, 'connection: connected', 'publishing is not under the policy (enables.publish false)');
    offer = await publisher.evaluate(async () => {
      const pc = new RTCPeerConnection();
      pc.addTransceiver('video', { direction: 'recvonly' });
      const o = await pc.createOffer();
      pc.close();
      return o.sdp!;
    });
  });
  after(async () => publisher?.close());

  test('a valid signed URL plays', async () => {
    const page = await blankPage();
    const answer = await whep(page, signUrl(base(), { url_expire: Date.now() + 60_000 }, keys));
    assert.equal(answer.status, 201, answer.text);
    const stats = await waitFor(() => decoded(page), (s) => s.framesDecoded > 5);
    assert.ok(stats.framesDecoded > 5);
    await page.evaluate(async () => fetch((window as unknown as { playerResource: string }).playerResource, { method: 'DELETE' }));
    await page.close();
  });

  test('an expired URL, an address outside allow_ip, a forged signature, no signature: 403 with the reason', async () => {
    const expired = await post(signUrl(base(), { url_expire: Date.now() - 1000 }, keys));
    assert.equal(expired.status, 403);
    assert.match(expired.text, /^Signed policy: The URL has expired/);
    const elsewhere = await post(signUrl(base(), { url_expire: Date.now() + 60_000, allow_ip: '10.1.2.0/24' }, keys));
    assert.equal(elsewhere.status, 403);
    assert.match(elsewhere.text, /127\.0\.0\.1 is not allowed \(allow_ip 10\.1\.2\.0\/24\)/);
    const forged = await post(signUrl(base(), { url_expire: Date.now() + 60_000 }, { secretKey: 'guessed' }));
    assert.equal(forged.status, 403);
    assert.match(forged.text, /The signature is invalid/);
    const bare = await post(base());
    assert.equal(bare.status, 403);
    assert.match(bare.text, /no signature key \(signature\)/);
    const valid = signUrl(base(), { url_expire: Date.now() + 60_000 }, keys);
    const unknownKey = await post(`${valid}&extra=1`);
    assert.equal(unknownKey.status, 400, 'without a hook, other query keys are still refused');
    assert.deepEqual(await players('signed', 'cam'), []);
  });

  test('stream_expire 2 s from now cuts a running player at about that time', async () => {
    const page = await blankPage();
    const streamExpire = Date.now() + 2000;
    const answer = await whep(page, signUrl(`${base()}&session=until-2s`, { url_expire: Date.now() + 60_000, stream_expire: streamExpire }, keys));
    assert.equal(answer.status, 201, answer.text);
    await waitFor(() => decoded(page), (s) => s.framesDecoded > 0);
    assert.ok((await players('signed', 'cam')).includes('until-2s'));
    await waitFor(() => players('signed', 'cam'), (p) => !p.includes('until-2s'), 5000, 50);
    const off = Date.now() - streamExpire;
    assert.ok(off >= 0 && off <= 1000, `cut ${off} ms after stream_expire`);
    await assertNoMoreFrames(page);
    await page.close();
  });
});
