/**
 * `npm run bench:sessions`: the cost of the MaxScale session listing with live clients. A Kiln
 * process on loopback gets the WHIP-published fixture of `bench:fanout` and N WHEP players
 * (node-datachannel, in this process); then `GET /v1/sessions` (every session as JSON:API), the same
 * with a filter and a sparse fieldset, and OME's list of the stream's player ids (a baseline) are
 * each called sequentially R times. Prints per N and call: latency p50/p90/max, response size, and
 * Kiln's CPU time per call (its process CPU over the calls, less its CPU over as long with no call).
 *
 *   npm run bench:sessions -- [N,N,...] [--repeats R]
 *
 * (default 10,100; 50 repeats.)
 */
import { cleanup as ndcCleanup } from 'node-datachannel';
import { startKiln, type KilnProcess } from '../test/helpers/kiln-process.ts';
import { cpuTimes, publishFixture } from './fanout.ts';
import { openPlayer, type NdcPlayer } from './fanout-players-ndc.ts';

const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const counts = (args.find((a) => /^\d+(,\d+)*$/.test(a)) ?? '10,100').split(',').map(Number);
const REPEATS = Number(flag('--repeats') ?? 50);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
const cpuMs = (pid: number) => {
  const t = cpuTimes(pid);
  return (t.user + t.system) * 1000;
};

async function measure(kiln: KilnProcess, path: string): Promise<{ p50: number; p90: number; max: number; kib: number; cpuMs: number }> {
  const pid = kiln.child.pid!;
  const headers = { authorization: kiln.basic };
  await (await fetch(`${kiln.apiUrl}${path}`, { headers })).text(); // warm-up
  const times: number[] = [];
  let bytes = 0;
  const cpu0 = cpuMs(pid);
  const t0 = performance.now();
  for (let i = 0; i < REPEATS; i++) {
    const t = performance.now();
    const res = await fetch(`${kiln.apiUrl}${path}`, { headers });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${text}`);
    bytes = Buffer.byteLength(text);
    times.push(performance.now() - t);
  }
  const elapsed = performance.now() - t0;
  const busy = cpuMs(pid) - cpu0;
  // Kiln's own CPU while forwarding media, over as long with no API call.
  const idle0 = cpuMs(pid);
  await sleep(elapsed);
  const idle = cpuMs(pid) - idle0;
  return { p50: quantile(times, 0.5), p90: quantile(times, 0.9), max: Math.max(...times), kib: bytes / 1024, cpuMs: Math.max(0, busy - idle) / REPEATS };
}

async function main(): Promise<void> {
  const kiln = await startKiln();
  const players: NdcPlayer[] = [];
  const publisher = await publishFixture(kiln, 'cam');
  try {
    console.log(`bench:sessions: ${REPEATS} sequential calls per figure; CPU per call = Kiln's CPU over the calls less its CPU over as long without`);
    console.log('| sessions | call | p50 ms | p90 ms | max ms | size KiB | Kiln CPU ms per call |');
    console.log('|---|---|---|---|---|---|---|');
    for (const n of counts) {
      while (players.length < n) {
        const batch = Math.min(10, n - players.length);
        players.push(...await Promise.all(Array.from({ length: batch }, (_, i) => openPlayer(`${kiln.signalingUrl}/app/cam?direction=whep`, players.length + i, 'VP8'))));
      }
      await sleep(3000); // players settle; retransmission histories fill
      const calls: [string, string][] = [
        ['GET /v1/sessions', '/v1/sessions'],
        ['… filter kind=player, fields idle,io_activity', '/v1/sessions?filter=/attributes/kind=%22player%22&fields%5Bsessions%5D=idle,io_activity'],
        ['OME GET …/streams/cam/sessions (baseline)', '/v1/vhosts/default/apps/app/streams/cam/sessions'],
      ];
      for (const [name, path] of calls) {
        const m = await measure(kiln, path);
        console.log(`| ${n + 1} | ${name} | ${m.p50.toFixed(2)} | ${m.p90.toFixed(2)} | ${m.max.toFixed(2)} | ${m.kib.toFixed(0)} | ${m.cpuMs.toFixed(2)} |`);
      }
    }
  } finally {
    await Promise.all(players.map((p) => p.close()));
    await publisher.stop();
    ndcCleanup();
    await kiln.stop();
  }
}

await main();
process.exit(0);
