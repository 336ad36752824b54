/**
 * Interop with OvenMediaEngine's own browser clients from npm, unchanged: OvenLiveKit publishes
 * and OvenPlayer plays over OME WebSocket signaling. Their pages come from another origin than
 * Kiln's, as they would in a real deployment; a WHEP player on that origin checks CORS too.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { startKiln, type KilnProcess } from '../helpers/kiln-process.ts';
import { inboundStats, launchChromium, waitFor, type LaunchedBrowser } from '../helpers/browser.ts';
import { startSite, type Site } from '../helpers/site.ts';
import { startRtspServer } from '../helpers/rtsp-server.ts';

const OVENPLAYER = fileURLToPath(import.meta.resolve('ovenplayer/dist/ovenplayer.js'));
const OVENLIVEKIT = fileURLToPath(new URL('dist/OvenLiveKit.min.js', import.meta.resolve('ovenlivekit/package.json')));

let kiln: KilnProcess;
let chromium: LaunchedBrowser;
let site: Site;
let siteUrl: string;

before(async () => {
  kiln = await startKiln();
  chromium = await launchChromium();
  // A blank page on another origin: the clients are loaded into it.
  site = await startSite();
  siteUrl = site.url;
});
after(async () => {
  await chromium?.close();
  await site?.close();
  assert.equal(await kiln.stop(), 0);
});

async function ovenLiveKit(stream: string): Promise<Page> {
  const page = await chromium.browser.newPage();
  await page.goto(siteUrl);
  await page.addScriptTag({ path: OVENLIVEKIT });
  await page.evaluate(async (url) => {
    const w = window as unknown as Record<string, unknown> & { OvenLiveKit: { create: (o: object) => Record<string, (...a: unknown[]) => Promise<unknown>> } };
    w.olkEvents = [];
    const events = w.olkEvents as string[];
    const kit = w.OvenLiveKit.create({
      callbacks: {
        error: (e: unknown) => events.push(`error:${String(e)}`),
        connected: () => events.push('connected'),
        connectionClosed: (type: string) => events.push(`closed:${type}`),
      },
    });
    w.olk = kit;
    kit.attachMedia(document.getElementById('preview'));
    await kit.getUserMedia({ video: { width: 640, height: 480 }, audio: true });
    kit.startStreaming(url);
  }, `${kiln.wsUrl}/app/${stream}?direction=send`);
  const events = await waitFor(() => page.evaluate(() => (window as unknown as { olkEvents: string[] }).olkEvents), (e) => e.length > 0, 15_000);
  assert.deepEqual(events, ['connected'], `OvenLiveKit events: ${events.join(', ')}`);
  return page;
}

async function ovenPlayer(stream: string): Promise<Page> {
  const page = await chromium.browser.newPage();
  await page.goto(siteUrl);
  await page.addScriptTag({ path: OVENPLAYER });
  await page.evaluate((file) => {
    const w = window as unknown as Record<string, unknown> & { OvenPlayer: { create: (id: string, o: object) => { on: (e: string, f: (x: unknown) => void) => void } } };
    w.opEvents = [];
    const events = w.opEvents as string[];
    const player = w.OvenPlayer.create('player', {
      autoStart: true,
      mute: true,
      sources: [{ label: 'kiln', type: 'webrtc', file }],
    });
    player.on('stateChanged', (e) => events.push(`state:${(e as { newstate: string }).newstate}`));
    player.on('error', (e) => events.push(`error:${(e as { code: number }).code}:${(e as { error?: string }).error ?? ''}`));
    player.on('peerConnectionPrepared', (pc) => { w.opPeer = pc; });
  }, `${kiln.wsUrl}/app/${stream}`);
  return page;
}

describe('OvenLiveKit publishes and OvenPlayer plays over OME signaling', () => {
  let publisher: Page;

  test('OvenPlayer decodes what OvenLiveKit publishes', async () => {
    publisher = await ovenLiveKit('olk');
    const list = await (await fetch(`${kiln.apiUrl}/v1/vhosts/default/apps/app/streams`, { headers: { authorization: kiln.basic } })).json();
    assert.deepEqual(list.response, ['olk']);
    const player = await ovenPlayer('olk');
    const stats = await waitFor(() => inboundStats(player, 'opPeer'), (s) => s.framesDecoded > 10 && s.audioPacketsReceived > 10, 20_000);
    const events = await player.evaluate(() => (window as unknown as { opEvents: string[] }).opEvents);
    assert.ok(stats.framesDecoded > 10, `frames decoded ${stats.framesDecoded}; player events ${events.join(', ')}`);
    assert.ok(stats.frameWidth > 0);
    assert.ok(stats.audioPacketsReceived > 10);
    assert.ok(events.includes('state:playing'), `player events ${events.join(', ')}`);
    const sessions = await (await fetch(`${kiln.apiUrl}/v1/vhosts/default/apps/app/streams/olk/sessions`, { headers: { authorization: kiln.basic } })).json();
    assert.equal(sessions.response.length, 1);
  });

  test('OvenPlayer shows OME\'s error for a stream that does not exist', async () => {
    const player = await ovenPlayer('missing');
    const events = await waitFor(() => player.evaluate(() => (window as unknown as { opEvents: string[] }).opEvents), (e) => e.some((x) => x.startsWith('error')), 10_000);
    const error = events.find((e) => e.startsWith('error'));
    assert.match(error ?? '', /^error:501:Cannot create offer/);
  });

  test('a second OvenLiveKit cannot publish a stream name in use', async () => {
    const page = await chromium.browser.newPage();
    await page.goto(siteUrl);
    await page.addScriptTag({ path: OVENLIVEKIT });
    const events = await page.evaluate(async (url) => {
      const w = window as unknown as { OvenLiveKit: { create: (o: object) => Record<string, (...a: unknown[]) => Promise<unknown>> } };
      const events: string[] = [];
      const kit = w.OvenLiveKit.create({ callbacks: { error: (e: unknown) => events.push(`error:${String(e)}`), connected: () => events.push('connected') } });
      await kit.getUserMedia({ video: true, audio: true });
      kit.startStreaming(url);
      await new Promise((r) => setTimeout(r, 3000));
      return events;
    }, `${kiln.wsUrl}/app/olk?direction=send`);
    assert.ok(events.some((e) => /error:Cannot create offer/.test(e)), `events ${events.join(', ')}`);
    assert.ok(!events.includes('connected'));
  });

  test('a WHEP player on another origin passes CORS and decodes', async () => {
    const page = await chromium.browser.newPage();
    await page.goto(siteUrl);
    const result = await page.evaluate(async (endpoint) => {
      const pc = new RTCPeerConnection();
      (window as unknown as { whep: RTCPeerConnection }).whep = pc;
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise<void>((r) => {
        if (pc.iceGatheringState === 'complete') r();
        pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r();
        setTimeout(r, 2000);
      });
      const res = await fetch(endpoint, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: pc.localDescription!.sdp });
      const location = res.headers.get('location');
      await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
      return { status: res.status, location };
    }, `${kiln.signalingUrl}/app/olk?direction=whep`);
    assert.equal(result.status, 201);
    assert.ok(result.location, 'Location is exposed to the page (Access-Control-Expose-Headers)');
    const stats = await waitFor(() => inboundStats(page, 'whep'), (s) => s.framesDecoded > 5, 15_000);
    assert.ok(stats.framesDecoded > 5);
  });

  test('when OvenLiveKit stops, the stream ends', async () => {
    await publisher.evaluate(() => (window as unknown as { olk: { stopStreaming: () => void } }).olk.stopStreaming());
    const list = await waitFor(async () => (await (await fetch(`${kiln.apiUrl}/v1/vhosts/default/apps/app/streams`, { headers: { authorization: kiln.basic } })).json()).response,
      (r: string[]) => r.length === 0, 10_000);
    assert.deepEqual(list, []);
  });
});

describe('OvenPlayer plays a camera pulled over RTSP', () => {
  test('an H.264 + AAC camera created through the OME API decodes in OvenPlayer, with audio as Opus', async () => {
    const camera = await startRtspServer();
    try {
      const res = await fetch(`${kiln.apiUrl}/v1/vhosts/default/apps/app/streams`, {
        method: 'POST',
        headers: { authorization: kiln.basic, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'ipcam', urls: [camera.url('/h264-aac')], properties: { persistent: false } }),
      });
      assert.equal(res.status, 201, await res.clone().text());
      const player = await ovenPlayer('ipcam');
      const stats = await waitFor(() => inboundStats(player, 'opPeer'), (s) => s.framesDecoded > 10 && s.audioPacketsReceived > 20, 20_000);
      const events = await player.evaluate(() => (window as unknown as { opEvents: string[] }).opEvents);
      assert.ok(stats.framesDecoded > 10, `frames decoded ${stats.framesDecoded}; player events ${events.join(', ')}`);
      assert.equal(stats.frameWidth, 640);
      assert.ok(stats.audioPacketsReceived > 20);
      assert.ok(events.includes('state:playing'), `player events ${events.join(', ')}`);
      await player.close();
    } finally {
      await camera.stop();
    }
  });
});
