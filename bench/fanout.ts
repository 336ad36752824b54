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
 *
 * Its pieces (the fixture publisher, a players process, one measured round of N players, the CPU
 * and metrics readers) are exported for the other benches.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { RtpPacket } from 'werift';
import { startKiln, type KilnProcess } from '../test/helpers/kiln-process.ts';
import { loadFixture } from './fixture.ts';
import type { PlayerResult } from './player-stats.ts';
import { isKeyFrame } from '../src/media/bitstream.ts';
import { loopbackPeer, connected, negotiate } from '../test/helpers/werift-peer.ts';

export const now = (): number => performance.timeOrigin + performance.now();
const TICK = 100; // USER_HZ on Linux
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** User and system CPU seconds of a process so far (utime, stime from /proc). */
export function cpuTimes(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]) / TICK, system: Number(fields[12]) / TICK };
}

/**
 * On-CPU time of a process's threads so far, in seconds, from each live thread's
 * `/proc/<pid>/task/<tid>/schedstat` (nanoseconds): fine enough for 1 s windows, where cpuTimes'
 * 10 ms ticks are not. A thread that exits takes its time with it (the sum can go back).
 */
export function cpuSeconds(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return ns / 1e9;
}

export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Kiln's packets sent to players (all streams) so far, from /metrics. */
export async function packetsOut(apiUrl: string): Promise<number> {
  const text = await (await fetch(`${apiUrl}/metrics`)).text();
  return Number(/^kiln_media_packets_total\{direction="out"\} (\d+)/m.exec(text)?.[1] ?? NaN);
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
};

export type PlayersStack = 'ndc' | 'werift';
const PLAYERS_SCRIPTS: Record<PlayersStack, string> = { ndc: './fanout-players-ndc.ts', werift: './fanout-players.ts' };

/** The `--players` flag: ndc (default) or werift. */
export function playersFlag(args: string[]): PlayersStack {
  const i = args.indexOf('--players');
  const stack = i >= 0 ? args[i + 1] : 'ndc';
  if (stack !== 'ndc' && stack !== 'werift') throw new Error(`--players ${stack}: expected ndc or werift`);
  return stack;
}

/** Players processes still running: a bench's cleanup kills them (on error or Ctrl-C). */
export const children = new Set<ChildProcess>();

/**
 * Publishes the fixture to `stream` over WHIP (werift), replayed in real time and looped, until
 * `stop()`. A PLI makes the replay jump to the next key frame, as a live encoder would answer it.
 */
export async function publishFixture(kiln: KilnProcess, stream: string): Promise<{ stop: () => Promise<void> }> {
  const records = await loadFixture();
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
  return {
    stop: async () => {
      clearInterval(pump);
      await pub.close();
    },
  };
}

/** A players process of a benchmark, connected: it measures between `start()` and `stop()`. */
export interface PlayersProcess<R> {
  child: ChildProcess;
  /** Starts the measuring window (the players reset their counters). */
  start(): void;
  /** Ends it: resolves with the players' result; the process exits after it. */
  stop(): Promise<R>;
  /** Resolves once the process has exited. */
  exited: Promise<void>;
}

/**
 * Forks a players process (`script` with `args`) and resolves once it says `ready` (all its players
 * connected); rejects with its error or its exit. The process is in `children` until it exits.
 */
export async function forkPlayers<R>(script: string, args: string[]): Promise<PlayersProcess<R>> {
  const child = fork(script, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => {
    children.delete(child);
    resolve();
  }));
  await new Promise<void>((resolve, reject) => {
    child.once('message', (m: { type: string; message?: string }) => (m.type === 'ready' ? resolve() : reject(new Error(m.message))));
    child.once('exit', (code) => reject(new Error(`players exited ${code}`)));
  });
  return {
    child,
    exited,
    start: () => child.send({ type: 'start' }),
    stop: () => new Promise<R>((resolve, reject) => {
      child.once('message', (m: R) => resolve(m));
      child.once('exit', (code) => reject(new Error(`players exited ${code} before their result`)));
      child.send({ type: 'stop' });
    }),
  };
}

/** What one round of N players measured. */
export interface Round {
  players: number;
  seconds: number;
  /** Kiln CPU seconds over the round, and the share of it in the kernel. */
  cpu: number;
  systemShare: number;
  /** Packets Kiln sent to players over the round. */
  forwarded: number;
  /** Kiln CPU µs per forwarded packet over the whole round, and the median over 1 s windows. */
  usPerPacket: number;
  usPerPacketMedian: number;
  rssMb: number;
  /** Loss at the players, % (RTP sequence gaps). */
  loss: number;
  /** Forwarding delay (publisher send → player receive), ms; NaN when the packets carry no stamp. */
  delayP50: number;
  delayP99: number;
  /** Per player: WHEP POST → first video packet, → first key frame; WHEP answer → first key frame. */
  firstVideoMs: number[];
  firstKeyFrameMs: number[];
  answerToKeyMs: number[];
}

