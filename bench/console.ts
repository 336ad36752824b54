/**
 * `npm run bench:console`: what an open web console costs Kiln, and how fast it sees a change,
 * measured with the console's own code (`console/src/api.ts` createApi/basicAuth, `model.ts`
 * loaders, `metrics.ts` sampleOf) in this process against a Kiln process on loopback. The live
 * streams are RTSP pulls (OME "Create Stream (Pull)") of one camera (the tests' GStreamer RTSP
 * server, `/h264-opus`, one shared pipeline), over UDP (the camera's shared pipeline stalled now
 * and then with 50 TCP-interleaved clients), kept by a long `unusedStreamDeletionTimeoutMs`.
 *
 *   1. tick time: one Streams-view tick (`loadStreams` ‖ `loadSessions`, as StreamsView's poll) and
 *      one Overview tick (its three calls in parallel, as OverviewView's poll: /v1/sessions,
 *      /v1/servers, in-progress room sessions) with N live streams: p50/p95 ms over T sequential
 *      ticks, median of R rounds; HTTP calls and KiB per tick;
 *   2. cost per tab: with the most streams, Kiln's CPU (its threads' schedstat in /proc, or utime +
 *      stime of /proc/<pid>/stat when a thread came or went) over windows of S s: C cycles of (no
 *      console, 1 tab, 5 tabs), then no console again; a loaded window's cost is its CPU above the
 *      mean of the idle windows either side of it, per tab per second (so the ingest's drift
 *      cancels). A simulated tab polls as the console's usePoll does (the next tick POLL_MS after
 *      the last one ends): the Streams view every 1 s and, as any open console does, /metrics every
 *      1 s (main.tsx's charts), /v1/servers every 2 s (main.tsx's node count) and the pull form's
 *      app list every 10 s (`--tab streams`: the Streams poll alone);
 *   2b. the same with the view's automatic previews: a WHEP player (node-datachannel, in this
 *      process) per tab on each of the first six streams, as Streams.tsx opens them (`--no-previews`
 *      skips this);
 *   3. freshness: with one tab on the Streams view, the time from a pull's 201 (and from its
 *      DELETE's 200) to the end of the first tick whose rows show the change, P times each.
 *
 * Each simulated tab sends at most 6 requests at once (a browser's HTTP/1.1 connections per host),
 * so the 50 detail calls of a 50-stream tick queue as they would in a browser.
 *
 *   npm run bench:console -- [N,N,...] [--ticks T] [--rounds R] [--seconds S] [--cycles C]
 *                            [--tabs K,K] [--probes P] [--connections 6] [--tab full|streams]
 *                            [--no-previews] [--rtsp-transport udp|tcp]
 *
 * (default 1,10,50 streams; 20 ticks × 3 rounds; 5 s windows × 3 cycles; 1,5 tabs; 5 probes: about
 * 2 minutes.) The constants copied from the console (poll intervals, AUTO_PREVIEWS) are named below.
 */
import { readdirSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { cleanup as ndcCleanup } from 'node-datachannel';
import { basicAuth, createApi, type Api } from '../console/src/api.ts';
import { sampleOf } from '../console/src/metrics.ts';
import { loadApps, loadOverview, loadSessions, loadStreams, PREVIEW_PREFIX, type StreamRow } from '../console/src/model.ts';
import { startKiln, type KilnProcess } from '../test/helpers/kiln-process.ts';
import { startRtspServer } from '../test/helpers/rtsp-server.ts';
import { cpuSeconds, cpuTimes, median, packetsOut } from './fanout.ts';
import { openPlayer, type NdcPlayer } from './fanout-players-ndc.ts';

const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const list = (s: string) => s.split(',').map(Number);
const COUNTS = list(args.find((a) => /^\d+(,\d+)*$/.test(a) && !args[args.indexOf(a) - 1]?.startsWith('--')) ?? '1,10,50');
const TICKS = Number(flag('--ticks') ?? 20);
const ROUNDS = Number(flag('--rounds') ?? 3);
const SECONDS = Number(flag('--seconds') ?? 5);
const CYCLES = Number(flag('--cycles') ?? 3);
const TABS = list(flag('--tabs') ?? '1,5');
const PROBES = Number(flag('--probes') ?? 5);
const CONNECTIONS = Number(flag('--connections') ?? 6);
const TAB = flag('--tab') ?? 'full';
if (TAB !== 'full' && TAB !== 'streams') throw new Error(`--tab ${TAB}: expected full or streams`);
const PREVIEWS = !args.includes('--no-previews');
const RTSP_TRANSPORT = flag('--rtsp-transport') ?? 'udp';
/** hooks.ts POLL_MS (not imported: hooks.ts pulls in Preact). */
const POLL_MS = 1000;
/** main.tsx: its node-count poll of /v1/servers (whatever view is open). */
const NODE_COUNT_POLL_MS = 2000;
/** Streams.tsx: the pull form's app list. */
const APPS_POLL_MS = 10_000;
/** Streams.tsx AUTO_PREVIEWS: the streams of the default vhost that get a WHEP preview without asking. */
const AUTO_PREVIEWS = 6;
const CAMERA_PATH = '/h264-opus';

const now = () => performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
const fmt = (x: number, digits = 0) => (Number.isFinite(x) ? x.toFixed(digits) : '-');

/**
 * Kiln's CPU seconds so far: its threads' schedstat (ns) when the same threads live at both reads,
 * else utime + stime of /proc/<pid>/stat (10 ms ticks, but it keeps the time of ended threads).
 */
function cpuReader(pid: number): () => number {
  const read = () => ({ sched: cpuSeconds(pid), stat: cpuTimes(pid).user + cpuTimes(pid).system, tids: readdirSync(`/proc/${pid}/task`).sort().join() });
  const start = read();
  return () => {
    const end = read();
    return end.tids === start.tids ? end.sched - start.sched : end.stat - start.stat;
  };
}

/** Undone in reverse order on exit, error or Ctrl-C. */
const undo: (() => Promise<unknown> | void)[] = [];
let cleaning: Promise<void> | undefined;
function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    for (const fn of undo.reverse()) await Promise.resolve().then(fn).catch(() => {});
  })();
  return cleaning;
}
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping Kiln and the camera...`);
    void cleanupAll().finally(() => process.exit(code));
  });
}

/** One browser tab's view of the API: the console's client over a fetch that counts and keeps to C connections. */
interface Tab {
  api: Api;
  calls: number;
  bytes: number;
}

function openApi(kiln: KilnProcess): Tab {
  let active = 0;
  const waiting: (() => void)[] = [];
  const tab: Tab = { api: undefined as unknown as Api, calls: 0, bytes: 0 };
  const limited: typeof fetch = async (input, init) => {
    if (active >= CONNECTIONS) await new Promise<void>((r) => waiting.push(r));
    else active++;
    try {
      const res = await fetch(input, init);
      const body = await res.arrayBuffer(); // the connection is busy until the body is read
      tab.calls++;
      tab.bytes += body.byteLength;
      return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
  tab.api = createApi(kiln.apiUrl, basicAuth(kiln.user, kiln.password), { fetch: limited });
  return tab;
}

/** StreamsView's poll. */
async function streamsTick(api: Api, signal?: AbortSignal) {
  const [streams, sessions] = await Promise.all([loadStreams(api, signal), loadSessions(api, signal)]);
  return { streams, sessions };
}

/** OverviewView's poll. */
const overviewTick = loadOverview;

interface TickFigures {
  p50: number;
  p95: number;
  calls: number;
  kib: number;
}

/** R rounds of T sequential ticks on a fresh tab: median over rounds of each round's p50 and p95. */
async function timeTicks(kiln: KilnProcess, tick: (api: Api) => Promise<unknown>, check: (result: unknown) => void): Promise<TickFigures> {
  const tab = openApi(kiln);
  check(await tick(tab.api)); // warm-up: connections open, and the result is what it should be
  if (tab.calls === 0) throw new Error("the console's API client did not call through the bench's fetch (createApi's options changed?)");
  const p50: number[] = [];
  const p95: number[] = [];
  const calls0 = tab.calls;
  const bytes0 = tab.bytes;
  for (let r = 0; r < ROUNDS; r++) {
    const times: number[] = [];
    for (let i = 0; i < TICKS; i++) {
      const t = now();
      await tick(tab.api);
      times.push(now() - t);
    }
    p50.push(quantile(times, 0.5));
    p95.push(quantile(times, 0.95));
    await sleep(100);
  }
  const n = ROUNDS * TICKS;
  return { p50: median(p50), p95: median(p95), calls: (tab.calls - calls0) / n, kib: (tab.bytes - bytes0) / n / 1024 };
}

/** Resolves after `ms`, or at once when `signal` aborts. */
const pause = (ms: number, signal: AbortSignal) => new Promise<void>((resolve) => {
  if (signal.aborted) return resolve();
  const timer = setTimeout(done, ms);
  function done() {
    clearTimeout(timer);
    signal.removeEventListener('abort', done);
    resolve();
  }
  signal.addEventListener('abort', done);
});

/** A loop as usePoll runs it: `load` now, then `intervalMs` after each one ends, until `signal` aborts. */
async function poll(load: () => Promise<unknown>, intervalMs: number, signal: AbortSignal, startIn = 0): Promise<void> {
  await pause(startIn, signal);
  while (!signal.aborted) {
    try {
      await load();
    } catch (err) {
      if ((err as Error).name !== 'AbortError') console.error(`poll: ${(err as Error).message}`);
    }
    await pause(intervalMs, signal);
  }
}

/** Where the tabs' preview players are, to close them on the way out. */
/** The tabs' preview players while open, to close them on the way out. */
const openPreviews = new Set<NdcPlayer>();
let previewSeq = 0;

/**
 * A console tab on the Streams view, opened `startIn` ms from now, until `stop()` (which lets a
 * running tick end). With `previews`, once its first tick has come it opens the view's automatic
 * previews: a WHEP player (node-datachannel, H.264 + Opus) on each of the first AUTO_PREVIEWS
 * streams of the default vhost; `ready` resolves once they are connected.
 */
function streamsTab(kiln: KilnProcess, startIn: number, options: { previews?: boolean; onTick?: (rows: StreamRow[]) => void } = {}) {
  const tab = openApi(kiln);
  const closed = new AbortController();
  const signal = closed.signal;
  const players: NdcPlayer[] = [];
  let opened: () => void = () => {};
  let failed: (err: unknown) => void = () => {};
  const ready = new Promise<void>((resolve, reject) => {
    opened = resolve;
    failed = reject;
  });
  ready.catch(() => {}); // told to whoever awaits it
  let previewing: Promise<void> | undefined;
  const previews = async (rows: StreamRow[]) => {
    const chosen = rows.filter((r) => r.vhost === 'default').slice(0, AUTO_PREVIEWS);
    await Promise.all(chosen.map(async (r) => {
      const id = previewSeq++;
      const player = await openPlayer(`${kiln.signalingUrl}/${r.app}/${r.name}?direction=whep&session=${PREVIEW_PREFIX}bench-${id}`, id, 'H264');
      players.push(player);
      openPreviews.add(player);
    }));
  };
  const loops = [poll(async () => {
    const { streams } = await streamsTick(tab.api, signal);
    options.onTick?.(streams);
    if (!previewing) {
      previewing = options.previews ? previews(streams) : Promise.resolve();
      previewing.then(opened, failed);
    }
  }, POLL_MS, signal, startIn)];
  if (TAB === 'full') {
    loops.push(
      poll(async () => sampleOf(String(await tab.api.get<string>('/metrics', signal)), Date.now() / 1000), POLL_MS, signal, startIn),
      poll(() => tab.api.get('/v1/servers', signal), NODE_COUNT_POLL_MS, signal, startIn),
      poll(() => loadApps(tab.api, signal), APPS_POLL_MS, signal, startIn),
    );
  }
  return {
    tab,
    players,
    ready,
    stop: async () => {
      closed.abort();
      await Promise.all(loops);
      await previewing?.catch(() => {});
      await Promise.all(players.map(async (p) => {
        await p.close();
        openPreviews.delete(p);
      }));
    },
  };
}

interface Window {
  tabs: number;
  previews: number;
  seconds: number;
  cpu: number;
  calls: number;
  ticks: number;
  /** Packets Kiln sent to players (the previews) per second. */
  forwarded: number;
  /** Pulls that lost their input during the window (a camera stall: the figure is suspect). */
  losses: number;
}

/**
 * Kiln's CPU over SECONDS with `k` Streams tabs open (their phases spread over a second), from
 * 1.5 s after they opened (and after their previews connected).
 */
async function cpuWindow(kiln: KilnProcess, k: number, previews = false): Promise<Window> {
  const pid = kiln.child.pid!;
  let ticks = 0;
  const tabs = Array.from({ length: k }, (_, i) => streamsTab(kiln, (i * POLL_MS) / k, { previews, onTick: () => ticks++ }));
  await Promise.all(tabs.map((t) => t.ready));
  await sleep(k > 0 ? 1500 : 500);
  const calls0 = tabs.reduce((n, t) => n + t.tab.calls, 0);
  const ticks0 = ticks;
  const out0 = previews ? await packetsOut(kiln.apiUrl) : 0;
  const losses0 = inputLosses(kiln);
  const cpuSince = cpuReader(pid);
  const t0 = now();
  await sleep(SECONDS * 1000);
  const cpu = cpuSince();
  const losses = inputLosses(kiln) - losses0;
  const seconds = (now() - t0) / 1000;
  const out1 = previews ? await packetsOut(kiln.apiUrl) : 0;
  const calls = tabs.reduce((n, t) => n + t.tab.calls, 0) - calls0;
  const w = { tabs: k, previews: tabs.reduce((n, t) => n + t.players.length, 0), seconds, cpu, calls, ticks: ticks - ticks0, forwarded: (out1 - out0) / seconds, losses };
  await Promise.all(tabs.map((t) => t.stop()));
  return w;
}

/** Pulls that needed another try (the camera left a SETUP or PLAY unanswered and Kiln said 502). */
let pullRetries = 0;

/**
 * OME "Create Stream (Pull)" of the camera; resolves at the 201. The camera (one GStreamer process
 * for every pull) now and then leaves a request unanswered, and Kiln answers 502 after 5 s: such
 * a pull is tried again, twice at most.
 */
async function createPull(kiln: KilnProcess, name: string, url: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${kiln.apiUrl}/v1/vhosts/default/apps/app/streams`, {
      method: 'POST',
      headers: { authorization: kiln.basic, 'content-type': 'application/json' },
      body: JSON.stringify({ name, urls: [url], properties: { unusedStreamDeletionTimeoutMs: 3_600_000, rtspTransport: RTSP_TRANSPORT } }),
    });
    const text = await res.text();
    if (res.status === 201) return;
    if (res.status !== 502 || attempt === 2) throw new Error(`pull ${name}: ${res.status} ${text}`);
    console.error(`(pull ${name}: ${res.status} ${text.slice(0, 200)}; trying again)`);
    pullRetries++;
  }
}

