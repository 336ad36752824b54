/**
 * RTSP pull end to end: a real RTSP camera (GStreamer's gst-rtsp-server), a real Kiln process, and
 * Chromium playing the pulled stream over WHEP. Covers creation through the OME API, the errors
 * it answers, audio transcoding, authentication, a camera that restarts, failover, removal of
 * unused streams and persistent streams across a restart of Kiln.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:net';
import type { Page } from 'playwright-core';
import { freePort, startKiln, type KilnProcess } from '../helpers/kiln-process.ts';
import { inboundStats, launchChromium, waitFor, type LaunchedBrowser } from '../helpers/browser.ts';
import { startRtspServer, type RtspServer } from '../helpers/rtsp-server.ts';

let kiln: KilnProcess;
let chromium: LaunchedBrowser;
let camera: RtspServer;
const CAMERA_AUTH = { user: 'kiln', password: 'camera-secret' };

before(async () => {
  [kiln, chromium, camera] = await Promise.all([startKiln(), launchChromium(), startRtspServer()]);
});
after(async () => {
  await chromium?.close();
  await camera?.stop();
  assert.equal(await kiln.stop(), 0);
});

const STREAMS = '/v1/vhosts/default/apps/app/streams';

async function api(path: string, method = 'GET', body?: unknown, raw?: string) {
  const headers: Record<string, string> = { authorization: kiln.basic };
  if (body !== undefined || raw !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${kiln.apiUrl}${path}`, { method, headers, body: raw ?? (body === undefined ? undefined : JSON.stringify(body)) });
  return { status: res.status, body: await res.json() };
}

const createPull = (name: string, urls: string[], properties?: Record<string, unknown>) =>
  api(STREAMS, 'POST', { name, urls, ...(properties ? { properties } : {}) });

async function play(stream: string): Promise<Page> {
  const page = await chromium.browser.newPage();
  await page.goto(`${kiln.signalingUrl}/play.html?autostart=1&stream=${stream}`);
  return page;
}
const decoded = (page: Page) => inboundStats(page, 'kilnPlayer');
const connectionState = (page: Page) =>
  page.evaluate(() => (window as unknown as { kilnPlayer?: RTCPeerConnection }).kilnPlayer?.connectionState ?? 'none');

describe('RTSP pull through the OME API', () => {
  let viewer: Page;

  test('POST creates the stream once its tracks are known, and answers 201 with its info', async () => {
    const res = await createPull('cam1', [camera.url('/h264-opus')]);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.statusCode, 201);
    assert.equal(res.body.message, 'Created');
    const info = res.body.response;
    assert.equal(info.name, 'cam1');
    assert.equal(info.input.sourceType, 'RtspPull');
    assert.equal(info.input.sourceUrl, camera.url('/h264-opus'));
    const [video, audio] = info.input.tracks;
    assert.equal(video.video.codec, 'H264');
    assert.equal(video.video.width, 640);
    assert.equal(video.video.height, 360);
    assert.equal(audio.audio.codec, 'OPUS');
    assert.equal(audio.audio.samplerate, 48000);
    const list = await api(STREAMS);
    assert.ok(list.body.response.includes('cam1'));
  });

  test('Chromium plays the camera over WHEP: frames decoded at the source size, audio received', async () => {
    viewer = await play('cam1');
    const stats = await waitFor(() => decoded(viewer), (s) => s.framesDecoded > 30 && s.audioPacketsReceived > 20, 20_000);
    assert.ok(stats.framesDecoded > 30, `frames decoded: ${stats.framesDecoded}`);
    assert.equal(stats.frameWidth, 640);
    assert.equal(stats.frameHeight, 360);
    assert.ok(stats.audioPacketsReceived > 20, `audio packets: ${stats.audioPacketsReceived}`);
    // The track figures follow the media.
    const info = await waitFor(() => api(`${STREAMS}/cam1`), (r) => r.body.response.input.tracks[0].video.framerate > 0, 5000);
    assert.ok(info.body.response.input.tracks[0].video.framerate > 10);
    assert.ok(info.body.response.input.tracks[0].video.bitrate > 0);
  });

  test('the camera restarts: the same player decodes new frames without reconnecting', async () => {
    const before = await decoded(viewer);
    const port = camera.port;
    await camera.stop();
    await new Promise((r) => setTimeout(r, 1500));
    const stalled = await decoded(viewer);
    assert.ok(stalled.framesDecoded - before.framesDecoded < 60, 'frames kept coming while the camera was down');
    // The stream stays listed while Kiln retries.
    assert.equal((await api(`${STREAMS}/cam1`)).status, 200);
    camera = await startRtspServer({ port });
    const resumed = await waitFor(() => decoded(viewer), (s) => s.framesDecoded > stalled.framesDecoded + 30, 20_000);
    assert.ok(resumed.framesDecoded > stalled.framesDecoded + 30, `frames before ${stalled.framesDecoded}, after ${resumed.framesDecoded}`);
    assert.equal(resumed.frameWidth, 640);
    assert.equal(await connectionState(viewer), 'connected');
    const sessions = await api(`${STREAMS}/cam1/sessions`);
    assert.equal(sessions.body.response.length, 1, 'the player is still the one session');
  });

  test('AAC from the camera is transcoded to Opus: the player receives audio', async () => {
    const res = await createPull('cam-aac', [camera.url('/h264-aac')]);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const input = res.body.response.input.tracks[1].audio;
    const output = res.body.response.outputs[0].tracks[1].audio;
    assert.equal(input.codec, 'AAC');
    assert.equal(output.codec, 'OPUS');
    assert.equal(output.bypass, false);
    const page = await play('cam-aac');
    const stats = await waitFor(() => decoded(page), (s) => s.framesDecoded > 10 && s.audioPacketsReceived > 25, 20_000);
    assert.ok(stats.audioPacketsReceived > 25, `audio packets: ${stats.audioPacketsReceived}`);
    assert.ok(stats.framesDecoded > 10);
    await page.close();
  });

  test('G.711 (PCMU) from the camera is transcoded to Opus', async () => {
    const res = await createPull('cam-pcmu', [camera.url('/h264-pcmu')], { rtspTransport: 'udp' });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.response.input.tracks[1].audio.codec, 'PCMU');
    const page = await play('cam-pcmu');
    const stats = await waitFor(() => decoded(page), (s) => s.framesDecoded > 10 && s.audioPacketsReceived > 25, 20_000);
    assert.ok(stats.audioPacketsReceived > 25, `audio packets: ${stats.audioPacketsReceived}`);
    await page.close();
  });

  test('Digest and Basic credentials in the URL are answered; the password is masked in the info', async () => {
    for (const [name, path] of [['cam-digest', '/digest/h264-opus'], ['cam-basic', '/basic/h264-opus']]) {
      const res = await createPull(name, [camera.url(path, CAMERA_AUTH)]);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const url = res.body.response.input.sourceUrl as string;
      assert.ok(!url.includes(CAMERA_AUTH.password), url);
      assert.ok(url.startsWith('rtsp://kiln:'), url);
      const info = await api(`${STREAMS}/${name}`);
      assert.ok(!JSON.stringify(info.body).includes(CAMERA_AUTH.password));
    }
    const page = await play('cam-digest');
    const stats = await waitFor(() => decoded(page), (s) => s.framesDecoded > 10, 20_000);
    assert.ok(stats.framesDecoded > 10);
    await page.close();
  });

  test('502 names the cause: closed port, wrong path, wrong or missing credentials, unsupported scheme', async () => {
    const closed = await freePort();
    const cases: [string, RegExp][] = [
      [`rtsp://127.0.0.1:${closed}/cam`, /connection refused/],
      [camera.url('/no-such-path'), /404/],
      [camera.url('/digest/h264-opus', { user: 'kiln', password: 'wrong' }), /401.*wrong credentials/],
      [camera.url('/digest/h264-opus'), /401.*needs credentials/],
      ['http://127.0.0.1/cam', /unsupported URL scheme "http"/],
    ];
    for (const [url, cause] of cases) {
      const res = await createPull('failing', [url]);
      assert.equal(res.status, 502, `${url}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.statusCode, 502);
      assert.match(res.body.message, /^\[HTTP\] Could not pull the stream : /);
      assert.match(res.body.message, cause);
      assert.ok(!res.body.message.includes('wrong@'), 'the password is masked');
    }
    assert.equal((await api(`${STREAMS}/failing`)).status, 404, 'a failed pull leaves no stream');
  });

  test('502 when the camera accepts the connection but never answers', async () => {
    const silent: Server = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as { port: number }).port;
    const started = Date.now();
    const res = await createPull('silent', [`rtsp://127.0.0.1:${port}/cam`]);
    silent.close();
    assert.equal(res.status, 502);
    assert.match(res.body.message, /no answer to OPTIONS within \d+ ms/);
    assert.ok(Date.now() - started < 15_000);
  });

  test('409 for a taken name, 404 for an unknown vhost or app, 400 for bad bodies', async () => {
    const taken = await createPull('cam1', [camera.url('/h264')]);
    assert.equal(taken.status, 409);
    assert.equal(taken.body.statusCode, 409);
    const noVhost = await api('/v1/vhosts/nope/apps/app/streams', 'POST', { name: 'x', urls: [camera.url('/h264')] });
    assert.deepEqual(noVhost, { status: 404, body: { statusCode: 404, message: 'Could not find the virtual host: [nope] (404)' } });
    const noApp = await api('/v1/vhosts/default/apps/nope/streams', 'POST', { name: 'x', urls: [camera.url('/h264')] });
    assert.deepEqual(noApp, { status: 404, body: { statusCode: 404, message: 'Could not find the application: [default/nope] (404)' } });
    const bad: [unknown, RegExp][] = [
      [[1, 2], /Request body must be an object/],
      ['"text"', /Request body must be an object/],
      [{ urls: [camera.url('/h264')] }, /Stream name or urls is required: "name"/],
      [{ name: 'x' }, /Stream name or urls is required: "urls"/],
      [{ name: 'x', urls: [] }, /Urls must be at least one/],
      [{ name: 'x', urls: [42] }, /Url must be a string/],
      [{ name: 'x', urls: ['not a url'] }, /Invalid URL/],
      [{ name: 'x', urls: [camera.url('/h264'), 'ovt://127.0.0.1:9000/app/x'] }, /same scheme/],
      [{ name: 'bad/name', urls: [camera.url('/h264')] }, /Invalid stream name/],
      [{ name: 'x', urls: [camera.url('/h264')], properties: 'yes' }, /"properties" must be an object/],
      [{ name: 'x', urls: [camera.url('/h264')], properties: { persistent: 'yes' } }, /properties.persistent/],
      [{ name: 'x', urls: [camera.url('/h264')], properties: { noInputFailoverTimeout: -1 } }, /properties.noInputFailoverTimeout/],
    ];
    for (const [body, message] of bad) {
      const res = await api(STREAMS, 'POST', undefined, typeof body === 'string' ? body : JSON.stringify(body));
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.statusCode, 400);
      assert.match(res.body.message, message);
    }
    const unparsable = await api(STREAMS, 'POST', undefined, '{"name": ');
    assert.equal(unparsable.status, 400);
  });

  test('DELETE stops the pull: the stream and its players are gone', async () => {
    const page = await play('cam-basic');
    await waitFor(() => decoded(page), (s) => s.framesDecoded > 5, 20_000);
    const res = await api(`${STREAMS}/cam-basic`, 'DELETE');
    assert.deepEqual(res, { status: 200, body: { statusCode: 200, message: 'OK' } });
    assert.equal((await api(`${STREAMS}/cam-basic`)).status, 404);
    const state = await waitFor(() => connectionState(page), (s) => s !== 'connected', 10_000);
    assert.notEqual(state, 'connected');
    await page.close();
    // The name is free again.
    assert.equal((await createPull('cam-basic', [camera.url('/h264')])).status, 201);
  });

  test('a stream with no players is removed after unusedStreamDeletionTimeout', async () => {
    const res = await createPull('unused', [camera.url('/h264')], { unusedStreamDeletionTimeout: 1500 });
    assert.equal(res.status, 201);
    assert.equal((await api(`${STREAMS}/unused`)).status, 200);
    const gone = await waitFor(() => api(`${STREAMS}/unused`), (r) => r.status === 404, 6000);
    assert.equal(gone.status, 404);
  });

  test('failover: when the first camera stops, the next URL is pulled and the player resumes', async () => {
    const backup = await startRtspServer();
    const primary = await startRtspServer();
    try {
      const res = await createPull('failover', [primary.url('/h264'), backup.url('/h264')], { noInputFailoverTimeout: 1000 });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.response.input.sourceUrl, primary.url('/h264'));
      const page = await play('failover');
      const first = await waitFor(() => decoded(page), (s) => s.framesDecoded > 10, 20_000);
      await primary.stop();
      const after = await waitFor(() => decoded(page), (s) => s.framesDecoded > first.framesDecoded + 60, 20_000);
      assert.ok(after.framesDecoded > first.framesDecoded + 60, `frames ${first.framesDecoded} → ${after.framesDecoded}`);
      const info = await waitFor(() => api(`${STREAMS}/failover`), (r) => r.body.response.input.sourceUrl === backup.url('/h264'), 5000);
      assert.equal(info.body.response.input.sourceUrl, backup.url('/h264'));
      await page.close();
    } finally {
      await primary.stop();
      await backup.stop();
    }
  });
});

describe('persistent pull streams', () => {
  test('are recreated after a restart of Kiln; non-persistent ones are not', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'kiln-persist-'));
    const env = { KILN_DATA_DIR: dataDir, KILN_API_PORT: String(await freePort()), KILN_SIGNALING_PORT: String(await freePort()) };
    let node = await startKiln(env);
    try {
      const post = (name: string, persistent: boolean) => fetch(`${node.apiUrl}${STREAMS}`, {
        method: 'POST',
        headers: { authorization: node.basic, 'content-type': 'application/json' },
        body: JSON.stringify({ name, urls: [camera.url('/h264-opus')], properties: { persistent } }),
      });
      assert.equal((await post('kept', true)).status, 201);
      assert.equal((await post('dropped', false)).status, 201);
      assert.equal(await node.stop(), 0);
      node = await startKiln(env);
      const list = await waitFor(async () => (await (await fetch(`${node.apiUrl}${STREAMS}`, { headers: { authorization: node.basic } })).json()).response as string[],
        (names) => names.includes('kept'), 15_000);
      assert.deepEqual(list, ['kept']);
      // Deleted through the API, it stays deleted after the next restart.
      assert.equal((await fetch(`${node.apiUrl}${STREAMS}/kept`, { method: 'DELETE', headers: { authorization: node.basic } })).status, 200);
      assert.equal(await node.stop(), 0);
      node = await startKiln(env);
      await new Promise((r) => setTimeout(r, 1500));
      const after = await (await fetch(`${node.apiUrl}${STREAMS}`, { headers: { authorization: node.basic } })).json();
      assert.deepEqual(after.response, []);
    } finally {
      await node.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
