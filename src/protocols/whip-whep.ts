/**
 * WHIP (RFC 9725) and WHEP on the signaling port, with OvenMediaEngine's URL shape:
 * `POST /{app}/{stream}?direction=whip` publishes, `POST /{app}/{stream}` (or `?direction=whep`)
 * plays. 201 carries the SDP answer and a `Location` resource; `PATCH` on it takes trickled
 * candidates (`application/trickle-ice-sdpfrag`), `DELETE` ends the session.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errors, KilnError } from '../core/errors.ts';
import type { Session } from '../core/session.ts';
import { clientOf, type MediaEngine } from '../media/engine.ts';
import { requestedUrl } from '../access/access-control.ts';
import { sdpCandidates } from '../media/sdp.ts';
import type { Credentials } from '../api/credentials.ts';

export interface WhipWhepOptions {
  engine: MediaEngine;
  credentials: Credentials;
}

/**
 * Query values this endpoint understands; anything else is a 400, but for the app's signed-policy
 * parameters and, when the app has an admission webhook, any (the control server reads the URL).
 */
const QUERY_KEYS = new Set(['direction', 'session', 'transport']);

export function registerWhipWhep(app: FastifyInstance, options: WhipWhepOptions): void {
  const { engine, credentials } = options;
  /** Live WHIP/WHEP resources by their id (= session id). */
  const resources = new Map<string, Session>();

  for (const type of ['application/sdp', 'application/trickle-ice-sdpfrag']) {
    app.addContentTypeParser(type, { parseAs: 'string' }, (_req, body, done) => done(null, body));
  }

  app.post<{ Params: { app: string; stream: string }; Querystring: Record<string, string | string[]> }>(
    '/:app/:stream',
    async (request, reply) => {
      const query = request.query;
      const { app: appName, stream } = request.params;
      const direction = query.direction ?? 'whep';
      if (direction !== 'whip' && direction !== 'whep') {
        throw errors.badRequest(Array.isArray(direction) ? 'Query parameter direction is given more than once' : `Unknown direction "${direction}": use whip to publish or whep to play`);
      }
      const application = engine.catalog.appByName(appName);
      const accessKeys = application && engine.access ? engine.access.queryKeys(application.vhost, application.name, direction === 'whip' ? 'publish' : 'play') : [];
      for (const key of Object.keys(query)) {
        if (!QUERY_KEYS.has(key) && accessKeys !== 'any' && !accessKeys.includes(key)) throw errors.badRequest(`Unknown query parameter: ${key}`);
        if (Array.isArray(query[key])) throw errors.badRequest(`Query parameter ${key} is given more than once`);
      }
      const type = (request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
      if (type !== 'application/sdp') throw errors.unsupportedMedia('Content-Type must be application/sdp');
      const offer = request.body as string;
      const url = requestedUrl(request.raw, 'http');
      let session: Session;
      let answer: string;
      if (direction === 'whip') {
        const user = credentials.bearer(request.headers.authorization);
        if (!user) throw errors.unauthorized('WHIP needs Authorization: Bearer <password of an access token>');
        ({ session, answer } = await engine.publish(appName, stream, offer, clientOf(request.socket, request.headers['user-agent'], 'whip', user, url)));
      } else {
        let user: string | undefined;
        if (application?.settings.playbackRequiresToken) {
          user = credentials.bearer(request.headers.authorization);
          if (!user) throw errors.unauthorized('Playback of this application needs Authorization: Bearer <password>');
        }
        const name = query.session as string | undefined;
        ({ session, answer } = await engine.play(appName, stream, offer, name, clientOf(request.socket, request.headers['user-agent'], 'whep', user, url)));
      }
      resources.set(session.id, session);
      session.once('close', () => resources.delete(session.id));
      const location = `/${encodeURIComponent(appName)}/${encodeURIComponent(stream)}/${direction}/${encodeURIComponent(session.id)}`;
      return reply
        .code(201)
        .header('Content-Type', 'application/sdp')
        .header('Location', location)
        .header('ETag', `"${session.id}"`)
        .header('Accept-Patch', 'application/trickle-ice-sdpfrag')
        .send(answer);
    },
  );

  const resource = (request: FastifyRequest<{ Params: { id: string; direction: string } }>): Session => {
    const session = resources.get(request.params.id);
    const direction = request.params.direction;
    if (!session || (direction !== 'whip' && direction !== 'whep')) {
      throw new KilnError('NOT_FOUND', 'No such WHIP/WHEP session');
    }
    return session;
  };

  app.delete<{ Params: { app: string; stream: string; direction: string; id: string } }>(
    '/:app/:stream/:direction/:id',
    async (request, reply) => {
      resource(request).close('client-left');
      return reply.code(200).send();
    },
  );

  app.patch<{ Params: { app: string; stream: string; direction: string; id: string } }>(
    '/:app/:stream/:direction/:id',
    async (request, reply) => {
      const session = resource(request);
      const type = (request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
      if (type !== 'application/trickle-ice-sdpfrag') {
        throw errors.unsupportedMedia('Content-Type must be application/trickle-ice-sdpfrag');
      }
      const frag = typeof request.body === 'string' ? request.body : '';
      for (const candidate of sdpCandidates(frag)) {
        await engine.addCandidate(session, candidate).catch(() => {
          throw errors.badRequest(`Candidate not usable: ${candidate.candidate.slice(0, 100)}`);
        });
      }
      return reply.code(204).send();
    },
  );

  app.route({
    method: ['GET', 'PUT', 'HEAD'],
    url: '/:app/:stream/:direction/:id',
    handler: async (_request, reply) => reply.code(405).header('Allow', 'PATCH, DELETE, OPTIONS').send({ error: 'Method Not Allowed' }),
  });
}

/** Writes a KilnError as WHIP/WHEP clients expect: the status with a plain-text reason. */
export function sendSignalingError(reply: FastifyReply, err: KilnError): FastifyReply {
  if (err.status === 401) reply.header('WWW-Authenticate', 'Bearer');
  return reply.code(err.status).header('Content-Type', 'text/plain; charset=utf-8').send(`${err.message}\n`);
}
