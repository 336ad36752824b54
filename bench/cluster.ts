/**
 * `npm run bench:cluster`: a Kiln cluster of three processes (A, B, C) on one throwaway PostgreSQL,
 * on loopback. The fixture of `bench:fanout` (720p30 VP8 ≈1.5 Mbps + Opus, replayed as RTP) is
 * published with WHIP on A; node-datachannel WHEP players in one separate process play it on A, B
 * and C, B and C each through one on-demand OVT relay from A. Five phases of `--seconds` each:
 *
 *   0 idle    the publisher on A, no players: each node's fixed cost (A's includes the ingest);
 *   1 A only  N players on A;
 *   2 B pull  no players; B pulls the stream from A over OVT (an explicit `ovt://` pull stream,
 *             the relay's code without its on-demand life): the relay's own cost;
 *   3 B only  N players on B (one on-demand relay A → B);
 *   4 spread  N players on each of A, B and C (one relay each to B and C).
 *
 * Prints per phase and node: CPU (% of a core: the median of 1 s windows, and the mean), packets
 * sent per second, loss and publisher → player delay at its players; then what they give: the CPU
 * of a player on A and on B, the relay's CPU on an edge node per relayed stream (beyond what its
 * players cost), A's CPU per OVT edge it feeds, the hop's added delay (the same packets at a
 * player on B or C vs one on A, p50/p99), and the OVT sessions counted in the cluster's MaxScale
 * view (one pull per edge node, however many players it has).
 *
 *   npm run bench:cluster -- [--seconds S] [--players N]     (defaults: 20 s per phase, 3 per node)
 */
import { availableParallelism } from 'node:os';
import { cleanup as ndcCleanup } from 'node-datachannel';
import { freePort, startKiln, type KilnProcess } from '../test/helpers/kiln-process.ts';
import { startPostgres } from '../test/helpers/postgres.ts';
import { children, cpuSeconds, cpuTimes, forkPlayers, median, now, packetsOut, publishFixture } from './fanout.ts';
import { loadFixture } from './fixture.ts';
import type { ClusterPlayersResult, Hop, PlayerGroup } from './cluster-players.ts';
import type { PlayerResult } from './player-stats.ts';

const HELP = `npm run bench:cluster -- [--seconds S] [--players N]

Three Kiln nodes (A, B, C) on a throwaway PostgreSQL, on loopback. The bench:fanout fixture
(720p30 VP8 + Opus) is published with WHIP on A; WHEP players (node-datachannel, one process)
play it on A, B and C; B and C each pull it once from A over OVT. Phases of S seconds:
idle (publisher only), N players on A, an ovt:// pull on B without players, N players on B,
N players on each node.

  --seconds S   length of each measured phase (default 20)
  --players N   players per node (default 3)
  --help        this text

Prints each node's CPU per phase (median of 1 s windows, and mean), the CPU of a player on A and
on B, the relay's CPU on B per relayed stream, A's CPU per OVT edge, the added delay of a hop (p50/p99 of the
arrival of the same packets at a player on B or C minus at a player on A), loss at each node's
players, and the OVT sessions in the cluster's MaxScale view.`;

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  console.log(HELP);
  process.exit(0);
}
const flag = (name: string, fallback: number): number => {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const value = Number(args[i + 1]);
  if (!Number.isFinite(value) || value <= 0) {
    console.error(`${name} ${args[i + 1] ?? ''}: expected a positive number\n\n${HELP}`);
    process.exit(2);
  }
  return value;
};
const SECONDS = Math.max(2, Math.floor(flag('--seconds', 20)));
const PLAYERS = Math.floor(flag('--players', 3));
/** Between phases: longer than a relay's grace (2 s) so that each phase opens its own relays. */
const PAUSE_MS = 3500;
const SETTLE_MS = 2000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type NodeId = 'a' | 'b' | 'c';
const NODES: NodeId[] = ['a', 'b', 'c'];
const label = (id: string) => id.toUpperCase();

