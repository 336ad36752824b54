/**
 * The OpenAPI 3.0 paths and schemas of the SignalWire Video dialect (seed 003: the room sessions
 * listing, with the rest of the room life cycle), merged into the document `GET /openapi.json`
 * serves.
 */

const json = (schema: object) => ({ content: { 'application/json': { schema } } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const error = (text: string) => json({ type: 'object', required: ['error'], properties: { error: { type: 'string', enum: [text] } } });
const e401 = { description: 'Missing or wrong credentials (Basic project:token)', ...error('Unauthorized') };
const e404 = { description: 'No such room or room session', ...error('Not Found') };
const e422 = { description: 'A parameter is not acceptable; `attribute` names it', ...json(ref('SignalWireErrors')) };
const q = (name: string, schema: object, description: string) => ({ name, in: 'query', required: false, schema, description });
const paging = [
  q('page_size', { type: 'integer', minimum: 1, maximum: 1000, default: 50 }, 'Rows per page'),
  q('page_number', { type: 'integer', minimum: 0, default: 0 }, 'Needs page_token when greater than 0'),
  q('page_token', { type: 'string' }, 'The cursor of a next/prev link'),
];
const id = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
const ttl = q('media_ttl', { type: 'integer', minimum: 1, maximum: 604800, default: 900 }, 'Seconds the recording `uri` stays valid');
const nullable = (type: string, extra: object = {}) => ({ type, nullable: true, ...extra });
const list = (item: string) => ({ type: 'object', required: ['links', 'data'], properties: { links: ref('SignalWireLinks'), data: { type: 'array', items: ref(item) } } });

const roomFields = {
  display_name: nullable('string', { maxLength: 200 }),
  description: nullable('string', { maxLength: 3000 }),
  max_members: { type: 'integer', minimum: 1, maximum: 300, default: 20 },
  quality: { type: 'string', enum: ['720p', '1080p'], default: '720p' },
  fps: { type: 'integer', enum: [20, 30], default: 20 },
  join_from: nullable('string', { format: 'date-time' }),
  join_until: nullable('string', { format: 'date-time' }),
  remove_at: nullable('string', { format: 'date-time' }),
  remove_after_seconds_elapsed: nullable('integer', { minimum: 1, maximum: 200000 }),
  layout: { type: 'string', default: 'grid-responsive' },
  record_on_start: { type: 'boolean' },
  locked: { type: 'boolean' },
  tone_on_entry_and_exit: { type: 'boolean' },
  room_join_video_off: { type: 'boolean' },
  user_join_video_off: { type: 'boolean' },
  enable_room_previews: { type: 'boolean' },
  sync_audio_video: { type: 'boolean' },
  prioritize_handraise: { type: 'boolean' },
  meta: { type: 'object' },
};

export function signalWireOpenApi(): { paths: Record<string, object>; schemas: Record<string, object> } {
  return {
    schemas: {
      SignalWireErrors: {
        type: 'object',
        required: ['errors'],
        properties: {
          errors: {
            type: 'array',
            items: {
              type: 'object',
              required: ['type', 'code', 'message', 'url'],
              properties: { type: { type: 'string' }, code: { type: 'string' }, message: { type: 'string' }, attribute: nullable('string'), url: { type: 'string' } },
            },
          },
        },
      },
      SignalWireLinks: {
        type: 'object',
        required: ['self', 'first'],
        properties: { self: { type: 'string' }, first: { type: 'string' }, next: { type: 'string' }, prev: { type: 'string' } },
      },
      SignalWireRoom: {
        type: 'object',
        properties: { id: { type: 'string', format: 'uuid' }, name: { type: 'string', pattern: '^[A-Za-z0-9_-]+$', maxLength: 100 }, ...roomFields, created_at: { type: 'string', format: 'date-time' }, updated_at: { type: 'string', format: 'date-time' } },
      },
      SignalWireRoomSession: {
        type: 'object',
        description: "The seed's RoomSession: its 29 fields (fps as the seed's string '20' or '30')",
        properties: {
          id: { type: 'string', format: 'uuid' }, room_id: nullable('string', { format: 'uuid' }), name: nullable('string'), status: nullable('string', { enum: ['in-progress', 'completed'] }),
          start_time: nullable('string', { format: 'date-time' }), end_time: nullable('string', { format: 'date-time' }), duration: nullable('integer'),
          cost_in_dollars: { type: 'number' }, preview_url: nullable('string'),
        },
      },
      SignalWireMember: {
        type: 'object',
        properties: {
          id: { type: 'string', format: 'uuid' }, room_session_id: { type: 'string', format: 'uuid' }, name: nullable('string'),
          join_time: nullable('string', { format: 'date-time' }), leave_time: nullable('string', { format: 'date-time' }), duration: nullable('integer'), cost_in_dollars: { type: 'number' },
        },
      },
      SignalWireRecording: {
        type: 'object',
        required: ['id', 'room_session_id', 'status', 'started_at', 'finished_at', 'duration', 'size_in_bytes', 'format', 'cost_in_dollars', 'uri', 'created_at', 'updated_at'],
        properties: {
          id: { type: 'string', format: 'uuid' }, room_session_id: { type: 'string', format: 'uuid' },
          status: { type: 'string', enum: ['recording', 'processing', 'completed', 'failed'] },
          started_at: nullable('string', { format: 'date-time' }), finished_at: nullable('string', { format: 'date-time' }),
          duration: nullable('integer'), size_in_bytes: nullable('integer'), format: { type: 'string', example: 'video/mp4' },
          cost_in_dollars: { type: 'number' },
          uri: nullable('string', { description: 'A temporary link to the file (valid media_ttl seconds), once composed' }),
          created_at: { type: 'string', format: 'date-time' }, updated_at: { type: 'string', format: 'date-time' },
        },
      },
    },
    paths: {
      '/api/video/rooms': {
        post: {
          summary: 'SignalWire: create a room',
          requestBody: { required: true, ...json({ type: 'object', required: ['name'], properties: { name: { type: 'string', pattern: '^[A-Za-z0-9_-]+$', maxLength: 100 }, ...roomFields } }) },
          responses: { 200: { description: 'The room', ...json(ref('SignalWireRoom')) }, 400: { description: 'Not a JSON object', ...error('Bad Request') }, 401: e401, 422: e422 },
        },
        get: { summary: 'SignalWire: rooms, newest first', parameters: paging, responses: { 200: { description: 'OK', ...json(list('SignalWireRoom')) }, 401: e401, 422: e422 } },
      },
      '/api/video/rooms/{id}': {
        get: { summary: 'SignalWire: a room, by id or by name', parameters: [id], responses: { 200: { description: 'The room', ...json(ref('SignalWireRoom')) }, 401: e401, 404: e404 } },
        put: {
          summary: 'SignalWire: update a room (the fields given; a session in progress takes them at once)',
          parameters: [id],
          requestBody: { required: true, ...json({ type: 'object', properties: { name: { type: 'string' }, ...roomFields } }) },
          responses: { 200: { description: 'The room', ...json(ref('SignalWireRoom')) }, 401: e401, 404: e404, 422: e422 },
        },
        delete: { summary: 'SignalWire: delete a room (its session in progress ends)', parameters: [id], responses: { 204: { description: 'Deleted' }, 401: e401, 404: e404 } },
      },
      '/api/video/room_sessions': {
        get: {
          summary: 'SignalWire: past and in-progress room sessions, newest first',
          parameters: [
            q('room_id', { type: 'string', format: 'uuid' }, 'Sessions of this room'),
            q('room_name', { type: 'string' }, 'Exact room name'),
            q('room_name_matches', { type: 'string' }, 'Substring of the room name'),
            q('status', { type: 'string', enum: ['in-progress', 'completed'] }, 'Status'),
            ...paging,
          ],
          responses: { 200: { description: 'OK', ...json(list('SignalWireRoomSession')) }, 400: { description: 'Bad request', ...error('Bad Request') }, 401: e401, 422: e422, 500: { description: 'Internal error', ...error('Internal Server Error') } },
        },
      },
      '/api/video/room_sessions/{id}': {
        get: { summary: 'SignalWire: one room session', parameters: [id], responses: { 200: { description: 'OK', ...json(ref('SignalWireRoomSession')) }, 401: e401, 404: e404 } },
      },
      '/api/video/room_sessions/{id}/members': {
        get: { summary: 'SignalWire: the members of a room session, in join order', parameters: [id, ...paging], responses: { 200: { description: 'OK', ...json(list('SignalWireMember')) }, 401: e401, 404: e404, 422: e422 } },
      },
      '/api/video/room_sessions/{id}/recordings': {
        get: { summary: 'SignalWire: the recordings of a room session, newest first', parameters: [id, ttl, ...paging], responses: { 200: { description: 'OK', ...json(list('SignalWireRecording')) }, 401: e401, 404: e404, 422: e422 } },
      },
      '/api/video/room_recordings': {
        get: { summary: 'SignalWire: every recording, newest first', parameters: [ttl, ...paging], responses: { 200: { description: 'OK', ...json(list('SignalWireRecording')) }, 401: e401, 422: e422 } },
      },
      '/api/video/room_recordings/{id}': {
        get: { summary: 'SignalWire: one recording (by its uuid)', parameters: [id, ttl], responses: { 200: { description: 'OK', ...json(ref('SignalWireRecording')) }, 401: e401, 404: e404, 422: e422 } },
        delete: { summary: 'SignalWire: delete a recording and its file (409 while it records)', parameters: [id], responses: { 204: { description: 'Deleted' }, 401: e401, 404: e404 } },
      },
      '/api/video/room_tokens': {
        post: {
          summary: 'SignalWire: a room token (single use) that joins the room through the room signaling, at {KILN_PUBLIC_URL as ws}/{room_name}',
          requestBody: {
            required: true,
            ...json({
              type: 'object',
              required: ['room_name'],
              properties: {
                room_name: { type: 'string', pattern: '^[A-Za-z0-9_-]+$', maxLength: 100 },
                user_name: { type: 'string', maxLength: 100 },
                permissions: { type: 'array', items: { type: 'string' } },
                join_as: { type: 'string', enum: ['member', 'audience'] },
                auto_create_room: { type: 'boolean', default: true },
                room_display_name: { type: 'string' },
                join_from: { type: 'string', format: 'date-time' },
                join_until: { type: 'string', format: 'date-time' },
                remove_at: { type: 'string', format: 'date-time' },
                remove_after_seconds_elapsed: { type: 'integer', minimum: 1, maximum: 200000 },
              },
            }),
          },
          responses: { 200: { description: 'The token', ...json({ type: 'object', required: ['token'], properties: { token: { type: 'string' } } }) }, 401: e401, 422: e422 },
        },
      },
    },
  };
}
