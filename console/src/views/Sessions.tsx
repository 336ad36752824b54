import { useState } from 'preact/hooks';
import { seg, type Api } from '../api.ts';
import { ConfirmAction, DataTable, Freshness } from '../components.tsx';
import * as fmt from '../format.ts';
import { usePoll } from '../hooks.ts';
import { loadSessions, PREVIEW_PREFIX, type MaxScaleSession } from '../model.ts';

const KINDS = ['publisher', 'player', 'pull', 'participant'] as const;

function address(s: MaxScaleSession): string {
  const { remote, port } = s.attributes;
  if (!remote) return '–';
  const host = remote.includes(':') ? `[${remote}]` : remote;
  return port ? `${host}:${port}` : remote;
}

function Row({ s, api, onKicked }: { s: MaxScaleSession; api: Api; onKicked: () => void }) {
  const a = s.attributes;
  const where = a.room_session ? `room ${a.room_session}` : a.stream ? `${a.app}/${a.stream}` : '–';
  return (
    <tr data-session={s.id}>
      <td class="mono">
        {s.id}
        {s.id.startsWith(PREVIEW_PREFIX) ? <small> (console preview)</small> : null}
      </td>
      <td>{a.kind}</td>
      <td>{a.protocol}</td>
      <td>{where}</td>
      <td class="mono">{address(s)}</td>
      <td>{a.node}</td>
      <td>{fmt.duration(a.seconds_alive)}</td>
      <td>{fmt.bytes(a.bytes_in)}</td>
      <td>{fmt.bytes(a.bytes_out)}</td>
      <td>
        <ConfirmAction label="Kick" name={s.id} confirm="Kick now" action={() => api.send('DELETE', `/v1/sessions/${seg(s.id)}`)} onDone={onKicked} />
      </td>
    </tr>
  );
}

export function SessionsView({ api }: { api: Api }) {
  const polled = usePoll((signal) => loadSessions(api, signal), 'sessions');
  const [kind, setKind] = useState('');
  const [search, setSearch] = useState('');
  const all = polled.data ?? [];
  const needle = search.trim().toLowerCase();
  const rows = all.filter((s) => {
    if (kind && s.attributes.kind !== kind) return false;
    if (!needle) return true;
    const a = s.attributes;
    return [s.id, a.remote, a.stream, a.app, a.room_session, a.protocol, a.node].some((v) => v && String(v).toLowerCase().includes(needle));
  });
  const counts = KINDS.map((k) => {
    const n = all.filter((s) => s.attributes.kind === k).length;
    return `${n} ${k}${n === 1 ? '' : 's'}`;
  }).join(' · ');
  return (
    <section aria-labelledby="sessions-h">
      <hgroup>
        <h2 id="sessions-h">Sessions</h2>
        <p>{counts}</p>
      </hgroup>
      <div class="grid filters">
        <label>
          Kind
          <select name="kind" value={kind} onChange={(e) => setKind((e.target as HTMLSelectElement).value)}>
            <option value="">All kinds</option>
            {KINDS.map((k) => (
              <option value={k}>{k}</option>
            ))}
          </select>
        </label>
        <label>
          Search
          <input type="search" name="search" value={search} onInput={(e) => setSearch((e.target as HTMLInputElement).value)} placeholder="id, address, stream, node…" />
        </label>
      </div>
      <Freshness at={polled.at} error={polled.error} />
      <DataTable caption="Sessions" id="sessions-table" head={['Session', 'Kind', 'Protocol', 'Stream / room', 'Address', 'Node', 'Duration', 'Received', 'Sent', 'Action']} rows={rows.length} empty={polled.data ? 'No sessions.' : 'Loading…'}>
        {rows.map((s) => (
          <Row key={s.id} s={s} api={api} onKicked={polled.refresh} />
        ))}
      </DataTable>
    </section>
  );
}
