/**
 * OVT between two Kiln nodes in this process: Chromium publishes with WHIP into the origin, the
 * edge pulls the stream over OVT (`POST …/streams` with an `ovt://` URL, and the cluster's
 * `relay()`), and Chromium plays it from the edge with WHEP. The origin's OvtServer is started
 * here on a free port, on the origin's catalogue and media engine.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import type { Page } from 'playwright-core';
import { freePort, startKilnInProcess, type InProcessKiln } from '../helpers/kiln-process.ts';
import { inboundStats, launchChromium, waitFor, type LaunchedBrowser } from '../helpers/browser.ts';
import { OvtServer } from '../../src/protocols/ovt/server.ts';

let origin: InProcessKiln;
let edge: InProcessKiln;
let chromium: LaunchedBrowser;
let ovt: OvtServer;
let publisher: Page;

before(async () => {
  [origin, edge, chromium] = await Promise.all([startKilnInProcess(), startKilnInProcess(), launchChromium()]);
  ovt = new OvtServer({ host: '127.0.0.1', port: 0, catalog: origin.kiln.catalog, engine: origin.kiln.engine!, logger: pino({ level: 'silent' }) });
  await ovt.start();
});
after(async () => {
  await chromium?.close();
  await ovt?.stop();
  await edge?.stop();
  await origin?.stop();
});

const STREAMS = '/v1/vhosts/default/apps/app/streams';
const basic = `Basic ${Buffer.from('admin:pw').toString('base64')}`;

async function api(node: InProcessKiln, path: string, method = 'GET', body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://127.0.0.1:${node.kiln.api!.port}${path}`, {
    method,
    headers: { authorization: basic, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

async function play(node: InProcessKiln, stream: string): Promise<Page> {
  const page = await chromium.browser.newPage();
  await page.goto(`${node.signalingUrl}/play.html?autostart=1&stream=${stream}`);
  return page;
}
const decoded = (page: Page) => inboundStats(page, 'kilnPlayer');
const playerState = (page: Page) => page.evaluate(() => (window as unknown as { kilnPlayer?: RTCPeerConnection }).kilnPlayer?.connectionState ?? 'none');
const ovtUrl = (stream: string) => `ovt://127.0.0.1:${ovt.port}/app/${stream}`;
const ovtPlayers = () => [...origin.kiln.catalog.stream('default', 'app', 'cam').players.values()].filter((p) => p.protocol === 'ovt').length;
const originVideo = () => origin.kiln.engine!.forwarderOf(origin.kiln.catalog.stream('default', 'app', 'cam'))!.tracks.find((t) => t.info.kind === 'video')!;

describe('an edge Kiln plays a stream published on an origin Kiln, over OVT', () => {
  let viewer: Page;

  test('POST an ovt:// URL on the edge: 201 with the origin stream\'s tracks, sourceType Ovt', async () => {
    publisher = await chromium.browser.newPage();
    await publisher.goto(`${origin.signalingUrl}/publish.html?autostart=1&stream=cam&token=pw`);
    await waitFor(() => publisher.textContent('#status'), (s) => s === 'connection: connected' || /WHIP|Error/.test(s ?? ''), 15_000);
    // Once the origin has seen a key frame it knows the picture size, and its describe says so.
    await waitFor(async () => originVideo().info.width, (w) => w > 0, 10_000);
    const res = await api(edge, STREAMS, 'POST', { name: 'relayed', urls: [ovtUrl('cam')] });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.statusCode, 201);
    const info = res.body.response;
    assert.equal(info.name, 'relayed');
    assert.equal(info.input.sourceType, 'Ovt');
    assert.equal(info.input.sourceUrl, ovtUrl('cam'));
    const originInfo = (await api(origin, `${STREAMS}/cam`)).body.response;
    const codecs = (tracks: any[]) => tracks.map((t) => t.video?.codec ?? t.audio?.codec);
    assert.deepEqual(codecs(info.input.tracks), codecs(originInfo.input.tracks));
    const video = info.input.tracks.find((t: any) => t.type === 'Video' || t.video).video;
    assert.equal(video.width, originVideo().info.width);
    assert.ok(video.height > 0);
    assert.equal(ovtPlayers(), 1, 'the edge is one (OVT) player of the origin stream');
    // OME's list of a stream's players shows its viewers; the link to an edge is not one.
    assert.deepEqual((await api(origin, `${STREAMS}/cam/sessions`)).body.response, []);
  });

  test('Chromium plays the relayed stream from the edge over WHEP: frames decoded, audio received', async () => {
    viewer = await play(edge, 'relayed');
    const stats = await waitFor(() => decoded(viewer), (s) => s.framesDecoded > 10 && s.audioPacketsReceived > 10, 15_000);
    assert.ok(stats.framesDecoded > 10, `frames decoded: ${stats.framesDecoded}`);
    assert.ok(stats.frameWidth > 0, `frame width: ${stats.frameWidth}`);
    assert.ok(stats.audioPacketsReceived > 10, `audio packets: ${stats.audioPacketsReceived}`);
  });

  test('a viewer joining the edge gets a key frame from the origin\'s publisher', async () => {
    const keyFrames = originVideo().keyFrames;
    const second = await play(edge, 'relayed');
    const stats = await waitFor(() => decoded(second), (s) => s.framesDecoded > 5, 15_000);
    assert.ok(stats.framesDecoded > 5);
    assert.ok(originVideo().keyFrames > keyFrames, 'the publisher sent a key frame for the edge\'s new viewer');
    assert.equal(ovtPlayers(), 1, 'still one OVT session at the origin');
    await second.close();
  });

  test('a refused port, an unknown stream, a malformed URL: 502 and 400 in OME\'s shape', async () => {
    const closed = await freePort();
    const cases: [string, RegExp][] = [
      [`ovt://127.0.0.1:${closed}/app/cam`, /connection refused/],
      [ovtUrl('nope'), /describe answered 404: There is no such stream \(app\/nope\)/],
    ];
    for (const [url, cause] of cases) {
      const res = await api(edge, STREAMS, 'POST', { name: 'failing', urls: [url] });
      assert.equal(res.status, 502, `${url}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.statusCode, 502);
      assert.match(res.body.message, /^\[HTTP\] Could not pull the stream : ovt:\/\//);
      assert.match(res.body.message, cause);
    }
    const bad = await api(edge, STREAMS, 'POST', { name: 'failing', urls: [`ovt://127.0.0.1:${ovt.port}/cam`] });
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /Invalid OVT URL .*\/\{app\}\/\{stream\}/);
    assert.equal((await api(edge, `${STREAMS}/failing`)).status, 404, 'a failed pull leaves no stream');
  });

  test('relay(): three callers at once share one OVT connection; the relay goes when its last player leaves', async () => {
    const pulls = edge.kiln.pulls!;
    const before = ovt.connections;
    const request = { vhost: 'default', app: 'app', name: 'cam', url: ovtUrl('cam'), graceMs: 500 };
    const streams = await Promise.all([pulls.relay(request), pulls.relay(request), pulls.relay(request)]);
    assert.ok(streams.every((s) => s === streams[0]), 'one stream for the three callers');
    assert.equal(streams[0].relay, true);
    assert.equal(streams[0].sourceType, 'OVT');
    assert.equal(ovt.connections, before + 1, 'one connection at the origin');
    const page = await play(edge, 'cam');
    await waitFor(() => decoded(page), (s) => s.framesDecoded > 5, 15_000);
    assert.equal(await pulls.relay(request), streams[0], 'a later caller gets the same relay');
    assert.equal(ovt.connections, before + 1);
    await page.click('#stop');
    const gone = await waitFor(async () => ovt.connections, (n) => n === before, 5000);
    assert.equal(gone, before, 'the relay\'s connection is closed after the grace');
    assert.equal((await api(edge, `${STREAMS}/cam`)).status, 404);
    assert.equal(streams[0].closed, true);
    await page.close();
  });

  test('the origin publisher leaving ends the edge stream, and the edge player is closed', async () => {
    assert.equal(await playerState(viewer), 'connected');
    await publisher.click('#stop');
    const list = await waitFor(() => api(edge, STREAMS), (r) => !r.body.response.includes('relayed'), 5000);
    assert.ok(!list.body.response.includes('relayed'));
    const state = await waitFor(() => playerState(viewer), (s) => s !== 'connected', 10_000);
    assert.notEqual(state, 'connected');
    assert.equal(await waitFor(async () => ovt.connections, (n) => n === 0, 5000), 0);
  });
});
