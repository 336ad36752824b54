/**
 * Cluster mode: a control call about something another node holds (a room session, a recording
 * whose files are on its disk) is handed to that node over the cluster bus, run there through its
 * own API (same credentials, same dialect), and its answer is sent back as it came.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Cluster } from '../cluster/cluster.ts';
import { isObject } from '../core/json.ts';

/** Marks a call that was forwarded once: it is answered where it lands, never forwarded again. */
export const FORWARDED_HEADER = 'x-kiln-forwarded';
/**
 * The header's value: a secret of this process, set by `ApiServer.runForwarded` (which runs the
 * call in this process), so a client sending the header itself is forwarded all the same.
 */
export const FORWARDED_SECRET = randomBytes(18).toString('base64url');

/** A control call as it travels to the node that runs it. */
export interface ForwardedCall {
  method: string;
  url: string;
  authorization?: string;
  body?: string;
}

/** Its answer. */
export interface ForwardedAnswer {
  status: number;
  contentType: string;
  body: string;
}

/** Whether this call came from another node (and so must be answered here). */
export function isForwarded(request: FastifyRequest): boolean {
  return request.headers[FORWARDED_HEADER] === FORWARDED_SECRET;
}

/**
 * `nodeId` when it is a live node of the cluster; undefined when it is not (stopped, dead: what it
 * held is closed, or waits for it).
 */
export async function liveNode(cluster: Cluster, nodeId: string | undefined): Promise<string | undefined> {
  if (nodeId === undefined) return undefined;
  return (await cluster.node(nodeId))?.state === 'alive' ? nodeId : undefined;
}

/** Reads a ForwardedCall from a bus message's arguments; undefined when it is not one. */
export function forwardedCallOf(args: Record<string, unknown>): ForwardedCall | undefined {
  if (typeof args.method !== 'string' || typeof args.url !== 'string' || !args.url.startsWith('/')) return undefined;
  return {
    method: args.method,
    url: args.url,
    authorization: typeof args.authorization === 'string' ? args.authorization : undefined,
    body: typeof args.body === 'string' ? args.body : undefined,
  };
}

/** Hands the call to `nodeId` and sends its answer; `timeoutMs` for calls that may take long. */
export async function forwardCall(cluster: Cluster, nodeId: string, request: FastifyRequest, reply: FastifyReply, timeoutMs?: number): Promise<FastifyReply> {
  const call: ForwardedCall = {
    method: request.method,
    url: request.url,
    authorization: request.headers.authorization,
    body: request.body === undefined ? undefined : JSON.stringify(request.body),
  };
  const answer = await cluster.request(nodeId, 'api', call as unknown as Record<string, unknown>, timeoutMs);
  if (!isObject(answer) || typeof answer.status !== 'number' || typeof answer.body !== 'string') throw new Error(`node ${nodeId} gave a malformed answer`);
  reply.code(answer.status);
  if (typeof answer.contentType === 'string' && answer.contentType !== '') reply.type(answer.contentType);
  return reply.send(answer.body);
}
