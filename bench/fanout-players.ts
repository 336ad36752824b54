/**
 * The werift players of `bench/fanout.ts` (`--players werift`): N WHEP players in their own
 * process, measured by PlayerStats. Heavier on CPU than the node-datachannel players; kept to
 * compare the two stacks.
 */
import type { RTCPeerConnection } from 'werift';
import { connected, loopbackPeer, negotiate } from '../test/helpers/werift-peer.ts';
import { isKeyFrame } from '../src/media/bitstream.ts';
import { PlayerStats, now } from './player-stats.ts';

const [url, countArg] = process.argv.slice(2);
const count = Number(countArg);
const stats = new PlayerStats();
const peers: RTCPeerConnection[] = [];
const resources: string[] = [];

async function player(): Promise<void> {
  const pc = loopbackPeer();
  peers.push(pc);
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const t0 = now();
  let gotKey = false;
  pc.ontrack = ({ track }) => {
    const c = stats.track();
    track.onReceiveRtp.subscribe((rtp) => {
      const t = now();
      const p = rtp.payload;
      if (track.kind === 'video' && !gotKey && isKeyFrame('VP8', p)) {
        gotKey = true;
        stats.firstKeyFrameMs.push(t - t0);
      }
      if (stats.measuring) stats.record(c, rtp.header.sequenceNumber, t, p.length >= 8 ? p.readDoubleBE(p.length - 8) : NaN);
    });
  };
  resources.push(new URL(await negotiate(pc, url), url).href);
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
