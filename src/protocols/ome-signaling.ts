/**
 * OvenMediaEngine's WebSocket signaling, as OvenPlayer (play: `ws://HOST:3333/{app}/{stream}`) and
 * OvenLiveKit (publish: `…?direction=send`) speak it. In both directions the client sends
 * `request_offer`, the server answers with `offer` (SDP with its candidates), the client sends
 * `answer` and may trickle `candidate`s; `stop` or closing the socket ends the session.
 */
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import type { Logger } from 'pino';
import { errors, isKilnError, KilnError } from '../core/errors.ts';
import type { Session } from '../core/session.ts';
import { clientOf, type MediaEngine } from '../media/engine.ts';
import { requestedUrl } from '../access/access-control.ts';
import { sdpCandidates, type CandidateInit } from '../media/sdp.ts';
import type { Credentials } from '../api/credentials.ts';

export interface OmeSignalingOptions {
  engine: MediaEngine;
  credentials: Credentials;
  logger: Logger;
}

interface Pending {
  session: Session;
  accept: (answer: string) => Promise<unknown>;
  addCandidate: (c: CandidateInit) => Promise<void>;
}

let nextId = 1;

/** `text` cut to what a WebSocket close frame carries (123 bytes of UTF-8), on a character boundary. */
function closeReason(text: string): string {
  let out = '';
  let bytes = 0;
  for (const ch of text) {
    bytes += Buffer.byteLength(ch);
    if (bytes > 123) break;
    out += ch;
  }
  return out;
}

export function handleOmeSignaling(ws: WebSocket, request: IncomingMessage, segments: string[], options: OmeSignalingOptions): void {
  const { engine, credentials } = options;
  const url = new URL(request.url ?? '/', 'http://x');
  const [app, stream] = segments;
  const direction = url.searchParams.get('direction') ?? 'recv';
  const client = clientOf(request.socket, request.headers['user-agent'], 'ome-webrtc', undefined, requestedUrl(request, 'ws'));
  const id = nextId++;
  let pending: Pending | undefined;
  let closed = false;

  const send = (message: object) => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
  };
  // OME's error message: `{"code": <HTTP status>, "error": "<text>"}` (rtc_signalling_server.cpp).
  // OvenPlayer and OvenLiveKit read `error`; neither reads the close code. The socket closes with
  // 4000 + the status for a client error (4403: refused by the app's access rules), and the reason.
  const fail = (err: KilnError | Error, closeSocket: boolean) => {
    const code = isKilnError(err) ? err.status : 500;
    const message = isKilnError(err) ? err.message : 'Internal Server Error';
    if (!isKilnError(err)) options.logger.error({ err }, 'OME signaling failed');
    send({ code, error: message });
    if (closeSocket) ws.close(code >= 400 && code < 500 ? 4000 + code : 1000, closeReason(message));
  };

  // OME pings every WebSocket to keep it (and proxies in between) alive.
  const keepalive = setInterval(() => ws.ping('Kiln'), 20_000);
  ws.on('close', () => {
    clearInterval(keepalive);
    closed = true;
    pending?.session.close('client-left');
  });

  const requestOffer = async () => {
    if (pending) throw errors.badRequest('An offer was already requested on this connection');
    try {
      await createOffer();
    } catch (err) {
      if (!isKilnError(err)) throw err;
      throw new KilnError(err.code, `Cannot create offer: ${err.message}`, err.subject);
    }
  };

  const createOffer = async () => {
    if (direction === 'send') {
      // As in OvenMediaEngine, WebSocket publishing is open (browsers cannot set headers on a
      // WebSocket); a `token` query value, when given, must be an access-token password.
      const token = url.searchParams.get('token');
      if (token !== null) {
        const user = credentials.bearer(`Bearer ${token}`);
        if (!user) throw errors.unauthorized('The token is not a valid access-token password');
        client.user = user;
      }
      const offer = await engine.offerPublish(app, stream, client);
      pending = offer;
      sendOffer(offer.offer);
    } else if (direction === 'recv') {
      const name = url.searchParams.get('session') ?? undefined;
      const offer = await engine.offerPlay(app, stream, name, client);
      pending = offer;
      sendOffer(offer.offer);
    } else {
      throw errors.badRequest(`Unknown direction "${direction}": use send to publish`);
    }
    if (closed) pending.session.close('client-left');
    else pending.session.once('close', () => ws.close(1000, 'session closed'));
  };

  const sendOffer = (sdp: string) => {
    send({
      command: 'offer',
      id,
      peer_id: 0,
      code: 200,
      sdp: { type: 'offer', sdp },
      // OME sends the candidates of the first (bundled) m-line only.
      candidates: sdpCandidates(sdp).filter((c) => c.sdpMLineIndex === 0),
      // No `ice_servers`: OvenPlayer and OvenLiveKit switch to relay-only ICE when the key is present.
    });
  };

  ws.on('message', (data, isBinary) => {
    void (async () => {
      if (isBinary) throw errors.badRequest('Signaling messages are JSON text');
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(data.toString());
      } catch {
        throw errors.badRequest('Signaling message is not JSON');
      }
      if (typeof message !== 'object' || message === null) throw errors.badRequest('Signaling message must be a JSON object');
      if (message.command !== 'request_offer' && message.command !== 'ping' && pending && Number(message.id) !== id) {
        throw errors.badRequest('Invalid ID');
      }
      switch (message.command) {
        case 'request_offer':
          return requestOffer();
        case 'answer': {
          if (!pending) throw errors.badRequest('answer before offer');
          const sdp = message.sdp as { sdp?: unknown } | undefined;
          if (!sdp || typeof sdp.sdp !== 'string') throw errors.badRequest('answer needs sdp.sdp');
          await pending.accept(sdp.sdp);
          return;
        }
        case 'candidate': {
          if (!pending) throw errors.badRequest('candidate before offer');
          const list = Array.isArray(message.candidates) ? message.candidates : [];
          for (const c of list as CandidateInit[]) {
            if (c && typeof c.candidate === 'string' && c.candidate !== '') await pending.addCandidate(c).catch(() => {});
          }
          return;
        }
        case 'stop':
          pending?.session.close('client-left');
          ws.close(1000, 'stopped');
          return;
        case 'ping':
          send({ command: 'pong' });
          return;
        default:
          throw errors.badRequest(`Unknown command: ${String(message.command).slice(0, 40)}`);
      }
    })().catch((err) => fail(err, !pending || pending.session.closed));
  });
}
