import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { seg, type Api } from '../api.ts';
import { ConfirmAction, ErrorNote, Freshness } from '../components.tsx';
import * as fmt from '../format.ts';
import { useAction, usePoll } from '../hooks.ts';
import { isViewer, loadApps, loadSessions, loadStreams, PREVIEW_PREFIX, streamBitrate, streamKey, streamOrigins, withoutCredentials, type StreamRow } from '../model.ts';
import { startWhepPreview } from '../whep.ts';

const SOURCE: Record<string, string> = { WebRTC: 'WebRTC', RtspPull: 'RTSP pull', Ovt: 'OVT pull' };

/** The streams of the last poll (see the previews' close). */
const liveStreams = new Set<string>();

/** How many streams get a live preview without asking (each preview is a WHEP player). */
const AUTO_PREVIEWS = 6;

function Preview({ app, stream, bearer, label }: { app: string; stream: string; bearer: string; label: string }) {
  const video = useRef<HTMLVideoElement>(null);
  const [state, setState] = useState('connecting');
  useEffect(() => {
    const abort = new AbortController();
    let close: ((deleteResource: boolean) => void) | undefined;
    const name = `${PREVIEW_PREFIX}${Math.random().toString(36).slice(2, 10)}`;
    startWhepPreview(app, stream, bearer, name, abort.signal).then(
      (preview) => {
        close = preview.close;
        if (abort.signal.aborted) return preview.close(true);
        if (video.current) video.current.srcObject = preview.stream;
        const update = () => setState(preview.pc.connectionState === 'connected' ? 'live' : preview.pc.connectionState);
        preview.pc.addEventListener('connectionstatechange', update);
        update();
      },
      (err: Error) => {
        if (err.name !== 'AbortError') setState(`failed: ${err.message}`);
      },
    );
    return () => {
      abort.abort();
      close?.(liveStreams.has(streamKey('default', app, stream)));
    };
  }, [app, stream, bearer]);
  return (
    <div class="preview">
      <video ref={video} autoPlay muted playsInline aria-label={`Live preview of ${label}`} data-stream={`${app}/${stream}`} />
      <small class="preview-state">{state}</small>
    </div>
  );
}

function StreamCard({ row, since, viewers, node, bearer, preview, onTogglePreview, api, onChanged }: {
  row: StreamRow; since: string | undefined; viewers: number; node: string | undefined; bearer: string; preview: boolean; onTogglePreview: () => void; api: Api; onChanged: () => void;
}) {
  const info = row.info;
  const video = info?.input.tracks.find((t) => t.video)?.video;
  const audio = info?.input.tracks.find((t) => t.audio)?.audio;
  const label = `${row.app}/${row.name}`;
  const id = `stream-${row.vhost}-${row.app}-${row.name}`.replace(/[^a-zA-Z0-9_-]/g, '_');
  return (
    <article class="stream" aria-labelledby={`${id}-h`} data-stream={label}>
      <header>
        <h3 id={`${id}-h`}>{label}</h3>
        {row.vhost !== 'default' ? <small>vhost {row.vhost}</small> : null}
      </header>
      {/* A new preview when the stream is published again (a new creation time), not on a failed poll. */}
      {row.vhost !== 'default' ? (
        <div class="preview off">No preview: WHEP plays the default vhost's apps</div>
      ) : preview ? (
        <Preview app={row.app} stream={row.name} bearer={bearer} label={label} key={since} />
      ) : (
        <div class="preview off">Preview off</div>
      )}
      <dl class="facts">
        <dt>Source</dt>
        <dd>{info ? SOURCE[info.input.sourceType] ?? info.input.sourceType : '–'}{info?.input.sourceUrl ? <small class="url"> {withoutCredentials(info.input.sourceUrl)}</small> : null}</dd>
        <dt>Codecs</dt>
        <dd class="codecs">{[video?.codec, audio?.codec].filter(Boolean).join(' + ') || '–'}</dd>
        <dt>Resolution</dt>
        <dd class="resolution">{fmt.resolution(video?.width, video?.height)}{video?.framerate ? ` @ ${Math.round(video.framerate)} fps` : ''}</dd>
        <dt>Bitrate</dt>
        <dd class="bitrate">{fmt.bitrate(streamBitrate(info))}</dd>
        <dt>Viewers</dt>
        <dd class="viewers">{viewers}</dd>
        {node ? (
          <>
            <dt>Node</dt>
            <dd>{node}</dd>
          </>
        ) : null}
        <dt>Since</dt>
        <dd>{fmt.time(info?.input.createdTime)}</dd>
      </dl>
      <ErrorNote error={row.error} />
      <footer class="actions">
        {row.vhost === 'default' ? (
          <button type="button" class="secondary outline small" aria-pressed={preview} onClick={onTogglePreview}>
            {preview ? 'Stop preview' : 'Preview'}
          </button>
        ) : null}
        <a href={`/play.html?app=${seg(row.app)}&stream=${seg(row.name)}`} target="_blank" rel="noopener">
          Play page
        </a>
        <ConfirmAction
          label="Delete"
          name={label}
          confirm="Delete stream"
          action={() => api.send('DELETE', `/v1/vhosts/${seg(row.vhost)}/apps/${seg(row.app)}/streams/${seg(row.name)}`)}
          onDone={onChanged}
        />
      </footer>
    </article>
  );
}

