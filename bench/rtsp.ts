/**
 * `npm run bench:rtsp`: one camera stream pulled over RTSP (GStreamer's RTSP server of the tests,
 * 640x360 30 fps H.264, a key frame every 30 frames, with Opus) into a Kiln process through the OME
 * REST API, beside the WHIP-published fixture of `bench:fanout`, each with N WHEP players in a
 * separate process, on loopback, bounded in time. Prints:
 *
 * - per source and N: Kiln CPU, CPU µs per forwarded packet (median of 1 s windows, and over the
 *   whole window), packets forwarded per second, loss at the players, and per player WHEP POST →
 *   first video packet / first key frame, WHEP answer → first key frame (p50);
 * - for the RTSP pull, repeated (DELETE and POST again): (a) API POST → 201, (b) 201 → first video
 *   packet and first key frame (SPS or IDR, also inside STAP-A/FU-A) at a fresh player opened right
 *   after the 201, and a + b = API POST → first key frame, as medians.
 *
 *   npm run bench:rtsp -- [N,N,...] [--seconds S] [--players ndc|werift] [--repeats R]
 *                         [--path /h264-opus|/h264|/h264-aac] [--cold-camera]
 *
 * (default 1,10,50; 10 s each; 5 repeats; /h264-opus.) The camera serves one shared pipeline per
 * mount and stops it when its last client leaves; by default a keeper client (ffmpeg, copying to
 * null) stays connected so that the camera runs all along like a real one, and the phase of its
 * key frames is unrelated to Kiln's POST. `--cold-camera` drops the keeper: each POST then starts the
 * camera's encoder, whose first frame is a key frame. Kiln's CPU is its node process only (with
 * /h264-aac, the ffmpeg transcoder it spawns is not counted).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cleanup as ndcCleanup } from 'node-datachannel';
import { startKiln, type KilnProcess } from '../test/helpers/kiln-process.ts';
import { startRtspServer } from '../test/helpers/rtsp-server.ts';
import { children, measureRound, median, now, playersFlag, publishFixture, type Round } from './fanout.ts';
import { openPlayer, type NdcPlayer } from './fanout-players-ndc.ts';

const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const counts = (args.find((a) => /^\d+(,\d+)*$/.test(a)) ?? '1,10,50').split(',').map(Number);
const SECONDS = Number(flag('--seconds') ?? 10);
const REPEATS = Number(flag('--repeats') ?? 5);
const PATH = flag('--path') ?? '/h264-opus';
const PLAYERS = playersFlag(args);
const COLD = args.includes('--cold-camera');
const KEY_FRAME_TIMEOUT_MS = 5000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Undone in reverse order on exit, error or Ctrl-C. */
const undo: (() => Promise<unknown> | void)[] = [];
let cleaning: Promise<void> | undefined;
function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    for (const c of children) c.kill('SIGKILL');
    await probePlayer?.close();
    for (const fn of undo.reverse()) await Promise.resolve().then(fn).catch(() => {});
    ndcCleanup();
  })();
  return cleaning;
}
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping Kiln, the camera and the players...`);
    void cleanupAll().finally(() => process.exit(code));
  });
}

/** A client that keeps the camera's shared pipeline running: ffmpeg copying the stream to null. */
async function startKeeper(url: string): Promise<ChildProcess> {
  const ff = spawn('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'fatal', '-rtsp_transport', 'tcp', '-i', url, '-map', '0', '-c', 'copy', '-f', 'null', '-progress', 'pipe:1', '-'], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(ff);
  ff.once('exit', () => children.delete(ff));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('camera keeper (ffmpeg) got no frame in 10 s')), 10_000);
    ff.stdout!.on('data', (d: Buffer) => {
      if (/^frame=[1-9]/m.test(d.toString())) {
        clearTimeout(timer);
        resolve();
      }
    });
    ff.once('exit', (code) => reject(new Error(`camera keeper (ffmpeg) exited ${code}`)));
  });
  ff.stdout!.resume();
  return ff;
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 2000).unref();
  });
}

function streamsUrl(kiln: KilnProcess, name?: string): string {
  return `${kiln.apiUrl}/v1/vhosts/default/apps/app/streams${name ? `/${name}` : ''}`;
}

/** OME "Create Stream (Pull)"; resolves at the 201 (or throws with Kiln's answer). */
async function createPull(kiln: KilnProcess, name: string, url: string): Promise<void> {
  const res = await fetch(streamsUrl(kiln), {
    method: 'POST',
    headers: { authorization: kiln.basic, 'content-type': 'application/json' },
    body: JSON.stringify({ name, urls: [url] }),
  });
  if (res.status !== 201) throw new Error(`POST ${streamsUrl(kiln)}: ${res.status} ${await res.text()}`);
  void res.arrayBuffer().catch(() => {});
}

async function deleteStream(kiln: KilnProcess, name: string): Promise<void> {
  const res = await fetch(streamsUrl(kiln, name), { method: 'DELETE', headers: { authorization: kiln.basic } });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`DELETE ${streamsUrl(kiln, name)}: ${res.status}`);
}

/** One pull from scratch, timed: POST → 201, then a fresh player's answer, connection, first video and first key frame. */
interface Probe {
  created: number;
  answered: number;
  connected: number;
  firstVideo: number;
  firstKey: number;
}

/** The probe's player while it is open (closed by the cleanup on error or Ctrl-C). */
let probePlayer: NdcPlayer | undefined;

async function probe(kiln: KilnProcess, name: string, cameraUrl: string): Promise<Probe> {
  const t0 = now();
  await createPull(kiln, name, cameraUrl);
  const t201 = now();
  let player: NdcPlayer | undefined;
  try {
    player = probePlayer = await openPlayer(`${kiln.signalingUrl}/app/${name}?direction=whep`, 0, 'H264');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      player.keyFrame,
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no key frame at the player ${KEY_FRAME_TIMEOUT_MS} ms after it connected`)), KEY_FRAME_TIMEOUT_MS))),
    ]).finally(() => clearTimeout(timer));
    const t = player.times;
    return { created: t201 - t0, answered: t.answered - t201, connected: t.connected - t201, firstVideo: t.firstVideo - t201, firstKey: t.firstKey - t201 };
  } finally {
    probePlayer = undefined;
    await player?.close();
    await deleteStream(kiln, name);
  }
}

