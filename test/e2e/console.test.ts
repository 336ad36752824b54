/**
 * The web console (`/console/`, built by `npm run build:console`) in Chromium against one Kiln
 * process: sign in, a WHIP stream's preview decodes, a player kicked from the sessions table is
 * cut off, an RTSP pull made through the form, a recording started, stopped and played in the
 * page, 120 room sessions paged through; the publish/play pages and the join page work from it.
 * Every view is screenshotted (desktop and phone) into test-output/console/ (or
 * $KILN_TEST_OUTPUT), and no view logs a console error.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { freePort, startKiln, type KilnProcess } from '../helpers/kiln-process.ts';
import { launchChromium, playPage, publishPage, waitFor, type LaunchedBrowser } from '../helpers/browser.ts';
import { startRtspServer, type RtspServer } from '../helpers/rtsp-server.ts';
import { RoomRpc } from '../helpers/room-rpc.ts';
import { CONSOLE_OUTPUT, previewFrames as framesOf, signInToConsole } from '../helpers/console-page.ts';

const AXE = fileURLToPath(new URL('axe.min.js', import.meta.resolve('axe-core/package.json')));

const OUTPUT = CONSOLE_OUTPUT;

let kiln: KilnProcess;
let chromium: LaunchedBrowser;
let camera: RtspServer;
let page: Page;
/** Console errors of the console page (and uncaught errors), with the step that was running. */
const consoleErrors: string[] = [];
let step = 'start';

async function api(path: string, init: RequestInit = {}): Promise<{ status: number; json: any }> {
  const res = await fetch(`${kiln.apiUrl}${path}`, { ...init, headers: { authorization: kiln.basic, 'content-type': 'application/json', ...init.headers } });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

async function screenshot(name: string): Promise<void> {
  await page.screenshot({ path: join(OUTPUT, `${name}.png`), fullPage: true });
}

async function open(view: string): Promise<void> {
  step = view;
  await page.evaluate((v) => (location.hash = v), `#/${view}`);
  await page.waitForSelector('#main h2');
}

const previewFrames = (stream: string) => framesOf(page, stream);

before(async () => {
  mkdirSync(OUTPUT, { recursive: true });
  const sigPort = await freePort();
  [kiln, chromium, camera] = await Promise.all([
    startKiln({ KILN_SIGNALING_PORT: String(sigPort), KILN_PUBLIC_URL: `http://127.0.0.1:${sigPort}` }),
    launchChromium(),
    startRtspServer(),
  ]);
  page = await chromium.browser.newPage();
  await page.setViewportSize({ width: 1280, height: 900 });
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push(`[${step}] ${msg.text()}`);
  });
  page.on('pageerror', (err) => consoleErrors.push(`[${step}] uncaught: ${err.message}`));
});

after(async () => {
  await chromium?.close();
  await camera?.stop();
  await kiln?.stop();
});