export interface RoundOptions {
  players: PlayersStack;
  seconds: number;
  /** The video codec the players offer (VP8: the fixture, stamped; H264: a camera, unstamped). */
  codec?: 'VP8' | 'H264';
}

/**
 * N players (a child process) on the WHEP `url`: once all are connected and 2 s have passed,
 * measures Kiln's CPU and packets out for `seconds`, sampled each second. Returns once the players
 * have left (their sessions may still be closing in Kiln for a moment).
 */
export async function measureRound(kiln: KilnProcess, url: string, n: number, options: RoundOptions): Promise<Round> {
  const pid = kiln.child.pid!;
  const players = await forkPlayers<PlayerResult>(new URL(PLAYERS_SCRIPTS[options.players], import.meta.url).pathname, [url, String(n), options.codec ?? 'VP8']);
  await sleep(2000); // settle
  const cpu0 = cpuTimes(pid);
  const out0 = await packetsOut(kiln.apiUrl);
  const t0 = now();
  players.start();
  // 1 s windows: CPU µs per forwarded packet in each.
  const perWindow: number[] = [];
  let prev = { cpu: cpu0.user + cpu0.system, out: out0 };
  for (let w = 1; w <= Math.floor(options.seconds); w++) {
    await sleep(Math.max(0, t0 + w * 1000 - now()));
    const out = await packetsOut(kiln.apiUrl);
    const c = cpuTimes(pid);
    const cpu = c.user + c.system;
    if (out > prev.out) perWindow.push((cpu - prev.cpu) * 1e6 / (out - prev.out));
    prev = { cpu, out };
  }
  await sleep(Math.max(0, t0 + options.seconds * 1000 - now()));
  const result = await players.stop();
  const cpu1 = cpuTimes(pid);
  const out1 = await packetsOut(kiln.apiUrl);
  const seconds = (now() - t0) / 1000;
  const rss = rssMb(pid);
  await players.exited;
  const forwarded = out1 - out0;
  const cpu = cpu1.user + cpu1.system - cpu0.user - cpu0.system;
  return {
    players: n,
    seconds,
    cpu,
    systemShare: cpu > 0 ? (cpu1.system - cpu0.system) / cpu : 0,
    forwarded,
    usPerPacket: forwarded > 0 ? cpu * 1e6 / forwarded : NaN,
    usPerPacketMedian: median(perWindow),
    rssMb: rss,
    loss: result.expected > 0 ? Math.max(0, (1 - result.received / result.expected) * 100) : NaN,
    delayP50: result.delayP50,
    delayP99: result.delayP99,
    firstVideoMs: result.firstVideoMs ?? [],
    firstKeyFrameMs: result.firstKeyFrameMs,
    answerToKeyMs: result.answerToKeyMs ?? [],
  };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const counts = (args.find((a) => /^\d+(,\d+)*$/.test(a)) ?? '1,10,50,100,200').split(',').map(Number);
  const secondsIdx = args.indexOf('--seconds');
  const seconds = secondsIdx >= 0 ? Number(args[secondsIdx + 1]) : 10;
  const players = playersFlag(args);
  // KILN_BENCH_PROFILE=dir writes a V8 CPU profile of the server there (node --cpu-prof).
  const profile = process.env.KILN_BENCH_PROFILE;
  await loadFixture();
  const kiln = await startKiln({ KILN_LOG_LEVEL: 'warn', ...(profile ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${profile}` } : {}) });
  const stream = `bench${Date.now()}`;
  const publisher = await publishFixture(kiln, stream);
  await sleep(1000);

  const header = 'players | server CPU % (sys) | CPU µs/fwd pkt | fwd pkt/s | RSS MB | loss % | delay p50 ms | delay p99 ms | 1st key frame p50 ms';
  console.log(header);
  console.log(header.replace(/[^|]/g, '-'));
  for (const n of counts) {
    const r = await measureRound(kiln, `${kiln.signalingUrl}/app/${stream}?direction=whep`, n, { players, seconds });
    const row = [
      String(n).padStart(7),
      `${(r.cpu / r.seconds * 100).toFixed(1)} (${(r.systemShare * 100).toFixed(0)}% sys)`.padStart(14),
      r.usPerPacket.toFixed(1).padStart(14),
      (r.forwarded / r.seconds).toFixed(0).padStart(9),
      r.rssMb.toFixed(0).padStart(6),
      r.loss.toFixed(2).padStart(6),
      r.delayP50.toFixed(2).padStart(12),
      r.delayP99.toFixed(2).padStart(12),
      median(r.firstKeyFrameMs).toFixed(0).padStart(20),
    ].join(' | ');
    console.log(row);
    await sleep(2000); // let the players' sessions close
  }
  await publisher.stop();
  await kiln.stop();
}

if (import.meta.main) {
  main().then(() => process.exit(0), (err) => {
    console.error(err);
    process.exit(1);
  });
}
