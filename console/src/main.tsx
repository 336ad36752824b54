import { Component, render, type ComponentChildren } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import '@picocss/pico/css/pico.min.css';
import './style.css';
import { apiBaseUrl, basicAuth, createApi, type Api, type ConsoleConfig } from './api.ts';
import { ErrorNote } from './components.tsx';
import { usePoll, useRoute } from './hooks.ts';
import { History, sampleOf, type Point } from './metrics.ts';
import { JoinView } from './views/Join.tsx';
import { NodesView } from './views/Nodes.tsx';
import { OverviewView } from './views/Overview.tsx';
import { RecordingsView } from './views/Recordings.tsx';
import { RoomSessionView, RoomsView } from './views/Rooms.tsx';
import { SessionsView } from './views/Sessions.tsx';
import { StreamsView } from './views/Streams.tsx';

/** What a signed-in tab keeps (in sessionStorage: gone when the tab closes). */
interface Credential {
  base: string;
  user: string;
  password: string;
}
const STORAGE_KEY = 'kiln-console';

function readCredential(): Credential | undefined {
  try {
    const value = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? 'null') as Credential | null;
    return value && typeof value.base === 'string' && typeof value.user === 'string' && typeof value.password === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

async function loadConfig(): Promise<ConsoleConfig> {
  const response = await fetch('config.json', { cache: 'no-store' });
  if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`);
  return (await response.json()) as ConsoleConfig;
}

function SignIn({ onSignedIn, reason }: { onSignedIn: (c: Credential) => void; reason?: string }) {
  const [base, setBase] = useState('');
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | undefined>(reason);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    loadConfig().then(
      (config) => setBase((b) => b || apiBaseUrl(config, location)),
      () => setBase((b) => b || `${location.protocol}//${location.hostname}:8081`),
    );
  }, []);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    const url = base.trim().replace(/\/+$/, '');
    try {
      // Any dialect would do: MaxScale's servers answer every configured credential.
      await createApi(url, basicAuth(user, password)).get('/v1/servers');
      onSignedIn({ base: url, user, password });
    } catch (err) {
      const status = (err as { status?: number }).status;
      setError(status === 401 ? 'Wrong user name or password.' : (err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="container signin">
      <article>
        <header>
          <h1>Kiln console</h1>
          <p>Sign in with an API credential (the <code>user:password</code> that Kiln printed at start, or one of <code>KILN_ACCESS_TOKEN</code>).</p>
        </header>
        <form onSubmit={submit}>
          <label>
            User name
            <input name="user" autoComplete="username" required value={user} onInput={(e) => setUser((e.target as HTMLInputElement).value)} />
          </label>
          <label>
            Password
            <input name="password" type="password" autoComplete="current-password" required value={password} onInput={(e) => setPassword((e.target as HTMLInputElement).value)} />
          </label>
          <details>
            <summary>API address</summary>
            <label>
              Control API URL
              <input name="api" type="url" required value={base} onInput={(e) => setBase((e.target as HTMLInputElement).value)} />
              <small>Kiln's control API listener (port 8081 by default).</small>
            </label>
          </details>
          <button type="submit" aria-busy={busy} disabled={busy}>
            Sign in
          </button>
          <ErrorNote error={error} />
        </form>
      </article>
    </main>
  );
}

const VIEWS = [
  { path: 'overview', label: 'Overview' },
  { path: 'streams', label: 'Streams' },
  { path: 'sessions', label: 'Sessions' },
  { path: 'rooms', label: 'Rooms' },
  { path: 'recordings', label: 'Recordings' },
  { path: 'nodes', label: 'Nodes' },
  { path: 'join', label: 'Join a room' },
] as const;

/** A view that throws shows what went wrong instead of a blank page; the others go on. */
class ViewBoundary extends Component<{ children: ComponentChildren; view: string }, { error?: string }> {
  override state: { error?: string } = {};
  override componentDidCatch(error: Error) {
    this.setState({ error: error.message });
  }
  override componentDidUpdate(previous: { view: string }) {
    if (previous.view !== this.props.view && this.state.error) this.setState({ error: undefined });
  }
  override render() {
    return this.state.error ? <ErrorNote error={this.state.error} label="This view failed" /> : this.props.children;
  }
}

/** Scrapes this node's /metrics every second for the charts, whatever view is open. */
function useMetricsHistory(api: Api): { points: Point[]; error: string | undefined } {
  const history = useRef(new History(600));
  const [points, setPoints] = useState<Point[]>([]);
  const polled = usePoll(async (signal) => {
    const text = await api.get<string>('/metrics', signal);
    if (history.current.add(sampleOf(String(text), Date.now() / 1000))) setPoints([...history.current.points]);
    return true;
  }, 'metrics');
  return { points, error: polled.error };
}

function Console({ credential, onSignOut }: { credential: Credential; onSignOut: (reason?: string) => void }) {
  // A credential refused now (removed, or Kiln restarted with others) ends the console's session.
  const api = useMemo(
    () => createApi(credential.base, basicAuth(credential.user, credential.password), { onUnauthorized: () => onSignOut('Kiln refused the credential (401): sign in again.') }),
    [credential],
  );
  const [joinOpened, setJoinOpened] = useState(false);
  const route = useRoute();
  const metrics = useMetricsHistory(api);
  const node = usePoll(async (signal) => (await api.get<{ data: { attributes: { node_state: string } }[] }>('/v1/servers', signal)).data.filter((n) => n.attributes.node_state === 'alive').length, 'node-count', 2000);
  const view = route.parts[0] ?? 'overview';
  const title = VIEWS.find((v) => v.path === view)?.label ?? 'Not found';
  useEffect(() => {
    document.title = `${title} · Kiln console`;
    document.getElementById('main')?.focus({ preventScroll: true });
  }, [title, route.parts.join('/')]);

  let content;
  switch (view) {
    case 'overview':
      content = <OverviewView api={api} points={metrics.points} metricsError={metrics.error} node={new URL(credential.base).host} />;
      break;
    case 'streams':
      content = <StreamsView api={api} bearer={credential.password} />;
      break;
    case 'sessions':
      content = <SessionsView api={api} />;
      break;
    case 'rooms':
      content = route.parts[1] ? <RoomSessionView api={api} id={route.parts[1]} /> : <RoomsView api={api} query={route.query} />;
      break;
    case 'recordings':
      content = <RecordingsView api={api} />;
      break;
    case 'nodes':
      content = <NodesView api={api} />;
      break;
    case 'join':
      // Rendered below and kept: leaving the view does not leave the room.
      content = null;
      if (!joinOpened) setJoinOpened(true);
      break;
    default:
      content = (
        <p>
          No such view. <a href="#/overview">Overview</a>
        </p>
      );
  }
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>
        Skip to content
      </a>
      <header class="container-fluid top">
        <nav aria-label="Console">
          <ul>
            <li>
              <h1 class="brand">
                Kiln<span class="visually-hidden"> console</span>
              </h1>
            </li>
          </ul>
          <ul class="views">
            {VIEWS.map((v) => (
              <li>
                <a href={`#/${v.path}`} aria-current={view === v.path ? 'page' : undefined}>
                  {v.label}
                </a>
              </li>
            ))}
            <li>
              <a href="/publish.html" target="_blank" rel="noopener">
                Publish
              </a>
            </li>
            <li>
              <a href="/play.html" target="_blank" rel="noopener">
                Play
              </a>
            </li>
          </ul>
          <ul>
            <li>
              <small title={credential.base}>
                {credential.user}
                {node.data && node.data > 1 ? ` · ${node.data} nodes alive` : ''}
              </small>
            </li>
            <li>
              <button type="button" class="secondary outline small" onClick={() => onSignOut()}>
                Sign out
              </button>
            </li>
          </ul>
        </nav>
      </header>
      <main id="main" class="container-fluid" tabIndex={-1}>
        <ViewBoundary view={view}>{content}</ViewBoundary>
        {joinOpened ? (
          <div hidden={view !== 'join'}>
            <ViewBoundary view="join">
              <JoinView api={api} query={route.query} />
            </ViewBoundary>
          </div>
        ) : null}
      </main>
    </>
  );
}

function App() {
  const [credential, setCredential] = useState<Credential | undefined>(readCredential);
  const [reason, setReason] = useState<string | undefined>();
  if (!credential) {
    return (
      <SignIn
        reason={reason}
        onSignedIn={(c) => {
          setReason(undefined);
          sessionStorage.setItem(STORAGE_KEY, JSON.stringify(c));
          setCredential(c);
        }}
      />
    );
  }
  return (
    <Console
      credential={credential}
      onSignOut={(why) => {
        sessionStorage.removeItem(STORAGE_KEY);
        setReason(why);
        setCredential(undefined);
      }}
    />
  );
}

render(<App />, document.getElementById('app')!);
