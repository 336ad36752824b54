/**
 * OVT between an OvtServer (origin) and an OvtPull (edge) over loopback TCP, with a real catalogue
 * and real forwarders on both sides and a scripted source: every RTP packet arrives as it left,
 * sender reports and key-frame requests travel, the end of the stream reaches the edge, and
 * broken, idle or slow peers are disconnected without hurting the origin.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import pino from 'pino';
import { RTCRtpCodecParameters, useNACK, usePLI } from 'werift';
import { Catalog } from '../../src/core/catalog.ts';
import { Session } from '../../src/core/session.ts';
import type { Stream } from '../../src/core/stream.ts';
import { Forwarder, type MediaPacket } from '../../src/media/forwarder.ts';
import { OvtServer } from '../../src/protocols/ovt/server.ts';
import { OvtPull } from '../../src/ingest/ovt-pull.ts';
import { PullError } from '../../src/ingest/rtsp-pull.ts';
import { encodeOvtPackets, OvtParser, OVT_MESSAGE_REQUEST, OVT_HEADER_SIZE, writeOvtHeader } from '../../src/protocols/ovt/packet.ts';
import { encodeRequest, parseResponse, type OvtResponse } from '../../src/protocols/ovt/signaling.ts';
import { waitFor } from '../helpers/browser.ts';

const logger = pino({ level: 'silent' });
const catalog = new Catalog([{ name: 'default', apps: [
  { name: 'app', playbackRequiresToken: false }, { name: 'rooms', playbackRequiresToken: false, rooms: true }, { name: 'private', playbackRequiresToken: true },
] }]);
const forwarders = new Map<Stream, Forwarder>();
const engine = { forwarderOf: (s: Stream) => (s.closed ? undefined : forwarders.get(s)) };
let server: OvtServer;
let keyFrameRequests = 0;

/** A published stream with a VP8 and an Opus track, as a WHIP publisher's forwarder has them. */
function publish(name: string, app = 'app'): { stream: Stream; forwarder: Forwarder; session: Session } {
  const session = new Session({ kind: 'publisher', protocol: 'whip', vhost: 'default', app, stream: name, remoteAddress: '127.0.0.1', remotePort: 1 });
  const forwarder = new Forwarder({ requestKeyFrame: () => keyFrameRequests++, counters: session.counters, keyFrameIntervalMs: 0 });
  forwarder.addTrack('video', new RTCRtpCodecParameters({ mimeType: 'video/VP8', clockRate: 90000, rtcpFeedback: [useNACK(), usePLI()] }));
  forwarder.addTrack('audio', new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2, parameters: 'minptime=10;useinbandfec=1' }));
  forwarder.tracks[0].info.width = 640;
  forwarder.tracks[0].info.height = 480;
  const stream = catalog.createStream(catalog.app('default', app), name, 'WebRTC', session);
  stream.tracks = forwarder.tracks.map((t) => t.info);
  session.setTeardown(() => forwarder.close());
  forwarders.set(stream, forwarder);
  return { stream, forwarder, session };
}

function packet(seq: number, ts: number, marker: boolean, payload: Buffer): MediaPacket {
  return { header: { sequenceNumber: seq, timestamp: ts, marker, extension: false, extensions: [] }, payload };
}

function pullOf(name: string, options: { noInputTimeoutMs?: number; urls?: string[]; auth?: (app: string, stream: string) => string } = {}): OvtPull {
  const session = new Session({ kind: 'pull', protocol: 'ovt', vhost: 'default', app: 'app', stream: name, remoteAddress: '127.0.0.1', remotePort: server.port });
  const pull = new OvtPull({
    urls: options.urls ?? [`ovt://127.0.0.1:${server.port}/app/${name}`],
    session,
    timeoutMs: 2000,
    noInputTimeoutMs: options.noInputTimeoutMs ?? 10_000,
    logger,
    auth: options.auth,
  });
  session.setTeardown(() => pull.close());
  return pull;
}

