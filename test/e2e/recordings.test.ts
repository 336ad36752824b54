/**
 * Recordings end to end (seed 004's /api/recordings): openvidu-browser 1.9.0 participants in
 * Chromium publish their fake camera and microphone, Kiln records the room session, and the MP4 it
 * serves is checked with ffprobe and ffmpeg: streams, grid size, duration against the wall clock,
 * both videos on screen, a clean decode. Also every status code of the seed, ALWAYS mode,
 * SignalWire's record_on_start, a `kill -9` during a recording, and a failing ffmpeg.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startKiln, freePort, type KilnProcess } from '../helpers/kiln-process.ts';
import { launchChromium, waitFor, type LaunchedBrowser } from '../helpers/browser.ts';
import { startSite, type Site } from '../helpers/site.ts';
import { joinWithOpenVidu, waitForMedia, type OpenViduParticipant } from '../helpers/openvidu-page.ts';

const run = promisify(execFile);

let kiln: KilnProcess;
let chromium: LaunchedBrowser;
let site: Site;
let openvidu: string;
let publicUrl: string;
const scratch = mkdtempSync(join(tmpdir(), 'kiln-rec-test-'));

before(async () => {
  const sigPort = String(await freePort());
  publicUrl = `http://127.0.0.1:${sigPort}`;
  kiln = await startKiln({ KILN_SIGNALING_PORT: sigPort, KILN_PUBLIC_URL: publicUrl });
  openvidu = `Basic ${Buffer.from(`OPENVIDUAPP:${kiln.password}`).toString('base64')}`;
  chromium = await launchChromium();
  site = await startSite();
});
after(async () => {
  await chromium?.close();
  await site?.close();
  assert.equal(await kiln?.stop(30_000), 0);
  rmSync(scratch, { recursive: true, force: true });
});

type Json = Record<string, unknown>;

async function call(k: KilnProcess, method: string, path: string, body?: unknown, raw?: string): Promise<{ status: number; json: Json; text: string }> {
  const res = await fetch(`${k.apiUrl}${path}`, {
    method,
    headers: { authorization: `Basic ${Buffer.from(`OPENVIDUAPP:${k.password}`).toString('base64')}`, 'content-type': 'application/json' },
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  const text = await res.text();
  let json: Json = {};
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    // not JSON: kept as text
  }
  return { status: res.status, json, text };
}

async function newSession(k: KilnProcess, body?: Json): Promise<string> {
  const created = await call(k, 'POST', '/api/sessions', body);
  assert.equal(created.status, 200, created.text);
  return created.json.id as string;
}

async function joinAs(k: KilnProcess, sessionId: string, who: string): Promise<OpenViduParticipant> {
  const token = await call(k, 'POST', '/api/tokens', { session: sessionId, role: 'PUBLISHER', data: who });
  assert.equal(token.status, 200, token.text);
  return joinWithOpenVidu(chromium.browser, site.url, sessionId, token.json.token as string, `${who}-meta`);
}

async function probe(file: string): Promise<{ duration: number; streams: { codec_type: string; codec_name: string; width?: number; height?: number }[] }> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type,codec_name,width,height:format=duration', '-of', 'json', file]);
  const parsed = JSON.parse(stdout) as { format: { duration: string }; streams: { codec_type: string; codec_name: string; width?: number; height?: number }[] };
  return { duration: Number(parsed.format.duration), streams: parsed.streams };
}

/** `ffmpeg -v error` decoding the whole file: what it prints (nothing for a clean file). */
async function decodeErrors(file: string): Promise<string> {
  const { stderr } = await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', file, '-f', 'null', '-']);
  return stderr.trim();
}

/** Mean luma of regions of the frame at `seconds`, scaled to 160x90 gray: each region [x0, y0, x1, y1) in that grid. */
async function luma(file: string, seconds: number, regions: [number, number, number, number][]): Promise<number[]> {
  const { stdout } = await run('ffmpeg', ['-nostdin', '-v', 'error', '-ss', String(seconds), '-i', file, '-frames:v', '1', '-vf', 'scale=160:90', '-f', 'rawvideo', '-pix_fmt', 'gray', '-'], { encoding: 'buffer', maxBuffer: 1 << 20 });
  const buf = stdout as unknown as Buffer;
  assert.equal(buf.length, 160 * 90);
  return regions.map(([x0, y0, x1, y1]) => {
    let sum = 0;
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) sum += buf[y * 160 + x];
    return sum / ((x1 - x0) * (y1 - y0));
  });
}

