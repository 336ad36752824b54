/** What the views read from the APIs, typed as far as the console uses it. */
import { ome, seg, type Api } from './api.ts';

export interface OmeTrack {
  id: number;
  type: 'Video' | 'Audio' | string;
  video?: { codec: string; width: number; height: number; bitrate: number; framerate: number };
  audio?: { codec: string; samplerate: number; channel: number; bitrate: number };
}

export interface OmeStream {
  name: string;
  input: { createdTime: string; sourceType: string; sourceUrl?: string; tracks: OmeTrack[] };
}

export interface StreamRow {
  vhost: string;
  app: string;
  name: string;
  info: OmeStream | undefined;
  /** The detail call failed (the stream went away between the list and it). */
  error?: string;
}

export interface MaxScaleSession {
  id: string;
  attributes: {
    state: string;
    remote: string;
    port: number | null;
    connected: string;
    seconds_alive: number;
    kind: 'publisher' | 'player' | 'pull' | 'participant' | string;
    protocol: string;
    vhost: string | null;
    app: string | null;
    stream: string | null;
    room_session: string | null;
    node: string;
    user_agent: string | null;
    bytes_in: number;
    bytes_out: number;
  };
}

export interface MaxScaleServer {
  id: string;
  attributes: {
    state: string;
    node_state: 'alive' | 'dead' | 'stopped' | string;
    public_url: string;
    api_url: string;
    ovt_url: string;
    started: string;
    last_heartbeat: string;
    statistics: { connections: number };
    load: { sessions?: number; streams?: number; rss?: number };
  };
}

/** Names the console gives its own preview players (so the sessions table can tell them apart). */
export const PREVIEW_PREFIX = 'console-preview-';

/** Every stream of every vhost and app (OME API), with its detail. */
export async function loadStreams(api: Api, signal?: AbortSignal): Promise<StreamRow[]> {
  const vhosts = await ome<string[]>(api, '/vhosts', signal);
  const apps = await Promise.all(vhosts.map(async (vhost) => ({ vhost, apps: await ome<string[]>(api, `/vhosts/${seg(vhost)}/apps`, signal) })));
  const rows: StreamRow[] = [];
  await Promise.all(
    apps.flatMap(({ vhost, apps }) =>
      apps.map(async (app) => {
        const names = await ome<string[]>(api, `/vhosts/${seg(vhost)}/apps/${seg(app)}/streams`, signal);
        const details = await Promise.all(
          names.map(async (name): Promise<StreamRow> => {
            try {
              return { vhost, app, name, info: await ome<OmeStream>(api, `/vhosts/${seg(vhost)}/apps/${seg(app)}/streams/${seg(name)}`, signal) };
            } catch (err) {
              if ((err as Error).name === 'AbortError') throw err;
              return { vhost, app, name, info: undefined, error: (err as Error).message };
            }
          }),
        );
        rows.push(...details);
      }),
    ),
  );
  rows.sort((a, b) => a.vhost.localeCompare(b.vhost) || a.app.localeCompare(b.app) || a.name.localeCompare(b.name));
  return rows;
}

/** Every application, by vhost: where a pull can go. */
export async function loadApps(api: Api, signal?: AbortSignal): Promise<{ vhost: string; app: string }[]> {
  const vhosts = await ome<string[]>(api, '/vhosts', signal);
  const lists = await Promise.all(vhosts.map(async (vhost) => (await ome<string[]>(api, `/vhosts/${seg(vhost)}/apps`, signal)).map((app) => ({ vhost, app }))));
  return lists.flat();
}

export async function loadSessions(api: Api, signal?: AbortSignal): Promise<MaxScaleSession[]> {
  return (await api.get<{ data: MaxScaleSession[] }>('/v1/sessions', signal)).data;
}

export async function loadServers(api: Api, signal?: AbortSignal): Promise<MaxScaleServer[]> {
  return (await api.get<{ data: MaxScaleServer[] }>('/v1/servers', signal)).data;
}

/** The Overview's counts: sessions by kind (not the console's previews), live nodes, room sessions in progress. */
export async function loadOverview(api: Api, signal?: AbortSignal): Promise<{ kinds: Record<string, number>; sessions: number; nodes: number; rooms: string }> {
  const [sessions, servers, inProgress] = await Promise.all([
    loadSessions(api, signal),
    loadServers(api, signal),
    api.get<{ data: unknown[]; links: { next?: string } }>('/api/video/room_sessions?status=in-progress&page_size=100', signal),
  ]);
  const kinds: Record<string, number> = {};
  for (const s of sessions) if (!s.id.startsWith(PREVIEW_PREFIX)) kinds[s.attributes.kind] = (kinds[s.attributes.kind] ?? 0) + 1;
  return {
    kinds,
    sessions: sessions.length,
    nodes: servers.filter((n) => n.attributes.node_state === 'alive').length,
    // 100 a page: more than that shows as "100+".
    rooms: `${inProgress.data.length}${inProgress.links.next ? '+' : ''}`,
  };
}

export const streamKey = (vhost: string | null, app: string | null, name: string | null) => `${vhost ?? ''}/${app ?? ''}/${name ?? ''}`;

/**
 * The node each stream comes in on: its publisher's (or room participant's), else its pull's.
 * In a cluster a stream played on another node is relayed there by an OVT pull, which is a pull
 * too: a publisher wins over it, and a pull that is not OVT over an OVT one.
 */
export function streamOrigins(sessions: MaxScaleSession[]): Map<string, string> {
  const rank = (s: MaxScaleSession) => (s.attributes.kind === 'publisher' || s.attributes.kind === 'participant' ? 3 : s.attributes.kind === 'pull' ? (s.attributes.protocol === 'ovt' ? 1 : 2) : 0);
  const best = new Map<string, { node: string; rank: number }>();
  for (const s of sessions) {
    const r = rank(s);
    if (r === 0 || !s.attributes.stream) continue;
    const key = streamKey(s.attributes.vhost, s.attributes.app, s.attributes.stream);
    const seen = best.get(key);
    if (!seen || r > seen.rank) best.set(key, { node: s.attributes.node, rank: r });
  }
  return new Map([...best].map(([k, v]) => [k, v.node]));
}

/**
 * Whether a session is a leg of a node-to-node relay: the OVT player on the origin that feeds
 * another node, or that node's OVT pull of a stream that comes in elsewhere.
 */
export function isRelayLeg(s: MaxScaleSession, origins: Map<string, string>): boolean {
  const a = s.attributes;
  if (a.protocol !== 'ovt') return false;
  if (a.kind === 'player') return true;
  return a.kind === 'pull' && origins.get(streamKey(a.vhost, a.app, a.stream)) !== a.node;
}

/** A stream's viewers: its players, not relay legs to other nodes nor the console's previews. */
export function isViewer(s: MaxScaleSession): boolean {
  return s.attributes.kind === 'player' && s.attributes.protocol !== 'ovt' && !s.id.startsWith(PREVIEW_PREFIX);
}

/** Total of the tracks' bit rates (bit/s). */
export function streamBitrate(info: OmeStream | undefined): number | undefined {
  if (!info) return undefined;
  let total = 0;
  for (const t of info.input.tracks) total += t.video?.bitrate ?? t.audio?.bitrate ?? 0;
  return total;
}


/** The name part of an OpenVidu session id (`ws://host/<name>`). */
export const sessionName = (id: string): string => id.replace(/^.*\//, '');

/** A source URL as shown: without the camera's user name and password. */
export function withoutCredentials(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/?#]*@/i, '$1');
}
