/**
 * The participants process of `bench/rooms.ts`: R rooms (OpenVidu sessions made through the REST
 * API) of K headless participants each, on node-datachannel so that this process costs far less CPU
 * than the server it measures. Each participant joins over the room WebSocket (`joinRoom`),
 * publishes the fixture (720p30 VP8 + Opus, replayed as RTP, each payload stamped with its send
 * time) with `publishVideo`, and receives every other participant's stream with `receiveVideoFrom`.
 *
 * argv: `wsUrl apiUrl password K R`. IPC: `joins` (join times, ms: WebSocket open → publisher
 * connected), then PlayerStats' `ready` / `start` / `stop` → `result`.
 */
import { Audio, PeerConnection, Video, cleanup, type Track } from 'node-datachannel';
import { RoomRpc } from '../test/helpers/room-rpc.ts';
import { loadFixture } from './fixture.ts';
import { openPlayer, type NdcPlayer } from './fanout-players-ndc.ts';
import { PlayerStats, now } from './player-stats.ts';

const VIDEO_PT = 96;
const OPUS_PT = 111;

interface Publisher {
  pc: PeerConnection;
  tracks: { video: Track; audio: Track };
  ssrc: { video: number; audio: number };
  seq: { video: number; audio: number };
}

interface Member {
  rpc: RoomRpc;
  id: string;
  publisher: Publisher;
  players: NdcPlayer[];
}