/** Polls a recording until `until` holds. */
async function recordingUntil(k: KilnProcess, id: string, until: (r: Json) => boolean, timeoutMs = 60_000): Promise<Json> {
  return waitFor(async () => (await call(k, 'GET', `/api/recordings/${encodeURIComponent(id)}`)).json, until, timeoutMs);
}

describe('a two-party OpenVidu session, recorded', () => {
  let sessionId: string;
  let name: string;
  let alice: OpenViduParticipant;
  let bob: OpenViduParticipant;
  let carol: OpenViduParticipant;
  let carolAt = 0;
  let recordingId: string;
  let startedAt = 0;
  let wall = 0;
  const file = join(scratch, 'two-party.mp4');

  test('bad input gets the seed\'s status codes, in OpenVidu\'s error shape', async () => {
    sessionId = await newSession(kiln);
    name = sessionId.slice(sessionId.lastIndexOf('/') + 1);
    const notJson = await call(kiln, 'POST', '/api/recordings/start', undefined, '{"session":');
    assert.equal(notJson.status, 400, notJson.text);
    assert.equal(notJson.json.status, 400);
    assert.equal((await call(kiln, 'POST', '/api/recordings/start', {})).status, 400);
    assert.equal((await call(kiln, 'POST', '/api/recordings/start', { session: 42 })).status, 400);
    assert.equal((await call(kiln, 'POST', '/api/recordings/start', undefined, '[1,2]')).status, 400);
    const unknown = await call(kiln, 'POST', '/api/recordings/start', { session: 'wss://nowhere/abcdefabcdefabcd' });
    assert.equal(unknown.status, 404, unknown.text);
    // A session nobody joined yet has no connected participants.
    assert.equal((await call(kiln, 'POST', '/api/recordings/start', { session: sessionId })).status, 400);
    assert.equal((await call(kiln, 'POST', '/api/recordings/stop')).status, 400);
    for (const id of ['nope', '..', '%2E%2E', 'a%2Fb', '..%2F..%2Fkiln.db', 'x%00y']) {
      assert.equal((await call(kiln, 'POST', `/api/recordings/stop/${id}`)).status, 404, `stop ${id}`);
      assert.equal((await call(kiln, 'GET', `/api/recordings/${id}`)).status, 404, `get ${id}`);
      assert.equal((await call(kiln, 'DELETE', `/api/recordings/${id}`)).status, 404, `delete ${id}`);
    }
    assert.equal((await call(kiln, 'GET', '/api/recordings/a/b')).status, 404);
    // The file route: no way out of the recordings folder, and nothing before credentials.
    for (const path of ['/recordings/nope.mp4', '/recordings/..%2Fkiln.db', '/recordings/%2E%2E%2F%2E%2E%2Fkiln.db.mp4', '/recordings/x%00.mp4', '/recordings/a.txt']) {
      const res = await fetch(`${publicUrl}${path}`, { headers: { authorization: kiln.basic } });
      assert.equal(res.status, 404, path);
    }
    assert.equal((await fetch(`${publicUrl}/recordings/${name}.mp4`)).status, 401);
    const noAuth = await fetch(`${kiln.apiUrl}/api/recordings`);
    assert.equal(noAuth.status, 401);
    const list = await call(kiln, 'GET', '/api/recordings');
    assert.equal(list.status, 200);
    assert.deepEqual(list.json, { count: 0, items: [] });
  });

  test('start answers once the file holds media; a second start is 409; participants are told', async () => {
    alice = await joinAs(kiln, sessionId, 'alice');
    await alice.publish();
    bob = await joinAs(kiln, sessionId, 'bob');
    await bob.publish();
    await waitForMedia(alice, `${bob.connectionId}_CAMERA`);
    await waitForMedia(bob, `${alice.connectionId}_CAMERA`);

    const started = await call(kiln, 'POST', '/api/recordings/start', { session: sessionId });
    startedAt = Date.now();
    assert.equal(started.status, 200, started.text);
    const r = started.json;
    assert.deepEqual(Object.keys(r), ['createdAt', 'duration', 'hasAudio', 'hasVideo', 'id', 'name', 'sessionId', 'size', 'status', 'url']);
    assert.equal(r.id, name);
    assert.equal(r.name, name);
    assert.equal(r.sessionId, sessionId);
    assert.equal(r.status, 'started');
    assert.equal(r.url, null);
    assert.equal(r.size, 0);
    assert.equal(r.duration, 0);
    assert.equal(r.hasAudio, true);
    assert.equal(r.hasVideo, true);
    assert.ok(typeof r.createdAt === 'number' && Math.abs((r.createdAt as number) - Date.now()) < 15_000);
    recordingId = r.id as string;
    // "The video file is already created and contains proper data": when start answers, media is
    // on disk (past the files' headers), and soon every published track (two videos, two audios) is.
    const folder = join(kiln.dataDir, 'recordings', recordingId, 'tracks');
    const holding = () => readdirSync(folder).filter((t) => statSync(join(folder, t)).size > (t.endsWith('.ivf') ? 32 + 12 : 200));
    assert.ok(holding().length > 0, readdirSync(folder).join(', '));
    await waitFor(async () => holding(), (h) => h.length === 4, 5000);

    assert.equal((await call(kiln, 'POST', '/api/recordings/start', { session: sessionId })).status, 409);
    assert.equal((await call(kiln, 'DELETE', `/api/recordings/${recordingId}`)).status, 409);
    const got = await call(kiln, 'GET', `/api/recordings/${recordingId}`);
    assert.equal(got.status, 200);
    assert.equal(got.json.status, 'started');
    const list = await call(kiln, 'GET', '/api/recordings');
    assert.equal(list.json.count, 1);
    await waitFor(alice.log, (l) => l.rpc.some((m) => m.method === 'recordingStarted' && m.params?.id === recordingId), 5000);
  });

  test('a third publisher joins at ~3 s; stop after ~9 s: a stopped recording with its duration and size', async (t) => {
    await new Promise((r) => setTimeout(r, 3000 - (Date.now() - startedAt)));
    carol = await joinAs(kiln, sessionId, 'carol');
    await carol.publish();
    await waitForMedia(alice, `${carol.connectionId}_CAMERA`);
    carolAt = (Date.now() - startedAt) / 1000;
    assert.ok(carolAt < 7, `carol's video reached alice at ${carolAt} s`);
    await new Promise((r) => setTimeout(r, 9000 - (Date.now() - startedAt)));
    // The wall time recorded: from start's answer to the stop request (stop then waits for the file).
    wall = (Date.now() - startedAt) / 1000;
    const stopped = await call(kiln, 'POST', `/api/recordings/stop/${recordingId}`);
    assert.equal(stopped.status, 200, stopped.text);
    assert.equal(stopped.json.status, 'stopped');
    assert.equal(stopped.json.url, null);
    assert.ok((stopped.json.size as number) > 50_000, `size ${stopped.json.size}`);
    t.diagnostic(`recorded ${stopped.json.duration} s for ${wall} s of wall time between start's answer and stop`);
    assert.ok(Math.abs((stopped.json.duration as number) - wall) < 1, `duration ${stopped.json.duration} vs wall ${wall}`);
    // Not in progress any more: 404, as OpenVidu answers.
    assert.equal((await call(kiln, 'POST', `/api/recordings/stop/${recordingId}`)).status, 404);
    await waitFor(bob.log, (l) => l.rpc.some((m) => m.method === 'recordingStopped' && m.params?.id === recordingId), 5000);
  });

  test('the file downloads through its URL, with range requests, and is a clean H.264/AAC grid that re-tiles', async () => {
    const url = `${publicUrl}/recordings/${recordingId}.mp4`;
    assert.equal((await fetch(url)).status, 401);
    const part = await fetch(url, { headers: { authorization: openvidu, range: 'bytes=0-99' } });
    assert.equal(part.status, 206);
    const total = Number(/\/(\d+)$/.exec(part.headers.get('content-range') ?? '')?.[1]);
    assert.equal(part.headers.get('content-range'), `bytes 0-99/${total}`);
    assert.equal((await part.arrayBuffer()).byteLength, 100);
    const tail = await fetch(url, { headers: { authorization: kiln.basic, range: 'bytes=-10' } });
    assert.equal(tail.status, 206);
    assert.equal(tail.headers.get('content-range'), `bytes ${total - 10}-${total - 1}/${total}`);
    assert.equal((await fetch(url, { headers: { authorization: kiln.basic, range: `bytes=${total}-` } })).status, 416);
    const head = await fetch(url, { method: 'HEAD', headers: { authorization: kiln.basic } });
    assert.equal(head.headers.get('content-length'), String(total));
    assert.equal(head.headers.get('accept-ranges'), 'bytes');
    const full = await fetch(url, { headers: { authorization: kiln.basic } });
    assert.equal(full.status, 200);
    assert.equal(full.headers.get('content-type'), 'video/mp4');
    const body = Buffer.from(await full.arrayBuffer());
    assert.equal(body.length, total);
    writeFileSync(file, body);
    if (process.env.KILN_KEEP_RECORDING) writeFileSync(process.env.KILN_KEEP_RECORDING, body);

    const p = await probe(file);
    const video = p.streams.filter((s) => s.codec_type === 'video');
    const audio = p.streams.filter((s) => s.codec_type === 'audio');
    assert.equal(video.length, 1, JSON.stringify(p.streams));
    assert.equal(audio.length, 1, JSON.stringify(p.streams));
    assert.equal(video[0].codec_name, 'h264');
    assert.equal(audio[0].codec_name, 'aac');
    assert.equal(video[0].width, 1280);
    assert.equal(video[0].height, 720);
    assert.ok(Math.abs(p.duration - wall) < 1, `ffprobe ${p.duration} s vs wall ${wall} s`);
    assert.equal(await decodeErrors(file), '');
    // Regions of the 160x90 grid: the top band (black above two 4:3 videos side by side), the left
    // and right halves, and the bottom row's corners and middle (a 2x2 grid of three centres the third).
    const top: [number, number, number, number] = [0, 2, 160, 12];
    const left: [number, number, number, number] = [0, 20, 80, 70];
    const right: [number, number, number, number] = [80, 20, 160, 70];
    const bottomLeft: [number, number, number, number] = [0, 50, 30, 90];
    const bottomMiddle: [number, number, number, number] = [60, 55, 100, 85];
    const bottomRight: [number, number, number, number] = [130, 50, 160, 90];
    // At 1.5 s: alice and bob side by side. The fake camera's picture is green (a mean luma of
    // 6-30 in a region, by where its moving pie is), black is 0-2: a video is a region clearly
    // brighter than the black bands.
    const [top1, left1, right1] = await luma(file, 1.5, [top, left, right]);
    assert.ok(top1 < 5 && left1 > top1 + 3 && right1 > top1 + 3, `two up: top ${top1}, left ${left1}, right ${right1}`);
    // Near the end: three videos in a 2x2 grid, the third centred in the bottom row.
    const [top2, bl2, bm2, br2] = await luma(file, p.duration - 0.7, [top, bottomLeft, bottomMiddle, bottomRight]);
    const black2 = Math.max(bl2, br2);
    assert.ok(bl2 < 5 && br2 < 5 && top2 > black2 + 3 && bm2 > black2 + 3, `2x2 of three: top ${top2}, bottom ${bl2} / ${bm2} / ${br2}`);

    // Its life as events: each status once, in order.
    const events = await fetch(`${kiln.apiUrl}/v1/events?page[size]=1000`, { headers: { authorization: kiln.basic } }).then((r) => r.json()) as { data: any[] };
    const statuses = events.data.reverse().filter((e) => e.attributes.event === 'recording.status' && e.attributes.data.recording.id === recordingId)
      .map((e) => e.attributes.data.recording.status);
    assert.deepEqual(statuses, ['starting', 'started', 'stopped', 'available']);
  });

  test('a second recording of the session takes the next id; DELETE removes file and record', async () => {
    const again = await call(kiln, 'POST', '/api/recordings/start', { session: sessionId });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.json.id, `${name}-1`);
    const stopped = await call(kiln, 'POST', `/api/recordings/stop/${name}-1`);
    assert.equal(stopped.status, 200);
    const list = await call(kiln, 'GET', '/api/recordings');
    assert.equal(list.json.count, 2);
    assert.deepEqual((list.json.items as Json[]).map((r) => r.id), [`${name}-1`, name]);

    assert.equal((await call(kiln, 'DELETE', `/api/recordings/${recordingId}`)).status, 204);
    assert.equal((await call(kiln, 'GET', `/api/recordings/${recordingId}`)).status, 404);
    assert.equal((await call(kiln, 'DELETE', `/api/recordings/${recordingId}`)).status, 404);
    assert.equal((await fetch(`${publicUrl}/recordings/${recordingId}.mp4`, { headers: { authorization: kiln.basic } })).status, 404);
    assert.equal(existsSync(join(kiln.dataDir, 'recordings', recordingId)), false);
    assert.equal((await call(kiln, 'GET', '/api/recordings')).json.count, 1);
  });

  after(async () => {
    await alice?.page.close();
    await bob?.page.close();
    await carol?.page.close();
  });
});

