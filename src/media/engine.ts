/**
 * The WebRTC side of the media plane: turns a client's request to publish or play into a session,
 * a peer connection and a place in the catalogue. Protocol front ends (WHIP/WHEP, OME signaling)
 * call it; it knows nothing of HTTP or WebSocket.
 */
import { randomUUID } from 'node:crypto';
import type { Application, Catalog } from '../core/catalog.ts';
import { errors, KilnError } from '../core/errors.ts';
import { AccessControl, type AccessControlOptions, type AccessDirection, type Admission } from '../access/access-control.ts';
import { Session, type SessionProtocol } from '../core/session.ts';
import type { SourceType, Stream } from '../core/stream.ts';
import type { Forwarder } from './forwarder.ts';
import type { IceSettings } from './peer.ts';
import type { CandidateInit } from './sdp.ts';
import { WebRtcPlayer } from './player.ts';
import { WebRtcPublisher } from './publisher.ts';

/** Who is asking, for the session record. */
export interface ClientInfo {
  remoteAddress: string;
  remotePort: number;
  userAgent?: string;
  user?: string;
  protocol: SessionProtocol;
  /** For a room participant's media: its room session (UUID). */
  roomSession?: string;
  /**
   * The URL the client requested (scheme, host with port, path, query), for the app's signed
   * policy and admission webhook (`requestedUrl` in src/access/access-control.ts).
   */
  url?: string;
}

/** The ClientInfo of a connection, from its socket and `User-Agent`. */
export function clientOf(
  socket: { remoteAddress?: string; remotePort?: number },
  userAgent: string | undefined,
  protocol: SessionProtocol,
  user?: string,
  url?: string,
): ClientInfo {
  return { remoteAddress: socket.remoteAddress ?? '', remotePort: socket.remotePort ?? 0, userAgent, user, protocol, url };
}

export interface MediaEngineOptions {
  catalog: Catalog;
  ice: IceSettings;
  /** A publisher with no media for this long is gone, ms. */
  publisherTimeoutMs: number;
  /** A connected player not heard from (RTCP) for this long is gone, ms. Default 10000. */
  playerTimeoutMs?: number;
  /** Where packets that could not be forwarded are counted (the metrics). */
  errorCounter?: { forwardingErrors: number };
  /**
   * The apps' signed policies and admission webhooks (the configured vhosts), checked before a
   * WHIP, WHEP or OME-signaling client gets a session (not room participants). Default none: every
   * app is open.
   */
  access?: AccessControlOptions;
}

/** Streams of other nodes (cluster mode). */
export interface RemoteStreams {
  /** Whether another node has stream `vhost/app/name` (its name is taken cluster-wide). */
  has(vhost: string, app: string, name: string): Promise<boolean>;
  /** Brings the stream to this node when another has it; resolves either way. */
  bring(vhost: string, app: string, name: string): Promise<void>;
  /** Whether another node has a session of this id (a viewer's chosen session name is the cluster's). */
  hasSession(id: string): Promise<boolean>;
}

const NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$/;

/** Throws BAD_REQUEST unless `name` is a usable app, stream or session name. */
export function checkName(what: string, name: string): void {
  if (!NAME.test(name) || name === '.' || name === '..') {
    throw errors.badRequest(`Invalid ${what} name: it must be 1-128 of A-Z a-z 0-9 _ - . and not start with "."`);
  }
}

/** The protocols whose clients the apps' access rules apply to (not room participants). */
const GUARDED = new Set<SessionProtocol>(['whip', 'whep', 'ome-webrtc']);

/** Longest delay setTimeout takes (about 24.8 days); a later expiry re-arms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A request let in: the session's id, where it goes, and its admission (expiry, closing call). */
interface Admitted {
  id: string;
  app: string;
  stream: string;
  admission: Admission | undefined;
}

/** A room's media stays in the room: its app takes only the room signaling's participants. */
function checkRoomsApp(application: Application, client: ClientInfo): void {
  if (application.settings.rooms && client.protocol !== 'openvidu') {
    throw errors.forbidden(`The app ${application.name} holds room media: join the room to publish or play there`);
  }
}

/** A session closed (kicked, expired, its client gone) before its set-up finished. */
function closedDuringSetUp(session: Session): KilnError {
  return new KilnError('CONFLICT', `The session closed (${session.closeReason}) before it was set up`, { session: session.id });
}

