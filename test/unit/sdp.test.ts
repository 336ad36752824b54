import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isMdnsCandidate, stripMdnsCandidates, validateSdp } from '../../src/media/sdp.ts';

test('mDNS host candidates are recognised and stripped, others kept', () => {
  const mdns = 'a=candidate:3 1 udp 2113937151 5f1c0d2e-8a2b-4c6d-9e0f-123456789abc.local 54321 typ host generation 0';
  const ip = 'a=candidate:1 1 udp 2113937151 192.0.2.10 54321 typ host generation 0';
  assert.equal(isMdnsCandidate(mdns), true);
  assert.equal(isMdnsCandidate(mdns.slice(2)), true);
  assert.equal(isMdnsCandidate(ip), false);
  const sdp = `v=0\r\n${mdns}\r\n${ip}\r\na=end-of-candidates\r\n`;
  assert.equal(stripMdnsCandidates(sdp), `v=0\r\n${ip}\r\na=end-of-candidates\r\n`);
});

test('SDP that is not SDP is refused with the reason', () => {
  assert.throws(() => validateSdp(''), /missing/);
  assert.throws(() => validateSdp('hello'), /v=0/);
  assert.throws(() => validateSdp('v=0\r\nnot a line\r\n'), /<type>=<value>/);
  assert.throws(() => validateSdp('v=0\r\ns=-\r\n'), /no media section/);
  assert.throws(() => validateSdp('v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n'), /ICE credentials/);
  assert.throws(() => validateSdp('v=0\0'), /NUL/);
});
