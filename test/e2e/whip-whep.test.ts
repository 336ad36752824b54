import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { startKiln, type KilnProcess } from '../helpers/kiln-process.ts';
import { inboundStats, launchChromium, waitFor, type LaunchedBrowser } from '../helpers/browser.ts';

let kiln: KilnProcess;
let chromium: LaunchedBrowser;

before(async () => {
  kiln = await startKiln();
  chromium = await launchChromium();
});
after(async () => {
  await chromium?.close();
  assert.equal(await kiln.stop(), 0);
});

const api = async (path: string, method = 'GET') => {
  const res = await fetch(`${kiln.apiUrl}${path}`, { method, headers: { authorization: kiln.basic } });
  return { status: res.status, body: await res.json() };
};

async function publish(stream: string, codec?: string): Promise<Page> {
  const page = await chromium.browser.newPage();
  await page.goto(`${kiln.signalingUrl}/publish.html?autostart=1&stream=${stream}&token=${kiln.password}${codec ? `&codec=${codec}` : ''}`);
  const status = await waitFor(() => page.textContent('#status'), (s) => s === 'connection: connected' || /WHIP|Error/.test(s ?? ''), 15_000);
  assert.equal(status, 'connection: connected');
  return page;
}

async function play(stream: string, session?: string): Promise<Page> {
  const page = await chromium.browser.newPage();
  await page.goto(`${kiln.signalingUrl}/play.html?autostart=1&stream=${stream}${session ? `&session=${session}` : ''}`);
  return page;
}

const decoded = (page: Page) => inboundStats(page, 'kilnPlayer');
const connectionState = (page: Page, name: string) =>
  page.evaluate((name) => (window as unknown as Record<string, RTCPeerConnection>)[name]?.connectionState ?? 'none', name);

