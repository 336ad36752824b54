/**
 * `npm run bench:fanout`: one publisher (pre-encoded 720p30 VP8 ≈1.5 Mbps + Opus, replayed as RTP)
 * into a Kiln process, N WHEP players in a separate process, on loopback, bounded in time. Prints
 * per N: server CPU per second, CPU µs per forwarded packet, RSS, loss at the players, forwarding
 * delay p50/p99 (publisher send → player receive) and WHEP POST → first key frame p50.
 *
 *   npm run bench:fanout -- [N,N,...] [--seconds S] [--players ndc|werift]
 *
 * (default 1,10,50,100,200; 10 s each; players on node-datachannel, `fanout-players-ndc.ts`, which
 * costs far less CPU than the werift players of `fanout-players.ts`).
 */
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { RtpPacket } from 'werift';
import { startKiln } from '../test/helpers/kiln-process.ts';
import { loadFixture } from './fixture.ts';
import { isKeyFrame } from '../src/media/bitstream.ts';
import { loopbackPeer, connected, negotiate } from '../test/helpers/werift-peer.ts';

const args = process.argv.slice(2);
const counts = (args.find((a) => /^\d+(,\d+)*$/.test(a)) ?? '1,10,50,100,200').split(',').map(Number);
const secondsIdx = args.indexOf('--seconds');
const WINDOW_S = secondsIdx >= 0 ? Number(args[secondsIdx + 1]) : 10;
const playersIdx = args.indexOf('--players');
const PLAYERS = playersIdx >= 0 ? args[playersIdx + 1] : 'ndc';
const PLAYERS_SCRIPTS: Record<string, string> = { ndc: './fanout-players-ndc.ts', werift: './fanout-players.ts' };
if (!PLAYERS_SCRIPTS[PLAYERS]) throw new Error(`--players ${PLAYERS}: expected ndc or werift`);
const PLAYERS_SCRIPT = PLAYERS_SCRIPTS[PLAYERS];
const now = () => performance.timeOrigin + performance.now();
const TICK = 100; // USER_HZ on Linux

/** User and system CPU seconds of a process so far (utime, stime from /proc). */
function cpuTimes(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]) / TICK, system: Number(fields[12]) / TICK };
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function packetsOut(apiUrl: string): Promise<number> {
  const text = await (await fetch(`${apiUrl}/metrics`)).text();
  return Number(/^kiln_media_packets_total\{direction="out"\} (\d+)/m.exec(text)?.[1] ?? NaN);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
};

