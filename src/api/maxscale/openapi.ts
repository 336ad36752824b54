/**
 * The OpenAPI 3.0 paths and schemas of the MaxScale dialect (seed 002: sessions, and the services
 * they belong to), merged into the document `GET /openapi.json` serves.
 */

const json = (schema: object) => ({ content: { 'application/json': { schema } } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const errors = { description: 'MaxScale error', ...json(ref('MaxScaleErrors')) };
const unauthorized = { description: 'Missing or wrong credentials (Basic user:password)', headers: { 'WWW-Authenticate': { schema: { type: 'string' } } }, ...json(ref('MaxScaleErrors')) };
const query = (name: string, description: string) => ({ name, in: 'query', required: false, schema: { type: 'string' }, description });
const common = [
  query('pretty', 'true: pretty-printed JSON (4 spaces)'),
];
const collection = (type: string) => [
  ...common,
  query(`fields[${type}]`, 'Sparse fieldset: comma-separated paths into attributes and relationships (a/b for nested)'),
  query('filter', 'JSON_POINTER=EXPR: keeps rows whose value equals the JSON value, or matches eq() ne() lt() le() gt() ge() and() or() not()'),
  { name: 'filter[JSON_PATH]', in: 'query', required: false, schema: { type: 'string' }, description: 'filter[JSONPath]=EXPR: keeps rows where any value the path selects matches EXPR; several are ANDed' },
  query('page[size]', 'Rows per page'),
  query('page[number]', 'Page, from 0'),
];
const relationship = (type: string) => ({
  type: 'object',
  required: ['links', 'data'],
  properties: {
    links: { type: 'object', required: ['self'], properties: { self: { type: 'string', format: 'uri' } } },
    data: { type: 'array', items: { type: 'object', required: ['id', 'type'], properties: { id: { type: 'string' }, type: { type: 'string', enum: [type] } } } },
  },
});
const document = (resource: string, many: boolean) => ({
  type: 'object',
  required: ['links', 'data'],
  properties: {
    links: { type: 'object', required: ['self'], properties: { self: { type: 'string', format: 'uri' } } },
    data: many ? { type: 'array', items: ref(resource) } : ref(resource),
    meta: { type: 'object', properties: { total: { type: 'integer' } } },
  },
});

export function maxScaleOpenApi(): { paths: Record<string, object>; schemas: Record<string, object> } {
  const id = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
  return {
    schemas: {
      MaxScaleErrors: {
        type: 'object',
        required: ['errors'],
        properties: { errors: { type: 'array', items: { type: 'object', required: ['detail'], properties: { detail: { type: 'string' } } } } },
      },
      MaxScaleSession: {
        type: 'object',
        required: ['id', 'type', 'links'],
        description: 'attributes and relationships are there unless a sparse fieldset leaves them out',
        properties: {
          id: { type: 'string' },
          type: { type: 'string', enum: ['sessions'] },
          relationships: { type: 'object', properties: { services: relationship('services') } },
          attributes: {
            type: 'object',
            properties: {
              state: { type: 'string', enum: ['Session created', 'Session started', 'Session stopped'] },
              user: { type: 'string', description: 'The credential user, the participant id, or anonymous' },
              remote: { type: 'string', description: 'Client address (its name with rdns=true)' },
              port: { type: 'integer' },
              connected: { type: 'string', example: 'Wed May 17 10:06:35 2017', description: "C asctime() of the server's local time" },
              seconds_alive: { type: 'number' },
              idle: { type: 'number', description: 'Seconds since the last packet or message' },
              memory: { type: 'object', properties: { total: { type: 'integer', description: 'Bytes of packet buffers held' } } },
              io_activity: { type: 'integer', description: 'Packets in and out during the last 30 s' },
              kind: { type: 'string', description: 'publisher, player, pull, participant (and any kind added later)' },
              protocol: { type: 'string' },
              vhost: { type: 'string' },
              app: { type: 'string' },
              stream: { type: 'string' },
              room_session: { type: 'string', nullable: true },
              node: { type: 'string', description: 'The node that holds the session (KILN_NODE_ID)' },
              user_agent: { type: 'string' },
              bytes_in: { type: 'integer' },
              bytes_out: { type: 'integer' },
              packets_in: { type: 'integer' },
              packets_out: { type: 'integer' },
            },
          },
          links: { type: 'object', properties: { self: { type: 'string', format: 'uri' } } },
        },
      },
      MaxScaleService: {
        type: 'object',
        required: ['id', 'type', 'links'],
        description: 'attributes and relationships are there unless a sparse fieldset leaves them out',
        properties: {
          id: { type: 'string', description: 'vhost/app, or the name of a room' },
          type: { type: 'string', enum: ['services'] },
          attributes: {
            type: 'object',
            properties: {
              router: { type: 'string', enum: ['application', 'room'] },
              state: { type: 'string' },
              started: { type: 'string' },
              connections: { type: 'integer' },
              total_connections: { type: 'integer' },
              statistics: { type: 'object' },
              kind: { type: 'string', enum: ['application', 'room'] },
            },
          },
          relationships: { type: 'object', properties: { sessions: relationship('sessions') } },
          links: { type: 'object', properties: { self: { type: 'string', format: 'uri' } } },
        },
      },
      KilnEvent: {
        type: 'object',
        required: ['id', 'type', 'attributes'],
        properties: {
          id: { type: 'string', description: 'The event id, as sent in the body and in X-Kiln-Event-Id' },
          type: { type: 'string', enum: ['events'] },
          attributes: {
            type: 'object',
            required: ['seq', 'event', 'time', 'node', 'subject', 'data', 'status', 'deliveries'],
            properties: {
              seq: { type: 'integer', description: 'Its place in the outbox' },
              event: { type: 'string', example: 'session.closed', description: 'The event type (the webhook body\'s `type`)' },
              time: { type: 'string', format: 'date-time' },
              node: { type: 'string', description: 'The node that wrote it' },
              subject: { type: 'string', description: 'What it is about: a session id, vhost/app/stream, a room session or participant id, a recording uuid' },
              data: { type: 'object', description: 'As sent: e.g. {session: {...}, reason, closed_by} for session.closed' },
              status: { type: 'string', enum: ['sent', 'pending', 'none'], description: 'none: no endpoint is configured' },
              deliveries: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    endpoint: { type: 'string', format: 'uri' },
                    status: { type: 'string', enum: ['sent', 'pending'] },
                    attempts: { type: 'integer' },
                    last_error: { type: 'string', nullable: true },
                    last_attempt_at: { type: 'string', nullable: true },
                    delivered_at: { type: 'string', nullable: true },
                  },
                },
              },
            },
          },
        },
      },
      MaxScaleServer: {
        type: 'object',
        required: ['id', 'type', 'links'],
        description: 'A Kiln node: every node of the cluster (cluster mode), or this node alone',
        properties: {
          id: { type: 'string', description: 'The node id (KILN_NODE_ID)' },
          type: { type: 'string', enum: ['servers'] },
          attributes: {
            type: 'object',
            properties: {
              state: { type: 'string', enum: ['Running', 'Down'] },
              parameters: { type: 'object', properties: { address: { type: 'string' }, port: { type: 'integer', nullable: true }, protocol: { type: 'string' } } },
              statistics: { type: 'object', properties: { connections: { type: 'integer' } } },
              node_state: { type: 'string', enum: ['alive', 'dead', 'stopped'] },
              public_url: { type: 'string' },
              api_url: { type: 'string' },
              ovt_url: { type: 'string' },
              started: { type: 'string' },
              last_heartbeat: { type: 'string', format: 'date-time' },
              load: { type: 'object', properties: { sessions: { type: 'integer' }, streams: { type: 'integer' }, rss: { type: 'integer' } } },
            },
          },
          links: { type: 'object', properties: { self: { type: 'string', format: 'uri' } } },
        },
      },
    },
    paths: {
      '/v1/sessions': {
        get: {
          summary: 'MaxScale: every session of the server (publishers, players, pulls, room participants)',
          parameters: [...collection('sessions'), query('rdns', 'true: reverse DNS on client addresses')],
          responses: { 200: { description: 'OK', ...json(document('MaxScaleSession', true)) }, 400: errors, 401: unauthorized },
        },
      },
      '/v1/sessions/{id}': {
        get: {
          summary: 'MaxScale: one session',
          parameters: [id, ...common, query('fields[sessions]', 'Sparse fieldset'), query('rdns', 'true: reverse DNS on the client address')],
          responses: { 200: { description: 'OK', ...json(document('MaxScaleSession', false)) }, 401: unauthorized, 404: errors },
        },
        delete: {
          summary: 'MaxScale: disconnect the client now, or after ttl seconds',
          parameters: [id, query('ttl', 'Seconds before the session is closed')],
          responses: { 204: { description: 'Killed (or scheduled)' }, 401: unauthorized, 404: errors },
        },
      },
      '/v1/services': {
        get: {
          summary: 'MaxScale: the applications and rooms sessions belong to',
          parameters: collection('services'),
          responses: { 200: { description: 'OK', ...json(document('MaxScaleService', true)) }, 400: errors, 401: unauthorized },
        },
      },
      '/v1/services/{id}': {
        get: {
          summary: 'MaxScale: one service (an app as vhost%2Fapp or vhost/app, or a room by name)',
          parameters: [id, ...common, query('fields[services]', 'Sparse fieldset')],
          responses: { 200: { description: 'OK', ...json(document('MaxScaleService', false)) }, 401: unauthorized, 404: errors },
        },
      },
      '/v1/events': {
        get: {
          summary: "Kiln's events (stream created/destroyed, session opened/closed, room session started/ended, participant joined/left, recording status), newest first, with where each stands with each webhook",
          parameters: [
            ...common,
            query('page[size]', 'Events per page, 1-1000 (default 100)'),
            query('page[number]', 'Page, from 0'),
            query('pending', 'true: only the events some endpoint has not received yet'),
          ],
          responses: { 200: { description: 'OK', ...json(document('KilnEvent', true)) }, 400: errors, 401: unauthorized },
        },
      },
      '/v1/servers': {
        get: {
          summary: 'MaxScale servers: the Kiln nodes (of the cluster, or this one), with their state and load',
          parameters: collection('servers'),
          responses: { 200: { description: 'OK', ...json(document('MaxScaleServer', true)) }, 400: errors, 401: unauthorized },
        },
      },
      '/v1/servers/{id}': {
        get: {
          summary: 'MaxScale: one node',
          parameters: [id, ...common, query('fields[servers]', 'Sparse fieldset')],
          responses: { 200: { description: 'OK', ...json(document('MaxScaleServer', false)) }, 401: unauthorized, 404: errors },
        },
      },
    },
  };
}
