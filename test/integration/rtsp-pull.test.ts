/**
 * The RTSP client against a scripted fake camera: malformed and hostile responses fail the pull
 * with a clear 502 and Kiln keeps running; and, with a well-behaved fake camera that drops and
 * comes back with a new timeline, a WHEP player sees one continuous, monotonic RTP stream with
 * parameter sets in front of every IDR.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { createSocket } from 'node:dgram';
import { RTCPeerConnection, RTCRtpCodecParameters, useNACK, usePLI, useSdesMid } from 'werift';
import { startKilnInProcess, type InProcessKiln } from '../helpers/kiln-process.ts';
import { connected, negotiate } from '../helpers/werift-peer.ts';

const SPROP = 'Z0LAHtoCgL/lwFqDAwNSgAAAAwCAAAAeR4sXUA==,aM48gA==';
const SDP = ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=fake', 't=0 0', 'a=control:*',
  'm=video 0 RTP/AVP 96', 'a=rtpmap:96 H264/90000', `a=fmtp:96 packetization-mode=1;sprop-parameter-sets=${SPROP}`, 'a=control:track1', ''].join('\r\n');

interface Request { method: string; url: string; cseq: string; headers: Map<string, string> }
type Handler = (req: Request, socket: Socket, reply: (status: string, headers?: Record<string, string>, body?: string) => void) => void;

/** A TCP server speaking just enough RTSP for a script; `onConnect` may misbehave at once. */
async function fakeCamera(handler: Handler, onConnect?: (socket: Socket) => void): Promise<{ url: string; server: Server; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onConnect?.(socket);
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (buf[0] === 0x24) {
          if (buf.length < 4 || buf.length < 4 + buf.readUInt16BE(2)) return;
          buf = buf.subarray(4 + buf.readUInt16BE(2));
          continue;
        }
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
        buf = buf.subarray(end + 4);
        const [method, url] = lines[0].split(' ');
        const headers = new Map(lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
        const req = { method, url, cseq: headers.get('cseq') ?? '0', headers };
        handler(req, socket, (status, extra = {}, body) => {
          let text = `RTSP/1.0 ${status}\r\nCSeq: ${req.cseq}\r\n`;
          for (const [k, v] of Object.entries(extra)) text += `${k}: ${v}\r\n`;
          if (body !== undefined) text += `Content-Length: ${Buffer.byteLength(body)}\r\n`;
          socket.write(`${text}\r\n${body ?? ''}`);
        });
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return { url: `rtsp://127.0.0.1:${port}/cam`, server, sockets };
}

/** The usual answers of a camera; `override` replaces the one for a method. */
function camera(override: Partial<Record<string, Handler>> = {}, onPlay?: (socket: Socket) => void): Handler {
  return (req, socket, reply) => {
    const custom = override[req.method];
    if (custom) return custom(req, socket, reply);
    switch (req.method) {
      case 'OPTIONS': return reply('200 OK', { Public: 'OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER' });
      case 'DESCRIBE': return reply('200 OK', { 'Content-Type': 'application/sdp', 'Content-Base': `${req.url}/` }, SDP);
      case 'SETUP': return reply('200 OK', { Session: 'fake1;timeout=60', Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1' });
      case 'PLAY':
        reply('200 OK', { Session: 'fake1' });
        return onPlay?.(socket);
      default: return reply('200 OK', {});
    }
  };
}

/** Sends an H.264 stream (IDR every 10 frames, single NAL units) as interleaved RTP; returns a stop function. */
function sendH264(socket: Socket, start: { seq: number; ts: number; ssrc: number }): () => void {
  let frame = 0;
  const timer = setInterval(() => {
    if (socket.destroyed) return clearInterval(timer);
    const type = frame % 10 === 0 ? 5 : 1;
    const nal = Buffer.alloc(300, 0x11);
    nal[0] = 0x60 | type;
    const rtp = Buffer.alloc(12);
    rtp[0] = 0x80;
    rtp[1] = 0x80 | 96;
    rtp.writeUInt16BE((start.seq + frame) & 0xffff, 2);
    rtp.writeUInt32BE((start.ts + frame * 3000) >>> 0, 4);
    rtp.writeUInt32BE(start.ssrc, 8);
    const packet = Buffer.concat([rtp, nal]);
    socket.write(Buffer.concat([Buffer.from([0x24, 0, packet.length >> 8, packet.length & 0xff]), packet]));
    frame++;
  }, 33);
  return () => clearInterval(timer);
}

let node: InProcessKiln;
let apiUrl: string;
const servers: Server[] = [];

before(async () => {
  node = await startKilnInProcess((config) => {
    config.limits.pullTimeoutMs = 1000;
  });
  apiUrl = `http://127.0.0.1:${node.kiln.api!.port}`;
});
after(async () => {
  for (const s of servers) s.close();
  await node.stop();
});

async function pull(name: string, url: string, properties?: Record<string, unknown>) {
  const res = await fetch(`${apiUrl}/v1/vhosts/default/apps/app/streams`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from('admin:pw').toString('base64')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name, urls: [url], ...(properties ? { properties } : {}) }),
  });
  return { status: res.status, body: await res.json() };
}

