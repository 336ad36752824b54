import { useState } from 'preact/hooks';
import { seg, type Api } from '../api.ts';
import { ConfirmAction, DataTable, ErrorNote, Freshness, Pager, StatusBadge } from '../components.tsx';
import * as fmt from '../format.ts';
import { useAction, usePagedList, usePoll } from '../hooks.ts';
import { sessionName } from '../model.ts';

/** SignalWire's RoomRecording: `uri` is a temporary link to the file once it is composed. */
interface RoomRecording {
  id: string;
  room_session_id: string;
  status: 'recording' | 'processing' | 'completed' | 'failed';
  started_at: string | null;
  finished_at: string | null;
  duration: number | null;
  size_in_bytes: number | null;
  uri: string | null;
}

/** OpenVidu's recording: its `id` is what start and stop take. */
interface OpenViduRecording {
  id: string;
  name: string;
  sessionId: string;
  status: string;
  createdAt: number;
}


function StartForm({ api, onStarted }: { api: Api; onStarted: () => void }) {
  const sessions = usePoll((signal) => api.get<string[]>('/api/sessions', signal), 'ov-sessions', 2000);
  const [chosen, setChosen] = useState('');
  const [name, setName] = useState('');
  const start = useAction();
  const ids = sessions.data ?? [];
  const session = chosen && ids.includes(chosen) ? chosen : (ids[0] ?? '');
  return (
    <form
      class="record"
      aria-labelledby="record-h"
      onSubmit={async (e) => {
        e.preventDefault();
        const body: Record<string, string> = { session };
        if (name.trim()) body.name = name.trim();
        if (await start.run(() => api.send('POST', '/api/recordings/start', body))) {
          setName('');
          onStarted();
        }
      }}
    >
      <h3 id="record-h">Record a room session</h3>
      <div class="grid">
        <label>
          Room session
          <select name="session" value={session} onChange={(e) => setChosen((e.target as HTMLSelectElement).value)} disabled={ids.length === 0}>
            {ids.length === 0 ? <option value="">No room session in progress</option> : null}
            {ids.map((id) => (
              <option value={id}>{sessionName(id)}</option>
            ))}
          </select>
        </label>
        <label>
          Recording name (optional)
          <input name="name" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} autoComplete="off" />
        </label>
      </div>
      <button type="submit" disabled={!session || start.busy} aria-busy={start.busy}>
        Start recording
      </button>
      <ErrorNote error={start.error ?? sessions.error} label="Cannot start" />
    </form>
  );
}

function Running({ api, recordings, onStopped }: { api: Api; recordings: OpenViduRecording[]; onStopped: () => void }) {
  const stop = useAction();
  if (recordings.length === 0) return null;
  return (
    <section aria-labelledby="running-h" class="running">
      <h3 id="running-h">Recording now</h3>
      <ul>
        {recordings.map((r) => (
          <li key={r.id} data-recording={r.id}>
            <StatusBadge status={r.status} /> <strong>{r.name || r.id}</strong> of {sessionName(r.sessionId)} since {fmt.time(r.createdAt)}{' '}
            <button
              type="button"
              class="small"
              aria-busy={stop.busy}
              disabled={stop.busy}
              onClick={async () => {
                if (await stop.run(() => api.send('POST', `/api/recordings/stop/${seg(r.id)}`))) onStopped();
              }}
            >
              Stop {r.name || r.id}
            </button>
          </li>
        ))}
      </ul>
      <ErrorNote error={stop.error} label="Cannot stop" />
    </section>
  );
}

/** A recording's link, when it is one a page may load (http or https). */
const fileUri = (r: RoomRecording): string | null => (r.uri && /^https?:\/\//i.test(r.uri) ? r.uri : null);

function RecordingRow({ r, api, playing, onPlay, onDeleted }: { r: RoomRecording; api: Api; playing: string | undefined; onPlay: () => void; onDeleted: () => void }) {
  const uri = fileUri(r);
  return (
    <>
      <tr data-recording={r.id}>
        <td class="mono">{r.id.slice(0, 8)}</td>
        <td>
          <a href={`#/rooms/${seg(r.room_session_id)}`} class="mono" aria-label={`Room session ${r.room_session_id}`}>
            {r.room_session_id.slice(0, 8)}
          </a>
        </td>
        <td>
          <StatusBadge status={r.status} />
        </td>
        <td>{fmt.time(r.started_at)}</td>
        <td>{fmt.duration(r.duration)}</td>
        <td>{fmt.bytes(r.size_in_bytes)}</td>
        <td class="actions">
          {uri ? (
            <>
              <button type="button" class="secondary outline small" aria-expanded={playing !== undefined} onClick={onPlay}>
                {playing ? 'Close player' : 'Play'}
              </button>
              {/* download names the file when it is of this origin; another node's opens in a tab */}
              <a href={uri} download={`${r.id}.mp4`} target="_blank" rel="noopener" class="small">
                Download
              </a>
            </>
          ) : null}
<ConfirmAction label="Delete" name={`recording ${r.id.slice(0, 8)}`} confirm="Delete recording" action={() => api.send('DELETE', `/api/video/room_recordings/${seg(r.id)}`)} onDone={onDeleted} />
        </td>
      </tr>
      {playing ? (
        <tr class="player-row">
          <td colSpan={7}>
            {/* The link as it was when Play was pressed: each listing signs a new one. */}
            <video class="recording-player" src={playing} controls autoPlay muted playsInline aria-label={`Recording ${r.id}`} />
          </td>
        </tr>
      ) : null}
    </>
  );
}

export function RecordingsView({ api }: { api: Api }) {
  const pages = usePagedList<RoomRecording>(api, '/api/video/room_recordings?page_size=20', 'recordings');
  const list = pages.polled;
  const running = usePoll(async (signal) => (await api.get<{ items: OpenViduRecording[] }>('/api/recordings', signal)).items.filter((r) => r.status === 'started' || r.status === 'starting'), 'running', 2000);
  const [playing, setPlaying] = useState<{ id: string; uri: string } | undefined>();
  const rows = list.data?.data ?? [];
  const refresh = () => {
    list.refresh();
    running.refresh();
  };
  return (
    <section aria-labelledby="recordings-h">
      <h2 id="recordings-h">Recordings</h2>
      <StartForm api={api} onStarted={refresh} />
      <Running api={api} recordings={running.data ?? []} onStopped={refresh} />
      <Freshness at={list.at} error={list.error} />
      <DataTable caption="Recordings" id="recordings-table" head={['Recording', 'Room session', 'Status', 'Started', 'Duration', 'Size', 'Actions']} rows={rows.length} empty={list.data ? 'No recordings.' : 'Loading…'}>
        {rows.map((r) => (
          <RecordingRow key={r.id} r={r} api={api} playing={playing?.id === r.id ? playing.uri : undefined} onPlay={() => setPlaying(playing?.id === r.id || !fileUri(r) ? undefined : { id: r.id, uri: fileUri(r)! })} onDeleted={refresh} />
        ))}
      </DataTable>
      <Pager label="Recording pages" page={pages.page} hasPrev={pages.hasPrev} hasNext={pages.hasNext} onPrev={pages.prev} onNext={pages.next} />
    </section>
  );
}