async function openVidu(apiUrl: string, password: string, path: string, body?: object): Promise<any> {
  const res = await fetch(`${apiUrl}${path}`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`OPENVIDUAPP:${password}`).toString('base64')}` },
    body: body && JSON.stringify(body),
  });
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

/** Joins `session` and publishes; resolves once the publisher's peer connection is up. */
async function join(wsUrl: string, session: string, token: string, index: number): Promise<{ member: Member; joinMs: number }> {
  const t0 = now();
  const rpc = await RoomRpc.connect(`${wsUrl}/room`);
  const joined = await rpc.call('joinRoom', { session, token, metadata: `bench${index}`, secret: '', recorder: false, dataChannels: false });
  const pc = new PeerConnection(`pub${index}`, { iceServers: [], bindAddress: '127.0.0.1', enableIceTcp: false, enableIceUdpMux: false, disableAutoNegotiation: true });
  const ssrc = { video: 0x10000 + index * 2, audio: 0x10001 + index * 2 };
  const video = new Video('0', 'SendOnly');
  video.addVP8Codec(VIDEO_PT);
  video.addSSRC(ssrc.video, `bench${index}`);
  const audio = new Audio('1', 'SendOnly');
  audio.addOpusCodec(OPUS_PT);
  audio.addSSRC(ssrc.audio, `bench${index}`);
  const tracks = { video: pc.addTrack(video), audio: pc.addTrack(audio) };
  const connected = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`publisher ${index} did not connect (${pc.state()})`)), 15_000);
    pc.onStateChange((state) => {
      if (state === 'connected') {
        clearTimeout(timer);
        resolve();
      } else if (state === 'failed') {
        clearTimeout(timer);
        reject(new Error(`publisher ${index} failed`));
      }
    });
  });
  const gathered = new Promise<void>((resolve) => {
    pc.onGatheringStateChange((s) => s === 'complete' && resolve());
  });
  pc.setLocalDescription('offer');
  if (pc.gatheringState() !== 'complete') await gathered;
  const { sdpAnswer } = await rpc.call('publishVideo', { sdpOffer: pc.localDescription()!.sdp, audioActive: true, videoActive: true, typeOfVideo: 'CAMERA', doLoopback: false });
  pc.setRemoteDescription(sdpAnswer, 'answer');
  await connected;
  return { member: { rpc, id: joined.id, publisher: { pc, tracks, ssrc, seq: { video: 0, audio: 0 } }, players: [] }, joinMs: now() - t0 };
}

/** Replays the fixture from every publisher in `members` (which grows as rooms join), in real time, looped, until the returned stop. */
async function replay(members: Member[]): Promise<() => void> {
  const records = await loadFixture();
  const duration = records[records.length - 1].at + 1 / 30;
  const start = now();
  let next = 0;
  let loop = 0;
  const pump = setInterval(() => {
    const elapsed = (now() - start) / 1000;
    while (true) {
      const r = records[next];
      const due = loop * duration + r.at;
      if (due > elapsed) break;
      const rate = r.kind === 'video' ? 90000 : 48000;
      const timestamp = Math.round(due * rate) >>> 0;
      for (const m of members) {
        const p = m.publisher;
        const packet = Buffer.allocUnsafe(r.packet.length + 8);
        r.packet.copy(packet);
        packet.writeUInt16BE(p.seq[r.kind]++ & 0xffff, 2);
        packet.writeUInt32BE(timestamp, 4);
        packet.writeUInt32BE(p.ssrc[r.kind], 8);
        // The send time in the payload's last 8 bytes (the players read it back).
        packet.writeDoubleBE(now(), r.packet.length);
        try {
          p.tracks[r.kind].sendMessageBinary(packet);
        } catch {
          // A track closing at the end of the round.
        }
      }
      if (++next === records.length) {
        next = 0;
        loop++;
      }
    }
  }, 2);
  return () => clearInterval(pump);
}

async function main(): Promise<void> {
  const [wsUrl, apiUrl, password, kArg, rArg] = process.argv.slice(2);
  const k = Number(kArg);
  const r = Number(rArg);
  const stats = new PlayerStats();
  const members: Member[] = [];
  let stop = () => {};
  const shutdown = async (code: number) => {
    stop();
    await new Promise((res) => setTimeout(res, 250));
    for (const m of members) {
      for (const p of m.players) p.pc.close();
      m.publisher.pc.close();
      m.rpc.close();
    }
    cleanup();
    process.exit(code);
  };
  try {
    // Pings keep the room connections alive from the start, as openvidu-browser's do (the server
    // drops a participant silent for 10 s).
    setInterval(() => {
      for (const m of members) void m.rpc.call('ping').catch(() => {});
    }, 3000).unref();
    // Publishers send from the moment they join (the server drops a publisher silent for 10 s):
    // the replay sends for every member present at each tick.
    stop = await replay(members);
    const joinMs: number[] = [];
    const rooms: Member[][] = [];
    for (let room = 0; room < r; room++) {
      const { id: session } = await openVidu(apiUrl, password, '/api/sessions');
      const tokens: string[] = [];
      for (let i = 0; i < k; i++) tokens.push((await openVidu(apiUrl, password, '/api/tokens', { session, role: 'PUBLISHER', data: '' })).token);
      // The room's participants join at once, as a meeting starts.
      const joined = await Promise.all(tokens.map((t, i) => join(wsUrl, session, t, room * k + i)));
      for (const j of joined) joinMs.push(j.joinMs);
      rooms.push(joined.map((j) => j.member));
      members.push(...joined.map((j) => j.member));
    }
    // Every participant receives every other one of its room, 8 subscriptions at a time; one that
    // does not connect is tried again once (and counted).
    let index = 0;
    let retries = 0;
    const subscriptions = rooms.flatMap((room) => room.flatMap((m) => room.filter((o) => o !== m).map((other) => ({ m, other }))));
    const subscribe = async ({ m, other }: { m: Member; other: Member }) => {
      for (let attempt = 0; ; attempt++) {
        try {
          const player = await openPlayer((offer) => m.rpc.call('receiveVideoFrom', { sender: `${other.id}_CAMERA`, sdpOffer: offer }).then((res) => res.sdpAnswer as string), index++, 'VP8', stats);
          m.players.push(player);
          return;
        } catch (err) {
          if (attempt > 0) throw err;
          retries++;
        }
      }
    };
    for (let i = 0; i < subscriptions.length; i += 8) await Promise.all(subscriptions.slice(i, i + 8).map(subscribe));
    process.send!({ type: 'joins', joinMs, retries });
  } catch (err) {
    process.send!({ type: 'error', message: String((err as Error)?.stack ?? err) }, () => void shutdown(1));
    return;
  }
  stats.serve((code) => void shutdown(code));
}

if (import.meta.main) void main();
