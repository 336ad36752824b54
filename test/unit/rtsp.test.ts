import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { parseSession, parseTransport, RtspProtocolError, RtspReader, type RtspMessage } from '../../src/ingest/rtsp/message.ts';
import { authorizer, parseChallenge } from '../../src/ingest/rtsp/auth.ts';
import { parseSdp, resolveControl, SdpError } from '../../src/ingest/rtsp/sdp.ts';
import { ReceptionStats, receiverReport, senderReports } from '../../src/ingest/rtsp/rtcp.ts';
import { maskUrl } from '../../src/ingest/rtsp/client.ts';

function reader() {
  const messages: RtspMessage[] = [];
  const frames: [number, Buffer][] = [];
  const r = new RtspReader({ message: (m) => messages.push(m), frame: (c, d) => frames.push([c, Buffer.from(d)]) });
  return { r, messages, frames };
}

test('responses and interleaved frames are split however the bytes arrive', () => {
  const response = 'RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n';
  const frame = Buffer.from([0x24, 1, 0, 3, 7, 8, 9]);
  const all = Buffer.concat([frame, Buffer.from(response), frame, Buffer.from('RTSP/1.0 401 Unauthorized\r\nCSeq: 3\r\nWWW-Authenticate: Basic realm="a"\r\nWWW-Authenticate: Digest realm="a", nonce="n"\r\n\r\n')]);
  for (const step of [1, 2, 3, 7, all.length]) {
    const { r, messages, frames } = reader();
    for (let i = 0; i < all.length; i += step) r.push(all.subarray(i, i + step));
    assert.equal(frames.length, 2, `step ${step}`);
    assert.deepEqual([...frames[0][1]], [7, 8, 9]);
    assert.equal(frames[0][0], 1);
    assert.equal(messages.length, 2);
    assert.equal(messages[0].status, 200);
    assert.equal(messages[0].headers.get('cseq'), '2');
    assert.equal(messages[0].body.toString(), 'v=0\r\n');
    assert.equal(messages[1].status, 401);
    assert.deepEqual(messages[1].challenges, ['Basic realm="a"', 'Digest realm="a", nonce="n"']);
  }
  const { r, messages } = reader();
  r.push(Buffer.from('RTSP/1.0 401 Unauthorized\r\nCSeq: 4\r\nWWW-Authenticate: Digest realm="cam",\r\n  nonce="abc"\r\n\r\n'));
  assert.deepEqual(messages[0].challenges, ['Digest realm="cam", nonce="abc"'], 'a folded header line continues the previous one');
});

test('malformed input is a protocol error, never an unbounded buffer', () => {
  const bad = [
    'HTTP/1.1 200 OK\r\n\r\n',
    'garbage\r\n\r\n',
    'RTSP/1.0 200 OK\r\nno colon here\r\n\r\n',
    'RTSP/1.0 200 OK\r\nContent-Length: -4\r\n\r\n',
    'RTSP/1.0 200 OK\r\nContent-Length: 99999999\r\n\r\n',
    '\x00\x01\x02',
  ];
  for (const input of bad) assert.throws(() => reader().r.push(Buffer.from(input, 'latin1')), RtspProtocolError, JSON.stringify(input));
  const { r } = reader();
  assert.throws(() => {
    for (let i = 0; i < 100; i++) r.push(Buffer.from(`RTSP/1.0 200 OK\r\nX-Pad: ${'a'.repeat(1000)}\r\n`));
  }, /too large/);
});

test('Transport and Session headers', () => {
  assert.deepEqual(parseTransport('RTP/AVP/TCP;unicast;interleaved=2-3;ssrc=DEADBEEF;mode="PLAY"'), { tcp: true, interleaved: [2, 3], ssrc: 0xdeadbeef });
  assert.deepEqual(parseTransport('RTP/AVP;unicast;client_port=5000-5001;server_port=6970-6971;source=10.0.0.1'),
    { tcp: false, serverPort: [6970, 6971], source: '10.0.0.1' });
  assert.deepEqual(parseTransport('RTP/AVP;unicast;server_port=99999-100000'), { tcp: false, serverPort: undefined });
  assert.deepEqual(parseSession('12345678;timeout=30'), { id: '12345678', timeout: 30 });
  assert.deepEqual(parseSession('abc'), { id: 'abc', timeout: 60 });
  assert.deepEqual(parseSession('abc;timeout=0'), { id: 'abc', timeout: 5 });
});

