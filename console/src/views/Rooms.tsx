import { useState } from 'preact/hooks';
import { seg, type Api } from '../api.ts';
import { ConfirmAction, DataTable, ErrorNote, Freshness, Pager, StatusBadge } from '../components.tsx';
import * as fmt from '../format.ts';
import { usePagedList, usePoll } from '../hooks.ts';

export interface RoomSession {
  id: string;
  room_id: string | null;
  name: string;
  display_name: string | null;
  status: 'in-progress' | 'completed' | null;
  start_time: string | null;
  end_time: string | null;
  duration: number | null;
  max_members: number | null;
}

interface Member {
  id: string;
  name: string;
  join_time: string | null;
  leave_time: string | null;
  duration: number | null;
  role?: string;
  leave_reason?: string | null;
  connection_id?: string;
}

interface Room {
  id: string;
  name: string;
  display_name: string | null;
  max_members: number | null;
  created_at: string;
}

/** Ends a room session through the OpenVidu dialect (its participants are removed). */
export function EndButton({ api, session, onEnded }: { api: Api; session: RoomSession; onEnded: () => void }) {
  if (session.status !== 'in-progress') return null;
  return <ConfirmAction label="End" name={session.name} confirm="End session" action={() => api.send('DELETE', `/api/sessions/${seg(session.name)}`)} onDone={onEnded} />;
}

export function RoomsView({ api, query }: { api: Api; query: URLSearchParams }) {
  const [status, setStatus] = useState(query.get('status') ?? '');
  const [name, setName] = useState('');
  const [size, setSize] = useState(query.get('page_size') ?? '20');
  const params = new URLSearchParams({ page_size: size });
  if (status) params.set('status', status);
  if (name.trim()) params.set('room_name_matches', name.trim());
  const list = usePagedList<RoomSession>(api, `/api/video/room_sessions?${params}`, params.toString());
  const rows = list.polled.data?.data ?? [];
  const rooms = usePagedList<Room>(api, '/api/video/rooms?page_size=20', 'rooms');
  return (
    <section aria-labelledby="rooms-h">
      <h2 id="rooms-h">Rooms</h2>
      <h3 id="room-sessions-h">Room sessions</h3>
      <form class="grid filters" onSubmit={(e) => e.preventDefault()} aria-label="Filter room sessions">
        <label>
          Status
          <select name="status" value={status} onChange={(e) => setStatus((e.target as HTMLSelectElement).value)}>
            <option value="">In progress and completed</option>
            <option value="in-progress">In progress</option>
            <option value="completed">Completed</option>
          </select>
        </label>
        <label>
          Room name contains
          <input type="search" name="room_name_matches" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          Per page
          <select name="page_size" value={size} onChange={(e) => setSize((e.target as HTMLSelectElement).value)}>
            {['10', '20', '50', '100'].map((n) => (
              <option value={n}>{n}</option>
            ))}
          </select>
        </label>
      </form>
      <Freshness at={list.polled.at} error={list.polled.error} />
      <DataTable caption="Room sessions" id="room-sessions-table" head={['Name', 'Status', 'Started', 'Ended', 'Duration', 'Action']} rows={rows.length} empty={list.polled.data ? 'No room sessions.' : 'Loading…'}>
        {rows.map((r) => (
          <tr key={r.id} data-room-session={r.id}>
            <td>
              <a href={`#/rooms/${seg(r.id)}`}>{r.display_name ?? r.name}</a>
            </td>
            <td>
              <StatusBadge status={r.status} />
            </td>
            <td>{fmt.time(r.start_time)}</td>
            <td>{fmt.time(r.end_time)}</td>
            <td>{r.duration !== null ? fmt.duration(r.duration) : r.start_time ? fmt.duration((Date.now() - Date.parse(r.start_time)) / 1000) : '–'}</td>
            <td>
              <EndButton api={api} session={r} onEnded={list.polled.refresh} />
            </td>
          </tr>
        ))}
      </DataTable>
      <Pager label="Room session pages" page={list.page} hasPrev={list.hasPrev} hasNext={list.hasNext} onPrev={list.prev} onNext={list.next} onFirst={list.first} />

      <h3 id="rooms-list-h">Rooms</h3>
      <ErrorNote error={rooms.polled.error} />
      <DataTable caption="Rooms" head={['Name', 'Display name', 'Max members', 'Created']} rows={rooms.polled.data?.data.length ?? 0} empty={rooms.polled.data ? 'No rooms: create them with the SignalWire API (POST /api/video/rooms).' : 'Loading…'}>
        {(rooms.polled.data?.data ?? []).map((r) => (
          <tr key={r.id}>
            <td>{r.name}</td>
            <td>{r.display_name ?? '–'}</td>
            <td>{r.max_members ?? '–'}</td>
            <td>{fmt.time(r.created_at)}</td>
          </tr>
        ))}
      </DataTable>
      <Pager label="Room pages" page={rooms.page} hasPrev={rooms.hasPrev} hasNext={rooms.hasNext} onPrev={rooms.prev} onNext={rooms.next} />
    </section>
  );
}

export function RoomSessionView({ api, id }: { api: Api; id: string }) {
  const session = usePoll((signal) => api.get<RoomSession>(`/api/video/room_sessions/${seg(id)}`, signal), `rs ${id}`);
  const members = usePagedList<Member>(api, `/api/video/room_sessions/${seg(id)}/members?page_size=100`, `members ${id}`);
  const s = session.data;
  const rows = members.polled.data?.data ?? [];
  return (
    <section aria-labelledby="rs-h">
      <p>
        <a href="#/rooms">← Rooms</a>
      </p>
      <h2 id="rs-h">Room session {s ? (s.display_name ?? s.name) : ''}</h2>
      <Freshness at={session.at} error={session.error} />
      {s ? (
        <dl class="facts wide">
          <dt>Status</dt>
          <dd>
            <StatusBadge status={s.status} />
          </dd>
          <dt>Id</dt>
          <dd class="mono">{s.id}</dd>
          <dt>Started</dt>
          <dd>{fmt.time(s.start_time)}</dd>
          <dt>Ended</dt>
          <dd>{fmt.time(s.end_time)}</dd>
          <dt>Duration</dt>
          <dd>{fmt.duration(s.duration)}</dd>
          <dt>Max members</dt>
          <dd>{s.max_members ?? '–'}</dd>
        </dl>
      ) : null}
      {s && s.status === 'in-progress' ? (
        <p class="actions">
          <a href={`#/join?session=${seg(s.name)}`} role="button" class="outline small">
            Join this session
          </a>{' '}
          <EndButton api={api} session={s} onEnded={session.refresh} />
        </p>
      ) : null}
      <h3>Participants</h3>
      <DataTable caption="Participants" id="members-table" head={['Name', 'Role', 'Joined', 'Left', 'Duration', 'Why it left']} rows={rows.length} empty={members.polled.data ? 'Nobody joined.' : 'Loading…'}>
        {rows.map((m) => (
          <tr key={m.id} data-member={m.id}>
            <td>{m.name}</td>
            <td>{m.role ?? '–'}</td>
            <td>{fmt.time(m.join_time)}</td>
            <td>{m.leave_time ? fmt.time(m.leave_time) : 'in the room'}</td>
            <td>{fmt.duration(m.duration)}</td>
            <td>{m.leave_reason ?? '–'}</td>
          </tr>
        ))}
      </DataTable>
      <Pager label="Participant pages" page={members.page} hasPrev={members.hasPrev} hasNext={members.hasNext} onPrev={members.prev} onNext={members.next} />
    </section>
  );
}
