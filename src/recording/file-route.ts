/**
 * Recording files over HTTP: `GET|HEAD /recordings/<id>.mp4` (SPEC.md §3), with single byte ranges
 * (RFC 9110 §14) so browsers can seek. Credentials are HTTP Basic (any configured credential, or
 * OpenVidu's `OPENVIDUAPP:<secret>`) unless free access is configured; a temporary link signed by
 * this node (the SignalWire dialect's `uri`) needs none until it expires.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Credentials } from '../api/credentials.ts';
import { RECORDING_ID, type Recordings } from './recordings.ts';

/** The URL a recording's file is served at: `<publicUrl>/recordings/<id>.mp4` (the route below). */
export function recordingUrl(publicUrl: string, id: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/recordings/${encodeURIComponent(id)}.mp4`;
}

/**
 * Signs temporary links to recording files: HMAC-SHA256 of `<uuid>.<expires>`, the recording's
 * uuid (ids are reused after a delete; uuids never are).
 */
export class RecordingLinks {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    this.#key = key;
  }

  #signature(id: string, expires: number): Buffer {
    return createHmac('sha256', this.#key).update(`${id}.${expires}`).digest();
  }

  /** The query string (`expires=…&signature=…`) of a link to recording `id` (its uuid) valid for `ttlSeconds`. */
  query(id: string, ttlSeconds: number, now = Date.now()): string {
    const expires = Math.floor(now / 1000) + ttlSeconds;
    return `expires=${expires}&signature=${this.#signature(id, expires).toString('base64url')}`;
  }

  /** Whether `expires`/`signature` make a link to `id` that holds now. */
  valid(id: string, expires: unknown, signature: unknown, now = Date.now()): boolean {
    if (typeof expires !== 'string' || typeof signature !== 'string' || !/^\d{1,12}$/.test(expires)) return false;
    const at = Number(expires);
    if (at * 1000 <= now) return false;
    const given = Buffer.from(signature, 'base64url');
    const wanted = this.#signature(id, at);
    return given.length === wanted.length && timingSafeEqual(given, wanted);
  }
}

export interface RecordingFileRouteOptions {
  recordings: Recordings;
  credentials: Credentials;
  links: RecordingLinks;
  freeAccess: boolean;
  /** This node's id: a recording of another node (cluster mode) is on its disk. */
  nodeId?: string;
  /** Cluster mode: the public URL of the node whose disk has the file (the request is redirected there). */
  publicUrlOf?: (nodeId: string) => Promise<string | undefined>;
}

/** The one range of a `Range` header within `size` bytes; 'unsatisfiable'; undefined to send it all. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  // Several ranges, or another unit: the whole file (RFC 9110 lets a server ignore Range).
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

export function registerRecordingFiles(app: FastifyInstance, options: RecordingFileRouteOptions): void {
  const { recordings, credentials, links, freeAccess } = options;
  const plain = (reply: FastifyReply, status: number, text: string) => reply.code(status).type('text/plain; charset=utf-8').send(`${text}\n`);
  app.route<{ Params: { file: string }; Querystring: Record<string, unknown> }>({
    method: ['GET', 'HEAD'],
    url: '/recordings/:file',
    handler: async (request, reply) => {
      const m = /^(.+)\.mp4$/.exec(request.params.file);
      const id = m?.[1];
      if (!id || !RECORDING_ID.test(id)) return plain(reply, 404, 'No such recording');
      const denied = () => plain(reply.header('WWW-Authenticate', 'Basic realm="Kiln recordings"'), 401, 'Credentials are required');
      const authorized = freeAccess || credentials.basic(request.headers.authorization) !== undefined
        || credentials.basicWithAnyUser(request.headers.authorization, 'OPENVIDUAPP') !== undefined;
      const { expires, signature } = request.query;
      if (!authorized && signature === undefined) return denied();
      const record = await recordings.get(id);
      // A signed link holds for the one recording it was made for (its uuid), not a later one of the same id.
      if (!authorized && !(record && links.valid(record.uuid, expires, signature))) return denied();
      if (!record || record.id !== id || record.status !== 'available') return plain(reply, 404, 'No such recording');
      if (options.publicUrlOf && record.nodeId !== options.nodeId) {
        // Cluster mode: the file is on the disk of the node that recorded it.
        const holder = await options.publicUrlOf(record.nodeId);
        if (!holder) return plain(reply, 503, `The node that keeps this recording (${record.nodeId}) is not running`);
        const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : '';
        return reply.redirect(recordingUrl(holder, id) + query, 307);
      }
      const path = recordings.fileOf(id);
      let size: number;
      let mtime: Date;
      try {
        const s = await stat(path);
        size = s.size;
        mtime = s.mtime;
      } catch {
        return plain(reply, 404, 'No such recording');
      }
      const etag = `"${size.toString(16)}-${mtime.getTime().toString(16)}"`;
      reply.header('Accept-Ranges', 'bytes').header('ETag', etag).header('Last-Modified', mtime.toUTCString()).type('video/mp4');
      const ifRange = request.headers['if-range'];
      const range = ifRange && ifRange !== etag ? undefined : parseRange(request.headers.range, size);
      if (range === 'unsatisfiable') return reply.code(416).header('Content-Range', `bytes */${size}`).send();
      const { start, end } = range ?? { start: 0, end: size - 1 };
      if (range) reply.code(206).header('Content-Range', `bytes ${start}-${end}/${size}`);
      reply.header('Content-Length', String(size === 0 ? 0 : end - start + 1));
      if (request.method === 'HEAD' || size === 0) return reply.send();
      return reply.send(createReadStream(path, { start, end }));
    },
  });
}