/** How often Kiln's pulls have lost their input so far (a camera stall; it spoils a CPU window). */
const inputLosses = (kiln: KilnProcess) => kiln.output().split('rtsp pull lost its source').length - 1;

async function deleteStream(kiln: KilnProcess, name: string): Promise<void> {
  const res = await fetch(`${kiln.apiUrl}/v1/vhosts/default/apps/app/streams/${name}`, { method: 'DELETE', headers: { authorization: kiln.basic } });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`DELETE ${name}: ${res.status} ${text}`);
}

/** One tab on the Streams view; times from a pull's 201 and from its DELETE's 200 to the tick that shows each. */
async function freshness(kiln: KilnProcess, cameraUrl: string): Promise<{ appear: number[]; vanish: number[] }> {
  let waiter: { test: (rows: StreamRow[]) => boolean; resolve: () => void } | undefined;
  const tab = streamsTab(kiln, 0, {
    onTick: (rows) => {
      if (waiter?.test(rows)) {
        waiter.resolve();
        waiter = undefined;
      }
    },
  });
  const seen = (test: (rows: StreamRow[]) => boolean) => new Promise<void>((resolve) => (waiter = { test, resolve }));
  const appear: number[] = [];
  const vanish: number[] = [];
  try {
    await sleep(1500);
    for (let i = 0; i < PROBES; i++) {
      const name = `probe${i}`;
      const has = (rows: StreamRow[]) => rows.some((r) => r.name === name && r.info !== undefined);
      await sleep(Math.random() * POLL_MS); // at a random point of the tab's poll cycle
      await createPull(kiln, name, cameraUrl);
      const created = now();
      await seen(has);
      appear.push(now() - created);
      await sleep(Math.random() * POLL_MS);
      await deleteStream(kiln, name);
      const deleted = now();
      await seen((rows) => !has(rows));
      vanish.push(now() - deleted);
    }
  } finally {
    await tab.stop();
  }
  return { appear, vanish };
}

