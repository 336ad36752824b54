/**
 * The werift players of `bench/fanout.ts` (`--players werift`): N WHEP players in their own
 * process, measured by PlayerStats. Heavier on CPU than the node-datachannel players; kept to
 * compare the two stacks. argv: WHEP URL, count, then the video codec to offer (VP8, the default:
 * the stamped fixture of `fanout.ts`; or H264: an RTSP camera, packetization-mode=1, 42e01f).
 */
import { RTCRtpCodecParameters, useNACK, usePLI, type RTCPeerConnection } from 'werift';
import { OPUS, connected, loopbackPeer, negotiate } from '../test/helpers/werift-peer.ts';
import { isKeyFrame } from '../src/media/bitstream.ts';
import { PlayerStats, now } from './player-stats.ts';

const [url, countArg, codecArg] = process.argv.slice(2);
const count = Number(countArg);
const codec = codecArg === 'H264' ? 'H264' : 'VP8';
const stamped = codec === 'VP8';
const stats = new PlayerStats();
const peers: RTCPeerConnection[] = [];
const resources: string[] = [];

const H264 = () => new RTCRtpCodecParameters({
  mimeType: 'video/H264',
  clockRate: 90000,
  payloadType: 96,
  rtcpFeedback: [useNACK(), usePLI()],
  parameters: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
});

async function player(): Promise<void> {
  const pc = loopbackPeer();
  if (codec === 'H264') pc.setConfiguration({ codecs: { video: [H264()], audio: [OPUS()] } });
  peers.push(pc);
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const t0 = now();
  let answered = NaN;
  let gotVideo = false;
  let gotKey = false;
  pc.ontrack = ({ track }) => {
    const c = stats.track();
    track.onReceiveRtp.subscribe((rtp) => {
      const t = now();
      const p = rtp.payload;
      if (track.kind === 'video' && !gotKey) {
        if (!gotVideo) {
          gotVideo = true;
          stats.firstVideoMs.push(t - t0);
        }
        if (isKeyFrame(codec, p)) {
          gotKey = true;
          stats.firstKeyFrameMs.push(t - t0);
          stats.answerToKeyMs.push(t - answered);
        }
      }
      if (stats.measuring) stats.record(c, rtp.header.sequenceNumber, t, stamped && p.length >= 8 ? p.readDoubleBE(p.length - 8) : NaN);
    });
  };
  resources.push(new URL(await negotiate(pc, url), url).href);
  answered = now(); // the answer is applied (negotiate does not tell when it arrived)
  await connected(pc);
}

/** Leaves as a WHEP client should: DELETE each session, then close. */
async function shutdown(code: number): Promise<void> {
  await Promise.allSettled(resources.map((r) => fetch(r, { method: 'DELETE' })));
  await Promise.allSettled(peers.map((pc) => pc.close()));
  process.exit(code);
}

async function main(): Promise<void> {
  const batch = 10;
  for (let i = 0; i < count; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, count - i) }, () => player()));
  }
  stats.serve((code) => void shutdown(code));
}

main().catch((err) => {
  process.send!({ type: 'error', message: String(err?.stack ?? err) }, () => void shutdown(1));
});
