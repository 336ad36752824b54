/**
 * SignalWire's error bodies (seed 003): 401 `{"error":"Unauthorized"}`, 400 `{"error":"Bad
 * Request"}`, 500 `{"error":"Internal Server Error"}`, 404 `{"error":"Not Found"}`, 403
 * `{"error":"Forbidden"}`, and 422 with one
 * item per offending parameter. The one function that maps a KilnError to them.
 */
import { errors, type KilnError } from '../../core/errors.ts';

const DOCS = 'https://developer.signalwire.com/rest/overview/error-codes/';

/** A 422 naming `attribute` (a query parameter or body field); `code` is SignalWire's error code. */
export const invalidParameter = (attribute: string, message: string, code = 'invalid_parameter'): KilnError =>
  errors.invalidParameter(attribute, message, code);

export function signalWireError(err: KilnError): { status: number; body: Record<string, unknown> } {
  switch (err.status) {
    case 400:
      return { status: 400, body: { error: 'Bad Request' } };
    case 401:
      return { status: 401, body: { error: 'Unauthorized' } };
    case 403:
      return { status: 403, body: { error: 'Forbidden' } };
    case 404:
      return { status: 404, body: { error: 'Not Found' } };
    case 409:
    case 422: {
      const attribute = err.subject.parameter ?? null;
      const code = err.subject.rule ?? (err.status === 409 ? 'value_not_unique' : 'invalid_parameter');
      return { status: 422, body: { errors: [{ type: 'validation_error', code, message: err.message, attribute, url: `${DOCS}#${code}` }] } };
    }
    case 503:
      return { status: 503, body: { error: 'Service Unavailable' } };
    default:
      return { status: 500, body: { error: 'Internal Server Error' } };
  }
}
