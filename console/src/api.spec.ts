import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, apiBaseUrl, basicAuth, createApi, errorMessage, rebase } from './api.ts';

describe('errorMessage', () => {
  it('reads each dialect’s error shape', () => {
    expect(errorMessage(404, { errors: [{ id: 'x', detail: 'No session 42' }] })).toBe('No session 42'); // MaxScale
    expect(errorMessage(422, { errors: [{ type: 'validation_error', code: 'invalid_parameter', message: 'must be 1..1000', attribute: 'page_size', url: 'u' }] })).toBe('page_size: must be 1..1000'); // SignalWire
    expect(errorMessage(401, { error: 'Unauthorized' })).toBe('Unauthorized'); // SignalWire 401
    expect(errorMessage(409, { statusCode: 409, message: 'A stream with the same name already exists' })).toBe('A stream with the same name already exists'); // OME
    expect(errorMessage(400, { timestamp: 1, status: 400, error: 'Bad Request', message: 'Role "X" is not defined', path: '/api/tokens' })).toBe('Role "X" is not defined'); // OpenVidu
    expect(errorMessage(502, '<html>Bad gateway</html>')).toBe('<html>Bad gateway</html>');
    expect(errorMessage(500, undefined)).toBe('HTTP 500');
  });
});

describe('apiBaseUrl', () => {
  it('uses the page’s host on the API port unless an address is configured', () => {
    expect(apiBaseUrl({ apiPort: 8081, apiTls: false, apiUrl: null }, { protocol: 'http:', hostname: 'media.local' })).toBe('http://media.local:8081');
    expect(apiBaseUrl({ apiPort: 8443, apiTls: true, apiUrl: null }, { protocol: 'http:', hostname: '10.0.0.2' })).toBe('https://10.0.0.2:8443');
    expect(apiBaseUrl({ apiPort: 8081, apiTls: false, apiUrl: null }, { protocol: 'http:', hostname: '::1' })).toBe('http://[::1]:8081');
    expect(apiBaseUrl({ apiPort: 8081, apiTls: false, apiUrl: 'https://kiln.example/api/' }, { protocol: 'http:', hostname: 'x' })).toBe('https://kiln.example/api');
  });
});

describe('rebase', () => {
  it('keeps a link’s path and query on the base the console reaches the API at', () => {
    expect(rebase('https://kiln.example/api', 'http://10.0.0.5:8081/api/video/room_sessions?page_size=20&page_token=abc')).toBe('https://kiln.example/api/api/video/room_sessions?page_size=20&page_token=abc');
    expect(rebase('http://h:8081', '/v1/sessions')).toBe('/v1/sessions');
  });
});

describe('createApi against a real HTTP server', () => {
  let server: Server;
  let base: string;
  const seen: { method: string; url: string; authorization?: string; body: string; type?: string }[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, authorization: req.headers.authorization, body, type: req.headers['content-type'] });
        if (req.headers.authorization !== basicAuth('kiln', 'pässword')) {
          res.writeHead(401, { 'Content-Type': 'application/json' }).end(JSON.stringify({ errors: [{ detail: 'Access denied' }] }));
        } else if (req.url === '/v1/vhosts') {
          res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ statusCode: 200, message: 'OK', response: ['default'] }));
        } else if (req.url === '/metrics') {
          res.writeHead(200, { 'Content-Type': 'text/plain' }).end('kiln_streams 3\n');
        } else if (req.method === 'DELETE') {
          res.writeHead(204).end();
        } else {
          res.writeHead(409, { 'Content-Type': 'application/json' }).end(JSON.stringify({ statusCode: 409, message: 'A stream with the same name already exists' }));
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('sends Basic credentials (UTF-8) and JSON, and reads JSON, text and empty answers', async () => {
    const api = createApi(base, basicAuth('kiln', 'pässword'));
    expect(await api.get('/v1/vhosts')).toEqual({ statusCode: 200, message: 'OK', response: ['default'] });
    expect(await api.get('/metrics')).toBe('kiln_streams 3\n');
    expect(await api.send('DELETE', '/v1/sessions/a')).toBeUndefined();
    await expect(api.send('POST', '/v1/vhosts/default/apps/app/streams', { name: 'x', urls: ['rtsp://h/s'] })).rejects.toMatchObject({ status: 409, message: 'A stream with the same name already exists' });
    const post = seen.find((s) => s.method === 'POST')!;
    expect(JSON.parse(post.body)).toEqual({ name: 'x', urls: ['rtsp://h/s'] });
    expect(post.type).toBe('application/json');
  });

  it('gives an ApiError with the status and the dialect’s message', async () => {
    const api = createApi(base, basicAuth('kiln', 'wrong'));
    const err = await api.get('/v1/vhosts').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 401, message: 'Access denied' });
  });

  it('says when the API cannot be reached', async () => {
    const api = createApi('http://127.0.0.1:1', basicAuth('a', 'b'));
    await expect(api.get('/v1/vhosts')).rejects.toMatchObject({ status: 0, message: "Kiln's API at http://127.0.0.1:1 cannot be reached" });
  });

  it('follows absolute links (SignalWire paging) on its own base, whatever host they name', async () => {
    const api = createApi(base, basicAuth('kiln', 'pässword'));
    expect(await api.get('http://kiln.internal:8081/v1/vhosts')).toMatchObject({ response: ['default'] });
  });

  it('tells when a credential is refused (the console signs out)', async () => {
    let told = 0;
    const api = createApi(base, basicAuth('kiln', 'wrong'), { onUnauthorized: () => told++ });
    await expect(api.get('/v1/vhosts')).rejects.toMatchObject({ status: 401 });
    expect(told).toBe(1);
  });
});
