/**
 * Kiln's sessions and their services as MaxScale REST resources (JSON:API, seed 002 and MaxScale
 * 24.02's Session/Service resources). Every session of the catalogue, whatever its kind, is a
 * `sessions` resource built from the fields all sessions share, so new kinds appear unchanged.
 * A session's service is its room when it belongs to one (id: the room's name), else its
 * application (id: `vhost/app`).
 */
import type { Application, Catalog } from '../../core/catalog.ts';
import type { RoomSession } from '../../core/room.ts';
import type { SessionState, SessionView } from '../../core/session.ts';
import { asctime, type JsonObject } from './query.ts';
import type { ClusterNode } from '../../cluster/cluster.ts';

/** Where room sessions come from (the Rooms service). */
export interface RoomDirectory {
  readonly openSessions: Iterable<RoomSession>;
}

/** What a room service shows of its room session: this node's, or another node's (cluster mode). */
export type RoomSessionView = Pick<RoomSession, 'id' | 'name' | 'roomId' | 'status' | 'startTime' | 'createdAt'>;

/** A service: an application, or a room while it has an open room session. */
export interface Service {
  id: string;
  kind: 'application' | 'room';
  vhost: string;
  app: string;
  startedAt: Date;
  application?: Application;
  roomSession?: RoomSessionView;
  sessions: SessionView[];
}

/** MaxScale's session states for Kiln's. */
const STATES: Record<SessionState, string> = {
  connecting: 'Session created',
  active: 'Session started',
  closed: 'Session stopped',
};

const seconds = (ms: number) => Math.round(ms) / 1000;

/** Resolves and counts services; follows the catalogue to count each service's sessions ever. */
export class ServiceDirectory {
  readonly #catalog: Catalog;
  readonly #rooms: RoomDirectory;
  /** Sessions ever opened, by Application or RoomSession (weak: ended rooms go with their objects). */
  readonly #totals = new WeakMap<object, number>();

  constructor(catalog: Catalog, rooms: RoomDirectory) {
    this.#catalog = catalog;
    this.#rooms = rooms;
    // Runs inside catalog.addSession: bookkeeping only, and nothing may throw out of it.
    catalog.on('session', (session) => {
      try {
        const owner = this.#openRoomSessions().get(session.roomSession ?? '') ?? catalog.vhosts.get(session.vhost)?.apps.get(session.app);
        if (owner) this.#totals.set(owner, (this.#totals.get(owner) ?? 0) + 1);
      } catch {
        // a count missed is all that is lost
      }
    });
  }

