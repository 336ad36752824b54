/**
 * The catalogue of what this node serves: virtual hosts → applications → streams, and every live
 * session by id. Pure bookkeeping: no I/O, no media.
 */
import { EventEmitter } from 'node:events';
import { errors } from './errors.ts';
import type { CloseReason, Session } from './session.ts';
import { Stream, type SourceType } from './stream.ts';

export interface ApplicationSettings {
  /** When true, playback needs an access-token password as a Bearer token. */
  playbackRequiresToken: boolean;
  /**
   * When false, the app is left out of app listings (it still answers by name): the rooms app Kiln
   * adds for room participants' streams. Default true.
   */
  listed?: boolean;
  /**
   * When true, only room participants publish and play here, through the room signaling (their
   * tokens hold), not over WHIP/WHEP or OME signaling. Default false.
   */
  rooms?: boolean;
}

export class Application {
  readonly vhost: string;
  readonly name: string;
  readonly settings: ApplicationSettings;
  readonly createdAt = new Date();
  readonly streams = new Map<string, Stream>();

  constructor(vhost: string, name: string, settings: ApplicationSettings) {
    this.vhost = vhost;
    this.name = name;
    this.settings = settings;
  }

  /** The stream named `name`, or a STREAM_NOT_FOUND error. */
  stream(name: string): Stream {
    const stream = this.streams.get(name);
    if (!stream) throw errors.streamNotFound(this.vhost, this.name, name);
    return stream;
  }
}

export class VirtualHost {
  readonly name: string;
  readonly createdAt = new Date();
  readonly apps = new Map<string, Application>();

  constructor(name: string) {
    this.name = name;
  }

  /** The names of the apps listings show (every app but unlisted ones). */
  listedApps(): string[] {
    return [...this.apps.values()].filter((a) => a.settings.listed !== false).map((a) => a.name);
  }
}

export interface CatalogEvents {
  session: [session: Session];
  stream: [stream: Stream];
}

/** Names a vhost and app from config. */
export interface CatalogVhost {
  name: string;
  apps: { name: string; playbackRequiresToken: boolean; listed?: boolean; rooms?: boolean }[];
}

export class Catalog extends EventEmitter<CatalogEvents> {
  readonly vhosts = new Map<string, VirtualHost>();
  /** Every open session of this node, by id. */
  readonly sessions = new Map<string, Session>();

  constructor(vhosts: CatalogVhost[]) {
    super();
    for (const vh of vhosts) {
      const vhost = new VirtualHost(vh.name);
      for (const app of vh.apps) vhost.apps.set(app.name, new Application(vh.name, app.name, { playbackRequiresToken: app.playbackRequiresToken, listed: app.listed ?? true, rooms: app.rooms ?? false }));
      this.vhosts.set(vh.name, vhost);
    }
  }

  vhost(name: string): VirtualHost {
    const vhost = this.vhosts.get(name);
    if (!vhost) throw errors.vhostNotFound(name);
    return vhost;
  }

  app(vhost: string, app: string): Application {
    const found = this.vhost(vhost).apps.get(app);
    if (!found) throw errors.appNotFound(vhost, app);
    return found;
  }

  /** Looks an app up by name alone when it is unique across vhosts (URLs carry only `{app}`). */
  appByName(app: string): Application | undefined {
    const def = this.vhosts.get('default')?.apps.get(app);
    if (def) return def;
    for (const vhost of this.vhosts.values()) {
      const found = vhost.apps.get(app);
      if (found) return found;
    }
    return undefined;
  }

  stream(vhost: string, app: string, stream: string): Stream {
    return this.app(vhost, app).stream(stream);
  }

  /** Registers a session until it closes. */
  addSession(session: Session): void {
    this.sessions.set(session.id, session);
    session.once('close', () => this.sessions.delete(session.id));
    this.emit('session', session);
  }

  /**
   * Creates a stream owned by `source` (which is registered as a session too); it leaves the
   * catalogue when it closes. STREAM_EXISTS when the name is taken. `relay`: an on-demand relay of
   * another node's stream (Stream.relay).
   */
  createStream(app: Application, name: string, sourceType: SourceType, source: Session, relay = false): Stream {
    if (app.streams.has(name)) throw errors.streamExists(app.vhost, app.name, name);
    const stream = new Stream(app.vhost, app.name, name, sourceType, source);
    stream.relay = relay;
    app.streams.set(name, stream);
    stream.once('close', () => {
      if (app.streams.get(name) === stream) app.streams.delete(name);
    });
    this.addSession(source);
    this.emit('stream', stream);
    return stream;
  }

  /** Every live stream of every app. */
  *allStreams(): Generator<Stream> {
    for (const vhost of this.vhosts.values()) for (const app of vhost.apps.values()) yield* app.streams.values();
  }

  /** Takes every session's activity sample (io_activity, idle); call once a second. */
  sampleActivity(now: number): void {
    for (const session of this.sessions.values()) session.sampleActivity(now);
  }

  /** Closes every stream and session (on shutdown). */
  closeAll(reason: CloseReason): void {
    for (const stream of [...this.allStreams()]) stream.close(reason);
    for (const session of [...this.sessions.values()]) session.close(reason);
  }
}
