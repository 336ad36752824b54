/**
 * The web console on the signaling listener: `/console/` serves the build directory (index, hashed
 * assets cached for good, content types, no way out of the directory), `/console/config.json` says
 * where the control API is, and a missing build is a 503 page saying how to make it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startKiln, startKilnInProcess, type InProcessKiln } from '../helpers/kiln-process.ts';

const INDEX = '<!doctype html><html><head><script type="module" src="./assets/index-abc123.js"></script></head><body>console</body></html>';

/** A fake Vite build in `<dir>/dist`, with a file beside it that must never be served. */
function fakeBuild(): { dir: string; dist: string } {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-console-'));
  const dist = join(dir, 'dist');
  mkdirSync(join(dist, 'assets'), { recursive: true });
  writeFileSync(join(dist, 'index.html'), INDEX);
  writeFileSync(join(dist, 'favicon.ico'), Buffer.from([0, 0, 1, 0]));
  writeFileSync(join(dist, 'manifest.json'), '{"name":"Kiln"}');
  const assets: Record<string, string | Buffer> = {
    'index-abc123.js': 'console.log("kiln");',
    'index-abc123.js.map': '{"version":3}',
    'index-def456.css': 'body{margin:0}',
    'logo-1a2b.svg': '<svg xmlns="http://www.w3.org/2000/svg"/>',
    'icon-3c4d.png': Buffer.from([0x89, 0x50, 0x4e, 0x47]),
    'font-5e6f.woff2': Buffer.from('wOF2'),
  };
  for (const [name, body] of Object.entries(assets)) writeFileSync(join(dist, 'assets', name), body);
  writeFileSync(join(dir, 'secret.txt'), 'outside the build');
  return { dir, dist };
}

