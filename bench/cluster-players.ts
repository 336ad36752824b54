/**
 * The players process of `bench/cluster.ts`: groups of node-datachannel WHEP players (`openPlayer`
 * of `fanout-players-ndc.ts`), one group per Kiln node, all in this one process so that their
 * arrival times share a clock. argv: a JSON array of `{ node, url, count }`; the first group is the
 * reference (the origin's players).
 *
 * Each group has its own PlayerStats (loss, publisher → player delay). The first player of each
 * group is its probe: while measuring it logs the arrival time of every packet by the publisher's
 * send stamp (the last 8 bytes of each payload, which every node forwards untouched, over OVT too).
 * A packet is thus recognized at every probe, whatever SSRC and sequence numbers each node gave it.
 * The hop of a group is, per packet seen by both, its probe's arrival minus the reference probe's
 * arrival; a second probe in the reference group (its second player, when it has one) gives the
 * same difference between two players of one node, the floor of that comparison.
 *
 * IPC as `player-stats.ts`: `ready` once every player is connected; `start` resets the counters;
 * `stop` gets a `ClusterPlayersResult`, then the players leave (WHEP DELETE) and the process exits.
 */
import { closePlayersAndExit, openPlayer, type NdcPlayer } from './fanout-players-ndc.ts';
import { PlayerStats, type PlayerResult } from './player-stats.ts';

/** One node's players. */
export interface PlayerGroup {
  node: string;
  /** The WHEP URL on that node. */
  url: string;
  count: number;
}

/** Arrival at one probe minus arrival at the reference probe, for the packets both received, ms. */
export interface Hop {
  /** The probe's node (`<node>#2` for the reference group's second player). */
  probe: string;
  p50: number;
  p99: number;
  min: number;
  max: number;
  /** Packets the probe received within the window, and those the reference probe had too. */
  received: number;
  matched: number;
}

export interface ClusterPlayersResult {
  type: 'result';
  /** Per node: what its players measured (loss, delay from the publisher's stamp, first key frames). */
  nodes: Record<string, PlayerResult>;
  hops: Hop[];
}

/** Arrival times of one player's stamped packets by their stamp, the first arrival of each only. */
class ArrivalLog {
  readonly arrivals = new Map<number, number>();
  readonly #stats: PlayerStats;

  constructor(stats: PlayerStats) {
    this.#stats = stats;
  }

  readonly record = (sentAt: number, receivedAt: number): void => {
    if (this.#stats.measuring && !this.arrivals.has(sentAt)) this.arrivals.set(sentAt, receivedAt);
  };
}

const pick = (sorted: number[], q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : NaN);

function hop(probe: string, log: ArrivalLog, reference: ArrivalLog): Hop {
  const diffs: number[] = [];
  for (const [stamp, t] of log.arrivals) {
    const r = reference.arrivals.get(stamp);
    if (r !== undefined) diffs.push(t - r);
  }
  diffs.sort((a, b) => a - b);
  return { probe, p50: pick(diffs, 0.5), p99: pick(diffs, 0.99), min: diffs[0] ?? NaN, max: diffs[diffs.length - 1] ?? NaN, received: log.arrivals.size, matched: diffs.length };
}

async function main(): Promise<void> {
  const groups = JSON.parse(process.argv[2]) as PlayerGroup[];
  const players: NdcPlayer[] = [];
  const stats = new Map<string, PlayerStats>();
  const probes: { name: string; log: ArrivalLog }[] = [];

  const shutdown = (code: number) => closePlayersAndExit(players, code);

  try {
    let index = 0;
    for (const [g, group] of groups.entries()) {
      const s = new PlayerStats();
      stats.set(group.node, s);
      const batch = 10;
      for (let i = 0; i < group.count; i += batch) {
        const opening = Array.from({ length: Math.min(batch, group.count - i) }, (_, j) => {
          const k = i + j;
          let onStamp: ArrivalLog['record'] | undefined;
          if (k === 0 || (g === 0 && k === 1)) {
            const log = new ArrivalLog(s);
            probes.push({ name: k === 0 ? group.node : `${group.node}#2`, log });
            onStamp = log.record;
          }
          return openPlayer(group.url, index++, 'VP8', s, onStamp);
        });
        const settled = await Promise.allSettled(opening);
        for (const r of settled) if (r.status === 'fulfilled') players.push(r.value);
        const failed = settled.find((r) => r.status === 'rejected');
        if (failed) throw new Error(`a player on node ${group.node}: ${String((failed.reason as Error)?.message ?? failed.reason)}`);
      }
    }
  } catch (err) {
    process.send!({ type: 'error', message: String((err as Error)?.stack ?? err) }, () => void shutdown(1));
    return;
  }

  process.send!({ type: 'ready' });
  process.on('message', (msg: { type: string }) => {
    if (msg.type === 'start') {
      for (const s of stats.values()) s.reset();
      for (const p of probes) p.log.arrivals.clear();
    } else if (msg.type === 'stop') {
      const nodes: Record<string, PlayerResult> = {};
      for (const [node, s] of stats) nodes[node] = s.result();
      const [reference, ...others] = probes;
      const result: ClusterPlayersResult = { type: 'result', nodes, hops: others.map((p) => hop(p.name, p.log, reference.log)) };
      process.send!(result, () => void shutdown(0));
    }
  });
}

if (import.meta.main) void main();