async function withCamera(handler: Handler, onConnect?: (socket: Socket) => void) {
  const cam = await fakeCamera(handler, onConnect);
  servers.push(cam.server);
  return cam;
}

describe('a hostile or broken camera fails the pull with a clear 502', () => {
  const rtp = (socket: Socket) => sendH264(socket, { seq: 1, ts: 1, ssrc: 1 });
  const cases: [string, Handler, RegExp, ((socket: Socket) => void)?][] = [
    ['garbage instead of RTSP', camera({ OPTIONS: (_r, s) => s.write('hello there\r\n\r\n') }), /malformed RTSP from the server: unexpected byte/],
    ['an HTTP server', camera({ OPTIONS: (_r, s) => s.write('HTTP/1.1 400 Bad Request\r\n\r\n') }), /malformed RTSP status line/],
    ['a header without a colon', camera({ OPTIONS: (_r, s) => s.write('RTSP/1.0 200 OK\r\nCSeq 1\r\n\r\n') }), /malformed RTSP header line/],
    ['a negative Content-Length', camera({ DESCRIBE: (_r, s) => s.write('RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Length: -1\r\n\r\n') }), /malformed Content-Length/],
    ['an endless header block', camera({ DESCRIBE: (_r, s) => s.write(`RTSP/1.0 200 OK\r\nCSeq: 2\r\n${'X-Junk: 0123456789\r\n'.repeat(5000)}`) }), /too large/],
    ['a body cut short', camera({ DESCRIBE: (_r, s) => s.end('RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Length: 500\r\n\r\nv=0\r\n') }), /closed the connection/],
    ['a DESCRIBE that is not SDP', camera({ DESCRIBE: (_r, _s, reply) => reply('200 OK', { 'Content-Type': 'application/sdp' }, 'hello') }), /bad session description/],
    ['HTML instead of SDP', camera({ DESCRIBE: (_r, _s, reply) => reply('200 OK', { 'Content-Type': 'text/html' }, '<html>') }), /not an SDP/],
    ['SDP with a broken media line', camera({ DESCRIBE: (_r, _s, reply) => reply('200 OK', { 'Content-Type': 'application/sdp' }, 'v=0\r\nm=video x\r\n') }), /malformed media line/],
    ['only MJPEG', camera({ DESCRIBE: (_r, _s, reply) => reply('200 OK', { 'Content-Type': 'application/sdp' }, 'v=0\r\nm=video 0 RTP/AVP 26\r\n') }), /no playable track: the source offers video\/JPEG/],
    ['a redirect', camera({ DESCRIBE: (_r, _s, reply) => reply('302 Moved', { Location: 'rtsp://elsewhere/cam' }) }), /DESCRIBE answered 302 Moved \(moved to rtsp:\/\/elsewhere\/cam\)/],
    ['no transport accepted', camera({ SETUP: (_r, _s, reply) => reply('461 Unsupported Transport') }), /SETUP answered 461/],
    ['a server error on SETUP', camera({ SETUP: (_r, _s, reply) => reply('500 Internal Server Error') }), /SETUP answered 500/],
    ['PLAY refused', camera({ PLAY: (_r, _s, reply) => reply('454 Session Not Found') }), /PLAY answered 454/],
    ['no media after PLAY', camera(), /no media received within 1000 ms of PLAY/],
    ['a response that never comes', camera({ DESCRIBE: () => {} }), /no answer to DESCRIBE within 1000 ms/],
    ['RTP that is not RTP', camera({}, (s) => {
      const t = setInterval(() => (s.destroyed ? clearInterval(t) : s.write(Buffer.from([0x24, 0, 0, 8, 0, 1, 2, 3, 4, 5, 6, 7]))), 20);
    }), /no media received/],
  ];
  for (const [what, handler, cause] of cases) {
    test(what, async () => {
      const cam = await withCamera(handler);
      const res = await pull('broken', cam.url);
      assert.equal(res.status, 502, JSON.stringify(res.body));
      assert.match(res.body.message, /^\[HTTP\] Could not pull the stream : rtsp:\/\/127\.0\.0\.1:\d+\/cam - /);
      assert.match(res.body.message, cause);
      cam.server.close();
      for (const s of cam.sockets) s.destroy();
    });
  }

  test('random corruption of every answer: always 201 or 502, and Kiln keeps serving', async () => {
    let seed = 12345;
    const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const mutate = (text: string): string => {
      const bytes = Buffer.from(text, 'latin1');
      const n = 1 + Math.floor(random() * 4);
      for (let i = 0; i < n; i++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      return bytes.toString('latin1');
    };
    const statuses = new Map<number, number>();
    for (let round = 0; round < 30; round++) {
      const target = ['OPTIONS', 'DESCRIBE', 'SETUP', 'PLAY'][round % 4];
      const handler: Handler = (req, socket, reply) => {
        if (req.method !== target) return camera({}, rtp)(req, socket, reply);
        // Write the normal answer, corrupted.
        const fake = { write: (s: string | Buffer) => socket.write(mutate(typeof s === 'string' ? s : s.toString('latin1')), 'latin1') } as unknown as Socket;
        camera({}, rtp)(req, socket, (status, headers, body) => {
          let text = `RTSP/1.0 ${status}\r\nCSeq: ${req.cseq}\r\n`;
          for (const [k, v] of Object.entries(headers ?? {})) text += `${k}: ${v}\r\n`;
          if (body !== undefined) text += `Content-Length: ${Buffer.byteLength(body)}\r\n`;
          fake.write(`${text}\r\n${body ?? ''}`);
        });
      };
      const cam = await withCamera(handler);
      const res = await pull(`fuzz${round}`, cam.url, { unusedStreamDeletionTimeout: 1000 });
      assert.ok(res.status === 201 || res.status === 502, `round ${round}: ${res.status} ${JSON.stringify(res.body)}`);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      cam.server.close();
      for (const s of cam.sockets) s.destroy();
    }
    assert.ok((statuses.get(502) ?? 0) > 0, 'some corruptions fail the pull');
    const health = await fetch(`${apiUrl}/healthz`);
    assert.equal(health.status, 200);
  });
});

describe('a camera that drops and comes back with a new timeline', () => {
  test('the player sees continuous sequence numbers, monotonic timestamps, and SPS/PPS before each IDR', async () => {
    const stops: (() => void)[] = [];
    let connection = 0;
    const cam = await withCamera(camera({}, (socket) => {
      connection++;
      // Each connection starts a fresh, unrelated timeline, as a rebooted camera would.
      stops.push(sendH264(socket, { seq: connection * 20000, ts: connection === 1 ? 4_000_000_000 : 1000, ssrc: 0x1000 + connection }));
    }));
    const res = await pull('reconnecting', cam.url);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.response.input.tracks[0].video.width, 640, 'size read from sprop-parameter-sets');

    const pc = new RTCPeerConnection({
      iceServers: [],
      iceUseIpv6: false,
      iceInterfaceAddresses: { udp4: '127.0.0.1' },
      iceAdditionalHostAddresses: ['127.0.0.1'],
      codecs: {
        video: [new RTCRtpCodecParameters({ mimeType: 'video/H264', clockRate: 90000, payloadType: 102, rtcpFeedback: [useNACK(), usePLI()], parameters: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f' })],
      },
      headerExtensions: { video: [useSdesMid()] },
    });
    pc.addTransceiver('video', { direction: 'recvonly' });
    const seen: { seq: number; ts: number; nal: number; at: number }[] = [];
    pc.ontrack = ({ track }) => track.onReceiveRtp.subscribe((p) => seen.push({ seq: p.header.sequenceNumber, ts: p.header.timestamp, nal: p.payload[0] & 0x1f, at: Date.now() }));
    try {
      await negotiate(pc, `${node.signalingUrl}/app/reconnecting?direction=whep`);
      await connected(pc);
      await new Promise((r) => setTimeout(r, 1500));
      const before = seen.length;
      assert.ok(before > 20, `packets before the drop: ${before}`);
      // The camera drops the connection (a reboot); Kiln reconnects.
      for (const s of cam.sockets) s.destroy();
      stops.forEach((stop) => stop());
      await new Promise((r) => setTimeout(r, 2500));
      assert.ok(connection >= 2, 'Kiln reconnected');
      assert.ok(seen.length > before + 20, `packets after the drop: ${seen.length - before}`);
      for (let i = 1; i < seen.length; i++) {
        assert.equal(seen[i].seq, (seen[i - 1].seq + 1) & 0xffff, `sequence continues at ${i}`);
        const step = (seen[i].ts - seen[i - 1].ts) | 0;
        assert.ok(step >= 0, `timestamp goes forward at ${i}: ${seen[i - 1].ts} → ${seen[i].ts}`);
        // Across the gap, the timestamps advance by about the wall-clock time (90 kHz).
        const wall = ((seen[i].at - seen[i - 1].at) * 90) | 0;
        assert.ok(step <= Math.max(6000, wall * 1.5 + 9000), `timestamp step ${step} for ${seen[i].at - seen[i - 1].at} ms at ${i}`);
      }
      // Every IDR is preceded by SPS and PPS (injected from sprop-parameter-sets).
      for (let i = 0; i < seen.length; i++) {
        if (seen[i].nal === 5 && i >= 2) assert.deepEqual([seen[i - 2].nal, seen[i - 1].nal], [7, 8], `parameter sets before the IDR at ${i}`);
      }
      assert.ok(seen.filter((s) => s.nal === 5).length >= 3);
    } finally {
      stops.forEach((stop) => stop());
      await pc.close();
    }
  });
});

describe('reconnection races', () => {
  test('a camera that drops right after PLAY while reconnecting leaves exactly one live connection', async () => {
    let connection = 0;
    const stops: (() => void)[] = [];
    const cam = await withCamera(camera({}, (socket) => {
      connection++;
      if (connection === 2) return void setTimeout(() => socket.destroy(), 20); // drops before any media
      stops.push(sendH264(socket, { seq: connection * 1000, ts: connection * 1_000_000, ssrc: connection }));
    }));
    try {
      const res = await pull('flaky', cam.url);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      for (const s of cam.sockets) s.destroy();
      await waitUntil(() => connection >= 3, 8000);
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(cam.sockets.size, 1, 'one connection to the camera');
      const counters = node.kiln.catalog.app('default', 'app').stream('flaky').source.counters;
      const before = counters.packetsIn;
      await new Promise((r) => setTimeout(r, 1000));
      const rate = counters.packetsIn - before;
      assert.ok(rate > 20 && rate < 45, `packets per second from the camera: ${rate}`);
    } finally {
      stops.forEach((stop) => stop());
    }
  });

  test('the body is read as JSON whatever its Content-Type; an unknown vhost is 404 before the body is checked', async () => {
    const cam = await withCamera(camera({}, (s) => sendH264(s, { seq: 1, ts: 1, ssrc: 9 })));
    const auth = `Basic ${Buffer.from('admin:pw').toString('base64')}`;
    const form = await fetch(`${apiUrl}/v1/vhosts/default/apps/app/streams`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded' },
      body: JSON.stringify({ name: 'curl-d', urls: [cam.url] }),
    });
    assert.equal(form.status, 201);
    const unknown = await fetch(`${apiUrl}/v1/vhosts/nope/apps/app/streams`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(unknown.status, 404);
    const notJson = await fetch(`${apiUrl}/v1/vhosts/default/apps/app/streams`, { method: 'POST', headers: { authorization: auth, 'content-type': 'text/plain' }, body: 'name=x' });
    assert.equal(notJson.status, 400);
    assert.match((await notJson.json()).message, /not JSON/);
  });
});

describe('session upkeep and transports', () => {
  test('keep-alive within the session timeout (GET_PARAMETER when offered) and RTCP receiver reports', async () => {
    const seen: string[] = [];
    const reports: Buffer[] = [];
    let stop = () => {};
    const cam = await withCamera((req, socket, reply) => {
      seen.push(req.method);
      if (req.method === 'SETUP') return reply('200 OK', { Session: 'ka;timeout=4', Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1' });
      camera({}, (s) => (stop = sendH264(s, { seq: 1, ts: 1, ssrc: 0xabc })))(req, socket, reply);
    }, (socket) => {
      // Frames the client sends on the RTCP channel (1).
      socket.on('data', (d) => {
        for (let at = d.indexOf(0x24); at >= 0 && at + 4 <= d.length; at = d.indexOf(0x24, at + 1)) {
          if (d[at + 1] === 1 && d[at + 5] === 201) reports.push(d.subarray(at + 4, at + 4 + d.readUInt16BE(at + 2)));
        }
      });
    });
    try {
      const res = await pull('upkeep', cam.url);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      await new Promise((r) => setTimeout(r, 3000));
      assert.ok(seen.includes('GET_PARAMETER'), `requests: ${seen.join(', ')}`);
      assert.ok(reports.length >= 1, 'a receiver report arrived');
      assert.equal(reports[0].readUInt32BE(8), 0xabc, 'it reports on the camera\'s SSRC');
      const del = await fetch(`${apiUrl}/v1/vhosts/default/apps/app/streams/upkeep`, { method: 'DELETE', headers: { authorization: `Basic ${Buffer.from('admin:pw').toString('base64')}` } });
      assert.equal(del.status, 200);
      await waitUntil(() => seen.includes('TEARDOWN'));
      assert.ok(seen.includes('TEARDOWN'), 'DELETE sends TEARDOWN');
    } finally {
      stop();
    }
  });

  test('TCP refused with 461: falls back to UDP, and media arrives over UDP', async () => {
    const udp = createSocket('udp4');
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
    let timer: NodeJS.Timeout | undefined;
    const cam = await withCamera(camera({
      SETUP: (req, _s, reply) => {
        const transport = req.headers.get('transport') ?? '';
        const port = /client_port=(\d+)/.exec(transport);
        if (!port) return reply('461 Unsupported Transport');
        reply('200 OK', { Session: 'u1', Transport: `RTP/AVP;unicast;client_port=${port[1]}-${Number(port[1]) + 1};server_port=${udp.address().port}-${udp.address().port + 1}` });
        let n = 0;
        timer = setInterval(() => {
          const rtp = Buffer.alloc(112, 0x11);
          rtp[0] = 0x80;
          rtp[1] = 0x80 | 96;
          rtp.writeUInt16BE(n, 2);
          rtp.writeUInt32BE(n * 3000, 4);
          rtp[12] = n % 10 === 0 ? 0x65 : 0x41;
          n++;
          udp.send(rtp, Number(port[1]), '127.0.0.1');
        }, 33);
      },
    }));
    try {
      const res = await pull('via-udp', cam.url);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const counters = node.kiln.catalog.app('default', 'app').stream('via-udp').source.counters;
      const before = counters.packetsIn;
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(counters.packetsIn > before, 'packets keep arriving over UDP');
    } finally {
      clearInterval(timer);
      udp.close();
    }
  });

  test('UDP that brings nothing: falls back to TCP interleaved', async () => {
    const transports: string[] = [];
    let stop = () => {};
    const cam = await withCamera(camera({
      SETUP: (req, _s, reply) => {
        const transport = req.headers.get('transport') ?? '';
        transports.push(transport.split(';')[0]);
        if (transport.includes('client_port')) return reply('200 OK', { Session: 'x', Transport: `${transport};server_port=40000-40001` });
        reply('200 OK', { Session: 'x', Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1' });
      },
    }, (s) => {
      if (transports[transports.length - 1] === 'RTP/AVP/TCP') stop = sendH264(s, { seq: 1, ts: 1, ssrc: 5 });
    }));
    try {
      const res = await pull('udp-blocked', cam.url, { rtspTransport: 'udp' });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.deepEqual(transports, ['RTP/AVP', 'RTP/AVP/TCP']);
    } finally {
      stop();
    }
  });

  test('H.265 passes through to players that take it, and only to them', async () => {
    const h265Sdp = SDP.replace('H264/90000', 'H265/90000').replace(/a=fmtp:96 .*\r\n/, '');
    let stop = () => {};
    const cam = await withCamera(camera({ DESCRIBE: (req, _s, reply) => reply('200 OK', { 'Content-Type': 'application/sdp', 'Content-Base': `${req.url}/` }, h265Sdp) }, (s) => {
      stop = sendH264(s, { seq: 1, ts: 1, ssrc: 7 }); // payload bytes are opaque to a pass-through
    }));
    const pc = new RTCPeerConnection({
      iceServers: [],
      iceUseIpv6: false,
      iceInterfaceAddresses: { udp4: '127.0.0.1' },
      iceAdditionalHostAddresses: ['127.0.0.1'],
      codecs: { video: [new RTCRtpCodecParameters({ mimeType: 'video/H265', clockRate: 90000, payloadType: 104, rtcpFeedback: [useNACK(), usePLI()] })] },
      headerExtensions: { video: [useSdesMid()] },
    });
    try {
      const res = await pull('hevc', cam.url);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.response.input.tracks[0].video.codec, 'H265');
      pc.addTransceiver('video', { direction: 'recvonly' });
      let received = 0;
      pc.ontrack = ({ track }) => track.onReceiveRtp.subscribe(() => received++);
      await negotiate(pc, `${node.signalingUrl}/app/hevc?direction=whep`);
      await connected(pc);
      await waitUntil(() => received > 10);
      assert.ok(received > 10, `H.265 packets received: ${received}`);
      // A viewer that offers only H.264 cannot play it: WHEP says so.
      const h264Only = new RTCPeerConnection({ codecs: { video: [new RTCRtpCodecParameters({ mimeType: 'video/H264', clockRate: 90000, payloadType: 102, parameters: 'packetization-mode=1;profile-level-id=42e01f' })] } });
      h264Only.addTransceiver('video', { direction: 'recvonly' });
      await assert.rejects(negotiate(h264Only, `${node.signalingUrl}/app/hevc?direction=whep`), /406/);
      await h264Only.close();
    } finally {
      stop();
      await pc.close();
    }
  });
});

async function waitUntil(done: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!done() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
}
