/**
 * `npm run bench:rooms`: rooms of K participants (headless, node-datachannel, in a separate
 * process: `rooms-participants.ts`), each publishing the 720p30 VP8 + Opus fixture and receiving
 * every other participant, through the OpenVidu REST API and the room WebSocket of a Kiln process
 * on loopback. For each K the number of rooms doubles until the server uses a full core (or loss
 * passes 1 %, or the participant cap is reached). Prints per round: server CPU, CPU µs per forwarded
 * packet, packets forwarded per second, loss, join time p50/p95 (WebSocket open → publishing), and
 * per K the participants one core carries (participants ÷ cores used, at the last round within a
 * core and under 1 % loss).
 *
 *   npm run bench:rooms -- [K,K,...] [--seconds S] [--max-participants N]
 *
 * (default 2,4,8; 5 s per round; at most 64 participants per round.)
 */
import { fork } from 'node:child_process';
import { startKiln } from '../test/helpers/kiln-process.ts';
import { loadFixture } from './fixture.ts';
import { children, cpuTimes, median, now, packetsOut, rssMb } from './fanout.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
};

interface RoomRound {
  rooms: number;
  participants: number;
  cpuShare: number;
  usPerPacket: number;
  forwardedPerSecond: number;
  loss: number;
  joinMs: number[];
  /** Subscriptions that did not connect in 10 s and were made again. */
  retries: number;
  rssMb: number;
}

async function round(kiln: Awaited<ReturnType<typeof startKiln>>, k: number, r: number, seconds: number): Promise<RoomRound> {
  const pid = kiln.child.pid!;
  const child = fork(new URL('./rooms-participants.ts', import.meta.url).pathname, [kiln.wsUrl, kiln.apiUrl, kiln.password, String(k), String(r)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => {
    children.delete(child);
    resolve();
  }));
  // `joins` (the join times), then `ready` once every subscription is up.
  let retries = 0;
  const joinMs = await new Promise<number[]>((resolve, reject) => {
    let joins: number[] = [];
    const onMessage = (m: { type: string; joinMs?: number[]; retries?: number; message?: string }) => {
      if (m.type === 'joins') {
        joins = m.joinMs!;
        retries = m.retries ?? 0;
      }
      else if (m.type === 'error') reject(new Error(m.message));
      else if (m.type === 'ready') {
        child.off('message', onMessage);
        resolve(joins);
      }
    };
    child.on('message', onMessage);
    child.once('exit', (code) => reject(new Error(`participants exited ${code}`)));
  });
  await sleep(2000);
  const cpu0 = cpuTimes(pid);
  const out0 = await packetsOut(kiln.apiUrl);
  const t0 = now();
  child.send({ type: 'start' });
  await sleep(seconds * 1000);
  const result = await new Promise<{ expected: number; received: number }>((resolve) => {
    child.once('message', (m: { expected: number; received: number }) => resolve(m));
    child.send({ type: 'stop' });
  });
  const cpu1 = cpuTimes(pid);
  const out1 = await packetsOut(kiln.apiUrl);
  const elapsed = (now() - t0) / 1000;
  const rss = rssMb(pid);
  await exited;
  const cpu = cpu1.user + cpu1.system - cpu0.user - cpu0.system;
  const forwarded = out1 - out0;
  return {
    rooms: r,
    participants: r * k,
    cpuShare: cpu / elapsed,
    usPerPacket: forwarded > 0 ? cpu * 1e6 / forwarded : NaN,
    forwardedPerSecond: forwarded / elapsed,
    loss: result.expected > 0 ? Math.max(0, (1 - result.received / result.expected) * 100) : NaN,
    joinMs,
    retries,
    rssMb: rss,
  };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const sizes = (args.find((a) => /^\d+(,\d+)*$/.test(a)) ?? '2,4,8').split(',').map(Number);
  const flag = (name: string, fallback: number) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : fallback;
  };
  const seconds = flag('--seconds', 5);
  const maxParticipants = flag('--max-participants', 64);
  await loadFixture();
  // KILN_BENCH_PROFILE=dir writes a V8 CPU profile of the server there (node --cpu-prof).
  const profile = process.env.KILN_BENCH_PROFILE;
  const kiln = await startKiln({ KILN_LOG_LEVEL: 'warn', KILN_ACCESS_TOKEN: 'OPENVIDUAPP:bench', ...(profile ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${profile}` } : {}) });
  kiln.password = 'bench';
  const header = 'K | rooms | participants | server CPU % | CPU µs/fwd pkt | fwd pkt/s | RSS MB | loss % | join p50 ms | join p95 ms | retried subs';
  console.log(header);
  console.log(header.replace(/[^|]/g, '-'));
  const summary: string[] = [];
  try {
    for (const k of sizes) {
      let best: RoomRound | undefined;
      for (let r = 1; r * k <= maxParticipants; r *= 2) {
        const x = await round(kiln, k, r, seconds);
        console.log([
          String(k).padStart(1),
          String(x.rooms).padStart(5),
          String(x.participants).padStart(12),
          (x.cpuShare * 100).toFixed(1).padStart(12),
          x.usPerPacket.toFixed(1).padStart(14),
          x.forwardedPerSecond.toFixed(0).padStart(9),
          x.rssMb.toFixed(0).padStart(6),
          x.loss.toFixed(2).padStart(6),
          median(x.joinMs).toFixed(0).padStart(11),
          quantile(x.joinMs, 0.95).toFixed(0).padStart(11),
          String(x.retries).padStart(12),
        ].join(' | '));
        await sleep(6000); // the room sessions end (grace period) before the next round
        if (x.loss > 1) break;
        best = x;
        if (x.cpuShare >= 0.9) break;
      }
      if (best) summary.push(`K=${k}: ${(best.participants / best.cpuShare).toFixed(0)} participants per core (${best.rooms} rooms of ${k} used ${(best.cpuShare * 100).toFixed(0)} % of a core, ${best.usPerPacket.toFixed(1)} µs per forwarded packet)`);
    }
  } finally {
    for (const c of children) c.kill('SIGKILL');
    await kiln.stop();
  }
  console.log('');
  for (const line of summary) console.log(line);
}

if (import.meta.main) {
  main().then(() => process.exit(0), (err) => {
    console.error(err);
    for (const c of children) c.kill('SIGKILL');
    process.exit(1);
  });
}
