/**
 * The players of `bench/fanout.ts` built on node-datachannel (libdatachannel, native) instead of
 * werift, so that the players process costs much less CPU than the server it measures. A drop-in
 * replacement for `fanout-players.ts`: same argv (WHEP URL, count), same IPC (`ready` when all
 * players are connected; `start` resets the counters; `stop` replies `result` and exits).
 *
 * Each player is a PeerConnection bound to 127.0.0.1 with no ICE servers and two recvonly tracks
 * (VP8 PT 96, Opus PT 111). A track's onMessage gives each decrypted packet whole: RTP with its
 * 12-byte header, CSRCs, header extension and padding, parsed here. Each track has an
 * RtcpReceivingSession, which answers every sender report with a receiver report (the server
 * closes a player it has not heard RTCP from for 10 s) and keeps RTCP from onMessage; RTCP that
 * still gets through is skipped. Each RTP payload's last 8 bytes carry the publisher's send time
 * (a float64 of performance.timeOrigin + now).
 */
import { Audio, PeerConnection, RtcpReceivingSession, Video, cleanup, initLogger, type LogLevel, type Track } from 'node-datachannel';
import { PlayerStats, now } from './player-stats.ts';

const [url, countArg] = process.argv.slice(2);
const count = Number(countArg);
const VP8_PT = 96;
const OPUS_PT = 111;
const CONNECT_TIMEOUT_MS = 10_000;

// KILN_NDC_LOG=Verbose|Debug|Info|Warning|Error|Fatal shows libdatachannel's log on stderr.
initLogger((process.env.KILN_NDC_LOG as LogLevel | undefined) ?? 'Error', (level, message) => console.error(`[ndc ${level} ${performance.now().toFixed(0)}] ${message}`));

const stats = new PlayerStats();
const peers: PeerConnection[] = [];
// The Track objects must stay reachable: a collected TrackWrapper closes its native track.
const tracks: Track[] = [];
/** The WHEP session resources (Location of each 201), deleted on stop. */
const resources: string[] = [];
/** POST → answer and POST → connected of each player, ms (shown with KILN_NDC_DEBUG). */
const answerMs: number[] = [];
const connectMs: number[] = [];
let rtcpPackets = 0; // RTCP that reached onMessage (none while RtcpReceivingSession takes it)
let badPackets = 0;

/** True when the VP8 payload at p[off, end) starts a key frame (RFC 7741 descriptor + VP8 header). */
function vp8KeyFrame(p: Buffer, off: number, end: number): boolean {
  if (end - off <= 12) return false; // the descriptor, a byte of frame, and the 8-byte stamp at least
  const b0 = p[off];
  let i = 1;
  if (b0 & 0x80) {
    const x = p[off + 1];
    i = 2;
    if (x & 0x80) i += p[off + 2] & 0x80 ? 2 : 1; // I: PictureID, 7 or 15 bits
    if (x & 0x40) i++; // L: TL0PICIDX
    if (x & 0x30) i++; // T/K: TID/Y/KEYIDX
  }
  // S bit set, partition 0, and the P bit of the VP8 payload header clear.
  return (b0 & 0x10) !== 0 && (b0 & 0x07) === 0 && off + i < end && (p[off + i] & 0x01) === 0;
}

