/**
 * The players of `bench/fanout.ts` built on node-datachannel (libdatachannel, native) instead of
 * werift, so that the players process costs much less CPU than the server it measures. A drop-in
 * replacement for `fanout-players.ts`: same argv (WHEP URL, count, then the video codec to offer:
 * VP8, the default, or H264), same IPC (`ready` when all players are connected; `start` resets the
 * counters; `stop` replies `result` and exits). `openPlayer` is also used in-process by
 * `bench/rtsp.ts` to time a single fresh player.
 *
 * Each player is a PeerConnection bound to 127.0.0.1 with no ICE servers and two recvonly tracks
 * (VP8 or H.264 packetization-mode=1 profile-level-id=42e01f, PT 96; Opus PT 111). A track's
 * onMessage gives each decrypted packet whole: RTP with its 12-byte header, CSRCs, header extension
 * and padding, parsed here. Each track has an RtcpReceivingSession, which answers every sender
 * report with a receiver report (the server closes a player it has not heard RTCP from for 10 s)
 * and keeps RTCP from onMessage; RTCP that still gets through is skipped. With VP8 (the fixture
 * published by `fanout.ts`) each RTP payload's last 8 bytes carry the publisher's send time (a
 * float64 of performance.timeOrigin + now); H.264 streams (an RTSP camera) carry no such stamp.
 */
import { Audio, PeerConnection, RtcpReceivingSession, Video, cleanup, initLogger, type LogLevel, type Track } from 'node-datachannel';
import { isKeyFrame } from '../src/media/bitstream.ts';
import { PlayerStats, now } from './player-stats.ts';

export type PlayerCodec = 'VP8' | 'H264';
const VIDEO_PT = 96;
const OPUS_PT = 111;
const CONNECT_TIMEOUT_MS = 10_000;

// KILN_NDC_LOG=Verbose|Debug|Info|Warning|Error|Fatal shows libdatachannel's log on stderr.
initLogger((process.env.KILN_NDC_LOG as LogLevel | undefined) ?? 'Error', (level, message) => console.error(`[ndc ${level} ${performance.now().toFixed(0)}] ${message}`));

/** Moments of one player's life on the `now()` clock, ms (NaN until they happen). */
export interface PlayerTimes {
  posted: number;
  answered: number;
  connected: number;
  firstVideo: number;
  firstKey: number;
}

export interface NdcPlayer {
  pc: PeerConnection;
  /** The Track objects must stay reachable: a collected TrackWrapper closes its native track. */
  tracks: Track[];
  /** The WHEP session resource (Location of the 201). */
  resource: string | undefined;
  times: PlayerTimes;
  /** Resolves at the first video packet that starts a key frame. */
  keyFrame: Promise<void>;
  /** DELETEs the WHEP session and closes the peer connection. */
  close: () => Promise<void>;
}

/** Sends an SDP offer by some other signaling (a room's receiveVideoFrom) and resolves with the answer. */
export type OfferExchange = (offer: string) => Promise<string>;

/** Counters of the packets that were not the RTP expected (shown with KILN_NDC_DEBUG). */
const unexpected = { rtcp: 0, bad: 0 };

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

/** Told of each stamped packet a player receives: the publisher's send time and the arrival, ms. */
/**
 * Ends every WHEP session (their DELETEs wait a little, so they do not fall into the parent's
 * measurement, which ends on `result`), closes the peer connections, stops libdatachannel's
 * threads and exits with `code`.
 */
export async function closePlayersAndExit(players: NdcPlayer[], code: number): Promise<never> {
  await new Promise((r) => setTimeout(r, 250));
  await Promise.all(players.map((p) => p.close()));
  cleanup();
  process.exit(code);
}

export type StampListener = (sentAt: number, receivedAt: number) => void;

/**
 * One WHEP player on `url` (or one whose offer `url` exchanges itself), offering `codec` for video;
 * resolves once connected. With `stats`, its packets are counted there and its first-packet times
 * recorded; with `onStamp`, each packet carrying a publisher stamp (VP8) is told there too.
 */
