/**
 * The OpenAPI 3.0 paths and schemas of the OpenVidu 1.x dialect (seed 004: sessions, tokens and recordings),
 * merged into the document `GET /openapi.json` serves.
 */

const json = (schema: object) => ({ content: { 'application/json': { schema } } });
const error = { $ref: '#/components/schemas/OpenViduError' };
const unauthorized = { description: 'Missing or wrong credentials (Basic OPENVIDUAPP:<secret>)', headers: { 'WWW-Authenticate': { schema: { type: 'string' } } }, ...json(error) };

export function openViduOpenApi(): { paths: Record<string, object>; schemas: Record<string, object> } {
  return {
    schemas: {
      OpenViduRecording: {
        type: 'object',
        required: ['createdAt', 'duration', 'hasAudio', 'hasVideo', 'id', 'name', 'sessionId', 'size', 'status', 'url'],
        properties: {
          createdAt: { type: 'integer', description: 'When the recording started, UTC milliseconds' },
          duration: { type: 'number', description: 'Seconds of the file (0 until stopped)' },
          hasAudio: { type: 'boolean' },
          hasVideo: { type: 'boolean' },
          id: { type: 'string', description: "The session's name, then -1, -2… for later recordings of it" },
          name: { type: 'string' },
          sessionId: { type: 'string' },
          size: { type: 'integer', description: 'Bytes of the file (0 until composed)' },
          status: { type: 'string', enum: ['starting', 'started', 'stopped', 'available', 'failed'], description: '`available` (with `url`) only with free access; otherwise a composed file stays `stopped`' },
          url: { type: 'string', nullable: true, description: '<KILN_PUBLIC_URL>/recordings/<id>.mp4 with free access, else null' },
        },
      },
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
      '/api/sessions/{id}': {
        delete: {
          summary: 'OpenVidu 2.x: close a session: every participant leaves and the room session is completed',
          parameters: [{
            name: 'id', in: 'path', required: true, schema: { type: 'string' },
            description: 'The session id as POST /api/sessions gave it (URL-encoded), or its last segment',
          }],
          responses: {
            204: { description: 'The session was open and is now closed' },
            401: unauthorized,
            404: { description: 'No such session open', ...json(error) },
          },
        },
      },
      '/api/recordings/start': {
        post: {
          summary: 'OpenVidu: start recording a session; answers once the file holds media',
          requestBody: { required: true, ...json({ type: 'object', required: ['session'], properties: { session: { type: 'string' } } }) },
          responses: {
            200: { description: 'Recording (status `started`)', ...json({ $ref: '#/components/schemas/OpenViduRecording' }) },
            400: { description: 'No `session` in the body, a body that is not JSON, or a session with no connected participants', ...json(error) },
            401: unauthorized,
            404: { description: 'No such session', ...json(error) },
            409: { description: 'The session is being recorded already', ...json(error) },
          },
        },
      },
      '/api/recordings/stop/{id}': {
        post: {
          summary: 'OpenVidu: stop a recording; answers once its MP4 is composed (or after recordings.stopWaitMs)',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            200: { description: 'Recording (status `stopped`, or `available` with free access)', ...json({ $ref: '#/components/schemas/OpenViduRecording' }) },
            401: unauthorized,
            404: { description: 'No such recording', ...json(error) },
            406: { description: 'The recording is still `starting`', ...json(error) },
            409: { description: 'The recording is not being recorded', ...json(error) },
          },
        },
      },
      '/api/recordings': {
        get: {
          summary: 'OpenVidu: every recording, newest first',
          responses: {
            200: { description: 'Recordings', ...json({ type: 'object', required: ['count', 'items'], properties: { count: { type: 'integer' }, items: { type: 'array', items: { $ref: '#/components/schemas/OpenViduRecording' } } } }) },
            401: unauthorized,
          },
        },
      },
      '/api/recordings/{id}': {
        get: {
          summary: 'OpenVidu: one recording',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { 200: { description: 'Recording', ...json({ $ref: '#/components/schemas/OpenViduRecording' }) }, 401: unauthorized, 404: { description: 'No such recording', ...json(error) } },
        },
        delete: {
          summary: 'OpenVidu: delete a recording, its file and its record',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            204: { description: 'Deleted' },
            401: unauthorized,
            404: { description: 'No such recording', ...json(error) },
            409: { description: 'The recording is starting or started: stop it first', ...json(error) },
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
