/**
 * `GET /v1/events` resources (\`type\` "events"; the event's own type is the \`event\` attribute): the server's events as JSON:API documents in the MaxScale dialect's
 * style, with where each stands with each webhook endpoint.
 */
import type { EventDeliveryRecord, EventRecord } from '../../store/store.ts';
import type { JsonObject } from './query.ts';

/** `sent` once every endpoint has it, `pending` while one waits for it, `none` without endpoints. */
function statusOf(deliveries: EventDeliveryRecord[]): string {
  if (deliveries.length === 0) return 'none';
  return deliveries.every((d) => d.deliveredAt !== null) ? 'sent' : 'pending';
}

export function eventResource(e: EventRecord & { deliveries: EventDeliveryRecord[] }): JsonObject {
  return {
    id: e.id,
    type: 'events',
    attributes: {
      seq: e.seq,
      // JSON:API reserves \`type\` for the resource's type.
      event: e.type,
      time: e.time,
      node: e.nodeId,
      subject: e.subject,
      data: e.data as JsonObject,
      status: statusOf(e.deliveries),
      deliveries: e.deliveries.map((d) => ({
        endpoint: d.endpoint,
        status: d.deliveredAt === null ? 'pending' : 'sent',
        attempts: d.attempts,
        last_error: d.lastError,
        last_attempt_at: d.lastAttemptAt,
        delivered_at: d.deliveredAt,
      })),
    },
  };
}