/** A bare OVT peer: sends requests, collects responses and media payloads. */
async function rawPeer(): Promise<{ socket: Socket; responses: OvtResponse[]; media: Buffer[]; request: (application: string, target: string, id?: number) => void; closed: Promise<void> }> {
  const socket = connect({ host: '127.0.0.1', port: server.port });
  await new Promise<void>((r) => socket.once('connect', () => r()));
  const responses: OvtResponse[] = [];
  const media: Buffer[] = [];
  const parser = new OvtParser({ onMessage: (_t, m) => responses.push(parseResponse(m)), onMedia: (m) => media.push(m) });
  socket.on('data', (c: Buffer) => parser.push(c));
  socket.on('error', () => {});
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  let id = 1;
  const request = (application: string, target: string, rid = id++) =>
    socket.write(encodeOvtPackets(OVT_MESSAGE_REQUEST, encodeRequest({ id: rid, application: application as 'play', target })));
  return { socket, responses, media, request, closed };
}

before(async () => {
  server = new OvtServer({
    host: '127.0.0.1', port: 0, catalog, engine, logger, idleTimeoutMs: 1500, maxBacklogBytes: 256 * 1024, stallTimeoutMs: 1000,
    authorize: (app, stream, auth) => auth === `proof:${app}/${stream}`,
  });
  await server.start();
});
after(async () => {
  await server.stop();
});

