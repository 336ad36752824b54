/**
 * Kiln's RTP header parser reads what werift's does, field for field: fixed header, CSRCs, RFC 8285
 * one- and two-byte extensions (padding bytes, the id-15 stop), other extension profiles, padding.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { parseRtpHeader, weriftParseRtpHeader } from '../../src/media/rtp-header.ts';

function fields(h: object): unknown {
  return JSON.parse(JSON.stringify(h, (_k, v) => (v && v.type === 'Buffer' ? Buffer.from(v.data).toString('hex') : v)));
}

function packet(b0: number, b1: number, csrcs: number, extension?: Buffer, padding = 0): Buffer {
  const fixed = Buffer.alloc(12);
  fixed[0] = b0 | csrcs | (extension ? 0x10 : 0) | (padding ? 0x20 : 0);
  fixed[1] = b1;
  fixed.writeUInt16BE(0xfffe, 2);
  fixed.writeUInt32BE(0xdeadbeef, 4);
  fixed.writeUInt32BE(0x01020304, 8);
  const parts: Buffer[] = [fixed, randomBytes(4 * csrcs)];
  if (extension) parts.push(extension);
  parts.push(randomBytes(20));
  if (padding) parts.push(Buffer.concat([Buffer.alloc(padding - 1), Buffer.from([padding])]));
  return Buffer.concat(parts);
}

const ext = (profile: number, body: number[]) => {
  const words = Math.ceil(body.length / 4);
  const b = Buffer.alloc(4 + words * 4);
  b.writeUInt16BE(profile, 0);
  b.writeUInt16BE(words, 2);
  Buffer.from(body).copy(b, 4);
  return b;
};

test('parses every header shape as werift does', () => {
  const cases: Buffer[] = [
    packet(0x80, 96, 0),
    packet(0x80, 0x80 | 111, 0),
    packet(0x80, 96, 3),
    packet(0x80, 0x80 | 100, 15, undefined, 4),
    // one-byte: mid (id 1, 2 bytes), a padding byte, abs-send-time (id 3, 3 bytes)
    packet(0x80, 96, 0, ext(0xbede, [0x11, 0x30, 0x31, 0x00, 0x32, 1, 2, 3])),
    // one-byte with the id-15 stop in the middle
    packet(0x80, 96, 2, ext(0xbede, [0x10, 0x41, 0xf0, 0x22, 9, 9, 9])),
    // two-byte: id 5 (3 bytes), padding, id 200 (0 bytes)
    packet(0x80, 96, 1, ext(0x1000, [5, 3, 7, 8, 9, 0, 200, 0])),
    // another profile: kept whole as extension id 0
    packet(0x80, 96, 0, ext(0x1234, [1, 2, 3, 4, 5, 6, 7, 8])),
  ];
  for (let i = 0; i < 300; i++) {
    const b = randomBytes(128);
    b[0] = 0x80 | (b[0] & 0x3f) & ~0x10; // random padding bit and CSRC count, no extension
    cases.push(b);
  }
  for (const raw of cases) assert.deepEqual(fields(parseRtpHeader(raw)), fields(weriftParseRtpHeader(raw)), raw.toString('hex'));
});

test('a truncated header throws as werift does', () => {
  assert.throws(() => weriftParseRtpHeader(Buffer.from([0x80, 96, 0])));
  assert.throws(() => parseRtpHeader(Buffer.from([0x80, 96, 0])));
});
