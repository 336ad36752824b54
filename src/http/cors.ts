/**
 * CORS for browser pages on other origins, shared by both listeners: an allowed Origin (or any,
 * with `*`) gets Access-Control-Allow-Origin and the headers it may read; a list of origins makes
 * answers vary by Origin. Each listener answers its own OPTIONS requests.
 */
import type { FastifyReply } from 'fastify';

/** Sets the CORS headers of an answer to `origin`; whether that origin is allowed. */
export function allowOrigin(reply: FastifyReply, origin: string | undefined, allowed: readonly string[], expose: string): boolean {
  const any = allowed.includes('*');
  if (!any) reply.header('Vary', 'Origin');
  if (origin === undefined || !(any || allowed.includes(origin))) return false;
  reply.header('Access-Control-Allow-Origin', any ? '*' : origin).header('Access-Control-Expose-Headers', expose);
  return true;
}
