/**
 * The OpenAPI 3.0 document of the OvenMediaEngine REST v1 dialect as Kiln serves it
 * (`GET /openapi.json` on the API port).
 */

const envelope = (response: object) => ({
  type: 'object',
  required: ['statusCode', 'message'],
  properties: { statusCode: { type: 'integer' }, message: { type: 'string' }, response },
});
const error = { $ref: '#/components/schemas/Error' };
const json = (schema: object) => ({ content: { 'application/json': { schema } } });
const names = envelope({ type: 'array', items: { type: 'string' } });
const param = (name: string) => ({ name, in: 'path', required: true, schema: { type: 'string' } });
const errorResponses = {
  401: { description: 'Authentication required', headers: { 'WWW-Authenticate': { schema: { type: 'string' } } }, ...json(error) },
  404: { description: 'The named vhost, app, stream or session does not exist', ...json(error) },
};

export function omeOpenApi(): object {
  const vhost = param('vhost');
  const app = param('app');
  const stream = param('stream');
  return {
    openapi: '3.0.3',
    info: { title: 'Kiln — OvenMediaEngine REST v1 dialect', version: '1.0.0' },
    components: {
      securitySchemes: { basic: { type: 'http', scheme: 'basic' } },
      schemas: {
        Error: { type: 'object', required: ['statusCode', 'message'], properties: { statusCode: { type: 'integer' }, message: { type: 'string' }, response: {} } },
        Track: {
          type: 'object',
          properties: {
            id: { type: 'integer' }, name: { type: 'string' }, type: { type: 'string', enum: ['Video', 'Audio'] },
            video: { type: 'object', properties: { codec: { type: 'string' }, width: { type: 'integer' }, height: { type: 'integer' }, framerate: { type: 'number' }, bitrate: { type: 'integer' }, keyFrameInterval: { type: 'number' }, bypass: { type: 'boolean' } } },
            audio: { type: 'object', properties: { codec: { type: 'string' }, samplerate: { type: 'integer' }, channel: { type: 'integer' }, bitrate: { type: 'integer' }, bypass: { type: 'boolean' } } },
          },
        },
        Stream: {
          type: 'object',
          properties: {
            name: { type: 'string' },
            input: { type: 'object', properties: { createdTime: { type: 'string', format: 'date-time' }, sourceType: { type: 'string' }, sourceUrl: { type: 'string' }, tracks: { type: 'array', items: { $ref: '#/components/schemas/Track' } } } },
            outputs: { type: 'array', items: { type: 'object' } },
          },
        },
      },
    },
    security: [{ basic: [] }],
    paths: {
      '/v1/vhosts': { get: { summary: 'List virtual hosts', responses: { 200: { description: 'OK', ...json(names) }, 401: errorResponses[401] } } },
      '/v1/vhosts/{vhost}': { get: { summary: 'Virtual host info', parameters: [vhost], responses: { 200: { description: 'OK', ...json(envelope({ type: 'object' })) }, ...errorResponses } } },
      '/v1/vhosts/{vhost}/apps': { get: { summary: 'List applications', parameters: [vhost], responses: { 200: { description: 'OK', ...json(names) }, ...errorResponses } } },
      '/v1/vhosts/{vhost}/apps/{app}': { get: { summary: 'Application info', parameters: [vhost, app], responses: { 200: { description: 'OK', ...json(envelope({ type: 'object' })) }, ...errorResponses } } },
      '/v1/vhosts/{vhost}/apps/{app}/streams': {
        get: { summary: 'List streams', parameters: [vhost, app], responses: { 200: { description: 'OK', ...json(names) }, ...errorResponses } },
        post: {
          summary: 'Create Stream (Pull): pull an RTSP URL into a new stream',
          parameters: [vhost, app],
          requestBody: {
            required: true,
            ...json({
              type: 'object',
              required: ['name', 'urls'],
              properties: {
                name: { type: 'string' },
                urls: { type: 'array', minItems: 1, items: { type: 'string', example: 'rtsp://user:password@192.168.0.20:554/stream1' } },
                properties: {
                  type: 'object',
                  properties: {
                    persistent: { type: 'boolean', default: false },
                    noInputFailoverTimeout: { type: 'integer', default: 3000, description: 'ms (also accepted as noInputFailoverTimeoutMs)' },
                    unusedStreamDeletionTimeout: { type: 'integer', default: 60000, description: 'ms (also accepted as unusedStreamDeletionTimeoutMs)' },
                    ignoreRtcpSRTimestamp: { type: 'boolean', default: false },
                    retryCount: { type: 'integer', default: 1 },
                    rtspTransport: { type: 'string', enum: ['tcp', 'udp'], default: 'tcp', description: 'Kiln: the transport tried first' },
                  },
                },
              },
            }),
          },
          responses: {
            201: { description: 'Created, once the source\'s tracks are known', ...json(envelope({ $ref: '#/components/schemas/Stream' })) },
            400: { description: 'The body is not a JSON object or lacks a required value', ...json(error) },
            ...errorResponses,
            409: { description: 'A stream with the same name already exists', ...json(error) },
            502: { description: 'The URL could not be pulled; the message names the cause', ...json(error) },
          },
        },
      },
      '/v1/vhosts/{vhost}/apps/{app}/streams/{stream}': {
        get: { summary: 'Stream info', parameters: [vhost, app, stream], responses: { 200: { description: 'OK', ...json(envelope({ $ref: '#/components/schemas/Stream' })) }, ...errorResponses } },
        delete: { summary: 'Delete a stream (ends its ingress connection and its players)', parameters: [vhost, app, stream], responses: { 200: { description: 'OK', ...json(envelope({})) }, ...errorResponses } },
      },
      '/v1/vhosts/{vhost}/apps/{app}/streams/{stream}/sessions': {
        get: { summary: 'List playback sessions', parameters: [vhost, app, stream], responses: { 200: { description: 'OK', ...json(names) }, ...errorResponses } },
      },
      '/v1/vhosts/{vhost}/apps/{app}/streams/{stream}/sessions/{session}': {
        delete: { summary: 'Force-close a playback session', parameters: [vhost, app, stream, param('session')], responses: { 200: { description: 'OK', ...json(envelope({})) }, ...errorResponses } },
      },
    },
  };
}