describe('WHIP publish and WHEP play in Chromium', () => {
  let publisher: Page;
  let viewer: Page;
  let named: Page;

  test('a WHEP viewer decodes video and receives audio from a WHIP publisher', async () => {
    publisher = await publish('cam');
    viewer = await play('cam');
    const stats = await waitFor(() => decoded(viewer), (s) => s.framesDecoded > 10 && s.audioPacketsReceived > 10, 15_000);
    assert.ok(stats.framesDecoded > 10, `frames decoded: ${stats.framesDecoded}`);
    assert.ok(stats.frameWidth > 0, `frame width: ${stats.frameWidth}`);
    assert.ok(stats.audioPacketsReceived > 10, `audio packets: ${stats.audioPacketsReceived}`);
  });

  test('the stream is listed, and its info has the tracks that were published', async () => {
    const list = await api('/v1/vhosts/default/apps/app/streams');
    assert.deepEqual(list.body, { statusCode: 200, message: 'OK', response: ['cam'] });
    const sent = await publisher.evaluate(async () => {
      const pc = (window as unknown as { kilnPublisher: RTCPeerConnection }).kilnPublisher;
      const report = await pc.getStats();
      const codecs: Record<string, string> = {};
      let width = 0;
      report.forEach((s: Record<string, unknown>) => {
        if (s.type === 'outbound-rtp') {
          const codec = report.get(s.codecId as string) as { mimeType?: string } | undefined;
          codecs[s.kind as string] = (codec?.mimeType ?? '').split('/')[1]?.toUpperCase() ?? '';
          if (s.kind === 'video') width = Number(s.frameWidth ?? 0);
        }
      });
      return { codecs, width };
    });
    // Track figures are sampled once a second; wait for the picture size to be known.
    const info = await waitFor(() => api('/v1/vhosts/default/apps/app/streams/cam'),
      (r) => r.body.response?.input?.tracks?.some((t: { video?: { width: number } }) => (t.video?.width ?? 0) > 0), 5_000);
    assert.equal(info.status, 200);
    const stream = info.body.response;
    assert.equal(stream.name, 'cam');
    assert.equal(stream.input.sourceType, 'WebRTC');
    assert.ok(!Number.isNaN(Date.parse(stream.input.createdTime)));
    const video = stream.input.tracks.find((t: { type: string }) => t.type === 'Video');
    const audio = stream.input.tracks.find((t: { type: string }) => t.type === 'Audio');
    assert.equal(video.video.codec, sent.codecs.video);
    assert.equal(audio.audio.codec, sent.codecs.audio);
    assert.ok(video.video.width > 0 && video.video.height > 0);
    assert.ok(Math.abs(video.video.width - sent.width) <= sent.width, `width ${video.video.width} vs sent ${sent.width}`);
    assert.ok(video.video.framerate > 0, `framerate ${video.video.framerate}`);
    assert.ok(Number(video.video.bitrate) > 0);
    assert.equal(audio.audio.samplerate, 48000);
    assert.ok(audio.audio.channel >= 1);
  });

  test('the sessions list shows the players, by the name given with ?session= or a UUID', async () => {
    named = await play('cam', 'viewer-one');
    await waitFor(() => decoded(named), (s) => s.framesDecoded > 5, 15_000);
    const sessions = await api('/v1/vhosts/default/apps/app/streams/cam/sessions');
    assert.equal(sessions.status, 200);
    assert.equal(sessions.body.response.length, 2);
    assert.ok(sessions.body.response.includes('viewer-one'));
    const other = sessions.body.response.find((id: string) => id !== 'viewer-one');
    assert.match(other, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });

  test('a second player cannot take a session name in use', async () => {
    const res = await fetch(`${kiln.signalingUrl}/app/cam?direction=whep&session=viewer-one`, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp' },
      body: await viewer.evaluate(async () => {
        const pc = new RTCPeerConnection();
        pc.addTransceiver('video', { direction: 'recvonly' });
        const offer = await pc.createOffer();
        pc.close();
        return offer.sdp!;
      }),
    });
    assert.equal(res.status, 409);
  });

  test('kicking a session cuts off exactly that player', async () => {
    const res = await api('/v1/vhosts/default/apps/app/streams/cam/sessions/viewer-one', 'DELETE');
    assert.deepEqual(res, { status: 200, body: { message: 'OK', statusCode: 200 } });
    const kickedAt = Date.now();
    // No frame reaches it 2 s after the call.
    await new Promise((r) => setTimeout(r, 2_000));
    const frozen = (await decoded(named)).framesDecoded;
    const others = (await decoded(viewer)).framesDecoded;
    await new Promise((r) => setTimeout(r, 1_500));
    assert.equal((await decoded(named)).framesDecoded, frozen, 'the kicked player decodes no new frame');
    assert.ok((await decoded(viewer)).framesDecoded > others, 'the other player keeps decoding');
    // Its PeerConnection leaves `connected` within 10 s.
    const state = await waitFor(() => connectionState(named, 'kilnPlayer'), (s) => s !== 'connected', 10_000 - (Date.now() - kickedAt));
    assert.notEqual(state, 'connected');
    const sessions = await api('/v1/vhosts/default/apps/app/streams/cam/sessions');
    assert.equal(sessions.body.response.length, 1);
    assert.ok(!sessions.body.response.includes('viewer-one'));
  });

  test('kicking an unknown session is the seed 404', async () => {
    const res = await api('/v1/vhosts/default/apps/app/streams/cam/sessions/nobody', 'DELETE');
    assert.deepEqual(res, { status: 404, body: { message: 'Not Found', response: 'Could not find the session', statusCode: 404 } });
  });

  test('a player that vanishes without a goodbye is dropped within 15 s', async () => {
    const gone = await play('cam', 'vanishing');
    await waitFor(() => decoded(gone), (s) => s.framesDecoded > 5, 15_000);
    await gone.close(); // a closed tab sends nothing more
    const sessions = await waitFor(() => api('/v1/vhosts/default/apps/app/streams/cam/sessions'),
      (r) => !r.body.response.includes('vanishing'), 15_000);
    assert.ok(!sessions.body.response.includes('vanishing'));
  });

  test('the publisher holds its bitrate (REMB from the server)', async () => {
    const out = await waitFor(() => publisher.evaluate(async () => {
      const pc = (window as unknown as { kilnPublisher: RTCPeerConnection }).kilnPublisher;
      let target = 0;
      let reason = '';
      (await pc.getStats()).forEach((s: Record<string, unknown>) => {
        if (s.type === 'outbound-rtp' && s.kind === 'video') {
          target = Number(s.targetBitrate ?? 0);
          reason = String(s.qualityLimitationReason ?? '');
        }
      });
      return { target, reason };
    }), (o) => o.target >= 300_000, 10_000);
    assert.ok(out.target >= 300_000, `publisher target bitrate ${out.target} (limited by ${out.reason})`);
  });

  test('deleting the stream closes the publisher and its players', async () => {
    const res = await api('/v1/vhosts/default/apps/app/streams/cam', 'DELETE');
    assert.equal(res.status, 200);
    assert.equal(res.body.statusCode, 200);
    const pub = await waitFor(() => connectionState(publisher, 'kilnPublisher'), (s) => s !== 'connected', 10_000);
    assert.notEqual(pub, 'connected');
    const player = await waitFor(() => connectionState(viewer, 'kilnPlayer'), (s) => s !== 'connected', 10_000);
    assert.notEqual(player, 'connected');
    assert.deepEqual((await api('/v1/vhosts/default/apps/app/streams')).body.response, []);
    assert.equal((await api('/v1/vhosts/default/apps/app/streams/cam')).status, 404);
  });

  test('a publisher that leaves ends its stream and its players', async () => {
    const p = await publish('short');
    const v = await play('short');
    await waitFor(() => decoded(v), (s) => s.framesDecoded > 5, 15_000);
    // Closing the tab sends no goodbye: the server must notice the silence within 15 s.
    await p.close();
    const list = await waitFor(() => api('/v1/vhosts/default/apps/app/streams'), (r) => r.body.response.length === 0, 15_000);
    assert.deepEqual(list.body.response, []);
    const state = await waitFor(() => connectionState(v, 'kilnPlayer'), (s) => s !== 'connected', 10_000);
    assert.notEqual(state, 'connected');
  });
});

