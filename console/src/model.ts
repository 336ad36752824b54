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

/** Every stream of every vhost and app (OME API), with its detail. */
export async function loadStreams(api: Api): Promise<StreamRow[]> {
  const vhosts = await ome<string[]>(api, '/vhosts');
  const apps = await Promise.all(vhosts.map(async (vhost) => ({ vhost, apps: await ome<string[]>(api, `/vhosts/${seg(vhost)}/apps`) })));
  const rows: StreamRow[] = [];
  await Promise.all(
    apps.flatMap(({ vhost, apps }) =>
      apps.map(async (app) => {
        const names = await ome<string[]>(api, `/vhosts/${seg(vhost)}/apps/${seg(app)}/streams`);
        const details = await Promise.all(
          names.map(async (name): Promise<StreamRow> => {
            try {
              return { vhost, app, name, info: await ome<OmeStream>(api, `/vhosts/${seg(vhost)}/apps/${seg(app)}/streams/${seg(name)}`) };
            } catch (err) {
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
export async function loadApps(api: Api): Promise<{ vhost: string; app: string }[]> {
  const vhosts = await ome<string[]>(api, '/vhosts');
  const lists = await Promise.all(vhosts.map(async (vhost) => (await ome<string[]>(api, `/vhosts/${seg(vhost)}/apps`)).map((app) => ({ vhost, app }))));
  return lists.flat();
}

export async function loadSessions(api: Api, signal?: AbortSignal): Promise<MaxScaleSession[]> {
  return (await api.get<{ data: MaxScaleSession[] }>('/v1/sessions', signal)).data;
}

export async function loadServers(api: Api, signal?: AbortSignal): Promise<MaxScaleServer[]> {
  return (await api.get<{ data: MaxScaleServer[] }>('/v1/servers', signal)).data;
}

export const streamKey = (vhost: string | null, app: string | null, name: string | null) => `${vhost ?? ''}/${app ?? ''}/${name ?? ''}`;

/** Total of the tracks' bit rates (bit/s). */
export function streamBitrate(info: OmeStream | undefined): number | undefined {
  if (!info) return undefined;
  let total = 0;
  for (const t of info.input.tracks) total += t.video?.bitrate ?? t.audio?.bitrate ?? 0;
  return total;
}

/** Names the console gives its own preview players (so the sessions table can tell them apart). */
export const PREVIEW_PREFIX = 'console-preview-';