async function main(): Promise<void> {
  const records = await loadFixture();
  // KILN_BENCH_PROFILE=dir writes a V8 CPU profile of the server there (node --cpu-prof).
  const profile = process.env.KILN_BENCH_PROFILE;
  const kiln = await startKiln({ KILN_LOG_LEVEL: 'warn', ...(profile ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${profile}` } : {}) });
  const pid = kiln.child.pid!;
  const stream = `bench${Date.now()}`;
  // Publisher: werift, WHIP, replaying the fixture in real time, looped.
  const pub = loopbackPeer();
  const video = pub.addTransceiver('video', { direction: 'sendonly' });
  const audio = pub.addTransceiver('audio', { direction: 'sendonly' });
  await negotiate(pub, `${kiln.signalingUrl}/app/${stream}?direction=whip`, kiln.password);
  await connected(pub);
  const duration = records[records.length - 1].at + 1 / 30;
  // Where key frames start in the fixture: a PLI makes the replay jump to the next one, as a live
  // encoder would answer it with a fresh key frame (no encoder runs during the measurement).
  const keyFrames = records.map((r, i) => (r.kind === 'video' && isKeyFrame('VP8', RtpPacket.deSerialize(r.packet).payload) ? i : -1)).filter((i) => i >= 0);
  let keyRequested = false;
  video.sender.onPictureLossIndication.subscribe(() => (keyRequested = true));
  const start = now();
  let next = 0;
  let loop = 0;
  /** Seconds of the fixture skipped by jumps to key frames; due time = loop·duration + at − skipped. */
  let skipped = 0;
  const seq = { video: 0, audio: 0 };
  const stamp = Buffer.alloc(8);
  const pump = setInterval(() => {
    const elapsed = (now() - start) / 1000;
    if (keyRequested) {
      keyRequested = false;
      const k = keyFrames.find((i) => i >= next) ?? keyFrames[0];
      const wraps = k < next ? 1 : 0;
      const due = (loop + wraps) * duration + records[k].at - skipped;
      skipped += Math.max(0, due - elapsed);
      next = k;
      loop += wraps;
    }
    while (true) {
      const r = records[next];
      const due = loop * duration + r.at - skipped;
      if (due > elapsed) break;
      const rtp = RtpPacket.deSerialize(r.packet);
      const rate = r.kind === 'video' ? 90000 : 48000;
      rtp.header.sequenceNumber = seq[r.kind]++ & 0xffff;
      // RTP time follows the replay clock, so jumps keep timestamps continuous.
      rtp.header.timestamp = Math.round(due * rate) >>> 0;
      stamp.writeDoubleBE(now());
      rtp.payload = Buffer.concat([rtp.payload, stamp]);
      void (r.kind === 'video' ? video : audio).sender.sendRtp(rtp).catch(() => {});
      if (++next === records.length) {
        next = 0;
        loop++;
      }
    }
  }, 2);
  await new Promise((r) => setTimeout(r, 1000));

  const rows: string[] = [];
  const header = 'players | server CPU % (sys) | CPU µs/fwd pkt | fwd pkt/s | RSS MB | loss % | delay p50 ms | delay p99 ms | 1st key frame p50 ms';
  console.log(header);
  console.log(header.replace(/[^|]/g, '-'));
  for (const n of counts) {
    const players = fork(new URL(PLAYERS_SCRIPT, import.meta.url).pathname, [`${kiln.signalingUrl}/app/${stream}?direction=whep`, String(n)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await new Promise<void>((resolve, reject) => {
      players.once('message', (m: { type: string; message?: string }) => (m.type === 'ready' ? resolve() : reject(new Error(m.message))));
      players.once('exit', (code) => reject(new Error(`players exited ${code}`)));
    });
    await new Promise((r) => setTimeout(r, 2000)); // settle
    const cpu0 = cpuTimes(pid);
    const out0 = await packetsOut(kiln.apiUrl);
    const t0 = now();
    players.send({ type: 'start' });
    await new Promise((r) => setTimeout(r, WINDOW_S * 1000));
    const result = await new Promise<{ expected: number; received: number; delayP50: number; delayP99: number; firstKeyFrameMs: number[] }>((resolve) => {
      players.once('message', (m: { type: string; expected: number; received: number; delayP50: number; delayP99: number; firstKeyFrameMs: number[] }) => resolve(m));
      players.send({ type: 'stop' });
    });
    const cpu1 = cpuTimes(pid);
    const out1 = await packetsOut(kiln.apiUrl);
    const seconds = (now() - t0) / 1000;
    const rss = rssMb(pid);
    await new Promise((r) => players.once('exit', r));
    const forwarded = out1 - out0;
    const cpu = cpu1.user + cpu1.system - cpu0.user - cpu0.system;
    const systemShare = cpu > 0 ? (cpu1.system - cpu0.system) / cpu : 0;
    const loss = result.expected > 0 ? (1 - result.received / result.expected) * 100 : NaN;
    const row = [
      String(n).padStart(7),
      `${(cpu / seconds * 100).toFixed(1)} (${(systemShare * 100).toFixed(0)}% sys)`.padStart(14),
      (forwarded > 0 ? cpu * 1e6 / forwarded : NaN).toFixed(1).padStart(14),
      (forwarded / seconds).toFixed(0).padStart(9),
      rss.toFixed(0).padStart(6),
      Math.max(0, loss).toFixed(2).padStart(6),
      result.delayP50.toFixed(2).padStart(12),
      result.delayP99.toFixed(2).padStart(12),
      median(result.firstKeyFrameMs).toFixed(0).padStart(20),
    ].join(' | ');
    rows.push(row);
    console.log(row);
    await new Promise((r) => setTimeout(r, 2000)); // let the players' sessions close
  }
  clearInterval(pump);
  await pub.close();
  await kiln.stop();
}

main().then(() => process.exit(0), (err) => {
  console.error(err);
  process.exit(1);
});