test('Digest answers as RFC 2617 computes it, with and without qop; Basic as RFC 7617', () => {
  const md5 = (s: string) => createHash('md5').update(s).digest('hex');
  // RFC 2617 §3.5 example, without qop.
  const plain = authorizer(['Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093"'], { user: 'Mufasa', password: 'Circle Of Life' })!;
  const header = plain('DESCRIBE', 'rtsp://cam/stream');
  const ha1 = md5('Mufasa:testrealm@host.com:Circle Of Life');
  const expected = md5(`${ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:${md5('DESCRIBE:rtsp://cam/stream')}`);
  assert.match(header, /^Digest /);
  assert.ok(header.includes(`response="${expected}"`), header);
  assert.ok(header.includes('uri="rtsp://cam/stream"'));
  const qop = authorizer(['Basic realm="x"', 'Digest realm="r", nonce="n", qop="auth,auth-int", opaque="o"'], { user: 'u', password: 'p' })!;
  const h = qop('PLAY', 'rtsp://cam/');
  const nc = /nc=(\w+)/.exec(h)![1];
  const cnonce = /cnonce="(\w+)"/.exec(h)![1];
  assert.equal(nc, '00000001');
  assert.ok(h.includes(`response="${md5(`${md5('u:r:p')}:n:${nc}:${cnonce}:auth:${md5('PLAY:rtsp://cam/')}`)}"`), h);
  assert.ok(h.includes('opaque="o"'));
  assert.match(qop('PLAY', 'rtsp://cam/'), /nc=00000002/);
  const basic = authorizer(['Basic realm="cam"'], { user: 'Aladdin', password: 'open sesame' })!;
  assert.equal(basic('DESCRIBE', 'x'), 'Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==');
  assert.equal(authorizer(['Bearer realm="x"'], { user: 'u', password: 'p' }), undefined);
  assert.equal(authorizer(['Digest realm="r", nonce="n", algorithm=SHA-256'], { user: 'u', password: 'p' }), undefined);
  assert.equal(parseChallenge('Digest realm="a \\"b\\"", nonce=xyz')?.params.get('realm'), 'a "b"');
});

test('DESCRIBE SDP: media, codecs, fmtp and control URLs resolved against the base', () => {
  const sdp = [
    'v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=Session', 'a=control:*',
    'm=video 0 RTP/AVP 96', 'a=rtpmap:96 H264/90000', 'a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z0LAHtoCgL/lwFqDAwNSgAAAAwCAAAAeR4sXUA==,aM48gA==;profile-level-id=42c01e', 'a=control:stream=0',
    'm=audio 0 RTP/AVP 0', 'a=control:rtsp://cam/abs/track2',
    'm=audio 0 RTP/AVP 97', 'a=rtpmap:97 MPEG4-GENERIC/44100/2', 'a=fmtp:97 streamtype=5; mode=AAC-hbr; config=1210', 'a=control:trackID=3',
    'm=application 0 RTP/AVP 107', 'a=rtpmap:107 vnd.onvif.metadata/90000',
  ].join('\r\n');
  const media = parseSdp(sdp, 'rtsp://cam/live');
  assert.equal(media.length, 4);
  assert.equal(media[0].kind, 'video');
  assert.equal(media[0].encoding, 'H264');
  assert.equal(media[0].clockRate, 90000);
  assert.equal(media[0].fmtp.get('profile-level-id'), '42c01e');
  assert.equal(media[0].control, 'rtsp://cam/live/stream=0');
  assert.deepEqual([media[1].encoding, media[1].clockRate, media[1].channels, media[1].control], ['PCMU', 8000, 1, 'rtsp://cam/abs/track2']);
  assert.deepEqual([media[2].encoding, media[2].clockRate, media[2].channels], ['MPEG4-GENERIC', 44100, 2]);
  assert.equal(media[2].fmtp.get('config'), '1210');
  assert.equal(media[3].kind, 'other');
  assert.equal(resolveControl('trackID=1', 'rtsp://cam/live/'), 'rtsp://cam/live/trackID=1');
  assert.equal(resolveControl('*', 'rtsp://cam/live/'), 'rtsp://cam/live/');
  // Dahua-style bases keep their query: the control is appended as text, as cameras expect.
  assert.equal(resolveControl('trackID=0', 'rtsp://cam/cam/realmonitor?channel=1&subtype=0/'), 'rtsp://cam/cam/realmonitor?channel=1&subtype=0/trackID=0');
  assert.equal(resolveControl('/abs/track1', 'rtsp://cam:554/live/'), 'rtsp://cam:554/abs/track1');
  for (const bad of ['', 'hello', 'v=0\r\ns=x', 'v=0\r\nm=video', 'v=0\r\nm=video 0 RTP/AVP 96\r\n\u0000junk']) {
    assert.throws(() => parseSdp(bad, 'rtsp://cam/'), SdpError, JSON.stringify(bad));
  }
});

