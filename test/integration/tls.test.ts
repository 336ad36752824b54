import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { startKiln, type KilnProcess } from '../helpers/kiln-process.ts';

let kiln: KilnProcess;
let dir: string;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kiln-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  kiln = await startKiln({ KILN_TLS_CERT: join(dir, 'cert.pem'), KILN_TLS_KEY: join(dir, 'key.pem') });
});
after(async () => {
  assert.equal(await kiln.stop(), 0);
  rmSync(dir, { recursive: true, force: true });
});

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { rejectUnauthorized: false, headers }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('with KILN_TLS_CERT and KILN_TLS_KEY the API listener serves HTTPS', async () => {
  const health = await get(kiln.apiUrl.replace('http:', 'https:') + '/healthz');
  assert.equal(health.status, 200);
  const vhosts = await get(kiln.apiUrl.replace('http:', 'https:') + '/v1/vhosts', { authorization: kiln.basic });
  assert.deepEqual(JSON.parse(vhosts.body), { statusCode: 200, message: 'OK', response: ['default'] });
});

test('the signaling listener serves HTTPS and WSS', async () => {
  const page = await get(kiln.signalingUrl.replace('http:', 'https:') + '/');
  assert.equal(page.status, 200);
  assert.match(page.body, /Kiln/);
  const ws = new WebSocket(kiln.wsUrl.replace('ws:', 'wss:') + '/app/none', { rejectUnauthorized: false });
  const reply = await new Promise<string>((resolve, reject) => {
    ws.on('open', () => ws.send(JSON.stringify({ command: 'request_offer' })));
    ws.on('message', (data) => resolve(data.toString()));
    ws.on('error', reject);
  });
  ws.close();
  const message = JSON.parse(reply);
  assert.equal(message.code, 404);
  assert.match(message.error, /Cannot create offer/);
});

test('plain HTTP is not served on a TLS listener', async () => {
  await assert.rejects(fetch(`${kiln.apiUrl}/healthz`, { signal: AbortSignal.timeout(3000) }));
});