function PullForm({ api, onCreated }: { api: Api; onCreated: () => void }) {
  const apps = usePoll((signal) => loadApps(api, signal), 'apps', 10_000);
  const options = apps.data ?? [{ vhost: 'default', app: 'app' }];
  const [chosen, setTarget] = useState<string | undefined>();
  const target = chosen && options.some((a) => `${a.vhost}/${a.app}` === chosen) ? chosen : `${options[0]?.vhost}/${options[0]?.app}`;
  const [name, setName] = useState('');
  const [url, setUrl] = useState('');
  const [done, setDone] = useState<string | undefined>();
  const action = useAction();
  const submit = async (e: Event) => {
    e.preventDefault();
    setDone(undefined);
    const [vhost, ...rest] = target.split('/');
    const app = rest.join('/');
    const ok = await action.run(() => api.send('POST', `/v1/vhosts/${seg(vhost)}/apps/${seg(app)}/streams`, { name: name.trim(), urls: url.split(/\s+/).filter(Boolean) }));
    if (ok) {
      setDone(`Pulling ${app}/${name.trim()}`);
      setName('');
      setUrl('');
      onCreated();
    }
  };
  return (
    <form class="pull" onSubmit={submit} aria-labelledby="pull-h">
      <h3 id="pull-h">Pull a stream</h3>
      <div class="grid">
        <label>
          Application
          <select name="app" value={target} onChange={(e) => setTarget((e.target as HTMLSelectElement).value)}>
            {options.map((a) => (
              <option value={`${a.vhost}/${a.app}`}>{a.vhost === 'default' ? a.app : `${a.vhost} / ${a.app}`}</option>
            ))}
          </select>
        </label>
        <label>
          Stream name
          <input name="name" required value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} autoComplete="off" placeholder="camera1" />
        </label>
      </div>
      <label>
        Source URL (RTSP or OVT)
        <input name="url" required value={url} onInput={(e) => setUrl((e.target as HTMLInputElement).value)} autoComplete="off" placeholder="rtsp://user:pass@camera.local:554/stream1" inputMode="url" />
      </label>
      <button type="submit" aria-busy={action.busy} disabled={action.busy}>
        Pull
      </button>
      <ErrorNote error={action.error} label="The pull was refused" />
      {done ? <p role="status">{done}</p> : null}
    </form>
  );
}

export function StreamsView({ api, bearer }: { api: Api; bearer: string }) {
  const polled = usePoll(async (signal) => {
    const [streams, sessions] = await Promise.all([loadStreams(api, signal), loadSessions(api, signal)]);
    return { streams, sessions };
  }, 'streams');
  const [toggled, setToggled] = useState<Record<string, boolean>>({});
  const streams = polled.data?.streams ?? [];
  // Each stream's last known creation time (kept through a failed detail call) and which streams
  // preview without asking: the first AUTO_PREVIEWS seen, kept as others come and go.
  const since = useRef(new Map<string, string>());
  const auto = useRef(new Set<string>());
  const live = new Set<string>();
  for (const s of streams) {
    const key = streamKey(s.vhost, s.app, s.name);
    live.add(key);
    if (s.info) since.current.set(key, s.info.input.createdTime);
  }
  for (const key of [...auto.current]) if (!live.has(key)) auto.current.delete(key);
  for (const key of [...since.current.keys()]) if (!live.has(key)) since.current.delete(key);
  for (const s of streams) {
    if (auto.current.size >= AUTO_PREVIEWS) break;
    if (s.vhost === 'default') auto.current.add(streamKey(s.vhost, s.app, s.name));
  }
  const { viewers, nodes } = useMemo(() => {
    const viewers = new Map<string, number>();
    const sessions = polled.data?.sessions ?? [];
    for (const s of sessions) {
      const key = streamKey(s.attributes.vhost, s.attributes.app, s.attributes.stream);
      if (isViewer(s)) viewers.set(key, (viewers.get(key) ?? 0) + 1);
    }
    return { viewers, nodes: streamOrigins(sessions) };
  }, [polled.data]);
  // What the previews read as they close: a stream gone from the list was ended by the server, and
  // so were its players, whose resources need no DELETE (it would be answered 404).
  liveStreams.clear();
  for (const s of streams) liveStreams.add(streamKey(s.vhost, s.app, s.name));
  const groups = useMemo(() => {
    const out = new Map<string, StreamRow[]>();
    for (const s of streams) {
      const g = s.vhost === 'default' ? s.app : `${s.vhost} / ${s.app}`;
      out.set(g, [...(out.get(g) ?? []), s]);
    }
    return [...out.entries()];
  }, [streams]);

  return (
    <section aria-labelledby="streams-h">
      <hgroup>
        <h2 id="streams-h">Streams</h2>
        <p>
          {streams.length} live · viewers do not count the console's own previews ·{' '}
          <a href="/publish.html" target="_blank" rel="noopener">
            Publish page
          </a>{' '}
          ·{' '}
          <a href="/play.html" target="_blank" rel="noopener">
            Play page
          </a>
        </p>
      </hgroup>
      <Freshness at={polled.at} error={polled.error} />
      {groups.length === 0 && polled.data ? <p class="empty">No live streams. Publish one, or pull one below.</p> : null}
      {groups.map(([group, rows]) => (
        <section key={group} aria-label={`Application ${group}`} class="app-group">
          <h3 class="group">{group}</h3>
          <div class="cards">
            {rows.map((row) => {
              const key = streamKey(row.vhost, row.app, row.name);
              const preview = toggled[key] ?? auto.current.has(key);
              return (
                <StreamCard
                  key={key}
                  row={row}
                  since={since.current.get(key)}
                  api={api}
                  bearer={bearer}
                  viewers={viewers.get(key) ?? 0}
                  node={nodes.get(key)}
                  preview={preview}
                  onTogglePreview={() => setToggled({ ...toggled, [key]: !preview })}
                  onChanged={polled.refresh}
                />
              );
            })}
          </div>
        </section>
      ))}
      <PullForm api={api} onCreated={polled.refresh} />
    </section>
  );
}
