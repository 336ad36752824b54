/**
 * The console's one way to Kiln: its public control APIs (OvenMediaEngine, MaxScale, OpenVidu,
 * SignalWire dialects on the API listener) with HTTP Basic credentials, and WHEP on the signaling
 * listener the console is served from. Errors come back as ApiError with the dialect's own message.
 */

/** Where the API listener is, as `/console/config.json` tells it. */
export interface ConsoleConfig {
  apiPort: number;
  apiTls: boolean;
  apiUrl: string | null;
}

/** The API base URL: the configured one, else this page's host on the API port. */
export function apiBaseUrl(config: ConsoleConfig, location: { protocol: string; hostname: string }): string {
  if (config.apiUrl) return config.apiUrl.replace(/\/+$/, '');
  const host = location.hostname.includes(':') ? `[${location.hostname}]` : location.hostname;
  return `${config.apiTls ? 'https:' : location.protocol === 'https:' ? 'https:' : 'http:'}//${host}:${config.apiPort}`;
}

export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

/**
 * The message of an error body in any of the dialects: MaxScale's `errors[].detail`, SignalWire's
 * `errors[].message` or `error`, OvenMediaEngine's and OpenVidu's `message`.
 */
export function errorMessage(status: number, body: unknown): string {
  if (body && typeof body === 'object') {
    const b = body as Record<string, unknown>;
    if (Array.isArray(b.errors) && b.errors.length > 0) {
      const parts = b.errors.map((e) => {
        if (!e || typeof e !== 'object') return String(e);
        const o = e as Record<string, unknown>;
        const text = typeof o.detail === 'string' ? o.detail : typeof o.message === 'string' ? o.message : JSON.stringify(o);
        return typeof o.attribute === 'string' && o.attribute !== '' ? `${o.attribute}: ${text}` : text;
      });
      return parts.join('; ');
    }
    if (typeof b.message === 'string' && b.message !== '') return b.message;
    if (typeof b.error === 'string' && b.error !== '') return b.error;
  }
  if (typeof body === 'string' && body.trim() !== '') return body.trim().slice(0, 300);
  return `HTTP ${status}`;
}

export function basicAuth(user: string, password: string): string {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return `Basic ${btoa(binary)}`;
}

export interface Api {
  readonly base: string;
  readonly authorization: string;
  get<T = unknown>(path: string, signal?: AbortSignal): Promise<T>;
  send<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
}

/**
 * A link the API gave (SignalWire's paging `links`) as a URL under `base`: the API builds links
 * from the Host it was reached at, which behind a reverse proxy (`consoleApiUrl`) is not where the
 * browser reaches it. Only the link's path and query are kept. Relative paths stay as they are.
 */
export function rebase(base: string, link: string): string {
  if (!/^https?:\/\//i.test(link)) return link;
  const url = new URL(link);
  return `${base}${url.pathname}${url.search}`;
}

export function createApi(base: string, authorization: string, options: { fetch?: typeof fetch; onUnauthorized?: () => void } = {}): Api {
  const fetchImpl = options.fetch ?? fetch;
  async function call<T>(method: string, path: string, body: unknown, signal?: AbortSignal): Promise<T> {
    const headers: Record<string, string> = { Authorization: authorization, Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let response: Response;
    try {
      response = await fetchImpl(/^https?:\/\//i.test(path) ? rebase(base, path) : base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        // Never the browser's own credentials: the console sends its own, and 401s show no prompt.
        credentials: 'omit',
        cache: 'no-store',
        signal,
      });
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      throw new ApiError(0, `Kiln's API at ${base} cannot be reached`);
    }
    const text = await response.text();
    let parsed: unknown = text;
    if (text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch {
        // a body that is not JSON (an HTML error page of a proxy): kept as text
      }
    }
    if (response.status === 401) options.onUnauthorized?.();
    if (!response.ok) throw new ApiError(response.status, errorMessage(response.status, parsed));
    return (text === '' ? undefined : parsed) as T;
  }
  return {
    base,
    authorization,
    get: (path, signal) => call('GET', path, undefined, signal),
    send: (method, path, body) => call(method, path, body),
  };
}

/** The OvenMediaEngine envelope `{statusCode, message, response}`: its response. */
export async function ome<T>(api: Api, path: string, signal?: AbortSignal): Promise<T> {
  const envelope = await api.get<{ response: T }>(`/v1${path}`, signal);
  return envelope.response;
}

export const seg = encodeURIComponent;