function player(index: number): Promise<void> {
  const pc = new PeerConnection(`player${index}`, {
    iceServers: [],
    bindAddress: '127.0.0.1',
    enableIceTcp: false,
    enableIceUdpMux: false,
    disableAutoNegotiation: true,
  });
  peers.push(pc);
  const video = new Video('0', 'RecvOnly');
  video.addVP8Codec(VP8_PT);
  const audio = new Audio('1', 'RecvOnly');
  audio.addOpusCodec(OPUS_PT);
  let t0 = 0;
  let gotKey = false;

  const receive = (track: Track, kind: 'video' | 'audio') => {
    tracks.push(track);
    track.setMediaHandler(new RtcpReceivingSession());
    const c = stats.track();
    const pt = kind === 'video' ? VP8_PT : OPUS_PT;
    track.onMessage((b) => {
      const t = now();
      const len = b.length;
      if (len < 12 || (b[0] & 0xc0) !== 0x80) {
        badPackets++;
        return;
      }
      const b1 = b[1];
      if (b1 >= 192 && b1 <= 223) {
        rtcpPackets++; // RTCP (RFC 5761: packet types 192–223 never collide with dynamic RTP PTs)
        return;
      }
      if ((b1 & 0x7f) !== pt) {
        badPackets++;
        return;
      }
      const b0 = b[0];
      let off = 12 + 4 * (b0 & 0x0f); // CSRCs
      if (b0 & 0x10) {
        // Header extension: 16-bit profile, 16-bit length in 32-bit words.
        if (off + 4 > len) {
          badPackets++;
          return;
        }
        off += 4 + 4 * b.readUInt16BE(off + 2);
      }
      let end = len;
      if (b0 & 0x20) end -= b[len - 1]; // padding: its count is the last byte
      if (off > end) {
        badPackets++;
        return;
      }
      if (kind === 'video' && !gotKey && vp8KeyFrame(b, off, end)) {
        gotKey = true;
        stats.firstKeyFrameMs.push(t - t0);
      }
      if (stats.measuring) stats.record(c, (b[2] << 8) | b[3], t, end - off >= 8 ? b.readDoubleBE(end - 8) : NaN);
    });
  };
  receive(pc.addTrack(video), 'video');
  receive(pc.addTrack(audio), 'audio');

  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`player ${index} did not connect (state ${pc.state()})`)), CONNECT_TIMEOUT_MS);
    pc.onStateChange((state) => {
      if (state === 'connected') {
        clearTimeout(timer);
        connectMs.push(now() - t0);
        resolve();
      } else if (state === 'failed' || state === 'closed') {
        clearTimeout(timer);
        reject(new Error(`player ${index}: peer connection ${state}`));
      }
    });
    let posted = false;
    const post = async () => {
      if (posted) return;
      posted = true;
      const sdp = pc.localDescription()?.sdp;
      if (!sdp) throw new Error(`player ${index}: no local description`);
      t0 = now();
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: sdp });
      if (res.status !== 201) throw new Error(`${url}: ${res.status} ${await res.text()}`);
      const location = res.headers.get('location');
      if (location) resources.push(new URL(location, url).href);
      const answer = await res.text();
      answerMs.push(now() - t0);
      if (process.env.KILN_NDC_DEBUG && index === 0) console.error(`offer:\n${sdp}\nanswer:\n${answer}`);
      pc.setRemoteDescription(answer, 'answer');
    };
    const fail = (err: unknown) => {
      clearTimeout(timer);
      reject(err instanceof Error ? err : new Error(String(err)));
    };
    pc.onGatheringStateChange((state) => {
      if (state === 'complete') post().catch(fail);
    });
    pc.setLocalDescription('offer');
    if (pc.gatheringState() === 'complete') post().catch(fail);
  });
}

/**
 * Ends every WHEP session with a DELETE (so the server stops forwarding to them at once, before the
 * next round), closes the peer connections, stops libdatachannel's threads and exits. The DELETEs
 * wait a little so they do not fall into the parent's measurement, which ends on `result`.
 */
async function shutdown(code: number): Promise<void> {
  await new Promise((r) => setTimeout(r, 250));
  await Promise.all(resources.map((r) => fetch(r, { method: 'DELETE', signal: AbortSignal.timeout(5000) }).catch(() => {})));
  for (const pc of peers) pc.close();
  cleanup();
  process.exit(code);
}

async function main(): Promise<void> {
  const batch = 10;
  for (let i = 0; i < count; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, count - i) }, (_, j) => player(i + j)));
  }
  stats.serve((code) => void shutdown(code), () => {
    if (process.env.KILN_NDC_DEBUG) {
      const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]?.toFixed(0);
      console.error(`ndc players: ${rtcpPackets} RTCP and ${badPackets} unexpected packets; p50 POST→answer ${p50(answerMs)} ms, POST→connected ${p50(connectMs)} ms`);
    }
  });
}

main().catch((err) => {
  process.send!({ type: 'error', message: String(err?.stack ?? err) }, () => void shutdown(1));
});
