import { test } from 'node:test';
import assert from 'node:assert/strict';
import { codecName, offeredCodecs, preferOffered, publisherVideoCodecs } from '../../src/media/codecs.ts';

const OFFER = [
  'v=0', 'o=- 1 2 IN IP4 127.0.0.1', 's=-', 't=0 0',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111 0', 'a=rtpmap:111 opus/48000/2', 'a=rtpmap:0 PCMU/8000',
  'm=video 9 UDP/TLS/RTP/SAVPF 102 103 96', 'a=rtpmap:102 H264/90000',
  'a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
  'a=rtpmap:103 rtx/90000', 'a=fmtp:103 apt=102', 'a=rtpmap:96 VP8/90000', '',
].join('\r\n');

test('the offered codecs are read per kind in the offerer\'s order', () => {
  assert.deepEqual(offeredCodecs(OFFER, 'video').map((c) => c.name), ['H264', 'RTX', 'VP8']);
  assert.deepEqual(offeredCodecs(OFFER, 'audio').map((c) => c.name), ['OPUS', 'PCMU']);
  assert.match(offeredCodecs(OFFER, 'video')[0].fmtp, /profile-level-id=42e01f/);
});

test('Kiln answers with the offerer\'s first codec it can forward, H.264 matched by profile and mode', () => {
  const ordered = preferOffered(publisherVideoCodecs(), offeredCodecs(OFFER, 'video'));
  assert.equal(codecName(ordered[0].mimeType), 'H264');
  assert.match(ordered[0].parameters ?? '', /profile-level-id=42e01f/);
  assert.match(ordered[0].parameters ?? '', /packetization-mode=1/);
  assert.equal(codecName(ordered[1].mimeType), 'VP8');
  assert.equal(ordered.length, publisherVideoCodecs().length, 'nothing is dropped');
});

test('a viewer\'s offer keeps only the H.264 entries of the stream\'s profile and mode', async () => {
  const { restrictH264 } = await import('../../src/media/codecs.ts');
  const viewer = [
    'v=0', 'o=- 1 2 IN IP4 127.0.0.1', 's=-', 't=0 0',
    'm=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 108',
    'a=rtpmap:96 VP8/90000',
    'a=rtpmap:97 H264/90000', 'a=rtcp-fb:97 nack', 'a=fmtp:97 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c1f',
    'a=rtpmap:102 H264/90000', 'a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
    'a=rtpmap:103 rtx/90000', 'a=fmtp:103 apt=97',
    'a=rtpmap:108 H264/90000', 'a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f', '',
  ].join('\r\n');
  const stream = publisherVideoCodecs().find((c) => /42e01f/.test(c.parameters ?? '') && /mode=1/.test(c.parameters ?? ''))!;
  const out = restrictH264(viewer, stream);
  assert.match(out, /^m=video 9 UDP\/TLS\/RTP\/SAVPF 96 102\r$/m);
  assert.doesNotMatch(out, /a=(rtpmap|fmtp|rtcp-fb):(97|103|108) /);
  assert.match(out, /a=fmtp:102 .*profile-level-id=42e01f/);
  const vp8 = publisherVideoCodecs()[0];
  assert.equal(restrictH264(viewer, vp8), viewer, 'other codecs leave the offer alone');
});