const fmt = (x: number, digits = 0) => (Number.isFinite(x) ? x.toFixed(digits) : '-');

function row(source: string, r: Round): string {
  return [
    source.padEnd(6),
    String(r.players).padStart(7),
    `${fmt(r.cpu / r.seconds * 100, 1)} (${fmt(r.systemShare * 100)}% sys)`.padStart(16),
    fmt(r.usPerPacketMedian, 1).padStart(17),
    fmt(r.usPerPacket, 1).padStart(14),
    fmt(r.forwarded / r.seconds).padStart(9),
    fmt(r.loss, 2).padStart(6),
    fmt(median(r.firstVideoMs)).padStart(17),
    fmt(median(r.firstKeyFrameMs)).padStart(15),
    fmt(median(r.answerToKeyMs)).padStart(17),
  ].join(' | ');
}

async function main(): Promise<void> {
  const started = now();
  const camera = await startRtspServer();
  undo.push(() => camera.stop());
  const cameraUrl = camera.url(PATH);
  const kiln = await startKiln({ KILN_LOG_LEVEL: 'warn' });
  undo.push(() => kiln.stop());
  const keeper = COLD ? undefined : await startKeeper(cameraUrl);
  if (keeper) undo.push(() => stopChild(keeper));
  console.log(`Kiln ${kiln.signalingUrl}, camera ${cameraUrl} (${COLD ? 'cold: started by each pull' : 'kept running by another client'}), ${PLAYERS} players, ${SECONDS} s per round\n`);

  // 1. Time to first frame of a pull, from scratch, REPEATS times.
  const probes: Probe[] = [];
  console.log('RTSP pull from scratch (ms from the API POST; player opened at the 201):');
  console.log('  run | POST→201 | 201→answer | 201→connected | 201→1st video | 201→1st key | POST→1st key');
  for (let i = 0; i < REPEATS; i++) {
    const p = await probe(kiln, `probe${i}`, cameraUrl);
    probes.push(p);
    console.log(`  ${String(i + 1).padStart(3)} | ${fmt(p.created).padStart(8)} | ${fmt(p.answered).padStart(10)} | ${fmt(p.connected).padStart(13)} | ${fmt(p.firstVideo).padStart(13)} | ${fmt(p.firstKey).padStart(11)} | ${fmt(p.created + p.firstKey).padStart(12)}`);
    await sleep(300 + Math.random() * 700); // so that the runs fall at different points of the camera's GOP
  }

  // 2. N players on the pulled stream, then on a WHIP-published one.
  const header = 'source | players | Kiln CPU % (sys) | µs/fwd pkt (p50) | µs/fwd pkt all | fwd pkt/s | loss % | POST→1st video p50 | POST→1st key p50 | answer→1st key p50';
  const rule = header.replace(/[^|]/g, '-');
  const rows: string[] = [];
  console.log(`\nFan-out (ms columns: per player, from its WHEP POST / answer):\n${header}\n${rule}`);
  await createPull(kiln, 'cam', cameraUrl);
  for (const n of counts) {
    const r = await measureRound(kiln, `${kiln.signalingUrl}/app/cam?direction=whep`, n, { players: PLAYERS, seconds: SECONDS, codec: 'H264' });
    rows.push(row('RTSP', r));
    console.log(rows[rows.length - 1]);
    await sleep(1500); // let the players' sessions close
  }
  await deleteStream(kiln, 'cam');
  if (keeper) await stopChild(keeper); // the camera idles during the WHIP rounds
  const stream = `whip${Date.now()}`;
  const publisher = await publishFixture(kiln, stream);
  undo.push(() => publisher.stop());
  await sleep(1000);
  for (const n of counts) {
    const r = await measureRound(kiln, `${kiln.signalingUrl}/app/${stream}?direction=whep`, n, { players: PLAYERS, seconds: SECONDS, codec: 'VP8' });
    rows.push(row('WHIP', r));
    console.log(rows[rows.length - 1]);
    await sleep(1500);
  }

  // 3. Summary.
  const pick = (f: (p: Probe) => number) => probes.map(f);
  const range = (xs: number[]) => `${fmt(median(xs)).padStart(6)}  (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;
  console.log(`\nSummary (${REPEATS} pulls from scratch: median, min–max, ms):`);
  console.log(`  (a) API POST → 201                        ${range(pick((p) => p.created))}`);
  console.log(`  (b) 201 → first video packet at a player  ${range(pick((p) => p.firstVideo))}`);
  console.log(`      201 → first key frame at a player     ${range(pick((p) => p.firstKey))}`);
  console.log(`  a + b: API POST → first key frame         ${range(pick((p) => p.created + p.firstKey))}`);
  console.log(`${header}\n${rule}\n${rows.join('\n')}`);
  const warnings = kiln.output().split('\n').filter((l) => /"level":(4|5|6)0/.test(l));
  if (warnings.length) console.log(`\nKiln logged ${warnings.length} warnings/errors, first ones:\n${warnings.slice(0, 5).join('\n')}`);
  console.log(`\n(${fmt((now() - started) / 1000)} s)`);
}

main().then(() => cleanupAll(), async (err) => {
  console.error(err);
  await cleanupAll();
  process.exit(1);
}).then(() => process.exit(0));
