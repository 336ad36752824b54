import { useMemo } from 'preact/hooks';
import type { Api } from '../api.ts';
import { DataTable, Freshness, StatusBadge } from '../components.tsx';
import * as fmt from '../format.ts';
import { usePoll } from '../hooks.ts';
import { loadServers, loadSessions } from '../model.ts';

export function NodesView({ api }: { api: Api }) {
  const polled = usePoll(async (signal) => {
    const [servers, sessions] = await Promise.all([loadServers(api, signal), loadSessions(api, signal)]);
    return { servers, sessions };
  }, 'nodes');
  const held = useMemo(() => {
    const byNode = new Map<string, { kinds: Record<string, number>; streams: Set<string>; rooms: Set<string> }>();
    for (const s of polled.data?.sessions ?? []) {
      const a = s.attributes;
      const entry = byNode.get(a.node) ?? { kinds: {}, streams: new Set(), rooms: new Set() };
      entry.kinds[a.kind] = (entry.kinds[a.kind] ?? 0) + 1;
      if ((a.kind === 'publisher' || a.kind === 'pull') && a.stream) entry.streams.add(`${a.app}/${a.stream}`);
      if (a.room_session) entry.rooms.add(a.room_session);
      byNode.set(a.node, entry);
    }
    return byNode;
  }, [polled.data]);
  const servers = polled.data?.servers ?? [];
  return (
    <section aria-labelledby="nodes-h">
      <hgroup>
        <h2 id="nodes-h">Nodes</h2>
        <p>{servers.length === 1 ? 'A single node (no shared database).' : `${servers.filter((s) => s.attributes.node_state === 'alive').length} of ${servers.length} nodes alive`}</p>
      </hgroup>
      <Freshness at={polled.at} error={polled.error} />
      <DataTable caption="Nodes" id="nodes-table" head={['Node', 'State', 'Sessions', 'Streams', 'Memory', 'Holds', 'Last heartbeat', 'Public URL']} rows={servers.length} empty={polled.data ? 'No nodes.' : 'Loading…'}>
        {servers.map((n) => {
          const a = n.attributes;
          const h = held.get(n.id);
          const kinds = h ? Object.entries(h.kinds).map(([k, v]) => `${v} ${k}${v === 1 ? '' : 's'}`).join(', ') : 'nothing';
          return (
            <tr key={n.id} data-node={n.id}>
              <td>{n.id}</td>
              <td>
                <StatusBadge status={a.node_state} />
              </td>
              <td>{a.load.sessions ?? a.statistics.connections}</td>
              <td>{a.load.streams ?? '–'}</td>
              <td>{fmt.bytes(a.load.rss)}</td>
              <td>
                {kinds}
                {h && h.streams.size > 0 ? <div><small>streams: {[...h.streams].join(', ')}</small></div> : null}
                {h && h.rooms.size > 0 ? <div><small>room sessions: {h.rooms.size}</small></div> : null}
              </td>
              <td>{fmt.time(a.last_heartbeat)}</td>
              <td class="mono">{a.public_url}</td>
            </tr>
          );
        })}
      </DataTable>
    </section>
  );
}
