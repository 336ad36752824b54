import { useMemo } from 'preact/hooks';
import type { Api } from '../api.ts';
import { DataTable, Freshness, StatusBadge } from '../components.tsx';
import * as fmt from '../format.ts';
import { usePoll } from '../hooks.ts';
import { isRelayLeg, loadServers, loadSessions, PREVIEW_PREFIX, streamOrigins } from '../model.ts';

/** "12 s ago", "3 min ago", or the time when it is older. */
function ago(iso: string, now: number): string {
  const seconds = Math.round((now - Date.parse(iso)) / 1000);
  if (!Number.isFinite(seconds)) return '–';
  if (seconds < 90) return `${Math.max(0, seconds)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  return fmt.time(iso);
}

export function NodesView({ api }: { api: Api }) {
  const polled = usePoll(async (signal) => {
    const [servers, sessions] = await Promise.all([loadServers(api, signal), loadSessions(api, signal)]);
    return { servers, sessions };
  }, 'nodes');
  // What each node holds: its clients by kind, the streams that come in there, the room sessions
  // it runs, and apart from those the relay legs that carry streams between nodes.
  const held = useMemo(() => {
    const sessions = polled.data?.sessions ?? [];
    const origins = streamOrigins(sessions);
    const byNode = new Map<string, { kinds: Record<string, number>; streams: Set<string>; relayed: Set<string>; relayLegs: number; previews: number; rooms: Set<string> }>();
    for (const s of sessions) {
      const a = s.attributes;
      const entry = byNode.get(a.node) ?? { kinds: {}, streams: new Set(), relayed: new Set(), relayLegs: 0, previews: 0, rooms: new Set() };
      byNode.set(a.node, entry);
      if (isRelayLeg(s, origins)) {
        entry.relayLegs++;
        if (a.kind === 'pull') entry.relayed.add(`${a.app}/${a.stream}`);
        continue;
      }
      if (s.id.startsWith(PREVIEW_PREFIX)) {
        entry.previews++;
        continue;
      }
      entry.kinds[a.kind] = (entry.kinds[a.kind] ?? 0) + 1;
      if ((a.kind === 'publisher' || a.kind === 'pull') && a.stream) entry.streams.add(`${a.app}/${a.stream}`);
      if (a.room_session) entry.rooms.add(a.room_session);
    }
    return byNode;
  }, [polled.data]);
  const apiHost = new URL(api.base).host;
  const now = polled.at ?? Date.now();
  const servers = polled.data?.servers ?? [];
  return (
    <section aria-labelledby="nodes-h">
      <hgroup>
        <h2 id="nodes-h">Nodes</h2>
        <p>{servers.length === 1 ? 'A single node (no shared database).' : `${servers.filter((s) => s.attributes.node_state === 'alive').length} of ${servers.length} nodes alive`}</p>
      </hgroup>
      <Freshness at={polled.at} error={polled.error} />
      <DataTable caption="Nodes" id="nodes-table" head={['Node', 'State', 'Sessions', 'Streams', 'Memory', 'Holds', 'Heartbeat', 'Addresses']} rows={servers.length} empty={polled.data ? 'No nodes.' : 'Loading…'}>
        {servers.map((n) => {
          const a = n.attributes;
          const h = held.get(n.id);
          const alive = a.node_state === 'alive';
          const kinds = h ? Object.entries(h.kinds).map(([k, v]) => `${v} ${k}${v === 1 ? '' : 's'}`).join(', ') : '';
          let here = false;
          try {
            here = new URL(a.api_url).host === apiHost;
          } catch {
            // a node registered without an API address
          }
          return (
            <tr key={n.id} data-node={n.id}>
              <td>
                {n.id}
                {here ? <small class="here"> (this console's API)</small> : null}
              </td>
              <td>
                <StatusBadge status={a.node_state} />
              </td>
              {/* A dead or stopped node's last figures would contradict what it holds now: none. */}
              <td class="sessions">{alive ? (a.load.sessions ?? a.statistics.connections) : '–'}</td>
              <td class="streams">{alive ? (a.load.streams ?? '–') : '–'}</td>
              <td>{alive ? fmt.bytes(a.load.rss) : '–'}</td>
              <td class="holds">
                {kinds || 'nothing'}
                {h && h.streams.size > 0 ? <div><small>streams: {[...h.streams].join(', ')}</small></div> : null}
                {h && h.relayed.size > 0 ? <div><small>relays from other nodes: {[...h.relayed].join(', ')}</small></div> : null}
                {h && h.relayLegs > 0 ? <div><small>relay legs: {h.relayLegs}</small></div> : null}
                {h && h.previews > 0 ? <div><small>console previews: {h.previews}</small></div> : null}
                {h && h.rooms.size > 0 ? <div><small>room sessions: {h.rooms.size}</small></div> : null}
              </td>
              <td>
                <time dateTime={a.last_heartbeat}>{alive ? ago(a.last_heartbeat, now) : `last ${fmt.time(a.last_heartbeat)}`}</time>
                <div>
                  <small>up since {fmt.time(a.started)}</small>
                </div>
              </td>
              <td class="mono">
                {a.public_url}
                <div>
                  <small>API {a.api_url}</small>
                </div>
                <div>
                  <small>OVT {a.ovt_url}</small>
                </div>
              </td>
            </tr>
          );
        })}
      </DataTable>
    </section>
  );
}