export class MediaEngine {
  readonly catalog: Catalog;
  readonly #ice: IceSettings;
  readonly #timeoutMs: number;
  readonly #errors: { forwardingErrors: number };
  readonly #sweep: NodeJS.Timeout;
  readonly #forwarders = new WeakMap<Stream, Forwarder>();
  /** Peer connections by session id, for trickled candidates. */
  readonly #peers = new Map<string, WebRtcPublisher | WebRtcPlayer>();
  #remote: RemoteStreams | undefined;
  /** The apps' access rules (signed policy, admission webhook); undefined: all open. */
  readonly access: AccessControl | undefined;

  constructor(options: MediaEngineOptions) {
    this.catalog = options.catalog;
    this.access = options.access && new AccessControl(options.access);
    this.#ice = options.ice;
    this.#timeoutMs = options.publisherTimeoutMs;
    this.#errors = options.errorCounter ?? { forwardingErrors: 0 };
    const playerTimeout = options.playerTimeoutMs ?? 10_000;
    // One sweep for all players: werift itself notices a vanished viewer only after ~30 s.
    this.#sweep = setInterval(() => {
      const now = Date.now();
      for (const peer of this.#peers.values()) {
        if (peer instanceof WebRtcPlayer && peer.session.state === 'active' && now - peer.lastHeard > playerTimeout) peer.session.close('timed-out');
      }
    }, 2000);
    this.#sweep.unref();
  }

  /**
   * The streams of other nodes (cluster mode): a viewer of one is served through a relay here (OVT),
   * and a publisher may not take its name.
   */
  setRemoteStreams(remote: RemoteStreams): void {
    this.#remote = remote;
  }

  /** The app of a stream another node may have (not a rooms app: rooms live on one node). */
  #sharedApp(app: string, streamName: string): Application | undefined {
    if (!this.#remote || !NAME.test(app) || !NAME.test(streamName)) return undefined;
    const application = this.catalog.appByName(app);
    return application && !application.settings.rooms && !application.streams.has(streamName) ? application : undefined;
  }

  /**
   * Lets another node's stream come here before a viewer asks for it; SESSION_EXISTS when the
   * viewer's chosen session name is taken on another node.
   */
  async #ensureStream(app: string, streamName: string, sessionName: string | undefined): Promise<void> {
    if (this.#remote && sessionName !== undefined && NAME.test(sessionName) && await this.#remote.hasSession(sessionName)) {
      throw errors.sessionExists(sessionName);
    }
    const application = this.#sharedApp(app, streamName);
    if (application) await this.#remote!.bring(application.vhost, application.name, streamName);
  }

  /** STREAM_EXISTS when another node publishes this name. */
  async #checkNameFree(app: string, streamName: string): Promise<void> {
    const application = this.#sharedApp(app, streamName);
    if (application && await this.#remote!.has(application.vhost, application.name, streamName)) {
      throw errors.streamExists(application.vhost, application.name, streamName);
    }
  }

  /** Stops the engine's own timer and the access rules' connections (sessions are closed through the catalogue). */
  close(): void {
    clearInterval(this.#sweep);
    this.access?.close();
  }

  /**
   * Checks a request before any peer work: the names, the app, then the app's access rules (signed
   * policy, admission webhook), which may send it to another stream. Allocates the session's id
   * (the chosen name or a UUID) first, so the webhook and the session APIs share it. FORBIDDEN when
   * a rule refuses.
   */
  async #admit(direction: AccessDirection, app: string, stream: string, sessionName: string | undefined, client: ClientInfo): Promise<Admitted> {
    checkName('app', app);
    checkName('stream', stream);
    if (sessionName !== undefined) {
      checkName('session', sessionName);
      if (this.catalog.sessions.has(sessionName)) throw errors.sessionExists(sessionName);
    }
    const application = this.catalog.appByName(app);
    if (!application) throw errors.appNotFound('default', app);
    checkRoomsApp(application, client);
    const id = sessionName ?? randomUUID();
    if (!this.access || !GUARDED.has(client.protocol)) return { id, app, stream, admission: undefined };
    const admission = await this.access.admit({ direction, vhost: application.vhost, app, stream, sessionId: id, client });
    return { id, app: admission.app, stream: admission.stream, admission };
  }

  /**
   * Holds a set-up session to its admission: closes it (`expired`) when its time runs out, and
   * tells the control server when it closes.
   */
  #enforce(session: Session, admission: Admission | undefined): void {
    if (!admission) return;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      const left = admission.expiresAt! - Date.now();
      if (left <= 0) return session.close('expired');
      timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
      timer.unref();
    };
    session.once('close', () => {
      clearTimeout(timer);
      admission.end();
    });
    if (admission.expiresAt !== undefined) arm();
  }

  #newPublisher(admitted: Admitted, client: ClientInfo): WebRtcPublisher {
    const { app, stream } = admitted;
    checkName('app', app);
    checkName('stream', stream);
    const application = this.catalog.appByName(app);
    if (!application) throw errors.appNotFound('default', app);
    checkRoomsApp(application, client);
    if (application.streams.has(stream)) throw errors.streamExists(application.vhost, app, stream);
    const session = new Session({ id: admitted.id, kind: 'publisher', vhost: application.vhost, app, stream, ...client });
    const publisher = new WebRtcPublisher({
      ice: this.#ice,
      session,
      timeoutMs: this.#timeoutMs,
      onForwardingError: () => this.#errors.forwardingErrors++,
    });
    session.setTeardown(() => publisher.close());
    this.#track(session, publisher);
    return publisher;
  }

  #register(publisher: WebRtcPublisher, sourceType: SourceType = 'WebRTC'): Stream {
    const session = publisher.session;
    if (session.closed) throw closedDuringSetUp(session);
    const application = this.catalog.app(session.vhost, session.app);
    const stream = this.catalog.createStream(application, session.stream, sourceType, session);
    stream.tracks = publisher.forwarder.tracks.map((t) => t.info);
    // As OvenMediaEngine reports a WebRTC input: the signaling client's address.
    stream.sourceUrl = `TCP://${session.remoteAddress}:${session.remotePort}`;
    this.#forwarders.set(stream, publisher.forwarder);
    return stream;
  }

  /** The packet engine of a live stream (recordings add their outputs to its tracks). */
  forwarderOf(stream: Stream): Forwarder | undefined {
    return stream.closed ? undefined : this.#forwarders.get(stream);
  }

  /** Makes a stream fed by another kind of source (an RTSP or OVT pull) playable over WebRTC. */
  attachSource(stream: Stream, forwarder: Forwarder): void {
    this.#forwarders.set(stream, forwarder);
  }

  /**
   * A publisher let in by the app's access rules (to the stream they send it to), its name free in
   * the cluster, with its admitted lifetime enforced.
   */
  async #admittedPublisher(app: string, stream: string, client: ClientInfo): Promise<WebRtcPublisher> {
    const admitted = await this.#admit('publish', app, stream, undefined, client);
    let publisher: WebRtcPublisher;
    try {
      await this.#checkNameFree(admitted.app, admitted.stream);
      publisher = this.#newPublisher(admitted, client);
    } catch (err) {
      admitted.admission?.end();
      throw err;
    }
    this.#enforce(publisher.session, admitted.admission);
    return publisher;
  }

  /**
   * WHIP (and a room participant's publish): answers a publisher's offer and creates the stream.
   * `sourceType` says what kind of input the stream reports. Default `WebRTC`.
   */
  async publish(app: string, stream: string, offer: string, client: ClientInfo, sourceType: SourceType = 'WebRTC'): Promise<{ session: Session; answer: string; stream: Stream }> {
    const publisher = await this.#admittedPublisher(app, stream, client);
    try {
      const answer = await publisher.answer(offer);
      const created = this.#register(publisher, sourceType);
      return { session: publisher.session, answer, stream: created };
    } catch (err) {
      publisher.session.close('error');
      throw err;
    }
  }

  /**
   * OME signaling publish: the server offers first. Returns the offer and a function that takes
   * the client's answer and creates the stream.
   */
  async offerPublish(app: string, stream: string, client: ClientInfo): Promise<{
    session: Session;
    offer: string;
    accept: (answer: string) => Promise<Stream>;
    addCandidate: (c: CandidateInit) => Promise<void>;
  }> {
    const publisher = await this.#admittedPublisher(app, stream, client);
    try {
      const offer = await publisher.offer();
      return {
        session: publisher.session,
        offer,
        accept: async (answer) => {
          await publisher.accept(answer);
          return this.#register(publisher);
        },
        addCandidate: (c) => publisher.addCandidate(c),
      };
    } catch (err) {
      publisher.session.close('error');
      throw err;
    }
  }

  #newPlayer(admitted: Admitted, sessionName: string | undefined, client: ClientInfo): { player: WebRtcPlayer; stream: Stream } {
    const { app, stream: streamName } = admitted;
    checkName('app', app);
    checkName('stream', streamName);
    const application = this.catalog.appByName(app);
    if (!application) throw errors.appNotFound('default', app);
    checkRoomsApp(application, client);
    const stream = application.stream(streamName);
    const forwarder = this.#forwarders.get(stream);
    if (!forwarder || stream.closed) throw errors.streamNotFound(application.vhost, app, streamName);
    // A chosen name may have been taken while this request was being admitted (or set up).
    if (sessionName !== undefined && (stream.players.has(sessionName) || this.catalog.sessions.has(sessionName) || this.#peers.has(sessionName))) {
      throw errors.sessionExists(sessionName);
    }
    const session = new Session({ id: admitted.id, kind: 'player', vhost: application.vhost, app, stream: streamName, ...client });
    const player = new WebRtcPlayer({ ice: this.#ice, session, forwarder, onForwardingErrors: (n) => (this.#errors.forwardingErrors += n) });
    session.setTeardown(() => player.close());
    this.#track(session, player);
    return { player, stream };
  }

  #attachPlayer(stream: Stream, player: WebRtcPlayer): void {
    if (player.session.closed) throw closedDuringSetUp(player.session);
    if (stream.closed) {
      player.session.close('stream-ended');
      throw errors.streamNotFound(stream.vhost, stream.app, stream.name);
    }
    this.catalog.addSession(player.session);
    stream.addPlayer(player.session);
  }

  /** Admits a viewer, brings its stream here when another node has it, and makes its player. */
  async #preparePlayer(app: string, streamName: string, sessionName: string | undefined, client: ClientInfo): Promise<{ player: WebRtcPlayer; stream: Stream }> {
    const admitted = await this.#admit('play', app, streamName, sessionName, client);
    let made: { player: WebRtcPlayer; stream: Stream };
    try {
      await this.#ensureStream(admitted.app, admitted.stream, sessionName);
      made = this.#newPlayer(admitted, sessionName, client);
    } catch (err) {
      admitted.admission?.end();
      throw err;
    }
    this.#enforce(made.player.session, admitted.admission);
    return made;
  }

  /** WHEP: answers a viewer's offer. `sessionName` names the session (`?session=`), else a UUID. */
  async play(app: string, streamName: string, offer: string, sessionName: string | undefined, client: ClientInfo): Promise<{ session: Session; answer: string }> {
    const { player, stream } = await this.#preparePlayer(app, streamName, sessionName, client);
    try {
      const answer = await player.answer(offer);
      this.#attachPlayer(stream, player);
      return { session: player.session, answer };
    } catch (err) {
      player.session.close('error');
      throw err;
    }
  }

  /** OME signaling playback: the server offers; `accept` applies the viewer's answer. */
  async offerPlay(app: string, streamName: string, sessionName: string | undefined, client: ClientInfo): Promise<{
    session: Session;
    offer: string;
    accept: (answer: string) => Promise<void>;
    addCandidate: (c: CandidateInit) => Promise<void>;
  }> {
    const { player, stream } = await this.#preparePlayer(app, streamName, sessionName, client);
    try {
      const offer = await player.offer();
      this.#attachPlayer(stream, player);
      return {
        session: player.session,
        offer,
        accept: (answer) => player.accept(answer),
        addCandidate: (c) => player.addCandidate(c),
      };
    } catch (err) {
      player.session.close('error');
      throw err;
    }
  }

  #track(session: Session, peer: WebRtcPublisher | WebRtcPlayer): void {
    this.#peers.set(session.id, peer);
    session.once('close', () => this.#peers.delete(session.id));
  }

  /** Adds a trickled candidate to the peer connection of `session` (WHIP/WHEP PATCH). */
  async addCandidate(session: Session, candidate: CandidateInit): Promise<void> {
    const peer = this.#peers.get(session.id);
    if (peer) await peer.addCandidate(candidate);
  }
}