describe('an edge pulls a stream from the origin', () => {
  test('describe gives the tracks the edge rebuilds: codec, fmtp, feedback, picture size', async () => {
    publish('cam');
    const pull = pullOf('cam');
    await pull.open();
    const [video, audio] = pull.tracks;
    assert.equal(video.codec.mimeType, 'video/VP8');
    assert.equal(video.codec.clockRate, 90000);
    assert.deepEqual(video.codec.rtcpFeedback.map((f) => `${f.type} ${f.parameter ?? ''}`.trim()), ['nack', 'nack pli']);
    assert.equal(video.info.width, 640);
    assert.equal(video.info.height, 480);
    assert.equal(audio.codec.mimeType, 'audio/opus');
    assert.equal(audio.codec.channels, 2);
    assert.equal(audio.codec.parameters, 'minptime=10;useinbandfec=1');
    assert.equal(audio.info.channels, 2);
    assert.equal(pull.session.state, 'active');
    assert.equal(pull.currentUrl, `ovt://127.0.0.1:${server.port}/app/cam`);
    pull.session.close('client-left');
  });

  test('every RTP packet reaches the edge forwarder as it left the origin (padding-only ones too): sequence, timestamp, marker, payload; sender reports too', async () => {
    const { forwarder, session } = publish('exact');
    const pull = pullOf('exact');
    await pull.open();
    const got: { track: number; seq: number; ts: number; marker: boolean; payload: Buffer }[] = [];
    for (const [i, t] of pull.tracks.entries()) t.addOutput({ send: (rtp) => got.push({ track: i, seq: rtp.header.sequenceNumber, ts: rtp.header.timestamp, marker: rtp.header.marker, payload: Buffer.from(rtp.payload) }) });
    const origin = await waitFor(async () => catalog.stream('default', 'app', 'exact').players.size, (n) => n === 1, 2000);
    assert.equal(origin, 1, 'the edge is a player of the origin stream');
    const sent: typeof got = [];
    forwarder.tracks[1].senderReport = { ntp: 0xe1234567_89abcdefn, rtp: 123456 };
    for (let i = 0; i < 500; i++) {
      const track = i % 5 === 4 ? 1 : 0;
      const seq = (65500 + i) & 0xffff;
      const ts = (0xfffff000 + i * 900) >>> 0;
      // Every 50th is padding only (a bandwidth probe): no payload, its sequence number still counts.
      const payload = Buffer.alloc(i % 50 === 7 ? 0 : track === 0 ? 1 + (i * 37) % 1200 : 80, i & 0xff);
      if (payload.length > 0) payload[0] = 0x10; // a VP8 descriptor that is not a key frame
      const marker = i % 3 === 0;
      forwarder.push(forwarder.tracks[track], packet(seq, ts, marker, payload));
      sent.push({ track, seq, ts, marker, payload });
    }
    await waitFor(async () => got.length, (n) => n === sent.length, 5000);
    assert.equal(got.length, sent.length);
    for (let i = 0; i < sent.length; i++) {
      assert.equal(got[i].track, sent[i].track, `packet ${i}`);
      assert.equal(got[i].seq, sent[i].seq);
      assert.equal(got[i].ts, sent[i].ts);
      assert.equal(got[i].marker, sent[i].marker);
      assert.ok(got[i].payload.equals(sent[i].payload), `packet ${i} payload`);
    }
    assert.deepEqual(pull.tracks[1].senderReport, { ntp: 0xe1234567_89abcdefn, rtp: 123456 });
    assert.equal(pull.tracks[0].senderReport, undefined);
    assert.equal(pull.session.counters.packetsIn, 500);
    const originSession = [...catalog.stream('default', 'app', 'exact').players.values()][0];
    assert.equal(originSession.protocol, 'ovt');
    assert.equal(originSession.kind, 'player');
    assert.equal(originSession.counters.packetsOut, 500);
    pull.session.close('client-left');
    session.close('client-left');
  });

  test('a key frame asked for at the edge reaches the origin source', async () => {
    publish('keys');
    const pull = pullOf('keys');
    await pull.open();
    // The origin asks once as the edge starts playing.
    await waitFor(async () => keyFrameRequests, (n) => n > 0, 2000);
    const before = keyFrameRequests;
    pull.forwarder.requestKeyFrame();
    const after = await waitFor(async () => keyFrameRequests, (n) => n > before, 2000);
    assert.equal(after, before + 1);
    pull.session.close('client-left');
  });

  test('the end of the origin stream ends the edge session (stream-ended); the edge leaving removes its origin session', async () => {
    const { session } = publish('ending');
    const pull = pullOf('ending');
    await pull.open();
    const reason = new Promise((r) => pull.session.once('close', r));
    session.close('client-left');
    assert.equal(await reason, 'stream-ended');

    publish('left');
    const leaving = pullOf('left');
    await leaving.open();
    const origin = catalog.stream('default', 'app', 'left');
    await waitFor(async () => origin.players.size, (n) => n === 1, 2000);
    const connections = server.connections;
    leaving.session.close('client-left');
    assert.equal(await waitFor(async () => origin.players.size, (n) => n === 0, 2000), 0);
    assert.equal(await waitFor(async () => server.connections, (n) => n === connections - 1, 2000), connections - 1);
  });

  test('a kick at the origin ends the edge session; so does an origin that goes silent', async () => {
    publish('kicked');
    const pull = pullOf('kicked');
    await pull.open();
    const reason = new Promise((r) => pull.session.once('close', r));
    const [ovtSession] = await waitFor(async () => [...catalog.stream('default', 'app', 'kicked').players.values()], (p) => p.length === 1, 2000);
    ovtSession.close('kicked');
    assert.equal(await reason, 'stream-ended');

    publish('silent');
    const quiet = pullOf('silent', { noInputTimeoutMs: 1000 });
    await quiet.open();
    const timedOut = new Promise((r) => quiet.session.once('close', r));
    assert.equal(await timedOut, 'timed-out');
  });

  test('the errors of open(): refused, no such stream, a room app, the first URL failing over to the next', async () => {
    const refused = pullOf('x', { urls: ['ovt://127.0.0.1:1/app/x'] });
    await assert.rejects(refused.open(), (err: Error) => err instanceof PullError && /ovt:\/\/127\.0\.0\.1:1\/app\/x - connection refused/.test(err.message));
    const missing = pullOf('nope');
    await assert.rejects(missing.open(), /describe answered 404: There is no such stream \(app\/nope\)/);
    const room = pullOf('r', { urls: [`ovt://127.0.0.1:${server.port}/rooms/r`] });
    await assert.rejects(room.open(), /describe answered 403: The app rooms holds room media/);
    const noApp = pullOf('r', { urls: [`ovt://127.0.0.1:${server.port}/other/r`] });
    await assert.rejects(noApp.open(), /404: There is no such app \(other\)/);
    publish('second');
    const failover = pullOf('second', { urls: ['ovt://127.0.0.1:1/app/second', `ovt://127.0.0.1:${server.port}/app/second`] });
    await failover.open();
    assert.equal(failover.currentUrl, `ovt://127.0.0.1:${server.port}/app/second`);
    failover.session.close('client-left');
  });
});

test('an app whose playback needs a token is relayed only to an edge that proves it is of the cluster', async () => {
  const { session } = publish('secret', 'private');
  const url = `ovt://127.0.0.1:${server.port}/private/secret`;
  await assert.rejects(pullOf('secret', { urls: [url] }).open(), /403/);
  await assert.rejects(pullOf('secret', { urls: [url], auth: () => 'forged' }).open(), /403/);
  const pull = pullOf('secret', { urls: [url], auth: (app, stream) => `proof:${app}/${stream}` });
  await pull.open();
  assert.equal(pull.tracks.length, 2);
  pull.close();
  session.close('client-left');
});