describe('automatic recordings', () => {
  test('archiveMode ALWAYS: recording starts with the first publish and stops when the last participant leaves', async () => {
    const sessionId = await newSession(kiln, { archiveMode: 'ALWAYS' });
    const name = sessionId.slice(sessionId.lastIndexOf('/') + 1);
    const carol = await joinAs(kiln, sessionId, 'carol');
    // Joined, not publishing: nothing recorded yet.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await call(kiln, 'GET', `/api/recordings/${name}`)).status, 404);
    await carol.publish();
    const started = await recordingUntil(kiln, name, (r) => r.status === 'started', 15_000);
    assert.equal(started.sessionId, `${publicUrl.replace('http', 'ws')}/${name}`);
    await waitFor(carol.log, (l) => l.rpc.some((m) => m.method === 'recordingStarted' && m.params?.id === name), 5000);
    await new Promise((r) => setTimeout(r, 3000));
    await carol.page.close();
    const done = await recordingUntil(kiln, name, (r) => r.status === 'stopped' && (r.size as number) > 0, 60_000);
    const out = join(scratch, 'always.mp4');
    const res = await fetch(`${publicUrl}/recordings/${name}.mp4`, { headers: { authorization: openvidu } });
    writeFileSync(out, Buffer.from(await res.arrayBuffer()));
    const p = await probe(out);
    assert.ok(p.duration > 2 && p.duration < 6, `duration ${p.duration}`);
    assert.ok(Math.abs(p.duration - (done.duration as number)) < 0.1);
    assert.equal(await decodeErrors(out), '');
  });

  test('SignalWire record_on_start: the room session is recorded and listed under /room_sessions/{id}/recordings', async () => {
    const sw = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${kiln.apiUrl}/api/video${path}`, {
        method, headers: { authorization: kiln.basic, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, json: (await res.json()) as Json };
    };
    const room = await sw('POST', '/rooms', { name: 'recorded_room', record_on_start: true });
    assert.equal(room.status, 200, JSON.stringify(room.json));
    assert.equal(room.json.record_on_start, true);
    const token = await sw('POST', '/room_tokens', { room_name: 'recorded_room', user_name: 'dora' });
    const dora = await joinWithOpenVidu(chromium.browser, site.url, `${publicUrl.replace('http', 'ws')}/recorded_room`, token.json.token as string, 'dora-meta');
    await dora.publish();
    const started = await recordingUntil(kiln, 'recorded_room', (r) => r.status === 'started', 15_000);
    assert.equal(started.name, 'recorded_room');
    const sessions = await sw('GET', '/room_sessions?room_name=recorded_room&status=in-progress');
    const rs = (sessions.json.data as Json[])[0];
    assert.equal(rs.record_on_start, true);
    const live = await sw('GET', `/room_sessions/${rs.id}/recordings`);
    assert.equal(live.status, 200);
    const liveRow = (live.json.data as Json[])[0];
    assert.equal(liveRow.status, 'recording');
    assert.equal(liveRow.room_session_id, rs.id);
    assert.equal(liveRow.uri, null);
    await new Promise((r) => setTimeout(r, 2500));
    await dora.page.close();
    await recordingUntil(kiln, 'recorded_room', (r) => r.status === 'stopped' && (r.size as number) > 0, 60_000);
    const listed = await sw('GET', `/room_sessions/${rs.id}/recordings?media_ttl=60`);
    const row = (listed.json.data as Json[])[0];
    assert.deepEqual(Object.keys(row).sort(), ['cost_in_dollars', 'created_at', 'duration', 'finished_at', 'format', 'id', 'room_session_id', 'size_in_bytes', 'started_at', 'status', 'updated_at', 'uri']);
    assert.equal(row.status, 'completed');
    assert.equal(row.format, 'video/mp4');
    assert.ok((row.size_in_bytes as number) > 0);
    assert.match(row.id as string, /^[0-9a-f-]{36}$/);
    // The temporary link needs no credentials; a forged one does.
    const file = await fetch(row.uri as string);
    assert.equal(file.status, 200);
    assert.equal(Number(file.headers.get('content-length')), row.size_in_bytes);
    await file.arrayBuffer();
    // (its first signature character changed: replacing it by a fixed one left it as it was when it was already that one)
    assert.equal((await fetch((row.uri as string).replace(/signature=(.)/, (_m, c: string) => `signature=${c === 'A' ? 'B' : 'A'}`))).status, 401);
    // It plays in a browser: Chromium loads it through the link, seeks by ranges and decodes it.
    const page = await chromium.browser.newPage();
    try {
      await page.goto(site.url);
      const played = await page.evaluate(async (src) => {
        const video = document.createElement('video');
        video.muted = true;
        video.src = src;
        document.body.appendChild(video);
        await new Promise((resolve, reject) => {
          video.onloadedmetadata = resolve;
          video.onerror = () => reject(new Error(`video error ${video.error?.code}: ${video.error?.message}`));
        });
        await video.play();
        await new Promise((resolve) => setTimeout(resolve, 1500));
        const q = video.getVideoPlaybackQuality();
        return { duration: video.duration, width: video.videoWidth, height: video.videoHeight, time: video.currentTime, frames: q.totalVideoFrames };
      }, row.uri as string);
      assert.equal(played.width, 1280, JSON.stringify(played));
      assert.equal(played.height, 720);
      assert.ok(Math.abs(played.duration - (row.duration as number)) < 1, JSON.stringify(played));
      assert.ok(played.time > 0.5 && played.frames > 10, JSON.stringify(played));
    } finally {
      await page.close();
    }
    assert.equal((await sw('GET', `/room_recordings/${row.id}`)).json.id, row.id);
    assert.equal((await sw('GET', `/room_sessions/${rs.id}/recordings?media_ttl=0`)).status, 422);
  });
});

describe('recordings survive a crash and a failing ffmpeg', () => {
  test('kill -9 during a recording: the next start composes what was captured; nothing is left started', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'kiln-crash-'));
    const sigPort = String(await freePort());
    const url = `http://127.0.0.1:${sigPort}`;
    const env = { KILN_DATA_DIR: dataDir, KILN_SIGNALING_PORT: sigPort, KILN_PUBLIC_URL: url, KILN_RECORDING_FREE_ACCESS: 'true' };
    let first: KilnProcess | undefined = await startKiln(env);
    let second: KilnProcess | undefined;
    try {
      const sessionId = await newSession(first);
      const name = sessionId.slice(sessionId.lastIndexOf('/') + 1);
      const erin = await joinAs(first, sessionId, 'erin');
      await erin.publish();
      await new Promise((r) => setTimeout(r, 1500));
      const started = await call(first, 'POST', '/api/recordings/start', { session: sessionId });
      assert.equal(started.status, 200, started.text);
      await new Promise((r) => setTimeout(r, 4000));
      first.child.kill('SIGKILL');
      await first.stop();
      first = undefined;
      await erin.page.close();

      second = await startKiln(env);
      const done = await recordingUntil(second, name, (r) => r.status === 'available' || r.status === 'failed', 60_000);
      assert.equal(done.status, 'available', JSON.stringify(done));
      assert.equal(done.url, `${url}/recordings/${name}.mp4`);
      const list = await call(second, 'GET', '/api/recordings');
      assert.ok((list.json.items as Json[]).every((r) => r.status !== 'started' && r.status !== 'starting'));
      // Free access: no credentials needed.
      const res = await fetch(done.url as string);
      assert.equal(res.status, 200);
      const out = join(scratch, 'crash.mp4');
      writeFileSync(out, Buffer.from(await res.arrayBuffer()));
      const p = await probe(out);
      assert.ok(p.duration > 2.5 && p.duration < 5.5, `duration ${p.duration}`);
      assert.deepEqual(p.streams.map((s) => s.codec_name).sort(), ['aac', 'h264']);
      assert.equal(await decodeErrors(out), '');
    } finally {
      await first?.stop();
      await second?.stop(30_000);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('SIGTERM during a recording: a clean exit within seconds; the recording is stopped, and composed by the next start if not before', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'kiln-term-'));
    const sigPort = String(await freePort());
    const env = { KILN_DATA_DIR: dataDir, KILN_SIGNALING_PORT: sigPort, KILN_PUBLIC_URL: `http://127.0.0.1:${sigPort}` };
    let first: KilnProcess | undefined = await startKiln(env);
    let second: KilnProcess | undefined;
    try {
      const sessionId = await newSession(first);
      const gil = await joinAs(first, sessionId, 'gil');
      await gil.publish();
      await new Promise((r) => setTimeout(r, 1500));
      const started = await call(first, 'POST', '/api/recordings/start', { session: sessionId });
      assert.equal(started.status, 200, started.text);
      await new Promise((r) => setTimeout(r, 3000));
      const t0 = Date.now();
      assert.equal(await first.stop(20_000), 0);
      assert.ok(Date.now() - t0 < 9000, `stopped in ${Date.now() - t0} ms`);
      first = undefined;
      await gil.page.close();
      second = await startKiln(env);
      const done = await recordingUntil(second, started.json.id as string, (r) => (r.status === 'stopped' && (r.size as number) > 0) || r.status === 'failed', 60_000);
      assert.equal(done.status, 'stopped', JSON.stringify(done));
      assert.ok((done.duration as number) > 2 && (done.duration as number) < 5, `duration ${done.duration}`);
    } finally {
      await first?.stop();
      await second?.stop(30_000);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('ffmpeg failing: the recording is failed, the reason is logged, the server keeps serving', async () => {
    const sigPort = String(await freePort());
    const broken = await startKiln({ KILN_SIGNALING_PORT: sigPort, KILN_PUBLIC_URL: `http://127.0.0.1:${sigPort}`, KILN_FFMPEG: '/bin/false', KILN_LOG_LEVEL: 'info' });
    try {
      const sessionId = await newSession(broken);
      const fay = await joinAs(broken, sessionId, 'fay');
      await fay.publish();
      await new Promise((r) => setTimeout(r, 1000));
      const started = await call(broken, 'POST', '/api/recordings/start', { session: sessionId });
      assert.equal(started.status, 200, started.text);
      await new Promise((r) => setTimeout(r, 1500));
      const stopped = await call(broken, 'POST', `/api/recordings/stop/${started.json.id}`);
      assert.equal(stopped.status, 200);
      assert.equal(stopped.json.status, 'failed');
      // The reason is in the log (which reaches this process a moment after the answer, maybe).
      await waitFor(async () => broken.output(), (out) => /recording failed[^\n]*ffmpeg exited with code 1/.test(out) || /ffmpeg exited with code 1[^\n]*recording failed/.test(out), 5000);
      assert.equal((await call(broken, 'GET', '/api/recordings')).status, 200);
      assert.equal((await fetch(`${broken.apiUrl}/healthz`)).status, 200);
      await fay.page.close();
    } finally {
      assert.equal(await broken.stop(30_000), 0);
    }
  });
});