/** Undone in reverse order on exit, error or Ctrl-C. */
const undo: (() => Promise<unknown> | void)[] = [];
let cleaning: Promise<void> | undefined;
function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    for (const c of children) c.kill('SIGKILL');
    for (const fn of undo.reverse()) await Promise.resolve().then(fn).catch(() => {});
    ndcCleanup();
  })();
  return cleaning;
}
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping the players, the Kiln nodes and PostgreSQL...`);
    void cleanupAll().finally(() => process.exit(code));
  });
}

/** One Kiln node of the cluster, its API on its own free ports; stopped by the cleanup. */
async function startNode(id: NodeId, databaseUrl: string): Promise<KilnProcess & { ovtUrl: string }> {
  const sigPort = String(await freePort());
  const ovtPort = String(await freePort());
  const kiln = await startKiln({
    KILN_DATABASE_URL: databaseUrl,
    KILN_NODE_ID: id,
    KILN_SIGNALING_PORT: sigPort,
    KILN_OVT_PORT: ovtPort,
    KILN_PUBLIC_URL: `http://127.0.0.1:${sigPort}`,
    KILN_LOG_LEVEL: 'warn',
  });
  undo.push(() => kiln.stop(15_000));
  return { ...kiln, ovtUrl: `ovt://127.0.0.1:${ovtPort}` };
}

