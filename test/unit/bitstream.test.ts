import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isKeyFrame, keyFrameSize, parseH264SpsSize } from '../../src/media/bitstream.ts';

// SPS of a 1280x720 High-profile stream (x264), and of a 640x360 constrained-baseline one whose
// height needs frame cropping (368 coded lines, 8 cropped).
const SPS_720P_HIGH = Buffer.from('6764001facd9405005bb011000000300100000030320f1831960', 'hex');
const SPS_360P_BASELINE = Buffer.from('42c01eda0280bfe5c0440000030004000003018c3c58ba80', 'hex');

test('an H.264 SPS gives the picture size, cropping included', () => {
  assert.deepEqual(parseH264SpsSize(Buffer.concat([Buffer.from([0x67]), SPS_720P_HIGH.subarray(1)])), { width: 1280, height: 720 });
  assert.deepEqual(parseH264SpsSize(Buffer.concat([Buffer.from([0x67]), SPS_360P_BASELINE])), { width: 640, height: 360 });
});

test('garbage in an SPS yields no size rather than a throw', () => {
  assert.equal(parseH264SpsSize(Buffer.from([0x67, 0x00])), undefined);
  assert.equal(parseH264SpsSize(Buffer.alloc(0)), undefined);
});

test('an H.264 STAP-A with SPS and an IDR start are key frames; a P slice is not', () => {
  const sps = Buffer.concat([Buffer.from([0x67]), SPS_720P_HIGH.subarray(1)]);
  const stap = Buffer.concat([Buffer.from([0x18, 0x00, sps.length]), sps, Buffer.from([0x00, 0x02, 0x68, 0xce])]);
  assert.equal(isKeyFrame('H264', stap), true);
  assert.deepEqual(keyFrameSize('H264', stap), { width: 1280, height: 720 });
  assert.equal(isKeyFrame('H264', Buffer.from([0x7c, 0x85, 0x00])), true); // FU-A, start, IDR
  assert.equal(isKeyFrame('H264', Buffer.from([0x7c, 0x05, 0x00])), false); // FU-A continuation
  assert.equal(isKeyFrame('H264', Buffer.from([0x41, 0x9a])), false); // non-IDR slice
});

test('a VP8 key frame start gives its size; an inter frame is not a key frame', () => {
  // Descriptor: X=1 S=1 PID=0; I=1 with a 15-bit picture id; then the frame tag and header.
  const key = Buffer.from([0x90, 0x80, 0x81, 0x23, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01]);
  assert.equal(isKeyFrame('VP8', key), true);
  assert.deepEqual(keyFrameSize('VP8', key), { width: 640, height: 480 });
  const inter = Buffer.from([0x90, 0x80, 0x81, 0x24, 0x11, 0x02, 0x00]);
  assert.equal(isKeyFrame('VP8', inter), false);
  const middle = Buffer.from([0x80, 0x80, 0x81, 0x23, 0x10]); // not the start of a partition
  assert.equal(isKeyFrame('VP8', middle), false);
});

test('a VP9 key frame with a scalability structure gives the top layer size', () => {
  // I=1 (7-bit id), P=0, B=1, V=1; SS: N_S=0, Y=1; 1280x720.
  const key = Buffer.from([0x8a, 0x05, 0x18, 0x05, 0x00, 0x02, 0xd0, 0x00]);
  assert.equal(isKeyFrame('VP9', key), true);
  assert.deepEqual(keyFrameSize('VP9', key), { width: 1280, height: 720 });
  assert.equal(isKeyFrame('VP9', Buffer.from([0xc8, 0x06])), false); // P=1
});

test('empty payloads are never key frames', () => {
  for (const codec of ['VP8', 'VP9', 'H264', 'H265', 'AV1'] as const) assert.equal(isKeyFrame(codec, Buffer.alloc(0)), false);
});
