/**
 * The RTCP policy of the forwarder, with real werift peers over loopback: NACKs are answered from
 * the server's retransmission history, PLIs from many players reach the publisher merged.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  GenericNack, PictureLossIndication, RtcpPayloadSpecificFeedback, RtcpTransportLayerFeedback, RtpHeader, RtpPacket,
  type RTCPeerConnection, type RTCRtpTransceiver,
} from 'werift';
import { startKilnInProcess, type InProcessKiln } from '../helpers/kiln-process.ts';
import { loopbackPeer, connected, negotiate } from '../helpers/werift-peer.ts';

let node: InProcessKiln;
let publisher: RTCPeerConnection;
let video: RTCRtpTransceiver;
let pump: NodeJS.Timeout;
let plisAtPublisher = 0;
const peers: RTCPeerConnection[] = [];

before(async () => {
  node = await startKilnInProcess();
  publisher = loopbackPeer();
  video = publisher.addTransceiver('video', { direction: 'sendonly' });
  video.sender.onPictureLossIndication.subscribe(() => plisAtPublisher++);
  await negotiate(publisher, `${base()}?direction=whip`, 'pw');
  await connected(publisher);
  let seq = 1000;
  pump = setInterval(() => {
    const s = seq++ & 0xffff;
    // Payload: a VP8 inter-frame start, then the source sequence number so copies can be told apart.
    const payload = Buffer.from([0x10, 0x00, 0x00, 0x01, s >> 8, s & 0xff, 0, 0]);
    void video.sender.sendRtp(new RtpPacket(new RtpHeader({ sequenceNumber: s, timestamp: s * 3000, payloadType: 96, marker: true }), payload)).catch(() => {});
  }, 10);
});

after(async () => {
  clearInterval(pump);
  await node.stop();
  await Promise.all([publisher, ...peers].map((pc) => pc.close()));
});

const base = () => `${node.signalingUrl}/app/rtcp`;

async function player(): Promise<{ pc: RTCPeerConnection; seen: Map<number, number>; ssrc: () => number }> {
  const pc = loopbackPeer();
  peers.push(pc);
  pc.addTransceiver('video', { direction: 'recvonly' });
  const seen = new Map<number, number>();
  let ssrc = 0;
  pc.ontrack = ({ track }) => track.onReceiveRtp.subscribe((rtp) => {
    ssrc = rtp.header.ssrc;
    seen.set(rtp.header.sequenceNumber, (seen.get(rtp.header.sequenceNumber) ?? 0) + 1);
  });
  await negotiate(pc, `${base()}?direction=whep`);
  await connected(pc);
  for (let i = 0; i < 50 && seen.size < 20; i++) await new Promise((r) => setTimeout(r, 50));
  return { pc, seen, ssrc: () => ssrc };
}

test('a NACK from a player is answered from the retransmission history', async () => {
  const { pc, seen, ssrc } = await player();
  assert.ok(seen.size >= 20, 'the player receives the stream');
  const asked = [...seen.keys()].slice(-10, -5);
  for (const s of asked) assert.equal(seen.get(s), 1);
  const nack = new RtcpTransportLayerFeedback({ feedback: new GenericNack({ senderSsrc: 1, mediaSourceSsrc: ssrc(), lost: asked }) });
  await pc.dtlsTransports[0].sendRtcp([nack]);
  for (let i = 0; i < 40 && asked.some((s) => (seen.get(s) ?? 0) < 2); i++) await new Promise((r) => setTimeout(r, 50));
  for (const s of asked) assert.equal(seen.get(s), 2, `sequence ${s} was sent again`);
});

test('PLIs from many players reach the publisher merged, at most one per 300 ms', async () => {
  const players = await Promise.all(Array.from({ length: 5 }, () => player()));
  await new Promise((r) => setTimeout(r, 700)); // let join-time requests settle
  plisAtPublisher = 0;
  const started = Date.now();
  // 5 players × 10 PLIs within about a second.
  for (let round = 0; round < 10; round++) {
    for (const p of players) {
      const pli = new RtcpPayloadSpecificFeedback({ feedback: new PictureLossIndication({ senderSsrc: 1, mediaSsrc: p.ssrc() }) });
      await p.pc.dtlsTransports[0].sendRtcp([pli]);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 600));
  const seconds = (Date.now() - started) / 1000;
  assert.ok(plisAtPublisher >= 1, 'the requests reach the publisher');
  assert.ok(plisAtPublisher <= Math.ceil(seconds / 0.3) + 1, `${plisAtPublisher} PLIs at the publisher in ${seconds.toFixed(1)} s for 50 sent`);
});