describe('every forwarded video codec plays', () => {
  for (const codec of ['H264', 'VP9']) {
    test(`${codec} published with WHIP is decoded by a WHEP player`, async () => {
      const stream = `codec-${codec.toLowerCase()}`;
      const p = await publish(stream, codec);
      const v = await play(stream);
      const stats = await waitFor(() => decoded(v), (s) => s.framesDecoded > 10, 15_000);
      assert.ok(stats.framesDecoded > 10 && stats.frameWidth > 0, `${codec}: ${JSON.stringify(stats)}`);
      const videoTrack = (r: { body: { response: { input: { tracks: { type: string; video: { width: number } }[] } } } }) =>
        r.body.response.input.tracks.find((t) => t.type === 'Video')!;
      const info = await waitFor(() => api(`/v1/vhosts/default/apps/app/streams/${stream}`), (r) => videoTrack(r).video.width > 0, 5_000);
      const video = videoTrack(info) as unknown as { video: { codec: string; width: number; height: number } };
      assert.equal(video.video.codec, codec);
      assert.ok(video.video.width > 0 && video.video.height > 0, `${codec} picture size read from the bitstream`);
      // The viewer is told the format that is really sent (for H.264, the publisher's profile).
      const fmtp = (page: Page, name: string, type: string) => page.evaluate(async ({ name, type }) => {
        const pc = (window as unknown as Record<string, RTCPeerConnection>)[name];
        let line = '';
        const report = await pc.getStats();
        report.forEach((s: Record<string, unknown>) => {
          if (s.type === type && s.kind === 'video') line = String((report.get(s.codecId as string) as { sdpFmtpLine?: string })?.sdpFmtpLine ?? '');
        });
        return line;
      }, { name, type });
      const profile = (line: string) => /profile-level-id=([0-9a-f]{4})/i.exec(line)?.[1]?.toLowerCase();
      if (codec === 'H264') assert.equal(profile(await fmtp(v, 'kilnPlayer', 'inbound-rtp')), profile(await fmtp(p, 'kilnPublisher', 'outbound-rtp')));
      await p.close();
      await v.close();
      await api(`/v1/vhosts/default/apps/app/streams/${stream}`, 'DELETE');
    });
  }
});
