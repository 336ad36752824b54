import type { Api } from '../api.ts';
import { Freshness, TimeChart, type ChartSeries } from '../components.tsx';
import * as fmt from '../format.ts';
import { usePoll } from '../hooks.ts';
import type { Point } from '../metrics.ts';
import { loadOverview } from '../model.ts';

const RATES: ChartSeries[] = [
  { label: 'In', stroke: '#1e88e5', format: fmt.bitrate },
  { label: 'Out', stroke: '#e53935', format: fmt.bitrate },
];
const COUNT = (v: number) => String(Math.round(v));
const SESSIONS: ChartSeries[] = [
  { label: 'All sessions', stroke: '#6d4c41', format: COUNT },
  { label: 'Publishers and pulls', stroke: '#43a047', format: COUNT },
  { label: 'Players', stroke: '#8e24aa', format: COUNT },
];

/** The overview: counts across the cluster, and this node's bit rates and sessions over the last minutes. */
export function OverviewView({ api, points, metricsError, node }: { api: Api; points: Point[]; metricsError: string | undefined; node: string | undefined }) {
  const counts = usePoll((signal) => loadOverview(api, signal), 'overview');
  const last = points.at(-1);
  const x = points.map((p) => p.at);
  const c = counts.data;
  return (
    <section aria-labelledby="overview-h">
      <h2 id="overview-h">Overview</h2>
      <Freshness at={counts.at} error={counts.error} />
      <div class="tiles" role="list">
        <div class="tile" role="listitem">
          <strong>{c ? (c.kinds.publisher ?? 0) + (c.kinds.pull ?? 0) : '–'}</strong> publishers and pulls
        </div>
        <div class="tile" role="listitem">
          <strong>{c ? (c.kinds.player ?? 0) : '–'}</strong> players <small>(not the console's previews)</small>
        </div>
        <div class="tile" role="listitem">
          <strong>{c ? (c.kinds.participant ?? 0) : '–'}</strong> room participants
        </div>
        <div class="tile" role="listitem">
          <strong>{c?.rooms ?? '–'}</strong> room sessions in progress
        </div>
        <div class="tile" role="listitem">
          <strong>{c?.nodes ?? '–'}</strong> nodes alive
        </div>
      </div>
      <h3>{node ? `Node ${node}` : 'This node'}, last minutes</h3>
      {metricsError ? <p class="error" role="alert">Metrics: {metricsError}</p> : null}
      <div class="charts">
        <TimeChart
          title="Media bit rate"
          series={RATES}
          data={[x, points.map((p) => p.inBps), points.map((p) => p.outBps)]}
          summary={last ? `in ${fmt.bitrate(last.inBps)}, out ${fmt.bitrate(last.outBps)}` : 'no data yet'}
        />
        <TimeChart
          title="Sessions"
          series={SESSIONS}
          data={[x, points.map((p) => p.sessions), points.map((p) => p.publishers), points.map((p) => p.players)]}
          summary={last ? `${last.sessions} sessions, ${last.publishers} publishers and pulls, ${last.players} players` : 'no data yet'}
        />
      </div>
    </section>
  );
}
