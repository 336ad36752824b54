/**
 * `npm run bench:admission` (also run by `bench:events`, which imports `runAdmissionBench`): the
 * time a synchronous admission webhook adds to a WHEP session set-up. Two Kiln processes on
 * loopback each get the WHIP-published fixture of `bench:fanout` on `app/cam`; one has no access
 * rules, the other asks a control server (a node:http receiver in this process that answers
 * `{"allowed": true}` at once) before every play. N WHEP players (node-datachannel, in this
 * process) are set up one after another, alternating between the two, each closed (DELETE)
 * before the next. Prints p50/p99 of POST → 201 (the signaling, where the hook call sits) and of
 * POST → connected (ICE and DTLS too), with and without the hook, and the differences.
 *
 *   npm run bench:admission -- [--setups N]     (default 40 set-ups each way)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanup as ndcCleanup } from 'node-datachannel';
import { startKiln, type KilnProcess } from '../test/helpers/kiln-process.ts';
import { publishFixture } from './fanout.ts';
import { openPlayer } from './fanout-players-ndc.ts';

/** p50 and p99 of a set of times, ms. */
export interface Quantiles {
  p50: number;
  p99: number;
}

export interface AdmissionBenchResult {
  setups: number;
  /** POST → 201 and POST → connected without access rules. */
  open: { answer: Quantiles; connected: Quantiles };
  /** The same with the admission webhook. */
  hooked: { answer: Quantiles; connected: Quantiles };
  /** Calls the control server received (openings and closings). */
  hookCalls: number;
}

const quantile = (xs: number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
const quantiles = (xs: number[]): Quantiles => ({ p50: quantile(xs, 0.5), p99: quantile(xs, 0.99) });

/**
 * Runs the benchmark, prints its table, and returns the figures. Default 40 set-ups each way.
 * Stops node-datachannel's threads at the end (`cleanup()`).
 */
export async function runAdmissionBench(options: { setups?: number } = {}): Promise<AdmissionBenchResult> {
  const setups = options.setups ?? 40;
  let hookCalls = 0;
  const control = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      hookCalls++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"allowed": true}');
    });
  });
  await new Promise<void>((r) => control.listen(0, '127.0.0.1', r));
  const dir = mkdtempSync(join(tmpdir(), 'kiln-bench-admission-'));
  const config = join(dir, 'kiln.jsonc');
  writeFileSync(config, JSON.stringify({ vhosts: [{ name: 'default', apps: [{
    name: 'app',
    admissionWebhooks: { controlServerUrl: `http://127.0.0.1:${(control.address() as AddressInfo).port}/admission`, secretKey: 'bench', timeoutMs: 3000 },
  }] }] }));
  const kilns: KilnProcess[] = [];
  const publishers: { stop: () => Promise<void> }[] = [];
  try {
    kilns.push(await startKiln(), await startKiln({ KILN_CONFIG: config }));
    for (const kiln of kilns) publishers.push(await publishFixture(kiln, 'cam'));
    const times = kilns.map(() => ({ answer: [] as number[], connected: [] as number[] }));
    const setUp = async (k: number, record: boolean) => {
      const player = await openPlayer(`${kilns[k].signalingUrl}/app/cam?direction=whep`, k, 'VP8');
      if (record) {
        times[k].answer.push(player.times.answered - player.times.posted);
        times[k].connected.push(player.times.connected - player.times.posted);
      }
      await player.close();
    };
    // Warm-up (JIT, the hook's kept-alive connection), then the set-ups alternately.
    for (let i = 0; i < 3; i++) for (let k = 0; k < kilns.length; k++) await setUp(k, false);
    for (let i = 0; i < setups; i++) for (let k = 0; k < kilns.length; k++) await setUp(k, true);
    const result: AdmissionBenchResult = {
      setups,
      open: { answer: quantiles(times[0].answer), connected: quantiles(times[0].connected) },
      hooked: { answer: quantiles(times[1].answer), connected: quantiles(times[1].connected) },
      hookCalls,
    };
    const f = (x: number) => x.toFixed(2);
    console.log(`bench:admission: ${setups} WHEP set-ups each way (node-datachannel players, one at a time, alternating), loopback control server answering {"allowed": true}`);
    console.log('| WHEP set-up | POST→201 p50 ms | POST→201 p99 ms | POST→connected p50 ms | POST→connected p99 ms |');
    console.log('|---|---|---|---|---|');
    console.log(`| no access rules | ${f(result.open.answer.p50)} | ${f(result.open.answer.p99)} | ${f(result.open.connected.p50)} | ${f(result.open.connected.p99)} |`);
    console.log(`| admission webhook | ${f(result.hooked.answer.p50)} | ${f(result.hooked.answer.p99)} | ${f(result.hooked.connected.p50)} | ${f(result.hooked.connected.p99)} |`);
    console.log(`| added by the hook | ${f(result.hooked.answer.p50 - result.open.answer.p50)} | ${f(result.hooked.answer.p99 - result.open.answer.p99)} | ${f(result.hooked.connected.p50 - result.open.connected.p50)} | ${f(result.hooked.connected.p99 - result.open.connected.p99)} |`);
    console.log(`(the control server received ${hookCalls} calls: an opening and a closing per hooked set-up)`);
    return result;
  } finally {
    await Promise.all(publishers.map((p) => p.stop()));
    await Promise.all(kilns.map((k) => k.stop()));
    control.closeAllConnections();
    await new Promise((r) => control.close(r));
    rmSync(dir, { recursive: true, force: true });
    ndcCleanup();
  }
}

if (import.meta.main) {
  const i = process.argv.indexOf('--setups');
  runAdmissionBench({ setups: i > 0 ? Number(process.argv[i + 1]) : undefined }).then(() => process.exit(0), (err) => {
    console.error(err);
    process.exit(1);
  });
}
