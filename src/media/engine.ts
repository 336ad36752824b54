/**
 * The WebRTC side of the media plane: turns a client's request to publish or play into a session,
 * a peer connection and a place in the catalogue. Protocol front ends (WHIP/WHEP, OME signaling)
 * call it; it knows nothing of HTTP or WebSocket.
 */
import type { Application, Catalog } from '../core/catalog.ts';
import { errors } from '../core/errors.ts';
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
}

/** The ClientInfo of a connection, from its socket and `User-Agent`. */
export function clientOf(
  socket: { remoteAddress?: string; remotePort?: number },
  userAgent: string | undefined,
  protocol: SessionProtocol,
  user?: string,
): ClientInfo {
  return { remoteAddress: socket.remoteAddress ?? '', remotePort: socket.remotePort ?? 0, userAgent, user, protocol };
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

/** A room's media stays in the room: its app takes only the room signaling's participants. */
function checkRoomsApp(application: Application, client: ClientInfo): void {
  if (application.settings.rooms && client.protocol !== 'openvidu') {
    throw errors.forbidden(`The app ${application.name} holds room media: join the room to publish or play there`);
  }
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

  constructor(options: MediaEngineOptions) {
    this.catalog = options.catalog;
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

  /** Stops the engine's own timer (sessions are closed through the catalogue). */
  close(): void {
    clearInterval(this.#sweep);
  }

  #newPublisher(app: string, stream: string, client: ClientInfo): WebRtcPublisher {
    checkName('app', app);
    checkName('stream', stream);
    const application = this.catalog.appByName(app);
    if (!application) throw errors.appNotFound('default', app);
    checkRoomsApp(application, client);
    if (application.streams.has(stream)) throw errors.streamExists(application.vhost, app, stream);
    const session = new Session({ kind: 'publisher', vhost: application.vhost, app, stream, ...client });
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
   * WHIP (and a room participant's publish): answers a publisher's offer and creates the stream.
   * `sourceType` says what kind of input the stream reports. Default `WebRTC`.
   */
  async publish(app: string, stream: string, offer: string, client: ClientInfo, sourceType: SourceType = 'WebRTC'): Promise<{ session: Session; answer: string; stream: Stream }> {
    await this.#checkNameFree(app, stream);
    const publisher = this.#newPublisher(app, stream, client);
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
    await this.#checkNameFree(app, stream);
    const publisher = this.#newPublisher(app, stream, client);
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

  #newPlayer(app: string, streamName: string, sessionName: string | undefined, client: ClientInfo): { player: WebRtcPlayer; stream: Stream } {
    checkName('app', app);
    checkName('stream', streamName);
    if (sessionName !== undefined) checkName('session', sessionName);
    const application = this.catalog.appByName(app);
    if (!application) throw errors.appNotFound('default', app);
    checkRoomsApp(application, client);
    const stream = application.stream(streamName);
    const forwarder = this.#forwarders.get(stream);
    if (!forwarder || stream.closed) throw errors.streamNotFound(application.vhost, app, streamName);
    if (sessionName !== undefined && (stream.players.has(sessionName) || this.catalog.sessions.has(sessionName))) {
      throw errors.sessionExists(sessionName);
    }
    const session = new Session({ id: sessionName, kind: 'player', vhost: application.vhost, app, stream: streamName, ...client });
    const player = new WebRtcPlayer({ ice: this.#ice, session, forwarder, onForwardingErrors: (n) => (this.#errors.forwardingErrors += n) });
    session.setTeardown(() => player.close());
    this.#track(session, player);
    return { player, stream };
  }

  #attachPlayer(stream: Stream, player: WebRtcPlayer): void {
    if (stream.closed) {
      player.session.close('stream-ended');
      throw errors.streamNotFound(stream.vhost, stream.app, stream.name);
    }
    this.catalog.addSession(player.session);
    stream.addPlayer(player.session);
  }

  /** WHEP: answers a viewer's offer. `sessionName` names the session (`?session=`), else a UUID. */
  async play(app: string, streamName: string, offer: string, sessionName: string | undefined, client: ClientInfo): Promise<{ session: Session; answer: string }> {
    await this.#ensureStream(app, streamName, sessionName);
    const { player, stream } = this.#newPlayer(app, streamName, sessionName, client);
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
    await this.#ensureStream(app, streamName, sessionName);
    const { player, stream } = this.#newPlayer(app, streamName, sessionName, client);
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
