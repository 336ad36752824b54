/**
 * The players of `bench/fanout.ts`, in their own process: N WHEP players that count what they
 * receive. Each packet's last 8 bytes carry the publisher's send time (a float64 of
 * performance.timeOrigin + now), so forwarding delay is measured end to end. Talks to the parent
 * over IPC: `start` resets the counters, `stop` reports and exits.
 */
import { loopbackPeer, connected, negotiate } from '../test/helpers/werift-peer.ts';
import type { RTCPeerConnection } from 'werift';

const [url, countArg] = process.argv.slice(2);
const count = Number(countArg);
const now = () => performance.timeOrigin + performance.now();

interface Counter {
  received: number;
  first: number;
  last: number;
  cycles: number;
  started: boolean;
}

const counters: Counter[] = [];
const delays = new Float64Array(4_000_000);
let delayCount = 0;
let measuring = false;
const firstKeyFrameMs: number[] = [];
const peers: RTCPeerConnection[] = [];
const resources: string[] = [];

function counter(): Counter {
  const c = { received: 0, first: 0, last: 0, cycles: 0, started: false };
  counters.push(c);
  return c;
}

async function player(): Promise<void> {
  const pc = loopbackPeer();
  peers.push(pc);
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const t0 = now();
  let gotKey = false;
  const counts = new Map<string, Counter>();
  pc.ontrack = ({ track }) => {
    const c = counter();
    counts.set(track.kind, c);
    track.onReceiveRtp.subscribe((rtp) => {
      const t = now();
      const p = rtp.payload;
      if (track.kind === 'video' && !gotKey && p.length > 12) {
        // VP8 descriptor: S bit set, partition 0, and a key frame's P bit clear (RFC 7741).
        let i = 1;
        if (p[0] & 0x80) { i = 2; if (p[1] & 0x80) i += p[2] & 0x80 ? 2 : 1; if (p[1] & 0x40) i++; if (p[1] & 0x30) i++; }
        if ((p[0] & 0x10) && (p[0] & 0x07) === 0 && (p[i] & 0x01) === 0) {
          gotKey = true;
          firstKeyFrameMs.push(t - t0);
        }
      }
      if (!measuring) return;
      const seq = rtp.header.sequenceNumber;
      if (!c.started) {
        c.started = true;
        c.first = seq;
        c.last = seq;
      } else if (seq < 0x1000 && c.last > 0xf000) {
        c.cycles++; // wrapped
        c.last = seq;
      } else if (seq > c.last && !(seq > 0xf000 && c.last < 0x1000)) {
        c.last = seq;
      }
      c.received++;
      if (p.length >= 8 && delayCount < delays.length) delays[delayCount++] = t - p.readDoubleBE(p.length - 8);
    });
  };
  resources.push(new URL(await negotiate(pc, url), url).href);
  await connected(pc);
}

async function main(): Promise<void> {
  const batch = 10;
  for (let i = 0; i < count; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, count - i) }, () => player()));
  }
  process.send!({ type: 'ready' });
  process.on('message', (msg: { type: string }) => {
    if (msg.type === 'start') {
      for (const c of counters) Object.assign(c, { received: 0, first: 0, last: 0, cycles: 0, started: false });
      delayCount = 0;
      measuring = true;
    } else if (msg.type === 'stop') {
      measuring = false;
      let expected = 0;
      let received = 0;
      for (const c of counters) {
        if (!c.started) continue;
        expected += c.cycles * 65536 + c.last - c.first + 1;
        received += c.received;
      }
      const sorted = delays.subarray(0, delayCount).sort();
      const pick = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : NaN);
      process.send!({ type: 'result', firstKeyFrameMs, expected, received, delayP50: pick(0.5), delayP99: pick(0.99), samples: delayCount });
      // Leave as a WHEP client should: DELETE the session, then close.
      void Promise.allSettled(resources.map((r) => fetch(r, { method: 'DELETE' }))).then(() => {
        for (const pc of peers) void pc.close();
        setTimeout(() => process.exit(0), 300);
      });
    }
  });
}

main().catch((err) => {
  process.send!({ type: 'error', message: String(err?.stack ?? err) });
  process.exit(1);
});