  #openRoomSessions(remoteRooms: RoomSessionView[] = []): Map<string, RoomSessionView> {
    return new Map([...this.#rooms.openSessions, ...remoteRooms].map((rs) => [rs.id, rs]));
  }

  /**
   * Every service with its live sessions: the listed apps, the apps with sessions, the open rooms.
   * `remote` and `remoteRooms`: other nodes' sessions and open room sessions (cluster mode).
   */
  list(remote: SessionView[] = [], remoteRooms: RoomSessionView[] = []): Service[] {
    const services = new Map<string, Service>();
    for (const vhost of this.#catalog.vhosts.values()) {
      for (const app of vhost.apps.values()) {
        if (app.settings.listed === false) continue;
        services.set(`${vhost.name}/${app.name}`, this.#appService(app));
      }
    }
    const rooms = new Map<string, Service>();
    for (const rs of [...this.#rooms.openSessions, ...remoteRooms]) {
      const service: Service = { id: rs.name, kind: 'room', vhost: '', app: '', startedAt: rs.startTime ?? rs.createdAt, roomSession: rs, sessions: [] };
      rooms.set(rs.id, service);
      services.set(service.id, service);
    }
    for (const session of [...this.#catalog.sessions.values(), ...remote]) {
      const room = session.roomSession ? rooms.get(session.roomSession) : undefined;
      if (room) {
        room.vhost = session.vhost;
        room.app = session.app;
        room.sessions.push(session);
        continue;
      }
      const id = `${session.vhost}/${session.app}`;
      let service = services.get(id);
      if (!service) {
        const app = this.#catalog.vhosts.get(session.vhost)?.apps.get(session.app);
        if (!app) continue;
        service = this.#appService(app);
        services.set(id, service);
      }
      service.sessions.push(session);
    }
    return [...services.values()];
  }

  #appService(app: Application): Service {
    return { id: `${app.vhost}/${app.name}`, kind: 'application', vhost: app.vhost, app: app.name, startedAt: app.createdAt, application: app, sessions: [] };
  }

  /** A service by id (`vhost/app`, any app, or a room's name). */
  find(id: string, remote: SessionView[] = [], remoteRooms: RoomSessionView[] = []): Service | undefined {
    const listed = this.list(remote, remoteRooms).find((s) => s.id === id);
    if (listed) return listed;
    const slash = id.indexOf('/');
    const app = slash > 0 ? this.#catalog.vhosts.get(id.slice(0, slash))?.apps.get(id.slice(slash + 1)) : undefined;
    return app ? this.#appService(app) : undefined;
  }

  /** Gives the id of the service a session belongs to, with the open rooms as they are now. */
  resolver(remoteRooms: RoomSessionView[] = []): (session: SessionView) => string {
    const rooms = this.#openRoomSessions(remoteRooms);
    return (session) => rooms.get(session.roomSession ?? '')?.name ?? `${session.vhost}/${session.app}`;
  }

  /** Sessions the service has had (its live ones when the count started later). */
  totalOf(service: Service): number {
    const owner = service.roomSession ?? service.application;
    return (owner && this.#totals.get(owner)) || service.sessions.length;
  }
}

/** The absolute link of a session resource. */
export function sessionSelf(base: string, id: string): string {
  return `${base}/v1/sessions/${encodeURIComponent(id)}`;
}

/** The absolute link of a service resource (a `vhost/app` id keeps its slash escaped). */
export function serviceSelf(base: string, id: string): string {
  return `${base}/v1/services/${encodeURIComponent(id)}`;
}

/**
 * One session as a MaxScale `sessions` resource: MaxScale's attributes (those maxctrl reads among
 * them) and Kiln's own. `remote` is the resolved name when `remote` is given (rdns=true).
 */
export function sessionResource(session: SessionView, serviceId: string, base: string, now: number, node: string, remote?: string): JsonObject {
  const c = session.counters;
  return {
    id: session.id,
    type: 'sessions',
    relationships: {
      services: {
        links: { self: `${base}/v1/services/` },
        data: [{ id: serviceId, type: 'services' }],
      },
    },
    attributes: {
      state: STATES[session.state],
      user: session.user,
      remote: remote ?? session.remoteAddress,
      port: session.remotePort,
      connected: asctime(session.connectedAt),
      seconds_alive: seconds(now - session.connectedAt.getTime()),
      idle: session.idleSeconds(now),
      memory: { total: session.memoryUsage() },
      io_activity: session.ioActivity,
      kind: session.kind,
      protocol: session.protocol,
      vhost: session.vhost,
      app: session.app,
      stream: session.stream,
      room_session: session.roomSession ?? null,
      node,
      user_agent: session.userAgent,
      bytes_in: c.bytesIn,
      bytes_out: c.bytesOut,
      packets_in: c.packetsIn,
      packets_out: c.packetsOut,
    },
    links: { self: sessionSelf(base, session.id) },
  };
}

/** A Kiln node as the `servers` resources show it: the cluster's registry entry (or this node alone). */
export type ServerView = ClusterNode;

/** MaxScale's server states for a node's. */
const SERVER_STATES: Record<ServerView['state'], string> = { alive: 'Running', dead: 'Down', stopped: 'Down' };

/**
 * One Kiln node as a MaxScale `servers` resource: MaxScale's `state`, `parameters` (address and
 * port of its control API) and `statistics`, and Kiln's own (its URLs, heartbeat and load).
 */
export function serverResource(node: ServerView, base: string): JsonObject {
  let address = '';
  let port: number | null = null;
  try {
    const url = new URL(node.apiUrl);
    address = url.hostname.replace(/^\[|\]$/g, '');
    port = url.port === '' ? null : Number(url.port);
  } catch {
    // a node registered without an API address: left empty
  }
  const connections = typeof node.load.sessions === 'number' ? node.load.sessions : 0;
  return {
    id: node.id,
    type: 'servers',
    attributes: {
      state: SERVER_STATES[node.state],
      parameters: { address, port, protocol: 'kiln' },
      statistics: { connections },
      node_state: node.state,
      public_url: node.publicUrl,
      api_url: node.apiUrl,
      ovt_url: node.ovtUrl,
      started: asctime(node.startedAt),
      last_heartbeat: node.heartbeatAt.toISOString(),
      load: node.load as JsonObject,
    },
    links: { self: `${base}/v1/servers/${encodeURIComponent(node.id)}` },
  };
}

/** One service as a MaxScale `services` resource, its live sessions in `relationships.sessions`. */
export function serviceResource(service: Service, total: number, base: string): JsonObject {
  const connections = service.sessions.length;
  const attributes: JsonObject = {
    router: service.kind,
    state: 'Started',
    started: asctime(service.startedAt),
    connections,
    total_connections: total,
    statistics: { connections, total_connections: total },
    kind: service.kind,
    vhost: service.vhost || null,
    app: service.app || null,
  };
  if (service.application) attributes.streams = [...service.application.streams.keys()];
  if (service.roomSession) {
    attributes.room_session = service.roomSession.id;
    attributes.room_id = service.roomSession.roomId;
    attributes.status = service.roomSession.status;
  }
  return {
    id: service.id,
    type: 'services',
    attributes,
    relationships: {
      sessions: {
        links: { self: `${base}/v1/sessions/` },
        data: service.sessions.map((s) => ({ id: s.id, type: 'sessions' })),
      },
    },
    links: { self: serviceSelf(base, service.id) },
  };
}