/** Calls the control API of a node; throws unless it answers `status`. */
async function call(kiln: KilnProcess, method: string, path: string, body: unknown, status: number): Promise<void> {
  const res = await fetch(`${kiln.apiUrl}${path}`, {
    method,
    headers: { authorization: kiln.basic, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== status) throw new Error(`${method} ${path} on ${kiln.apiUrl}: ${res.status} ${text}`);
}

async function getJson(kiln: KilnProcess, path: string): Promise<any> {
  const res = await fetch(`${kiln.apiUrl}${path}`, { headers: { authorization: kiln.basic } });
  if (res.status !== 200) throw new Error(`GET ${path} on ${kiln.apiUrl}: ${res.status} ${await res.text()}`);
  return res.json();
}

/** The sessions of some streams in the cluster's view (MaxScale `GET /v1/sessions` on one node), counted. */
interface SessionCount {
  /** `kind/protocol` → node → count (node `?` when the view does not say). */
  byKind: Map<string, Map<string, number>>;
}

async function countSessions(kiln: KilnProcess, streams: string[]): Promise<SessionCount> {
  const body = await getJson(kiln, '/v1/sessions');
  const byKind = new Map<string, Map<string, number>>();
  for (const s of body.data as { attributes: { kind: string; protocol: string; stream: string; node?: string } }[]) {
    const a = s.attributes;
    if (!streams.includes(a.stream)) continue;
    const key = `${a.kind}/${a.protocol}`;
    const perNode = byKind.get(key) ?? new Map<string, number>();
    perNode.set(a.node ?? '?', (perNode.get(a.node ?? '?') ?? 0) + 1);
    byKind.set(key, perNode);
  }
  return { byKind };
}

function describeCount(c: SessionCount): string {
  return [...c.byKind].sort(([a], [b]) => a.localeCompare(b))
    .map(([kind, perNode]) => `${kind} ${[...perNode].sort().map(([n, k]) => `${label(n)}:${k}`).join(' ')}`).join(', ');
}

const countOf = (c: SessionCount, kind: string, node?: string): number => {
  const perNode = c.byKind.get(kind);
  if (!perNode) return 0;
  return node === undefined ? [...perNode.values()].reduce((s, k) => s + k, 0) : perNode.get(node) ?? 0;
};

/** What one phase measured. */
interface Phase {
  name: string;
  groups: PlayerGroup[];
  seconds: number;
  /**
   * Per node: CPU, % of a core: the median of 1 s windows (thread run times), and the mean over the
   * whole window (/proc ticks); its packets sent per second (/metrics).
   */
  cpu: Record<NodeId, number>;
  cpuMean: Record<NodeId, number>;
  sent: Record<NodeId, number>;
  /** The players process and this process (the publisher), % of a core (medians of the same windows). */
  playersCpu: number;
  publisherCpu: number;
  result: ClusterPlayersResult | undefined;
  /** The sessions in B's view, after the settling and again at the end of the window. */
  sessions: SessionCount[];
}

async function measurePhase(name: string, nodes: Record<NodeId, KilnProcess>, groups: PlayerGroup[], streams: string[]): Promise<Phase> {
  const players = groups.length ? await forkPlayers<ClusterPlayersResult>(new URL('./cluster-players.ts', import.meta.url).pathname, [JSON.stringify(groups)]) : undefined;
  await sleep(SETTLE_MS);
  const sessions = [await countSessions(nodes.b, streams)];
  const pids = NODES.map((id) => nodes[id].child.pid!);
  const sample = () => ({
    t: now(),
    nodes: pids.map(cpuSeconds),
    players: players ? cpuSeconds(players.child.pid!) : 0,
    self: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
  });
  const ticks = () => pids.map((pid) => {
    const t = cpuTimes(pid);
    return t.user + t.system;
  });
  const out0 = await Promise.all(NODES.map((id) => packetsOut(nodes[id].apiUrl)));
  players?.start();
  const t0 = now();
  const ticks0 = ticks();
  let prev = sample();
  /** Per 1 s window, % of a core (NaN when a thread's exit made the sum go back). */
  const windows: { nodes: number[]; players: number; self: number }[] = [];
  const pct = (a: number, b: number, dt: number) => (b >= a ? (b - a) / dt * 100 : NaN);
  for (let w = 1; w <= SECONDS; w++) {
    await sleep(Math.max(0, t0 + w * 1000 - now()));
    const s = sample();
    const dt = (s.t - prev.t) / 1000;
    windows.push({ nodes: s.nodes.map((c, i) => pct(prev.nodes[i], c, dt)), players: pct(prev.players, s.players, dt), self: pct(prev.self, s.self, dt) });
    prev = s;
  }
  const ticks1 = ticks();
  const out1 = await Promise.all(NODES.map((id) => packetsOut(nodes[id].apiUrl)));
  const seconds = (now() - t0) / 1000;
  sessions.push(await countSessions(nodes.b, streams));
  const result = players ? await players.stop() : undefined;
  await players?.exited;
  const perNode = <T>(f: (i: number) => T) => Object.fromEntries(NODES.map((id, i) => [id, f(i)])) as Record<NodeId, T>;
  return {
    name,
    groups,
    seconds,
    cpu: perNode((i) => median(windows.map((w) => w.nodes[i]).filter((x) => !Number.isNaN(x)))),
    cpuMean: perNode((i) => (ticks1[i] - ticks0[i]) / seconds * 100),
    sent: perNode((i) => (out1[i] - out0[i]) / seconds),
    playersCpu: median(windows.map((w) => w.players).filter((x) => !Number.isNaN(x))),
    publisherCpu: median(windows.map((w) => w.self)),
    result,
    sessions,
  };
}

const fmt = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : '-');
const loss = (r: PlayerResult | undefined) => (r && r.expected > 0 ? Math.max(0, (1 - r.received / r.expected) * 100) : NaN);

function phaseRows(p: Phase): string[] {
  return NODES.map((id) => {
    const r = p.result?.nodes[id];
    const n = p.groups.find((g) => g.node === id)?.count ?? 0;
    return [
      p.name.padEnd(9),
      label(id).padStart(4),
      String(n).padStart(7),
      `${fmt(p.cpu[id])} (${fmt(p.cpuMean[id])})`.padStart(16),
      fmt(p.sent[id], 0).padStart(10),
      (r ? fmt(loss(r), 2) : '').padStart(6),
      (r ? `${fmt(r.delayP50, 2)} / ${fmt(r.delayP99, 2)}` : '').padStart(18),
    ].join(' | ');
  });
}

async function main(): Promise<void> {
  const started = now();
  await loadFixture();
  const db = await startPostgres();
  undo.push(() => db.stop());
  const nodes = {} as Record<NodeId, KilnProcess & { ovtUrl: string }>;
  // One after the other: their start-up CPU stays out of each other's way (and out of the figures).
  for (const id of NODES) nodes[id] = await startNode(id, db.url);
  console.log(`PostgreSQL ${db.url}; nodes ${NODES.map((id) => `${label(id)} ${nodes[id].signalingUrl}`).join(', ')}`);
  console.log(`${PLAYERS} players per node, ${SECONDS} s per phase, players on node-datachannel in one process\n`);

  const stream = `cluster${Date.now()}`;
  const publisher = await publishFixture(nodes.a, stream);
  undo.push(() => publisher.stop());
  // B and C serve the stream once they see it in the shared view.
  const deadline = Date.now() + 15_000;
  for (const id of ['b', 'c'] as const) {
    while (!((await getJson(nodes[id], '/v1/vhosts/default/apps/app/streams')).response as string[]).includes(stream)) {
      if (Date.now() > deadline) throw new Error(`node ${label(id)} does not list the stream published on A`);
      await sleep(200);
    }
  }
  await sleep(1000);

  const whep = (id: NodeId) => `${nodes[id].signalingUrl}/app/${stream}?direction=whep`;
  const group = (id: NodeId): PlayerGroup => ({ node: id, url: whep(id), count: PLAYERS });
  const header = 'phase     | node | players | CPU % p50 (mean) | sent pkt/s | loss % | delay p50 / p99 ms';
  const rule = header.replace(/[^|]/g, '-');
  console.log(`${header}\n${rule}`);
  const phases: Phase[] = [];
  const pullName = `${stream}-pull`;
  const pullPath = '/v1/vhosts/default/apps/app/streams';
  const plan: [string, PlayerGroup[], (() => Promise<void>)?, (() => Promise<void>)?][] = [
    ['0 idle', []],
    ['1 A only', [group('a')]],
    ['2 B pull', [],
      () => call(nodes.b, 'POST', pullPath, { name: pullName, urls: [`${nodes.a.ovtUrl}/app/${stream}`], properties: { unusedStreamDeletionTimeout: 600_000 } }, 201),
      () => call(nodes.b, 'DELETE', `${pullPath}/${pullName}`, undefined, 200)],
    ['3 B only', [group('b')]],
    ['4 spread', [group('a'), group('b'), group('c')]],
  ];
  for (const [i, [name, groups, before, after]] of plan.entries()) {
    if (i > 0) await sleep(PAUSE_MS);
    await before?.();
    const p = await measurePhase(name, nodes, groups, [stream, pullName]);
    await after?.();
    phases.push(p);
    for (const row of phaseRows(p)) console.log(row);
    const total = NODES.reduce((sum, id) => sum + p.cpu[id], p.playersCpu + p.publisherCpu);
    console.log(`${' '.repeat(10)}(players process ${fmt(p.playersCpu)} %, publisher ${fmt(p.publisherCpu)} %, all ${fmt(total)} % of ${availableParallelism() * 100} %; B's view: ${p.sessions.map(describeCount).join(' → ')})`);
  }
  const [idle, aOnly, bPull, bOnly, spread] = phases;

  // Derived figures: differences of the figures above, % of one core, from the medians and the means.
  const N = PLAYERS;
  // The stream's packet rate as one player received it (a relay carries each packet once).
  const streamPps = bOnly.result ? bOnly.result.nodes.b.received / N / bOnly.seconds : NaN;
  type Cpu = (p: Phase) => Record<NodeId, number>;
  const playerA = (c: Cpu) => (c(aOnly).a - c(idle).a) / N;
  const playerB = (c: Cpu) => (c(bOnly).b - c(bPull).b) / N;
  const derived: [string, string, (c: Cpu) => number][] = [
    ['a player on A', 'pA = (A1 − A0) / N', playerA],
    ['the relay on B, per stream', 'B2 − B0', (c) => c(bPull).b - c(idle).b],
    ['a player on B (relayed)', 'pB = (B3 − B2) / N', playerB],
    ['  relay, counting A\'s players', 'B3 − B0 − N·pA', (c) => c(bOnly).b - c(idle).b - N * playerA(c)],
    ['  relay, spread phase, on B', 'B4 − B0 − N·pB', (c) => c(spread).b - c(idle).b - N * playerB(c)],
    ['  relay, spread phase, on C', 'C4 − C0 − N·pB', (c) => c(spread).c - c(idle).c - N * playerB(c)],
    ['A, per OVT edge it feeds', 'A2 − A0', (c) => c(bPull).a - c(idle).a],
    ['  the same (on-demand relay)', 'A3 − A0', (c) => c(bOnly).a - c(idle).a],
    ['  spread phase (2 edges)', '(A4 − A1) / 2', (c) => (c(spread).a - c(aOnly).a) / 2],
  ];
  const us = (pct: number) => fmt(pct * 1e4 / streamPps, 1);
  console.log(`\nDerived (Xk = node X's CPU in phase k, % of one core; µs: per packet of the stream, ≈ ${fmt(streamPps, 0)} pkt/s):`);
  console.log(`  ${''.padEnd(32)}| ${'formula'.padEnd(25)}| ${'from medians'.padEnd(20)}| from means`);
  for (const [what, formula, f] of derived) {
    const m = f((p) => p.cpu);
    const a = f((p) => p.cpuMean);
    console.log(`  ${what.padEnd(32)}| ${formula.padEnd(25)}| ${`${fmt(m, 2)} % (${us(m)} µs)`.padEnd(20)}| ${fmt(a, 2)} % (${us(a)} µs)`);
  }

  const hops = spread.result?.hops ?? [];
  const hopRow = (h: Hop) => `  ${h.probe === 'a#2' ? 'A (2nd player) − A' : `${label(h.probe)} − A`.padEnd(18)} | ${fmt(h.p50, 2).padStart(6)} | ${fmt(h.p99, 2).padStart(6)} | ${fmt(h.min, 2).padStart(6)} | ${fmt(h.max, 2).padStart(6)} | ${h.matched}/${h.received}`;
  console.log(`
Added delay of a hop (spread phase; the same packets, arrival at a player minus at a player on A, ms):
  players            |    p50 |    p99 |    min |    max | matched/received
${hops.filter((h) => h.probe !== 'a#2').map(hopRow).join('\n')}${hops.filter((h) => h.probe === 'a#2').map((h) => `\n${hopRow(h)}   (the floor: two players of one node)`).join('')}
  for reference, publisher → player on A: p50 ${fmt(spread.result?.nodes.a.delayP50 ?? NaN, 2)} ms, p99 ${fmt(spread.result?.nodes.a.delayP99 ?? NaN, 2)} ms (A only: ${fmt(aOnly.result?.nodes.a.delayP50 ?? NaN, 2)} / ${fmt(aOnly.result?.nodes.a.delayP99 ?? NaN, 2)})`);

  // One relay per edge node, however many players it has: counted in the cluster's view.
  const end = spread.sessions[spread.sessions.length - 1];
  const pulls = countOf(end, 'pull/ovt');
  const edges = countOf(end, 'player/ovt');
  const relaysShared = pulls === 2 && edges === 2 && (countOf(end, 'pull/ovt', '?') > 0 || (countOf(end, 'pull/ovt', 'b') === 1 && countOf(end, 'pull/ovt', 'c') === 1));
  console.log(`
OVT sessions in B's view at the end of the spread phase: ${pulls} pull/ovt (${describeCount({ byKind: new Map([...end.byKind].filter(([k]) => k === 'pull/ovt')) }) || 'none'}), ${edges} player/ovt on A; ${relaysShared ? 'one relay per edge node, as expected' : `EXPECTED one pull on B and one on C (and 2 OVT players on A) for ${N} players each`}`);

  for (const id of NODES) {
    const warnings = nodes[id].output().split('\n').filter((l) => /"level":(4|5|6)0/.test(l));
    if (warnings.length) console.log(`\nnode ${label(id)} logged ${warnings.length} warnings/errors, first ones:\n${warnings.slice(0, 5).join('\n')}`);
  }
  console.log(`
Legend: CPU % is the node process's CPU time per second of wall time, one core = 100 %: p50 is
the median of the phase's 1 s windows (the run time of its threads, /proc/<pid>/task/*/schedstat),
mean the whole window (utime + stime, /proc/<pid>/stat). Sent pkt/s is the node's
kiln_media_packets_total{out} (to its WHEP players and its OVT edges) over the window. Loss and
delay are at that node's players (RTP sequence gaps; publisher send stamp → arrival, one clock).
The derived figures subtract those CPU figures: the relay's own cost on an edge is B's CPU while
it pulls the stream without players minus its idle CPU; a player's cost is the slope of its node's
CPU with its number of players (on A from 0 to N, on B from the pull alone to N relayed players);
the relay's cost is also estimated as the edge's CPU minus its idle CPU minus what its players
cost (B's pB, or A's pA); A's cost per edge is its CPU while feeding B alone (no local players)
minus its idle CPU, or its extra CPU feeding B and C beside N local players, halved; µs divides
by the stream's packet rate. The hop's delay pairs each packet (by the publisher's send stamp,
which the nodes forward untouched) as received by the first player on B or C with the first
player on A, in one process. (${fmt((now() - started) / 1000, 0)} s)`);
}

main().then(() => cleanupAll(), async (err) => {
  console.error(err);
  await cleanupAll();
  process.exit(1);
}).then(() => process.exit(0));