/** The Kiln of this run, for its log on the way out. */
let running: KilnProcess | undefined;

function kilnWarnings(kiln: KilnProcess): void {
  const warnings = kiln.output().split('\n').filter((l) => /"level":(4|5|6)0/.test(l));
  if (warnings.length) console.log(`\nKiln logged ${warnings.length} warnings/errors, first ones:\n${warnings.slice(0, 5).join('\n')}`);
}

async function main(): Promise<void> {
  const started = now();
  undo.push(() => ndcCleanup());
  const camera = await startRtspServer();
  undo.push(() => camera.stop());
  const cameraUrl = camera.url(CAMERA_PATH);
  const kiln = running = await startKiln({ KILN_LOG_LEVEL: 'warn' });
  undo.push(() => kiln.stop());
  undo.push(() => Promise.all([...openPreviews].map((p) => p.close())));
  console.log(`bench:console: Kiln ${kiln.apiUrl}, live streams = RTSP pulls (${RTSP_TRANSPORT}) of ${cameraUrl}; ${CONNECTIONS} connections per tab; `
    + `ticks: ${ROUNDS} rounds × ${TICKS}, sequential; CPU windows ${SECONDS} s; `
    + `tab = ${TAB === 'full' ? `Streams poll 1 s + /metrics 1 s + /v1/servers ${NODE_COUNT_POLL_MS / 1000} s + apps ${APPS_POLL_MS / 1000} s` : 'Streams poll alone'}; `
    + `machine load average ${loadavg()[0].toFixed(1)} on ${availableParallelism()} cores\n`);

  // 1. Tick times as the streams grow.
  const header = 'streams | Streams tick p50 ms | p95 ms | HTTP calls/tick | KiB/tick | Overview tick p50 ms | p95 ms | calls | KiB | pulls made in s';
  const rule = header.replace(/[^|]/g, '-');
  console.log(`${header}\n${rule}`);
  let live = 0;
  const streamsFig: TickFigures[] = [];
  const overviewFig: TickFigures[] = [];
  for (const n of COUNTS) {
    const t0 = now();
    while (live < n) {
      const batch = Math.min(10, n - live);
      await Promise.all(Array.from({ length: batch }, (_, i) => createPull(kiln, `cam${String(live + i).padStart(3, '0')}`, cameraUrl)));
      live += batch;
    }
    const made = (now() - t0) / 1000;
    await sleep(1000);
    const s = await timeTicks(kiln, streamsTick, (r) => {
      const { streams } = r as Awaited<ReturnType<typeof streamsTick>>;
      const ok = streams.filter((row) => row.info && row.info.input.tracks.length > 0).length;
      if (ok !== n) throw new Error(`Streams tick: ${ok} of ${n} streams with tracks (${streams.length} rows)`);
    });
    const o = await timeTicks(kiln, overviewTick, (r) => {
      const { kinds, nodes } = r as Awaited<ReturnType<typeof overviewTick>>;
      if (kinds.pull !== n || nodes !== 1) throw new Error(`Overview tick: ${JSON.stringify(kinds)}, ${nodes} nodes`);
    });
    streamsFig.push(s);
    overviewFig.push(o);
    console.log([
      String(n).padStart(7),
      fmt(s.p50, 1).padStart(19), fmt(s.p95, 1).padStart(6), fmt(s.calls, 0).padStart(15), fmt(s.kib, 1).padStart(8),
      fmt(o.p50, 1).padStart(20), fmt(o.p95, 1).padStart(6), fmt(o.calls, 0).padStart(5), fmt(o.kib, 1).padStart(3),
      fmt(made, 1).padStart(15),
    ].join(' | '));
  }

  // 2. CPU per tab, with the most streams: CYCLES × (no tab, then each K tabs), then no tab again;
  // each loaded window is compared with the mean of the idle windows either side of it.
  console.log(`\nKiln CPU with ${live} live streams, polling only (${CYCLES} cycles of ${SECONDS} s windows: idle, ${TABS.join(', ')} tabs; a tab's cost = CPU above the idle windows around it):`);
  const cpuHeader = 'tabs | Kiln CPU % | HTTP calls/s | Streams ticks/s | CPU ms per tab per s | % of a core per tab | CPU µs per call';
  console.log(`${cpuHeader}\n${cpuHeader.replace(/[^|]/g, '-')}`);
  const idle: Window[] = [];
  const cycles: Window[][] = [];
  for (let c = 0; c < CYCLES; c++) {
    idle.push(await cpuWindow(kiln, 0));
    const cycle: Window[] = [];
    for (const k of TABS) cycle.push(await cpuWindow(kiln, k));
    cycles.push(cycle);
  }
  idle.push(await cpuWindow(kiln, 0));
  const rate = (w: Window) => w.cpu / w.seconds;
  const idleRate = idle.reduce((x, w) => x + rate(w), 0) / idle.length;
  const perTab: number[] = [];
  TABS.forEach((k, i) => {
    const ws = cycles.map((cycle) => cycle[i]);
    // CPU s per s above idle, each window against the idle windows that bracket it.
    const extra = ws.reduce((x, w, c) => x + rate(w) - (rate(idle[c]) + rate(idle[c + 1])) / 2, 0) / ws.length;
    const seconds = ws.reduce((x, w) => x + w.seconds, 0);
    const calls = ws.reduce((x, w) => x + w.calls, 0);
    const ticks = ws.reduce((x, w) => x + w.ticks, 0);
    perTab.push((extra / k) * 1000);
    console.log([
      String(k).padStart(4),
      fmt((ws.reduce((x, w) => x + w.cpu, 0) / seconds) * 100, 1).padStart(10),
      fmt(calls / seconds, 0).padStart(12),
      fmt(ticks / seconds, 2).padStart(15),
      fmt((extra / k) * 1000, 2).padStart(20),
      fmt((extra / k) * 100, 2).padStart(19),
      fmt((extra * seconds * 1e6) / calls, 0),
    ].join(' | '));
  });
  console.log(`   0 | ${fmt(idleRate * 100, 1).padStart(10)} | (idle windows: ${idle.map((w) => fmt(rate(w) * 100, 1)).join(', ')} %)`);

  // 2b. The same tabs with the view's automatic previews (WHEP players): idle, K tabs..., idle.
  const withPreviews: { k: number; perTab: number }[] = [];
  const previewWindows: Window[] = [];
  if (PREVIEWS) {
    console.log(`\nKiln CPU with the Streams view's ${AUTO_PREVIEWS} automatic previews per tab (WHEP players, node-datachannel in this process; one ${SECONDS} s window each, between idle ones):`);
    const pHeader = 'tabs | preview players | Kiln CPU % | packets to players/s | CPU ms per tab per s | % of a core per tab | of it, the previews';
    console.log(`${pHeader}\n${pHeader.replace(/[^|]/g, '-')}`);
    const before = await cpuWindow(kiln, 0);
    const ws: Window[] = [];
    for (const k of TABS) ws.push(await cpuWindow(kiln, k, true));
    const after = await cpuWindow(kiln, 0);
    previewWindows.push(before, ...ws, after);
    const base = (rate(before) + rate(after)) / 2;
    ws.forEach((w, i) => {
      const each = ((rate(w) - base) / w.tabs) * 1000;
      withPreviews.push({ k: w.tabs, perTab: each });
      console.log([
        String(w.tabs).padStart(4),
        String(w.previews).padStart(15),
        fmt(rate(w) * 100, 1).padStart(10),
        fmt(w.forwarded, 0).padStart(20),
        fmt(each, 2).padStart(20),
        fmt(each / 10, 2).padStart(19),
        `${fmt(each - perTab[i], 2)} ms/s`,
      ].join(' | '));
    });
    console.log(`   0 | ${'-'.padStart(15)} | ${fmt(base * 100, 1).padStart(10)} | (idle windows: ${fmt(rate(before) * 100, 1)}, ${fmt(rate(after) * 100, 1)} %)`);
  }

  // 3. Freshness.
  const { appear, vanish } = await freshness(kiln, cameraUrl);
  const range = (xs: number[]) => `p50 ${fmt(median(xs))} ms (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;
  console.log(`\nFreshness, one Streams tab with ${live} streams (${PROBES} probes): `
    + `pull 201 → shown ${range(appear)}; DELETE 200 → gone ${range(vanish)}`);

  const spoiled = [...idle, ...cycles.flat(), ...previewWindows].reduce((n, w) => n + w.losses, 0);
  if (spoiled || pullRetries) console.log(`\nThe camera stalled: ${spoiled} input losses of pulls during the CPU windows (those figures are suspect), ${pullRetries} pulls tried again after a 502.`);
  kilnWarnings(kiln);

  const last = COUNTS.length - 1;
  const tabsText = (xs: number[]) => TABS.map((k, i) => `${fmt(xs[i], 1)} (${k} tab${k > 1 ? 's' : ''})`).join(', ');
  console.log(`\nSummary: a Streams tick takes ${COUNTS.map((n, i) => `${fmt(streamsFig[i].p50, 1)} ms (${fmt(streamsFig[i].calls)} calls) at ${n}`).join(', ')} streams, `
    + `an Overview tick ${fmt(overviewFig[last].p50, 1)} ms at ${COUNTS[last]}; at ${live} streams (idle Kiln ${fmt(idleRate * 100, 1)} % CPU) a tab's polling costs Kiln ${tabsText(perTab)} ms CPU/s per tab`
    + `${withPreviews.length ? `, with its ${AUTO_PREVIEWS} previews ${tabsText(withPreviews.map((w) => w.perTab))}` : ''}; `
    + `a new stream shows in ${fmt(median(appear))} ms p50 (max ${fmt(Math.max(...appear, ...vanish))}) — ${fmt((now() - started) / 1000)} s, load average ${loadavg()[0].toFixed(1)}`);
}

main().then(() => cleanupAll(), async (err) => {
  console.error(err);
  if (running) kilnWarnings(running);
  await cleanupAll();
  process.exit(1);
}).then(() => process.exit(0));