/** A request whose path is sent exactly as written (fetch would normalise `..`). */
function rawGet(base: string, path: string): Promise<{ status: number; type: string; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the console build served at /console/', () => {
  let node: InProcessKiln;
  let build: { dir: string; dist: string };
  let sig: string;

  before(async () => {
    build = fakeBuild();
    node = await startKilnInProcess((c) => {
      c.consoleDir = build.dist;
    });
    sig = node.signalingUrl;
  });
  after(async () => {
    await node.stop();
    rmSync(build.dir, { recursive: true, force: true });
  });

  test('/console redirects to /console/, keeping the query', async () => {
    const res = await fetch(`${sig}/console`, { redirect: 'manual' });
    assert.equal(res.status, 301);
    assert.equal(res.headers.get('location'), '/console/');
    const withQuery = await fetch(`${sig}/console?x=1`, { redirect: 'manual' });
    assert.equal(withQuery.headers.get('location'), '/console/?x=1');
  });

  test('/console/ is index.html, revalidated every time (no-cache, ETag, 304)', async () => {
    const res = await fetch(`${sig}/console/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    assert.equal(await res.text(), INDEX);
    const etag = res.headers.get('etag');
    assert.ok(etag);
    assert.ok(res.headers.get('last-modified'));
    const again = await fetch(`${sig}/console/`, { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
    const direct = await fetch(`${sig}/console/index.html`);
    assert.equal(await direct.text(), INDEX);
    const head = await fetch(`${sig}/console/`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(await head.text(), '');
  });

  test('files under assets/ are cached for good; every file has its content type', async () => {
    const cases: [string, string][] = [
      ['assets/index-abc123.js', 'text/javascript; charset=utf-8'],
      ['assets/index-abc123.js.map', 'application/json; charset=utf-8'],
      ['assets/index-def456.css', 'text/css; charset=utf-8'],
      ['assets/logo-1a2b.svg', 'image/svg+xml'],
      ['assets/icon-3c4d.png', 'image/png'],
      ['assets/font-5e6f.woff2', 'font/woff2'],
    ];
    for (const [path, type] of cases) {
      const res = await fetch(`${sig}/console/${path}`);
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get('content-type'), type, path);
      assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable', path);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
      await res.arrayBuffer();
    }
    const js = await fetch(`${sig}/console/assets/index-abc123.js`);
    assert.equal(await js.text(), 'console.log("kiln");');
    const icon = await fetch(`${sig}/console/favicon.ico`);
    assert.equal(icon.headers.get('content-type'), 'image/x-icon');
    assert.equal(icon.headers.get('cache-control'), 'no-cache');
    assert.deepEqual(Buffer.from(await icon.arrayBuffer()), Buffer.from([0, 0, 1, 0]));
    const manifest = await fetch(`${sig}/console/manifest.json`);
    assert.equal(manifest.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.deepEqual(await manifest.json(), { name: 'Kiln' });
  });

  test('unknown files are 404 in the signaling error shape', async () => {
    for (const path of ['/console/nope.js', '/console/assets/nope-000.js', '/console/assets/', '/console/assets']) {
      const res = await fetch(`${sig}${path}`);
      assert.equal(res.status, 404, path);
      assert.equal(res.headers.get('content-type'), 'text/plain; charset=utf-8', path);
      assert.match(await res.text(), /Not found/, path);
    }
  });

  test('no path leaves the build directory: .., encoded or plain, encoded slashes, NUL, dot-files', async () => {
    const paths = [
      '/console/../secret.txt',
      '/console/assets/../../secret.txt',
      '/console/..%2fsecret.txt',
      '/console/..%2Fsecret.txt',
      '/console/%2e%2e/secret.txt',
      '/console/%2e%2e%2fsecret.txt',
      '/console/assets/..%2f..%2fsecret.txt',
      '/console/assets/..%5c..%5csecret.txt',
      '/console/..\\secret.txt',
      '/console/%2fetc%2fpasswd',
      '/console//etc/passwd',
      '/console/index.html%00.js',
      '/console/.htaccess',
      '/console/%E0%A4%A',
    ];
    for (const path of paths) {
      const res = await rawGet(sig, path);
      assert.ok(res.status === 404 || res.status === 400, `${path}: ${res.status}`);
      assert.doesNotMatch(res.body, /outside the build|root:/, path);
    }
    for (const path of ['/console/..%2fsecret.txt', '/console/assets/..%2f..%2fsecret.txt', '/console/%2e%2e/secret.txt']) {
      const res = await rawGet(sig, path);
      assert.equal(res.status, 404, path);
      assert.equal(res.type, 'text/plain; charset=utf-8', path);
    }
  });

  test('config.json names the control API port as bound, not cached', async () => {
    const res = await fetch(`${sig}/console/config.json`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const body = await res.json();
    assert.deepEqual(body, { apiPort: node.kiln.api!.port, apiTls: false, apiUrl: null });
    assert.notEqual(body.apiPort, 0);
  });

  test('the existing pages stay where they were', async () => {
    for (const path of ['/', '/publish.html', '/play.html']) {
      const res = await fetch(`${sig}${path}`);
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get('content-type') ?? '', /text\/html/);
      await res.text();
    }
  });
});

describe('the console without a build', () => {
  let node: InProcessKiln;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiln-console-'));
    node = await startKilnInProcess((c) => {
      c.consoleDir = join(dir, 'not-built');
    });
  });
  after(async () => {
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('/console/ is a 503 page saying how to build it; other files are 404; config.json still answers', async () => {
    const res = await fetch(`${node.signalingUrl}/console/`);
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.match(await res.text(), /The console is not built: run <code>npm run build:console<\/code>/);
    assert.equal((await fetch(`${node.signalingUrl}/console/assets/index-abc123.js`)).status, 404);
    const config = await fetch(`${node.signalingUrl}/console/config.json`);
    assert.equal(config.status, 200);
    assert.equal((await config.json()).apiPort, node.kiln.api!.port);
  });
});

describe('the console of a Kiln process behind a reverse proxy', () => {
  test('KILN_CONSOLE_API_URL and KILN_CONSOLE_DIR; KILN_API_PORT=0 shows the bound port', async () => {
    const build = fakeBuild();
    const sigPort = await freePort();
    const kiln = await startKiln({ KILN_API_PORT: '0', KILN_SIGNALING_PORT: String(sigPort), KILN_CONSOLE_API_URL: 'https://api.example.com/kiln/', KILN_CONSOLE_DIR: build.dist });
    try {
      const config = await (await fetch(`${kiln.signalingUrl}/console/config.json`)).json();
      assert.equal(config.apiUrl, 'https://api.example.com/kiln');
      assert.equal(config.apiTls, false);
      assert.equal(typeof config.apiPort, 'number');
      assert.ok(config.apiPort > 0, `port ${config.apiPort}`);
      const health = await fetch(`http://127.0.0.1:${config.apiPort}/healthz`);
      assert.equal(health.status, 200);
      assert.equal(await (await fetch(`${kiln.signalingUrl}/console/`)).text(), INDEX);
    } finally {
      assert.equal(await kiln.stop(), 0);
      rmSync(build.dir, { recursive: true, force: true });
    }
  });
});