describe('the web console', () => {
  test('signs in with an API credential (a wrong one is refused on a page of its own)', async () => {
    const wrong = await chromium.browser.newPage();
    const wrongErrors: string[] = [];
    wrong.on('console', (msg) => msg.type() === 'error' && wrongErrors.push(msg.text()));
    await wrong.goto(`${kiln.signalingUrl}/console/`);
    await wrong.getByLabel('User name').fill(kiln.user);
    await wrong.getByLabel('Password').fill('not-the-password');
    await wrong.getByRole('button', { name: 'Sign in' }).click();
    await wrong.getByRole('alert').filter({ hasText: 'Wrong user name or password.' }).waitFor();
    // The only console line is the browser's own note of the 401.
    assert.ok(wrongErrors.every((e) => /status of 401/.test(e)), wrongErrors.join('\n'));
    await wrong.close();

    step = 'sign-in';
    await page.goto(`${kiln.signalingUrl}/console/`);
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await screenshot('sign-in');
    await signInToConsole(page, `${kiln.signalingUrl}/console/`, kiln.user, kiln.password);
    assert.equal(await page.getByRole('link', { name: 'Overview' }).getAttribute('aria-current'), 'page');
    // Keyboard: the first Tab reaches the skip link.
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content');
  });

  test('a WHIP-published stream shows up within 2 s, with codecs, resolution, bitrate and a preview that decodes', async () => {
    await open('streams');
    const publisher = await publishPage(chromium, kiln.signalingUrl, 'cam', kiln.password);
    const published = Date.now();
    const card = page.locator('article[data-stream="app/cam"]');
    await card.waitFor({ timeout: 5000 });
    const shownAfter = Date.now() - published;
    assert.ok(shownAfter < 2500, `the stream appeared ${shownAfter} ms after the publisher connected`);
    const facts = await waitFor(
      async () => ({ codecs: await card.locator('.codecs').textContent(), resolution: await card.locator('.resolution').textContent(), bitrate: await card.locator('.bitrate').textContent() }),
      (f) => /VP8|H264|VP9|AV1/.test(f.codecs ?? '') && /\d+×\d+/.test(f.resolution ?? '') && /bit\/s/.test(f.bitrate ?? ''),
      10_000,
    );
    assert.match(facts.codecs ?? '', /(VP8|H264|VP9|AV1) \+ (OPUS|opus|Opus)/i);
    assert.match(facts.resolution ?? '', /\d+×\d+/);
    const preview = await waitFor(() => previewFrames('app/cam'), (p) => p.frames > 10 && p.width > 0, 15_000);
    assert.ok(preview.frames > 10 && preview.width > 0, `preview decoded ${preview.frames} frames at width ${preview.width}`);
    assert.equal(await card.locator('.viewers').textContent(), '0', 'the console preview is not counted as a viewer');
    await screenshot('streams');
    (globalThis as Record<string, unknown>).kilnPublisher = publisher;
  });

  test('a player is kicked from the sessions table and its page is cut off', async () => {
    const player = await playPage(chromium, kiln.signalingUrl, 'cam', 'kick-me');
    await open('sessions');
    const row = page.locator('tr[data-session="kick-me"]');
    await row.waitFor({ timeout: 3000 });
    assert.match(await row.textContent() ?? '', /player/);
    assert.match(await row.textContent() ?? '', /127\.0\.0\.1:\d+/);
    // The viewer count on the stream card follows.
    await screenshot('sessions');
    await row.getByRole('button', { name: 'Kick kick-me' }).click();
    await row.getByRole('button', { name: 'Kick now' }).click();
    const kicked = Date.now();
    await row.waitFor({ state: 'detached', timeout: 3000 });
    const goneAfter = Date.now() - kicked;
    const state = await waitFor(
      () => player.evaluate(() => (window as unknown as { kilnPlayer?: RTCPeerConnection }).kilnPlayer?.connectionState ?? 'none'),
      (s) => s !== 'connected',
      10_000,
    );
    assert.notEqual(state, 'connected', 'the kicked player is cut off');
    const sessions = (await api('/v1/sessions')).json.data as { id: string }[];
    assert.equal(sessions.some((s) => s.id === 'kick-me'), false);
    assert.ok(goneAfter < 2500, `the row left ${goneAfter} ms after the kick`);
    await player.close();
  });

  test('an RTSP stream is pulled through the form; the API’s refusal is shown as it comes', async () => {
    await open('streams');
    const form = page.locator('form.pull');
    await form.getByLabel('Stream name').fill('camera1');
    await form.getByLabel('Source URL (RTSP or OVT)').fill(camera.url('/h264-opus'));
    await form.getByRole('button', { name: 'Pull' }).click();
    await form.getByRole('status').filter({ hasText: 'Pulling app/camera1' }).waitFor({ timeout: 15_000 });
    const card = page.locator('article[data-stream="app/camera1"]');
    await card.waitFor({ timeout: 5000 });
    await waitFor(() => card.locator('dd').first().textContent(), (t) => /RTSP pull/.test(t ?? ''), 5000);
    assert.match(await card.locator('dd').first().textContent() ?? '', /RTSP pull/);
    const preview = await waitFor(() => previewFrames('app/camera1'), (p) => p.frames > 10 && p.width > 0, 20_000);
    assert.ok(preview.frames > 10, `the pull's preview decoded ${preview.frames} frames`);
    assert.match(await card.locator('.codecs').textContent() ?? '', /H264/);

    // The same name again: OvenMediaEngine's 409, in its words.
    const before = consoleErrors.length;
    await form.getByLabel('Stream name').fill('camera1');
    await form.getByLabel('Source URL (RTSP or OVT)').fill(camera.url('/h264-opus'));
    await form.getByRole('button', { name: 'Pull' }).click();
    const alert = form.getByRole('alert');
    await alert.waitFor();
    assert.match(await alert.textContent() ?? '', /The pull was refused: .*already exists/i);
    // A URL that is no RTSP/OVT URL: a 400 with the API's message.
    await form.getByLabel('Stream name').fill('camera2');
    await form.getByLabel('Source URL (RTSP or OVT)').fill('http://127.0.0.1/nothing');
    await form.getByRole('button', { name: 'Pull' }).click();
    await waitFor(() => alert.textContent(), (t) => !/already exists/.test(t ?? ''), 5000);
    assert.match(await alert.textContent() ?? '', /The pull was refused: \S+/);
    // The browser's own notes of those two refusals are the only console errors of this step.
    const provoked = consoleErrors.splice(before);
    assert.ok(provoked.every((e) => /Failed to load resource: the server responded with a status of (409|400|502)/.test(e)), provoked.join('\n'));
    await screenshot('streams-pull');
  });

  test('a room joined from the join page is recorded: started, stopped and played in the page', async () => {
    await open('join');
    await page.getByLabel('Your name').fill('Console tester');
    await page.getByRole('button', { name: 'Join' }).click();
    await page.locator('p.joined').waitFor({ timeout: 20_000 });
    const sessionName = (await page.locator('p.joined strong.mono').textContent())!.trim();
    // openvidu-browser published the fake camera: the room's stream plays.
    await waitFor(() => page.evaluate(() => document.querySelector<HTMLVideoElement>('#local-video video')?.videoWidth ?? 0), (w) => w > 0, 15_000);
    await screenshot('join');
    const participants = await waitFor(async () => ((await api('/v1/sessions')).json.data as any[]).filter((s) => s.attributes.kind === 'participant'), (p) => p.length === 1, 10_000);
    assert.equal(participants.length, 1);

    // The join page stays connected while another tab drives the console: the console's state is
    // per tab, so a second console tab signs in again.
    const second = await chromium.browser.newPage();
    second.on('console', (msg) => msg.type() === 'error' && consoleErrors.push(`[recordings tab] ${msg.text()}`));
    second.on('pageerror', (err) => consoleErrors.push(`[recordings tab] uncaught: ${err.message}`));
    await second.setViewportSize({ width: 1280, height: 900 });
    await signInToConsole(second, `${kiln.signalingUrl}/console/#/recordings`, kiln.user, kiln.password);
    await second.getByRole('heading', { name: 'Recordings', level: 2 }).waitFor();
    const start = second.locator('form.record');
    await waitFor(() => start.getByLabel('Room session').locator('option').allTextContents(), (o) => o.includes(sessionName), 5000);
    await start.getByLabel('Room session').selectOption({ label: sessionName });
    await start.getByRole('button', { name: 'Start recording' }).click();
    const running = second.locator('section.running li');
    await running.waitFor({ timeout: 5000 });
    await waitFor(() => running.textContent(), (t) => /started/.test(t ?? ''), 10_000);
    // The join page shows the recording (the server's recordingStarted notification).
    await page.locator('p.joined .recording-on').waitFor({ timeout: 5000 });
    await new Promise((r) => setTimeout(r, 4000));
    await second.screenshot({ path: join(OUTPUT, 'recordings-running.png'), fullPage: true });
    await running.getByRole('button', { name: /^Stop / }).click();
    await running.waitFor({ state: 'detached', timeout: 60_000 });
    await page.locator('p.joined .recording-on').waitFor({ state: 'detached', timeout: 5000 });
    const row = second.locator('#recordings-table tbody tr[data-recording]').first();
    await waitFor(() => row.textContent(), (t) => /completed/.test(t ?? ''), 60_000);
    assert.match(await row.textContent() ?? '', /completed/);
    await row.getByRole('button', { name: 'Play' }).click();
    const played = await waitFor(
      () => second.evaluate(() => {
        const v = document.querySelector<HTMLVideoElement>('video.recording-player');
        return v ? { duration: v.duration, time: v.currentTime, width: v.videoWidth, error: v.error?.message ?? null } : null;
      }),
      (v) => v !== null && (v.error !== null || (v.width > 0 && v.time > 0.5)),
      20_000,
    );
    assert.ok(played && played.error === null, `the recording plays: ${JSON.stringify(played)}`);
    assert.ok(played.duration > 2 && played.width > 0, `duration ${played.duration} s, width ${played.width}`);
    assert.equal(await row.getByRole('link', { name: 'Download' }).getAttribute('download') !== null, true);
    await second.screenshot({ path: join(OUTPUT, 'recordings.png'), fullPage: true });
    // Deleted from the table: gone from the list and from the APIs.
    const id = await row.getAttribute('data-recording');
    await row.getByRole('button', { name: /^Delete recording/ }).click();
    await row.getByRole('button', { name: 'Delete recording' }).click();
    await second.locator(`#recordings-table tr[data-recording="${id}"]`).waitFor({ state: 'detached', timeout: 3000 });
    assert.equal((await api(`/api/video/room_recordings/${id}`)).status, 404);
    await second.close();

    // Leaving the room from the join page ends the participant.
    step = 'join-leave';
    await page.getByRole('button', { name: 'Leave' }).click();
    await waitFor(async () => ((await api('/v1/sessions')).json.data as any[]).filter((s) => s.attributes.kind === 'participant').length, (n) => n === 0, 10_000);
  });

  test('120 room sessions page by 20 through the Rooms view, filtered like the SignalWire API', async () => {
    // 120 real room sessions: made through OpenVidu, joined and left over the room WebSocket.
    const made: string[] = [];
    for (let batch = 0; batch < 6; batch++) {
      await Promise.all(Array.from({ length: 20 }, async () => {
        const { json: session } = await api('/api/sessions', { method: 'POST', body: '{}' });
        const { json: token } = await api('/api/tokens', { method: 'POST', body: JSON.stringify({ session: session.id, role: 'PUBLISHER' }) });
        const rpc = await RoomRpc.connect(`${kiln.wsUrl}/room`);
        await rpc.call('joinRoom', { session: session.id, token: token.token, metadata: '' });
        await rpc.call('leaveRoom', {});
        rpc.close();
        made.push(session.id.split('/').pop());
      }));
    }
    // Each ends when it has been empty for the rooms' empty time-out (5 s).
    await waitFor(async () => (await api('/api/video/room_sessions?status=completed&page_size=1000')).json.data.length, (n) => n >= 121, 20_000);

    await open('rooms');
    await page.getByLabel('Status').selectOption('completed');
    const rows = page.locator('#room-sessions-table tbody tr[data-room-session]');
    const seen = new Set<string>();
    let pages = 0;
    for (;;) {
      await waitFor(() => rows.count(), (n) => n > 0, 5000);
      const ids = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-room-session')!));
      assert.ok(ids.length <= 20, `a page holds at most 20 (got ${ids.length})`);
      for (const id of ids) {
        assert.equal(seen.has(id), false, `room session ${id} shows on one page only`);
        seen.add(id);
      }
      pages++;
      if (pages === 2) await screenshot('rooms');
      const next = page.getByRole('navigation', { name: 'Room session pages' }).getByRole('button', { name: 'Next' });
      if (await next.isDisabled()) break;
      const first = ids[0];
      await next.click();
      await waitFor(() => rows.first().getAttribute('data-room-session'), (id) => id !== first, 5000);
      assert.ok(pages < 20, 'paging ends');
    }
    // 120 made here, and the room session of the join test.
    assert.equal(seen.size, 121);
    assert.equal(pages, 7);
    assert.match(await page.getByRole('navigation', { name: 'Room session pages' }).textContent() ?? '', /Page 7/);
    await page.getByRole('navigation', { name: 'Room session pages' }).getByRole('button', { name: 'Previous' }).click();
    await waitFor(() => page.getByRole('navigation', { name: 'Room session pages' }).textContent(), (t) => /Page 6/.test(t ?? ''), 3000);

    // Filtered by name: one of those made.
    await page.getByLabel('Room name contains').fill(made[7]);
    await waitFor(() => rows.count(), (n) => n === 1, 5000);
    assert.equal(await rows.count(), 1);
    await rows.first().getByRole('link').click();
    await page.getByRole('heading', { name: /Room session/ }).waitFor();
    const member = page.locator('#members-table tbody tr[data-member]');
    await waitFor(() => member.count(), (n) => n === 1, 5000);
    assert.equal(await member.count(), 1);
    assert.match(await member.first().textContent() ?? '', /PUBLISHER/);
    assert.match(await member.first().textContent() ?? '', /disconnect/);
    await screenshot('room-session');
  });

  test('an in-progress room session is ended with its End button', async () => {
    const { json: session } = await api('/api/sessions', { method: 'POST', body: '{}' });
    const name = session.id.split('/').pop();
    const { json: token } = await api('/api/tokens', { method: 'POST', body: JSON.stringify({ session: session.id, role: 'PUBLISHER' }) });
    const rpc = await RoomRpc.connect(`${kiln.wsUrl}/room`);
    await rpc.call('joinRoom', { session: session.id, token: token.token, metadata: '' });
    await open('rooms');
    await page.getByLabel('Room name contains').fill('');
    await page.getByLabel('Status').selectOption('in-progress');
    const row = page.locator(`#room-sessions-table tbody tr`).filter({ hasText: name });
    await row.waitFor({ timeout: 3000 });
    // By keyboard: Enter asks, the question takes focus, Escape withdraws it and focus comes back.
    await row.getByRole('button', { name: `End ${name}` }).focus();
    await page.keyboard.press('Enter');
    const focused = (what: 'text' | 'label') => page.evaluate((w) => (w === 'text' ? document.activeElement?.textContent : document.activeElement?.getAttribute('aria-label')) ?? null, what);
    assert.equal(await waitFor(() => focused('text'), (t) => t === 'End session', 2000), 'End session');
    await page.keyboard.press('Escape');
    assert.equal(await waitFor(() => focused('label'), (t) => t === `End ${name}`, 2000), `End ${name}`);
    await page.keyboard.press('Enter');
    await page.keyboard.press('Enter');
    await row.waitFor({ state: 'detached', timeout: 3000 });
    await rpc.closed();
    const list = (await api(`/api/video/room_sessions?room_name=${name}`)).json.data;
    assert.equal(list[0].status, 'completed');
  });

  test('overview charts, nodes, and every view on a phone-sized screen, with no console errors', async () => {
    await open('overview');
    // The charts have points (a point a second) and the tiles count the live sessions.
    await waitFor(() => page.locator('figure.chart [role="img"]').first().getAttribute('aria-label'), (l) => /in \d/.test(l ?? ''), 5000);
    assert.match(await page.locator('figure.chart [role="img"]').first().getAttribute('aria-label') ?? '', /Media bit rate: in [\d.]+ \S*bit\/s, out/);
    assert.equal(await waitFor(() => page.locator('figure.chart canvas').count(), (n) => n === 2, 3000), 2);
    await screenshot('overview');
    await open('nodes');
    const node = page.locator('#nodes-table tbody tr[data-node]');
    await node.waitFor();
    assert.match(await node.textContent() ?? '', /alive/);
    await screenshot('nodes');

    // The publish and play pages are linked from the console.
    assert.equal(await page.getByRole('link', { name: 'Publish', exact: true }).getAttribute('href'), '/publish.html');
    assert.equal(await page.getByRole('link', { name: 'Play', exact: true }).getAttribute('href'), '/play.html');

    // axe-core's checks (WCAG 2.1 A and AA) on every view: no serious or critical violation.
    await page.addScriptTag({ path: AXE });
    for (const view of ['overview', 'streams', 'sessions', 'rooms', 'recordings', 'nodes', 'join']) {
      await open(view);
      await new Promise((r) => setTimeout(r, 1200));
      const violations = await page.evaluate(async () => {
        const axe = (window as unknown as { axe: { run: (ctx: unknown, o: unknown) => Promise<{ violations: { id: string; impact: string; nodes: { target: string[] }[] }[] }> } }).axe;
        const result = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
        return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
      });
      assert.deepEqual(violations, [], `${view}: accessibility violations`);
    }

    await page.setViewportSize({ width: 390, height: 844 });
    for (const view of ['overview', 'streams', 'sessions', 'rooms', 'recordings', 'nodes', 'join']) {
      await open(view);
      await new Promise((r) => setTimeout(r, 1200));
      // Nothing wider than the screen but the tables, which scroll in their own region.
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 1, `${view} fits a phone's width (overflow ${overflow} px)`);
      await screenshot(`phone-${view}`);
    }
    await page.setViewportSize({ width: 1280, height: 900 });
    await (globalThis as { kilnPublisher?: Page }).kilnPublisher?.close();
    assert.deepEqual(consoleErrors, []);
  });
});

