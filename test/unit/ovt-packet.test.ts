/**
 * OVT framing (OME v0.20.0's ovt_packet.h): the 18-byte header bit for bit, fragmentation of long
 * payloads with the marker on the last packet, reassembly across any TCP chunking, and a parser
 * that rejects garbage with bounded memory. Also Kiln's media records.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import {
  encodeOvtPackets, OvtParser, OvtProtocolError, OVT_HEADER_SIZE, OVT_MAX_PACKET_SIZE, OVT_MAX_PAYLOAD_SIZE, OVT_MEDIA_PACKET,
  OVT_MESSAGE_REQUEST, OVT_MESSAGE_RESPONSE, readOvtHeader, writeOvtHeader,
} from '../../src/protocols/ovt/packet.ts';
import {
  OvtMediaError, RECORD_HEADER_SIZE, RECORD_RTP, RECORD_SENDER_REPORT, recordType, writeRtpRecordHeader, writeSenderReportRecord,
} from '../../src/protocols/ovt/media.ts';

type Got = { kind: 'message'; type: number; data: Buffer } | { kind: 'media'; data: Buffer; sessionId: number };

function parser(options: { maxMessageBytes?: number; maxMediaBytes?: number } = {}) {
  const got: Got[] = [];
  const p = new OvtParser({
    onMessage: (type, data) => got.push({ kind: 'message', type, data: Buffer.from(data) }),
    onMedia: (data, sessionId) => got.push({ kind: 'media', data: Buffer.from(data), sessionId }),
    ...options,
  });
  return { p, got };
}

/** A deterministic pseudo-random generator, so a failure can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 0x1_0000_0000;
  };
}

test('the header is OME\'s: V=1 in the top two bits, M at 0x20, then PT, sequence, 64-bit timestamp, session id, length, big-endian', () => {
  const buf = Buffer.alloc(OVT_HEADER_SIZE);
  writeOvtHeader(buf, 0, true, OVT_MEDIA_PACKET, 0xabcd, 0x0123_4567_89ab, 0xdeadbeef, 1234);
  assert.deepEqual([...buf], [
    0x60, 30, 0xab, 0xcd,
    0x00, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
    0xde, 0xad, 0xbe, 0xef,
    0x04, 0xd2,
  ]);
  assert.deepEqual(readOvtHeader(buf), {
    version: 1, marker: true, payloadType: 30, sequenceNumber: 0xabcd, timestamp: 0x0123_4567_89ab, sessionId: 0xdeadbeef, payloadLength: 1234,
  });
  writeOvtHeader(buf, 0, false, OVT_MESSAGE_REQUEST, 0, Date.UTC(2025, 0, 1), 0, 0);
  assert.equal(buf[0], 0x40, 'no marker: version bits only');
  assert.equal(readOvtHeader(buf).timestamp, Date.UTC(2025, 0, 1), 'Unix milliseconds survive the 64-bit field');
  assert.equal(OVT_HEADER_SIZE, 18);
  assert.equal(OVT_MAX_PACKET_SIZE, 32768);
  assert.equal(OVT_MAX_PAYLOAD_SIZE, 32750);
  assert.deepEqual([OVT_MESSAGE_REQUEST, OVT_MESSAGE_RESPONSE, OVT_MEDIA_PACKET], [10, 20, 30]);
});

test('a payload longer than 32750 bytes is cut into packets numbered from 0, the marker on the last only', () => {
  const payload = Buffer.alloc(OVT_MAX_PAYLOAD_SIZE * 3 + 100);
  for (let i = 0; i < payload.length; i++) payload[i] = i % 251;
  const framed = encodeOvtPackets(OVT_MESSAGE_RESPONSE, payload, { timestamp: 42, sessionId: 7 });
  assert.equal(framed.length, payload.length + 4 * OVT_HEADER_SIZE);
  const headers = [];
  const parts = [];
  for (let at = 0; at < framed.length;) {
    const h = readOvtHeader(framed, at);
    headers.push(h);
    parts.push(framed.subarray(at + OVT_HEADER_SIZE, at + OVT_HEADER_SIZE + h.payloadLength));
    at += OVT_HEADER_SIZE + h.payloadLength;
  }
  assert.deepEqual(headers.map((h) => h.sequenceNumber), [0, 1, 2, 3]);
  assert.deepEqual(headers.map((h) => h.marker), [false, false, false, true]);
  assert.deepEqual(headers.map((h) => h.payloadLength), [32750, 32750, 32750, 100]);
  assert.ok(headers.every((h) => h.payloadType === 20 && h.timestamp === 42 && h.sessionId === 7 && h.version === 1));
  assert.ok(Buffer.concat(parts).equals(payload));
  const small = encodeOvtPackets(OVT_MESSAGE_REQUEST, Buffer.from('{}'), { sequenceNumber: 9 });
  assert.equal(small.length, 20);
  assert.equal(readOvtHeader(small).marker, true);
  assert.equal(readOvtHeader(small).sequenceNumber, 9);
  assert.ok(Math.abs(readOvtHeader(small).timestamp - Date.now()) < 5000, 'messages carry the time by default');
  assert.throws(() => encodeOvtPackets(OVT_MESSAGE_REQUEST, Buffer.alloc(0)), RangeError);
});

test('messages and media come out whole however the byte stream is chunked, media between message fragments too', () => {
  const big = Buffer.from(JSON.stringify({ id: 1, application: 'describe', filler: 'x'.repeat(80_000) }));
  const request = Buffer.from('{"id":2,"application":"play","target":"ovt://h/app/s"}');
  const media = [Buffer.alloc(1200, 1), Buffer.alloc(30_000, 2), Buffer.alloc(OVT_MAX_PAYLOAD_SIZE + 5, 3), Buffer.alloc(1, 4)];
  const bigFramed = encodeOvtPackets(OVT_MESSAGE_RESPONSE, big);
  // Split the big message after its first packet and slip a media packet in: OME keeps one buffer per kind.
  const firstLen = OVT_HEADER_SIZE + OVT_MAX_PAYLOAD_SIZE;
  const stream = Buffer.concat([
    bigFramed.subarray(0, firstLen),
    encodeOvtPackets(OVT_MEDIA_PACKET, media[0], { sessionId: 5 }),
    bigFramed.subarray(firstLen),
    encodeOvtPackets(OVT_MESSAGE_REQUEST, request),
    encodeOvtPackets(OVT_MEDIA_PACKET, media[1], { sessionId: 5 }),
    encodeOvtPackets(OVT_MEDIA_PACKET, media[2], { sessionId: 5 }),
    encodeOvtPackets(OVT_MEDIA_PACKET, media[3], { sessionId: 5 }),
  ]);
  const expected = [
    ['media', media[0]], ['message', big], ['message', request], ['media', media[1]], ['media', media[2]], ['media', media[3]],
  ] as const;
  const next = random(1);
  const splits: ((left: number) => number)[] = [
    () => 1,
    () => 17,
    () => 18,
    () => 19,
    () => OVT_MAX_PACKET_SIZE,
    (left) => left,
    () => 1 + Math.floor(next() * 3000),
    () => 1 + Math.floor(next() * 70_000),
  ];
  for (const [i, size] of splits.entries()) {
    const { p, got } = parser();
    for (let at = 0; at < stream.length;) {
      const n = Math.min(size(stream.length - at), stream.length - at);
      p.push(stream.subarray(at, at + n));
      at += n;
    }
    assert.equal(got.length, expected.length, `split ${i}`);
    for (const [j, [kind, data]] of expected.entries()) {
      assert.equal(got[j].kind, kind, `split ${i}, item ${j}`);
      assert.ok(got[j].data.equals(data), `split ${i}, item ${j}: ${got[j].data.length} bytes vs ${data.length}`);
    }
    assert.equal((got[0] as { sessionId: number }).sessionId, 5);
    assert.equal((got[1] as { type: number }).type, OVT_MESSAGE_RESPONSE);
    assert.equal((got[2] as { type: number }).type, OVT_MESSAGE_REQUEST);
    assert.equal(p.buffered, 0, `split ${i}: nothing held once the stream is read`);
  }
});

test('a media packet wholly inside a chunk is handed over as a view of it, not a copy', () => {
  const chunk = Buffer.concat([encodeOvtPackets(OVT_MEDIA_PACKET, Buffer.alloc(100, 9)), encodeOvtPackets(OVT_MEDIA_PACKET, Buffer.alloc(50, 8))]);
  const views: Buffer[] = [];
  const p = new OvtParser({ onMessage: () => {}, onMedia: (data) => views.push(data) });
  p.push(chunk);
  assert.equal(views.length, 2);
  assert.equal(views[0].buffer, chunk.buffer);
  assert.equal(views[0].byteOffset, chunk.byteOffset + OVT_HEADER_SIZE);
  assert.equal(views[1].length, 50);
});

test('garbage, a bad version, an unknown payload type or a giant length is a protocol error, and the parser then ignores its input', () => {
  const good = encodeOvtPackets(OVT_MESSAGE_REQUEST, Buffer.from('{}'));
  const cases: [string, Buffer, RegExp][] = [
    // 'G' has the version bits of OVT; 'E' (69) is no payload type.
    ['HTTP', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), /unknown OVT payload type 69/],
    ['TLS', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), /version 0, expected 1/],
    ['version 0', Buffer.from([0x00, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0x7b, 0x7d]), /version 0, expected 1/],
    ['version 2', Buffer.from([0x80, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), /version 2/],
    ['payload type 99', Buffer.from([0x60, 99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), /unknown OVT payload type 99/],
    ['a length beyond 32750', Buffer.from([0x60, 30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]), /65535 exceeds 32750/],
    ['an empty message', Buffer.from([0x60, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), /empty message/],
  ];
  for (const [what, bytes, error] of cases) {
    const { p, got } = parser();
    assert.throws(() => p.push(bytes), (err: Error) => err instanceof OvtProtocolError && error.test(err.message), what);
    p.push(good);
    assert.equal(got.length, 0, `${what}: nothing is read after the error`);
  }
  // A giant length is refused from its header alone, before its payload could be waited for.
  const { p } = parser();
  assert.throws(() => p.push(Buffer.from([0x60, 30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x00, 1, 2])), /32768 exceeds 32750/);
});

test('a message that never ends is refused at the limit; empty fragments do not grow anything', () => {
  const { p } = parser({ maxMessageBytes: 100_000 });
  const fragment = Buffer.alloc(OVT_HEADER_SIZE + 30_000);
  writeOvtHeader(fragment, 0, false, OVT_MESSAGE_REQUEST, 0, 0, 0, 30_000);
  p.push(fragment);
  p.push(fragment);
  p.push(fragment);
  assert.equal(p.buffered, 90_000);
  assert.throws(() => p.push(fragment), /message longer than 100000 bytes/);

  const { p: q, got } = parser();
  const empty = Buffer.alloc(OVT_HEADER_SIZE);
  writeOvtHeader(empty, 0, false, OVT_MEDIA_PACKET, 0, 0, 0, 0);
  const many = Buffer.concat(Array.from({ length: 10_000 }, () => empty));
  q.push(many);
  assert.equal(q.buffered, 0);
  q.push(encodeOvtPackets(OVT_MEDIA_PACKET, Buffer.from([1, 2, 3])));
  assert.deepEqual([...got[0].data], [1, 2, 3]);
  // Media beyond its own limit.
  const { p: r } = parser({ maxMediaBytes: 1000 });
  assert.throws(() => r.push(encodeOvtPackets(OVT_MEDIA_PACKET, Buffer.alloc(1001))), /media payload longer than 1000 bytes/);
});

test('random bytes never crash the parser nor make it hold more than one packet and its limits', () => {
  const next = random(7);
  for (let round = 0; round < 300; round++) {
    const { p } = parser({ maxMessageBytes: 64 * 1024, maxMediaBytes: 64 * 1024 });
    const bytes = Buffer.alloc(1 + Math.floor(next() * 5000));
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(next() * 256);
    // Some rounds start with a valid header so the payload path is exercised.
    if (round % 2 === 0 && bytes.length >= OVT_HEADER_SIZE) writeOvtHeader(bytes, 0, next() < 0.5, [10, 20, 30][round % 3], 0, 0, 0, Math.floor(next() * 6000));
    try {
      for (let at = 0; at < bytes.length; at += 97) p.push(bytes.subarray(at, at + 97));
    } catch (err) {
      assert.ok(err instanceof OvtProtocolError, `round ${round}: ${(err as Error).message}`);
    }
    assert.ok(p.buffered <= OVT_MAX_PACKET_SIZE + 2 * 64 * 1024);
  }
});

test('an RTP record carries track id, sequence number, RTP timestamp and marker before the payload; a sender report its NTP time', () => {
  const payload = Buffer.from([0xaa, 0xbb, 0xcc]);
  const record = Buffer.alloc(RECORD_HEADER_SIZE + payload.length);
  writeRtpRecordHeader(record, 0, 2, 65535, 0xfffffffe, true);
  payload.copy(record, RECORD_HEADER_SIZE);
  assert.deepEqual([...record], [1, 0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 2, 0xaa, 0xbb, 0xcc]);
  assert.equal(recordType(record), RECORD_RTP);
  const sr = Buffer.alloc(20);
  writeSenderReportRecord(sr, 0, 1, 0x0123456789abcdefn, 90000);
  assert.equal(recordType(sr), RECORD_SENDER_REPORT);
  assert.equal(sr.readBigUInt64BE(12), 0x0123456789abcdefn);
  assert.equal(sr.readUInt32BE(4), 90000);
  assert.equal(sr.readUInt32BE(8), 1);
  assert.throws(() => recordType(Buffer.alloc(5)), OvtMediaError);
  assert.equal(recordType(record.subarray(0, RECORD_HEADER_SIZE)), RECORD_RTP, 'a padding-only packet has no payload and still counts');
  assert.throws(() => recordType(Buffer.concat([sr, Buffer.alloc(1)])), /expected 20/);
  const unknown = Buffer.from(record);
  unknown[0] = 9;
  assert.throws(() => recordType(unknown), /unknown media record type 9/);
});

test('framing and parsing an RTP packet costs a few hundred nanoseconds (printed, not asserted)', () => {
  const payload = Buffer.alloc(1100, 7);
  const n = 200_000;
  const batch = Buffer.allocUnsafe(64 * 1024);
  let seen = 0;
  const p = new OvtParser({ onMessage: () => {}, onMedia: (r) => (seen += r.length) });
  let framing = 0;
  let parsing = 0;
  for (let round = 0; round < n / 50; round++) {
    const t0 = performance.now();
    let at = 0;
    for (let i = 0; i < 50; i++) {
      const length = RECORD_HEADER_SIZE + payload.length;
      writeOvtHeader(batch, at, true, OVT_MEDIA_PACKET, i, i * 3000, 1, length);
      writeRtpRecordHeader(batch, at + OVT_HEADER_SIZE, 1, i, i * 3000, i % 5 === 0);
      payload.copy(batch, at + OVT_HEADER_SIZE + RECORD_HEADER_SIZE);
      at += OVT_HEADER_SIZE + length;
    }
    const out = Buffer.allocUnsafe(at);
    batch.copy(out, 0, 0, at);
    const t1 = performance.now();
    // Cut where TCP might: mid-packet.
    p.push(out.subarray(0, 20_011));
    p.push(out.subarray(20_011));
    const t2 = performance.now();
    framing += t1 - t0;
    parsing += t2 - t1;
  }
  assert.equal(seen, n * (RECORD_HEADER_SIZE + payload.length));
  console.log(`OVT per 1100-byte RTP packet: framing ${((framing / n) * 1e6).toFixed(0)} ns, parsing ${((parsing / n) * 1e6).toFixed(0)} ns`);
});
