import { useEffect, useRef, useState } from 'preact/hooks';
import type { Api } from '../api.ts';
import { ErrorNote } from '../components.tsx';
import { useAction, usePoll } from '../hooks.ts';
import { loadOpenVidu, recordingListeners, type OvSession } from '../openvidu.ts';
import { sessionName } from '../model.ts';

const ROLES = ['PUBLISHER', 'SUBSCRIBER', 'MODERATOR'] as const;

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/** `ws://localhost:3333/<name>` as `ws://<this page's host>/<name>` when the page is not on loopback. */
export function reachable(sessionId: string): string {
  let url: URL;
  try {
    url = new URL(sessionId);
  } catch {
    return sessionId;
  }
  if (!LOOPBACK.test(url.hostname) || LOOPBACK.test(location.hostname)) return sessionId;
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}${url.pathname}`;
}
const NEW = '';

/**
 * Joins a room session from the browser with `openvidu-browser`: an OpenVidu session made on the
 * spot (or one in progress), a token for it (OpenVidu REST), then the room WebSocket.
 */
export function JoinView({ api, query }: { api: Api; query: URLSearchParams }) {
  const sessions = usePoll((signal) => api.get<string[]>('/api/sessions', signal), 'join-sessions', 3000);
  const wanted = query.get('session') ?? NEW;
  const [chosen, setChosen] = useState<string | undefined>();
  const [name, setName] = useState('Console user');
  const [role, setRole] = useState<(typeof ROLES)[number]>('PUBLISHER');
  const [joined, setJoined] = useState<{ session: OvSession; id: string } | undefined>();
  const [remote, setRemote] = useState<string[]>([]);
  const [note, setNote] = useState<string | undefined>();
  const [recording, setRecording] = useState(false);
  useEffect(() => {
    recordingListeners.add(setRecording);
    return () => void recordingListeners.delete(setRecording);
  }, []);
  const join = useAction();
  const local = useRef<HTMLDivElement>(null);
  const remoteBox = useRef<HTMLDivElement>(null);

  const ids = sessions.data ?? [];
  const fromQuery = ids.find((id) => id === wanted || id.endsWith(`/${wanted}`));
  const target = chosen ?? fromQuery ?? NEW;

  useEffect(() => () => joined?.session.disconnect(), [joined]);
  // Browsers give the camera only to secure pages (https, or localhost): elsewhere, join to watch.
  const canPublish = window.isSecureContext && Boolean(navigator.mediaDevices?.getUserMedia);

  const submit = async (e: Event) => {
    e.preventDefault();
    setNote(undefined);
    await join.run(async () => {
      const OpenVidu = await loadOpenVidu();
      const sessionId = target !== NEW ? target : (await api.send<{ id: string }>('POST', '/api/sessions', {})).id;
      const { token } = await api.send<{ token: string }>('POST', '/api/tokens', { session: sessionId, role, data: name });
      const ov = new OpenVidu();
      // openvidu-browser opens the room WebSocket at the session id's host. An id naming a loopback
      // host (KILN_PUBLIC_URL left at its default) is reached here instead, where this page came from.
      const session = ov.initSession(reachable(sessionId));
      session.on('streamCreated', (ev) => {
        session.subscribe(ev.stream, remoteBox.current!);
        setRemote((r) => [...r, ev.stream.streamId]);
      });
      session.on('streamDestroyed', (ev) => setRemote((r) => r.filter((id) => id !== ev.stream.streamId)));
      session.on('participant-evicted', () => setNote('You were removed from the room session.'));
      session.on('sessionDisconnected', () => setJoined(undefined));
      await new Promise<void>((resolve, reject) => session.connect(token, name, (err) => (err ? reject(new Error(typeof err === 'object' ? JSON.stringify(err) : String(err))) : resolve())));
      if (role !== 'SUBSCRIBER') {
        if (!canPublish) setNote('Joined to watch only: this browser gives the camera to https pages (or localhost) only.');
        else session.publish(ov.initPublisher(local.current!, { audio: true, video: true, quality: 'MEDIUM' }));
      }
      setJoined({ session, id: sessionId });
    });
  };

  return (
    <section aria-labelledby="join-h">
      <h2 id="join-h">Join a room</h2>
      {!joined ? (
        <form onSubmit={submit} aria-labelledby="join-h">
          <div class="grid">
            <label>
              Room session
              <select name="session" value={target} onChange={(e) => setChosen((e.target as HTMLSelectElement).value)}>
                <option value={NEW}>A new room session</option>
                {ids.map((id) => (
                  <option value={id}>{sessionName(id)}</option>
                ))}
              </select>
            </label>
            <label>
              Your name
              <input name="name" value={name} required maxLength={200} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
            </label>
            <label>
              Role
              <select name="role" value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value as (typeof ROLES)[number])}>
                {ROLES.map((r) => (
                  <option value={r}>{r.toLowerCase()}</option>
                ))}
              </select>
            </label>
          </div>
          {!canPublish ? <p><small>This page is not secure (https or localhost), so the browser gives it no camera: you join to watch.</small></p> : null}
          <button type="submit" aria-busy={join.busy} disabled={join.busy}>
            Join
          </button>
          <ErrorNote error={join.error} label="Cannot join" />
        </form>
      ) : (
        <p role="status" class="joined">
          In room session <strong class="mono">{sessionName(joined.id)}</strong> as {name} ({role.toLowerCase()}), {remote.length} remote stream{remote.length === 1 ? '' : 's'}.{recording ? <strong class="recording-on"> ● Recording.</strong> : null}{' '}
          <button
            type="button"
            class="secondary small"
            onClick={() => {
              joined.session.disconnect();
              setJoined(undefined);
              setRemote([]);
            }}
          >
            Leave
          </button>
        </p>
      )}
      {note ? <p role="alert">{note}</p> : null}
      <div class="room-videos">
        <div ref={local} id="local-video" role="region" aria-label="Your camera" />
        <div ref={remoteBox} id="remote-videos" role="region" aria-label="Other participants" />
      </div>
    </section>
  );
}
