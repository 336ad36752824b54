/**
 * The OpenAPI 3.0 paths and schemas of the OpenVidu 1.x dialect (seed 004: sessions and tokens),
 * merged into the document `GET /openapi.json` serves.
 */

const json = (schema: object) => ({ content: { 'application/json': { schema } } });
const error = { $ref: '#/components/schemas/OpenViduError' };
const unauthorized = { description: 'Missing or wrong credentials (Basic OPENVIDUAPP:<secret>)', headers: { 'WWW-Authenticate': { schema: { type: 'string' } } }, ...json(error) };

export function openViduOpenApi(): { paths: Record<string, object>; schemas: Record<string, object> } {
  return {
    schemas: {
      OpenViduError: {
        type: 'object',
        required: ['timestamp', 'status', 'error', 'message', 'path'],
        properties: { timestamp: { type: 'integer' }, status: { type: 'integer' }, error: { type: 'string' }, message: { type: 'string' }, path: { type: 'string' } },
      },
    },
    paths: {
      '/api/sessions': {
        get: { summary: 'OpenVidu: the ids of the running sessions', responses: { 200: { description: 'OK', ...json({ type: 'array', items: { type: 'string' } }) }, 401: unauthorized } },
        post: {
          summary: 'OpenVidu: a new session id (a room session in an auto-created room)',
          requestBody: {
            required: false,
            ...json({
              type: 'object',
              properties: {
                archiveMode: { type: 'string', enum: ['ALWAYS', 'MANUAL'], default: 'MANUAL' },
                archiveLayout: { type: 'string', enum: ['BEST_FIT'], default: 'BEST_FIT' },
                mediaMode: { type: 'string', enum: ['ROUTED'], default: 'ROUTED' },
              },
            }),
          },
          responses: {
            200: { description: 'The session id: KILN_PUBLIC_URL in ws(s) form plus /<16 lowercase alphanumerics>', ...json({ type: 'object', required: ['id'], properties: { id: { type: 'string', example: 'wss://localhost:8443/jpifeuzfati5qaj8' } } }) },
            400: { description: 'A body value not available yet or not defined, or a body that is not a JSON object', ...json(error) },
            401: unauthorized,
          },
        },
      },
      '/api/tokens': {
        post: {
          summary: 'OpenVidu: a single-use token to join a session',
          requestBody: {
            required: true,
            ...json({
              type: 'object',
              required: ['session', 'role'],
              properties: {
                session: { type: 'string' },
                role: { type: 'string', enum: ['SUBSCRIBER', 'PUBLISHER', 'MODERATOR'] },
                data: { type: 'string', maxLength: 1000 },
              },
            }),
          },
          responses: {
            200: {
              description: 'The token',
              ...json({
                type: 'object',
                required: ['token', 'session', 'role', 'data', 'id'],
                properties: { token: { type: 'string' }, session: { type: 'string' }, role: { type: 'string' }, data: { type: 'string' }, id: { type: 'string' } },
              }),
            },
            400: { description: 'Unknown or ended session, bad role, data over 1000 characters, or a body that is not JSON', ...json(error) },
            401: unauthorized,
          },
        },
      },
    },
  };
}