describe('the origin stays up whatever a peer does', () => {
  test('requests it cannot read get OME\'s answers; a second play on one connection is refused', async () => {
    publish('raw');
    const peer = await rawPeer();
    peer.socket.write(encodeOvtPackets(OVT_MESSAGE_REQUEST, Buffer.from('not json')));
    peer.request('publish', 'ovt://h/app/raw', 7);
    peer.request('describe', 'http://h/app/raw', 8);
    peer.request('play', 'ovt://h/app/raw', 9);
    peer.request('play', 'ovt://h/app/raw', 10);
    const responses = await waitFor(async () => peer.responses, (r) => r.length >= 5, 2000);
    assert.deepEqual(responses.map((r) => [r.id, r.application, r.code, r.message]), [
      [0, 'unknown', 404, 'An invalid request : Json format'],
      [0, 'unknown', 404, 'Unknown application'],
      [8, 'describe', 404, 'An invalid request : Target is not valid'],
      [9, 'play', 200, 'ok'],
      [10, 'play', 409, 'This connection already plays a stream'],
    ]);
    peer.socket.destroy();
  });

  test('garbage, a giant length, or media sent to the origin closes that connection only', async () => {
    const giant = Buffer.alloc(OVT_HEADER_SIZE);
    writeOvtHeader(giant, 0, true, OVT_MESSAGE_REQUEST, 0, 0, 0, 0xffff);
    const media = encodeOvtPackets(30, Buffer.from([1, 2, 3]));
    for (const bytes of [Buffer.from('GET / HTTP/1.1\r\n\r\n'), giant, media, Buffer.alloc(70_000, 0x41)]) {
      const peer = await rawPeer();
      peer.socket.write(bytes);
      await peer.closed;
    }
    const peer = await rawPeer();
    peer.request('describe', `ovt://127.0.0.1/app/raw`);
    const [answer] = await waitFor(async () => peer.responses, (r) => r.length === 1, 2000);
    assert.equal(answer.code, 200, 'the server still answers');
    peer.socket.destroy();
  });

  test('a request that never ends is cut off at 64 KiB', async () => {
    const peer = await rawPeer();
    const fragment = Buffer.alloc(OVT_HEADER_SIZE + 30_000, 0x20);
    writeOvtHeader(fragment, 0, false, OVT_MESSAGE_REQUEST, 0, 0, 0, 30_000);
    for (let i = 0; i < 3 && !peer.socket.destroyed; i++) peer.socket.write(fragment);
    await peer.closed;
  });

  test('a connection that does not play is closed after the idle time', async () => {
    const peer = await rawPeer();
    const started = Date.now();
    await peer.closed;
    const waited = Date.now() - started;
    assert.ok(waited >= 1400 && waited < 4000, `closed after ${waited} ms`);
  });

  test('an edge that stops reading: media is dropped past the backlog limit, then the relay is closed; the source is never blocked', async () => {
    const { forwarder, stream } = publish('flood');
    const peer = await rawPeer();
    peer.request('play', 'ovt://127.0.0.1/app/flood');
    await waitFor(async () => peer.responses, (r) => r.length === 1, 2000);
    peer.socket.pause();
    const [ovtSession] = [...stream.players.values()];
    const closed = new Promise((r) => ovtSession.once('close', r));
    const payload = Buffer.alloc(1200, 0x10);
    let seq = 0;
    let maxHeld = 0;
    let ended = false;
    void closed.then(() => (ended = true));
    const started = Date.now();
    // 8 MB a second for up to 20 s, far more than loopback buffers take without a reader.
    while (!ended && Date.now() - started < 20_000) {
      for (let i = 0; i < 100; i++) forwarder.push(forwarder.tracks[0], packet(seq++ & 0xffff, seq * 90, true, payload));
      maxHeld = Math.max(maxHeld, ovtSession.memoryUsage());
      await new Promise((r) => setTimeout(r, 15));
    }
    assert.equal(await closed, 'timed-out');
    assert.ok(maxHeld <= 256 * 1024 + 64 * 1024, `bytes held for the edge at most ${maxHeld}`);
    assert.ok(ovtSession.counters.packetsOut < seq, 'packets were dropped');
    peer.socket.destroy();
  });
});
