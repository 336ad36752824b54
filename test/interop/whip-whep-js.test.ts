/**
 * Interop with an independent WHIP/WHEP client library from npm, unchanged: `whip-whep` (medooze).
 * Its WHIP client posts the offer before ICE gathering and trickles candidates with PATCH
 * (RFC 9725 §4.3), and stops with DELETE on the Location resource. The page is on another origin.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { startKiln, type KilnProcess } from '../helpers/kiln-process.ts';
import { inboundStats, launchChromium, waitFor, type LaunchedBrowser } from '../helpers/browser.ts';
import { startSite, type Site } from '../helpers/site.ts';

const LIB = fileURLToPath(new URL('./', import.meta.resolve('whip-whep/whip.js')));

let kiln: KilnProcess;
let chromium: LaunchedBrowser;
let site: Site;
let siteUrl: string;
const patches: string[] = [];
const patchStatuses: number[] = [];

before(async () => {
  kiln = await startKiln();
  chromium = await launchChromium();
  site = await startSite({ '/whip.js': LIB + 'whip.js', '/whep.js': LIB + 'whep.js' });
  siteUrl = site.url;
});
after(async () => {
  await chromium?.close();
  await site?.close();
  assert.equal(await kiln.stop(), 0);
});

let publisher: Page;

test('whip.js publishes with trickled candidates and whep.js plays', async () => {
  publisher = await chromium.browser.newPage();
  publisher.on('request', (r) => {
    if (r.method() === 'PATCH') patches.push(r.headers()['content-type'] ?? '');
  });
  publisher.on('response', (r) => {
    if (r.request().method() === 'PATCH') patchStatuses.push(r.status());
  });
  await publisher.goto(siteUrl);
  await publisher.evaluate(async ({ url, token }) => {
    const lib = '/whip.js'; // served by the test's own site, not a module TypeScript can see
    const { WHIPClient } = await import(lib);
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: 'sendonly' });
    const whip = new WHIPClient();
    (window as unknown as Record<string, unknown>).whip = whip;
    (window as unknown as Record<string, unknown>).pub = pc;
    await whip.publish(pc, url, token);
  }, { url: `${kiln.signalingUrl}/app/medooze?direction=whip`, token: kiln.password });
  const state = await waitFor(() => publisher.evaluate(() => (window as unknown as { pub: RTCPeerConnection }).pub.connectionState), (s) => s === 'connected', 15_000);
  assert.equal(state, 'connected');

  const viewer = await chromium.browser.newPage();
  await viewer.goto(siteUrl);
  await viewer.evaluate(async (url) => {
    const lib = '/whep.js';
    const { WHEPClient } = await import(lib);
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    (window as unknown as Record<string, unknown>).view = pc;
    pc.addTransceiver('audio');
    pc.addTransceiver('video');
    await new WHEPClient().view(pc, url);
  }, `${kiln.signalingUrl}/app/medooze?direction=whep`);
  const stats = await waitFor(() => inboundStats(viewer, 'view'), (s) => s.framesDecoded > 10 && s.audioPacketsReceived > 10, 15_000);
  assert.ok(stats.framesDecoded > 10 && stats.frameWidth > 0, JSON.stringify(stats));
  assert.ok(patches.length > 0, 'whip.js trickled candidates with PATCH');
  assert.ok(patches.every((t) => t.startsWith('application/trickle-ice-sdpfrag')));
  assert.ok(patchStatuses.length > 0 && patchStatuses.every((s) => s === 204), `PATCH statuses ${patchStatuses.join(',')}`);
});

test('whip.js stop deletes the resource and the stream ends', async () => {
  await publisher.evaluate(async () => (window as unknown as { whip: { stop: () => Promise<void> } }).whip.stop());
  const list = await waitFor(async () => (await (await fetch(`${kiln.apiUrl}/v1/vhosts/default/apps/app/streams`, { headers: { authorization: kiln.basic } })).json()).response,
    (r: string[]) => r.length === 0, 5_000);
  assert.deepEqual(list, []);
});