export function openPlayer(url: string | OfferExchange, index: number, codec: PlayerCodec, stats?: PlayerStats, onStamp?: StampListener): Promise<NdcPlayer> {
  const pc = new PeerConnection(`player${index}`, {
    iceServers: [],
    bindAddress: '127.0.0.1',
    enableIceTcp: false,
    enableIceUdpMux: false,
    disableAutoNegotiation: true,
  });
  const video = new Video('0', 'RecvOnly');
  if (codec === 'H264') video.addH264Codec(VIDEO_PT, 'profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1');
  else video.addVP8Codec(VIDEO_PT);
  const audio = new Audio('1', 'RecvOnly');
  audio.addOpusCodec(OPUS_PT);
  const stamped = codec === 'VP8';
  const times: PlayerTimes = { posted: NaN, answered: NaN, connected: NaN, firstVideo: NaN, firstKey: NaN };
  let onKey = () => {};
  const keyFrame = new Promise<void>((resolve) => (onKey = resolve));
  const player: NdcPlayer = {
    pc,
    tracks: [],
    resource: undefined,
    times,
    keyFrame,
    close: async () => {
      if (player.resource) await fetch(player.resource, { method: 'DELETE', signal: AbortSignal.timeout(5000) }).catch(() => {});
      pc.close();
    },
  };

  const receive = (track: Track, kind: 'video' | 'audio') => {
    player.tracks.push(track);
    track.setMediaHandler(new RtcpReceivingSession());
    const c = stats?.track();
    const pt = kind === 'video' ? VIDEO_PT : OPUS_PT;
    track.onMessage((b) => {
      const t = now();
      const len = b.length;
      if (len < 12 || (b[0] & 0xc0) !== 0x80) {
        unexpected.bad++;
        return;
      }
      const b1 = b[1];
      if (b1 >= 192 && b1 <= 223) {
        unexpected.rtcp++; // RTCP (RFC 5761: packet types 192–223 never collide with dynamic RTP PTs)
        return;
      }
      if ((b1 & 0x7f) !== pt) {
        unexpected.bad++;
        return;
      }
      const b0 = b[0];
      let off = 12 + 4 * (b0 & 0x0f); // CSRCs
      if (b0 & 0x10) {
        // Header extension: 16-bit profile, 16-bit length in 32-bit words.
        if (off + 4 > len) {
          unexpected.bad++;
          return;
        }
        off += 4 + 4 * b.readUInt16BE(off + 2);
      }
      let end = len;
      if (b0 & 0x20) end -= b[len - 1]; // padding: its count is the last byte
      if (off > end) {
        unexpected.bad++;
        return;
      }
      if (kind === 'video' && Number.isNaN(times.firstKey)) {
        if (Number.isNaN(times.firstVideo)) {
          times.firstVideo = t;
          stats?.firstVideoMs.push(t - times.posted);
        }
        if (codec === 'VP8' ? vp8KeyFrame(b, off, end) : isKeyFrame('H264', b.subarray(off, end))) {
          times.firstKey = t;
          stats?.firstKeyFrameMs.push(t - times.posted);
          stats?.answerToKeyMs.push(t - times.answered);
          onKey();
        }
      }
      const sentAt = stamped && end - off >= 8 ? b.readDoubleBE(end - 8) : NaN;
      if (c && stats!.measuring) stats!.record(c, (b[2] << 8) | b[3], t, sentAt);
      if (onStamp && !Number.isNaN(sentAt)) onStamp(sentAt, t);
    });
  };
  receive(pc.addTrack(video), 'video');
  receive(pc.addTrack(audio), 'audio');

  return new Promise<NdcPlayer>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`player ${index} did not connect (state ${pc.state()})`));
      pc.close();
    }, CONNECT_TIMEOUT_MS);
    pc.onStateChange((state) => {
      if (state === 'connected') {
        clearTimeout(timer);
        times.connected = now();
        resolve(player);
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
      times.posted = now();
      let answer: string;
      if (typeof url === 'function') {
        answer = await url(sdp);
      } else {
        const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: sdp });
        if (res.status !== 201) throw new Error(`${url}: ${res.status} ${await res.text()}`);
        const location = res.headers.get('location');
        if (location) player.resource = new URL(location, url).href;
        answer = await res.text();
      }
      times.answered = now();
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

/** The players process of `fanout.ts`: argv `url count [VP8|H264]`. */
async function main(): Promise<void> {
  const [url, countArg, codecArg] = process.argv.slice(2);
  const count = Number(countArg);
  const codec: PlayerCodec = codecArg === 'H264' ? 'H264' : 'VP8';
  const stats = new PlayerStats();
  const players: NdcPlayer[] = [];

  /** Ends every WHEP session at once (so the server stops forwarding to them before the next round) and exits. */
  const shutdown = (code: number) => closePlayersAndExit(players, code);

  try {
    const batch = 10;
    for (let i = 0; i < count; i += batch) {
      const settled = await Promise.allSettled(Array.from({ length: Math.min(batch, count - i) }, (_, j) => openPlayer(url, i + j, codec, stats)));
      for (const s of settled) if (s.status === 'fulfilled') players.push(s.value);
      const failed = settled.find((s) => s.status === 'rejected');
      if (failed) throw failed.reason;
    }
  } catch (err) {
    process.send!({ type: 'error', message: String((err as Error)?.stack ?? err) }, () => void shutdown(1));
    return;
  }
  stats.serve((code) => void shutdown(code), () => {
    if (process.env.KILN_NDC_DEBUG) {
      const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]?.toFixed(0);
      console.error(`ndc players: ${unexpected.rtcp} RTCP and ${unexpected.bad} unexpected packets; p50 POST→answer ${p50(players.map((p) => p.times.answered - p.times.posted))} ms, POST→connected ${p50(players.map((p) => p.times.connected - p.times.posted))} ms`);
    }
  });
}

if (import.meta.main) void main();