test('receiver reports carry loss, highest sequence and the last SR; sender reports are read', () => {
  const stats = new ReceptionStats(90000);
  for (const seq of [65534, 65535, 0, 2, 3]) stats.update(0x11223344, seq, seq * 3000, seq);
  const sr = Buffer.alloc(28);
  sr[0] = 0x80;
  sr[1] = 200;
  sr.writeUInt16BE(6, 2);
  sr.writeUInt32BE(0x11223344, 4);
  sr.writeBigUInt64BE(0x0102030405060708n, 8);
  sr.writeUInt32BE(1234, 16);
  const seen: [number, bigint, number][] = [];
  senderReports(Buffer.concat([sr, Buffer.from([0x80, 201, 0, 1, 0, 0, 0, 1])]), (...a) => seen.push(a));
  assert.deepEqual(seen, [[0x11223344, 0x0102030405060708n, 1234]]);
  stats.onSenderReport(0x03040506, 1000);
  const rr = receiverReport(7, stats, 'kiln-test', 1500);
  assert.equal(rr[1], 201);
  assert.equal(rr.readUInt32BE(4), 7);
  assert.equal(rr.readUInt32BE(8), 0x11223344);
  assert.equal(rr.readIntBE(13, 3), 1, 'one packet (seq 1) lost');
  assert.equal(rr.readUInt32BE(16), 0x10003, 'extended highest sequence after the wrap');
  assert.equal(rr.readUInt32BE(24), 0x03040506);
  assert.equal(rr.readUInt32BE(28), 32768, 'DLSR: half a second in 1/65536 s');
  assert.equal(rr[33], 202);
  assert.equal(rr.length % 4, 0);
  senderReports(Buffer.from([0x80, 200, 0xff, 0xff]), () => assert.fail('a truncated packet is ignored'));
});

test('URLs are shown with the password masked', () => {
  assert.equal(maskUrl('rtsp://admin:s3cret@10.0.0.2:554/live'), 'rtsp://admin:****@10.0.0.2:554/live');
  assert.equal(maskUrl('rtsp://10.0.0.2/live'), 'rtsp://10.0.0.2/live');
  assert.equal(maskUrl('rtsp://admin@10.0.0.2/live'), 'rtsp://admin@10.0.0.2/live');
  assert.equal(maskUrl('rtsp://admin:p@ss@10.0.0.2/live'), 'rtsp://admin:****@10.0.0.2/live', 'a password with "@"');
  assert.equal(maskUrl('rtsp://ad@min:secret@10.0.0.2/live?x=a@b'), 'rtsp://ad@min:****@10.0.0.2/live?x=a@b');
});
