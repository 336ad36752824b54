/**
 * The one error catalogue (STYLE.md): every failure the core reports has a stable code, an HTTP
 * status and a message. Each REST dialect maps a KilnError to its own wire shape in one function.
 */

/** Stable error codes; dialects may switch on them to produce seed-exact texts. */
export type ErrorCode =
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'VHOST_NOT_FOUND'
  | 'APP_NOT_FOUND'
  | 'STREAM_NOT_FOUND'
  | 'SESSION_NOT_FOUND'
  | 'STREAM_EXISTS'
  | 'SESSION_EXISTS'
  | 'CONFLICT'
  | 'NOT_ACCEPTABLE'
  | 'INVALID_PARAMETER'
  | 'UNSUPPORTED_MEDIA'
  | 'NO_USABLE_CODEC'
  | 'PAYLOAD_TOO_LARGE'
  | 'METHOD_NOT_ALLOWED'
  | 'BAD_GATEWAY'
  | 'UNAVAILABLE'
  | 'INTERNAL';

const STATUS: Record<ErrorCode, number> = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  VHOST_NOT_FOUND: 404,
  APP_NOT_FOUND: 404,
  STREAM_NOT_FOUND: 404,
  SESSION_NOT_FOUND: 404,
  STREAM_EXISTS: 409,
  SESSION_EXISTS: 409,
  CONFLICT: 409,
  NOT_ACCEPTABLE: 406,
  INVALID_PARAMETER: 422,
  UNSUPPORTED_MEDIA: 415,
  NO_USABLE_CODEC: 406,
  PAYLOAD_TOO_LARGE: 413,
  METHOD_NOT_ALLOWED: 405,
  BAD_GATEWAY: 502,
  UNAVAILABLE: 503,
  INTERNAL: 500,
};

/** What a not-found or conflict error refers to, so dialects can name it in their own words. */
export interface ErrorSubject {
  vhost?: string;
  app?: string;
  stream?: string;
  session?: string;
  /** The request parameter at fault (INVALID_PARAMETER). */
  parameter?: string;
  /** The rule it broke, in the dialect's words (SignalWire's error code). */
  rule?: string;
}

export class KilnError extends Error {
  override name = 'KilnError';
  readonly code: ErrorCode;
  readonly status: number;
  readonly subject: ErrorSubject;

  constructor(code: ErrorCode, message: string, subject: ErrorSubject = {}) {
    super(message);
    this.code = code;
    this.status = STATUS[code];
    this.subject = subject;
  }
}

export const errors = {
  badRequest: (message: string) => new KilnError('BAD_REQUEST', message),
  invalidParameter: (parameter: string, message: string, rule?: string) => new KilnError('INVALID_PARAMETER', message, { parameter, rule }),
  unauthorized: (message = 'Authorization required') => new KilnError('UNAUTHORIZED', message),
  forbidden: (message: string) => new KilnError('FORBIDDEN', message),
  vhostNotFound: (vhost: string) =>
    new KilnError('VHOST_NOT_FOUND', `Could not find the virtual host: [${vhost}]`, { vhost }),
  appNotFound: (vhost: string, app: string) =>
    new KilnError('APP_NOT_FOUND', `Could not find the application: [${vhost}/${app}]`, { vhost, app }),
  streamNotFound: (vhost: string, app: string, stream: string) =>
    new KilnError('STREAM_NOT_FOUND', `Could not find the stream: [${vhost}/${app}/${stream}]`, { vhost, app, stream }),
  sessionNotFound: (session: string) =>
    new KilnError('SESSION_NOT_FOUND', 'Could not find the session', { session }),
  streamExists: (vhost: string, app: string, stream: string) =>
    new KilnError('STREAM_EXISTS', `A stream with the same name already exists: [${vhost}/${app}/${stream}]`, { vhost, app, stream }),
  sessionExists: (session: string) =>
    new KilnError('SESSION_EXISTS', `A session with the same name already exists: ${session}`, { session }),
  unsupportedMedia: (message: string) => new KilnError('UNSUPPORTED_MEDIA', message),
  noUsableCodec: (message: string) => new KilnError('NO_USABLE_CODEC', message),
  unavailable: (message: string) => new KilnError('UNAVAILABLE', message),
  /** A pull source could not be reached or played; `cause` names why (per URL). */
  pullFailed: (cause: string) => new KilnError('BAD_GATEWAY', `Could not pull the stream : ${cause}`),
} as const;

/** Whether `err` is a KilnError (or carries its shape across module copies). */
/** Whether `code` is one of Kiln's error codes (e.g. one received from another node). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(STATUS, code);
}

export function isKilnError(err: unknown): err is KilnError {
  return err instanceof KilnError;
}
