/**
 * The benchmark's media: 20 s of 720p30 VP8 at about 1.5 Mbps plus Opus, encoded once with ffmpeg
 * and packetized into RTP (also by ffmpeg), kept in `bench/.cache/`. Replaying it needs no encoder.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface RtpRecord {
  kind: 'video' | 'audio';
  /** Seconds from the start of the clip, from the RTP timestamp. */
  at: number;
  /** The RTP packet as ffmpeg sent it. */
  packet: Buffer;
}

const CACHE = new URL('.cache/', import.meta.url).pathname;
const SECONDS = 20;

async function capture(file: string): Promise<RtpRecord[]> {
  const records: RtpRecord[] = [];
  const sockets = await Promise.all((['video', 'audio'] as const).map((kind) => new Promise<{ kind: 'video' | 'audio'; port: number; close: () => void }>((resolve) => {
    const socket = createSocket('udp4');
    socket.on('message', (msg) => {
      if (msg.length < 12 || (msg[1] & 0x7f) >= 72 && (msg[1] & 0x7f) <= 76) return; // skip RTCP
      records.push({ kind, at: 0, packet: Buffer.from(msg) });
    });
    socket.bind(0, '127.0.0.1', () => resolve({ kind, port: socket.address().port, close: () => socket.close() }));
  })));
  const [video, audio] = sockets;
  await new Promise<void>((resolve, reject) => {
    // -readrate paces at 4x real time so the loopback socket buffers never overflow.
    const ff = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-readrate', '4', '-i', file,
      '-map', '0:v', '-c', 'copy', '-payload_type', '96', '-ssrc', '1111', '-f', 'rtp', `rtp://127.0.0.1:${video.port}?pkt_size=1200`,
      '-map', '0:a', '-c', 'copy', '-payload_type', '111', '-ssrc', '2222', '-f', 'rtp', `rtp://127.0.0.1:${audio.port}?pkt_size=1200`], { stdio: 'inherit' });
    ff.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited ${code}`))));
  });
  await new Promise((r) => setTimeout(r, 200));
  for (const s of sockets) s.close();
  // Order each kind by RTP timestamp and derive its send time.
  for (const kind of ['video', 'audio'] as const) {
    const list = records.filter((r) => r.kind === kind);
    const first = list[0].packet.readUInt32BE(4);
    const rate = kind === 'video' ? 90000 : 48000;
    for (const r of list) r.at = ((r.packet.readUInt32BE(4) - first) >>> 0) / rate;
  }
  return records.sort((a, b) => a.at - b.at);
}

/** Loads the RTP fixture, building it with ffmpeg the first time. */
export async function loadFixture(): Promise<RtpRecord[]> {
  const bin = join(CACHE, 'fanout-720p30.rtp');
  if (!existsSync(bin)) {
    mkdirSync(CACHE, { recursive: true });
    const webm = join(CACHE, 'fanout-720p30.webm');
    if (!existsSync(webm)) {
      process.stderr.write('bench: encoding the 720p30 fixture with ffmpeg (once)...\n');
      execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y',
        '-f', 'lavfi', '-i', `testsrc2=size=1280x720:rate=30:duration=${SECONDS}`,
        '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${SECONDS}`,
        '-c:v', 'libvpx', '-b:v', '1500k', '-minrate', '1500k', '-maxrate', '1500k', '-g', '60', '-deadline', 'realtime', '-cpu-used', '8',
        '-c:a', 'libopus', '-b:a', '64k', '-ac', '2', webm], { stdio: 'inherit' });
    }
    const records = await capture(webm);
    const parts: Buffer[] = [];
    for (const r of records) {
      const head = Buffer.alloc(11);
      head.writeUInt8(r.kind === 'video' ? 0 : 1, 0);
      head.writeDoubleBE(r.at, 1);
      head.writeUInt16BE(r.packet.length, 9);
      parts.push(head, r.packet);
    }
    writeFileSync(bin, Buffer.concat(parts));
  }
  const data = readFileSync(bin);
  const out: RtpRecord[] = [];
  for (let i = 0; i < data.length;) {
    const kind = data[i] === 0 ? 'video' : 'audio';
    const at = data.readDoubleBE(i + 1);
    const len = data.readUInt16BE(i + 9);
    out.push({ kind, at, packet: data.subarray(i + 11, i + 11 + len) });
    i += 11 + len;
  }
  return out;
}

if (import.meta.main) {
  const records = await loadFixture();
  const video = records.filter((r) => r.kind === 'video');
  const bytes = video.reduce((n, r) => n + r.packet.length, 0);
  const seconds = video[video.length - 1].at;
  console.log(`fixture: ${records.length} packets, video ${video.length} packets over ${seconds.toFixed(1)} s, ${(bytes * 8 / seconds / 1e6).toFixed(2)} Mbps, ${(video.length / seconds).toFixed(0)} video pps`);
}
