import { test } from 'node:test';
import assert from 'node:assert/strict';
import { H264Repacketizer, MAX_PAYLOAD, profileLevelId, spropParameterSets } from '../../src/media/h264-packetizer.ts';

const SPS = Buffer.from('Z0LAHtoCgL/lwFqDAwNSgAAAAwCAAAAeR4sXUA==', 'base64');
const PPS = Buffer.from('aM48gA==', 'base64');
const nal = (type: number, size: number) => {
  const b = Buffer.alloc(size, 0xab);
  b[0] = 0x60 | type;
  return b;
};

function run(packets: [Buffer, boolean, number][], sets = {}) {
  const out: { payload: Buffer; marker: boolean }[] = [];
  const r = new H264Repacketizer(sets);
  for (const [payload, marker, ts] of packets) r.push(payload, marker, ts, (p, m) => out.push({ payload: Buffer.from(p), marker: m }));
  return { out, r };
}

/** Reassembles the NAL units of emitted payloads (single, STAP-A, FU-A). */
function nals(out: { payload: Buffer }[]): Buffer[] {
  const units: Buffer[] = [];
  let fu: Buffer[] = [];
  for (const { payload } of out) {
    const type = payload[0] & 0x1f;
    if (type === 28) {
      if (payload[1] & 0x80) fu = [Buffer.from([(payload[0] & 0xe0) | (payload[1] & 0x1f)])];
      fu.push(payload.subarray(2));
      if (payload[1] & 0x40) units.push(Buffer.concat(fu));
    } else if (type === 24) {
      for (let at = 1; at < payload.length;) {
        const size = payload.readUInt16BE(at);
        units.push(payload.subarray(at + 2, at + 2 + size));
        at += 2 + size;
      }
    } else units.push(payload);
  }
  return units;
}

test('sprop-parameter-sets give SPS and PPS; profile-level-id is normalised to what browsers offer', () => {
  const sets = spropParameterSets('Z0LAHtoCgL/lwFqDAwNSgAAAAwCAAAAeR4sXUA==,aM48gA==');
  assert.deepEqual(sets.sps, SPS);
  assert.deepEqual(sets.pps, PPS);
  assert.equal(profileLevelId(SPS), '42e01e', 'constrained baseline');
  assert.equal(profileLevelId(Buffer.from([0x67, 66, 0x00, 0x1f])), '4200' + '1f');
  assert.equal(profileLevelId(Buffer.from([0x67, 100, 0x00, 0x28])), '640028');
  assert.equal(profileLevelId(undefined), '42e01f');
  assert.deepEqual(spropParameterSets(undefined), {});
});

test('an IDR without parameter sets gets the SPS and PPS in front; non-IDR frames pass untouched', () => {
  const idr = nal(5, 500);
  const p = nal(1, 300);
  const { out } = run([[idr, true, 1000], [p, true, 4000]], { sps: SPS, pps: PPS });
  assert.deepEqual(out.map((o) => o.payload[0] & 0x1f), [7, 8, 5, 1]);
  assert.deepEqual(out.map((o) => o.marker), [false, false, true, true]);
  assert.equal(out[3].payload.length, 300);
});

test('in-band SPS/PPS are learnt and not repeated within their access unit', () => {
  const sps2 = Buffer.concat([SPS.subarray(0, SPS.length - 1), Buffer.from([0x51])]);
  const { out, r } = run([[sps2, false, 1], [PPS, false, 1], [nal(5, 100), true, 1], [nal(5, 100), true, 2]]);
  assert.deepEqual(out.map((o) => o.payload[0] & 0x1f), [7, 8, 5, 7, 8, 5]);
  assert.deepEqual(r.sps, sps2);
  assert.deepEqual(out[3].payload, sps2, 'the latest SPS is repeated before the next IDR');
});

test('FU-A starting an IDR gets parameter sets; oversized NAL units and fragments fit the MTU', () => {
  const big = nal(5, 5000);
  // A camera FU-A series of 1400-byte fragments (bigger than Kiln's budget).
  const fragments: [Buffer, boolean, number][] = [];
  const body = big.subarray(1);
  for (let at = 0; at < body.length; at += 1398) {
    const part = body.subarray(at, at + 1398);
    const header = (at === 0 ? 0x80 : 0) | (at + 1398 >= body.length ? 0x40 : 0) | 5;
    fragments.push([Buffer.concat([Buffer.from([(big[0] & 0xe0) | 28, header]), part]), at + 1398 >= body.length, 9000]);
  }
  const { out } = run(fragments, { sps: SPS, pps: PPS });
  assert.ok(out.every((o) => o.payload.length <= MAX_PAYLOAD), 'every payload fits');
  assert.deepEqual(nals(out), [SPS, PPS, big]);
  assert.deepEqual(out.map((o) => o.marker).filter(Boolean).length, 1);
  assert.equal(out[out.length - 1].marker, true);
  // One big single NAL unit is fragmented too.
  const single = run([[nal(1, 3000), true, 5]]).out;
  assert.ok(single.length >= 3 && single.every((o) => o.payload.length <= MAX_PAYLOAD));
  assert.deepEqual(nals(single), [nal(1, 3000)]);
});

test('STAP-A: parameter sets inside count; an IDR inside gets them when missing; malformed ones are dropped', () => {
  const stap = (units: Buffer[]) => Buffer.concat([Buffer.from([0x78]), ...units.flatMap((u) => [Buffer.from([u.length >> 8, u.length & 0xff]), u])]);
  const withSets = run([[stap([SPS, PPS, nal(5, 50)]), true, 1]]).out;
  assert.equal(withSets.length, 1, 'passes through as it is');
  const without = run([[stap([nal(6, 10), nal(5, 50)]), true, 1]], { sps: SPS, pps: PPS }).out;
  assert.deepEqual(without.map((o) => o.payload[0] & 0x1f), [7, 8, 24]);
  const { out, r } = run([[Buffer.from([0x78, 0x00, 0x09, 0x65]), true, 1], [Buffer.from([0x7c]), true, 2], [Buffer.from([0x7f, 1, 2]), true, 3]]);
  assert.equal(out.length, 0);
  assert.equal(r.dropped, 3);
});
