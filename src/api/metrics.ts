/**
 * Prometheus text exposition of the node's state: streams, sessions by kind, bytes and packets in
 * and out (live sessions plus those already closed), forwarding errors.
 */
import type { Catalog } from '../core/catalog.ts';
import type { Session, SessionKind } from '../core/session.ts';

/** Totals that outlive sessions; the media plane adds to them. */
export class Metrics {
  closedBytesIn = 0;
  closedBytesOut = 0;
  closedPacketsIn = 0;
  closedPacketsOut = 0;
  sessionsOpened = 0;
  forwardingErrors = 0;

  /** Follows every session of `catalog` so that its counters are kept when it closes. */
  watch(catalog: Catalog): void {
    catalog.on('session', (session: Session) => {
      this.sessionsOpened++;
      if (!session.countsMedia) return;
      session.once('close', () => {
        const c = session.counters;
        this.closedBytesIn += c.bytesIn;
        this.closedBytesOut += c.bytesOut;
        this.closedPacketsIn += c.packetsIn;
        this.closedPacketsOut += c.packetsOut;
      });
    });
  }
}

const KINDS: SessionKind[] = ['publisher', 'player', 'pull', 'participant'];

/** What cluster mode adds to the metrics. */
export interface ClusterMetrics {
  /** Whether the shared database answers. */
  databaseUp: boolean;
  /** OVT connections other nodes (edges) hold to this one. */
  ovtConnections: number;
}

/** The event log and its webhook delivery (src/events). */
export interface EventMetrics {
  /** Events written to the outbox since start. */
  appended: number;
  /** Events waiting to be written (the store failing). */
  queued: number;
  /** Events delivered to an endpoint since start (by this node). */
  delivered: number;
  /** Failed delivery attempts since start. */
  failures: number;
}

export function renderMetrics(catalog: Catalog, metrics: Metrics, cluster?: ClusterMetrics, events?: EventMetrics): string {
  let streams = 0;
  let relays = 0;
  for (const s of catalog.allStreams()) {
    streams++;
    if (s.relay) relays++;
  }
  const byKind = new Map<SessionKind, number>(KINDS.map((k) => [k, 0]));
  let bytesIn = metrics.closedBytesIn;
  let bytesOut = metrics.closedBytesOut;
  let packetsIn = metrics.closedPacketsIn;
  let packetsOut = metrics.closedPacketsOut;
  for (const s of catalog.sessions.values()) {
    byKind.set(s.kind, (byKind.get(s.kind) ?? 0) + 1);
    if (!s.countsMedia) continue;
    bytesIn += s.counters.bytesIn;
    bytesOut += s.counters.bytesOut;
    packetsIn += s.counters.packetsIn;
    packetsOut += s.counters.packetsOut;
  }
  const lines = [
    '# HELP kiln_streams Live streams on this node.',
    '# TYPE kiln_streams gauge',
    `kiln_streams ${streams}`,
    '# HELP kiln_sessions Open client sessions on this node, by kind.',
    '# TYPE kiln_sessions gauge',
    ...KINDS.map((k) => `kiln_sessions{kind="${k}"} ${byKind.get(k)}`),
    '# HELP kiln_sessions_opened_total Sessions opened since start.',
    '# TYPE kiln_sessions_opened_total counter',
    `kiln_sessions_opened_total ${metrics.sessionsOpened}`,
    '# HELP kiln_media_bytes_total RTP bytes received from sources (in) and sent to clients (out).',
    '# TYPE kiln_media_bytes_total counter',
    `kiln_media_bytes_total{direction="in"} ${bytesIn}`,
    `kiln_media_bytes_total{direction="out"} ${bytesOut}`,
    '# HELP kiln_media_packets_total RTP packets received from sources (in) and sent to clients (out).',
    '# TYPE kiln_media_packets_total counter',
    `kiln_media_packets_total{direction="in"} ${packetsIn}`,
    `kiln_media_packets_total{direction="out"} ${packetsOut}`,
    '# HELP kiln_forwarding_errors_total Packets that could not be forwarded to a client.',
    '# TYPE kiln_forwarding_errors_total counter',
    `kiln_forwarding_errors_total ${metrics.forwardingErrors}`,
    '# HELP kiln_relays Streams of other nodes relayed to this one over OVT for its viewers.',
    '# TYPE kiln_relays gauge',
    `kiln_relays ${relays}`,
  ];
  if (events) {
    lines.push(
      '# HELP kiln_events_total Events written to the outbox since start.',
      '# TYPE kiln_events_total counter',
      `kiln_events_total ${events.appended}`,
      '# HELP kiln_events_queued Events waiting to be written to the outbox (the store failing).',
      '# TYPE kiln_events_queued gauge',
      `kiln_events_queued ${events.queued}`,
      '# HELP kiln_event_deliveries_total Events delivered to a webhook endpoint by this node since start.',
      '# TYPE kiln_event_deliveries_total counter',
      `kiln_event_deliveries_total ${events.delivered}`,
      '# HELP kiln_event_delivery_failures_total Failed webhook delivery attempts since start (each is retried).',
      '# TYPE kiln_event_delivery_failures_total counter',
      `kiln_event_delivery_failures_total ${events.failures}`,
    );
  }
  if (cluster) {
    lines.push(
      '# HELP kiln_cluster_database_up Whether the cluster database answers (1) or not (0).',
      '# TYPE kiln_cluster_database_up gauge',
      `kiln_cluster_database_up ${cluster.databaseUp ? 1 : 0}`,
      '# HELP kiln_ovt_connections OVT connections of other nodes pulling streams from this one.',
      '# TYPE kiln_ovt_connections gauge',
      `kiln_ovt_connections ${cluster.ovtConnections}`,
    );
  }
  return lines.join('\n') + '\n';
}
