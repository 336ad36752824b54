/**
 * Kiln's life cycle: a clean stop leaves no timers, sockets or peer connections behind; a bad
 * setting or a port in use stops it at start with one line and a non-zero exit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RtpHeader, RtpPacket } from 'werift';
import { startKilnInProcess } from '../helpers/kiln-process.ts';
import { loopbackPeer, connected, negotiate } from '../helpers/werift-peer.ts';
import { prepareLocal } from '../../src/media/peer.ts';

const ROOT = new URL('../../', import.meta.url).pathname;

function resourceCounts(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) counts.set(r, (counts.get(r) ?? 0) + 1);
  return counts;
}

test('a stop with a publisher and a player connected leaves no timer, socket or peer behind', async () => {
  const baseline = resourceCounts();
  const node = await startKilnInProcess();
  const kiln = node.kiln;
  const base = `${node.signalingUrl}/app/life`;

  const publisher = loopbackPeer();
  const video = publisher.addTransceiver('video', { direction: 'sendonly' });
  await negotiate(publisher, `${base}?direction=whip`, 'pw');
  await connected(publisher);
  let seq = 0;
  const pump = setInterval(() => {
    // A VP8 key-frame start followed by filler: enough for the forwarder, no decoder here.
    const payload = Buffer.from([0x10, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01, 0, 0, 0]);
    void video.sender.sendRtp(new RtpPacket(new RtpHeader({ sequenceNumber: seq++ & 0xffff, timestamp: seq * 3000, payloadType: 96, marker: true }), payload)).catch(() => {});
  }, 20);
  const player = loopbackPeer();
  player.addTransceiver('video', { direction: 'recvonly' });
  let received = 0;
  player.ontrack = ({ track }) => track.onReceiveRtp.subscribe(() => received++);
  await negotiate(player, `${base}?direction=whep`);
  await connected(player);
  for (let i = 0; i < 50 && received === 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(received > 0, 'the player receives packets before the stop');
  assert.equal(kiln.catalog.sessions.size, 2);

  await node.stop();
  assert.equal(kiln.catalog.sessions.size, 0, 'every session is closed');
  clearInterval(pump);
  await publisher.close();
  await player.close();
  await new Promise((r) => setTimeout(r, 500));

  const after = resourceCounts();
  const leftovers = [...after].filter(([kind, n]) => n > (baseline.get(kind) ?? 0)).map(([kind, n]) => `${kind} x${n - (baseline.get(kind) ?? 0)}`);
  assert.deepEqual(leftovers, [], `resources left after stop: ${leftovers.join(', ')}`);
});

function run(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'src/main.ts')], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

test('a bad setting exits non-zero with one clear line', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'kiln-bad-'));
  const { code, stderr } = await run({ KILN_API_PORT: 'not-a-port', KILN_DATA_DIR: dataDir });
  rmSync(dataDir, { recursive: true, force: true });
  assert.notEqual(code, 0);
  assert.equal(stderr.trim().split('\n').length, 1, stderr);
  assert.match(stderr, /KILN_API_PORT/);
});

test('an unreachable KILN_DATABASE_URL exits non-zero with one clear line', async () => {
  const closed = await new Promise<number>((resolve) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address ? address.port : 1));
    });
  });
  const dataDir = mkdtempSync(join(tmpdir(), 'kiln-bad-'));
  const { code, stderr } = await run({ KILN_DATABASE_URL: `postgres://kiln@127.0.0.1:${closed}/kiln`, KILN_API_PORT: '0', KILN_SIGNALING_PORT: '0', KILN_OVT_PORT: '0', KILN_DATA_DIR: dataDir });
  rmSync(dataDir, { recursive: true, force: true });
  assert.notEqual(code, 0);
  assert.equal(stderr.trim().split('\n').length, 1, stderr);
  assert.match(stderr, /KILN_DATABASE_URL.*ECONNREFUSED/);
});

test('a port in use exits non-zero with one clear line', async () => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const address = blocker.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const dataDir = mkdtempSync(join(tmpdir(), 'kiln-busy-'));
  const { code, stderr } = await run({ KILN_API_HOST: '127.0.0.1', KILN_API_PORT: String(port), KILN_SIGNALING_PORT: '0', KILN_DATA_DIR: dataDir });
  blocker.close();
  assert.notEqual(code, 0);
  assert.equal(stderr.trim().split('\n').length, 1, stderr);
  assert.match(stderr, /in use/);
  rmSync(dataDir, { recursive: true, force: true });
});

test('the default OVT port taken by another program: Kiln takes a free one; a chosen OVT port in use stops it', async () => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const address = blocker.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  try {
    const node = await startKilnInProcess((config) => (config.ovt = { host: '127.0.0.1', port }));
    try {
      assert.ok(node.kiln.ovt!.port > 0 && node.kiln.ovt!.port !== port, `listening on ${node.kiln.ovt!.port}`);
    } finally {
      await node.stop();
    }
    await assert.rejects(startKilnInProcess((config) => (config.ovt = { host: '127.0.0.1', port, portSet: true })), { code: 'EADDRINUSE' });
  } finally {
    blocker.close();
  }
});

test('KILN_ICE_PORTS bounds the UDP ports of the server\'s candidates', async () => {
  const node = await startKilnInProcess((config) => (config.ice.portRange = [41200, 41230]));
  const publisher = loopbackPeer();
  publisher.addTransceiver('video', { direction: 'sendonly' });
  prepareLocal(publisher, false);
  await publisher.setLocalDescription(await publisher.createOffer());
  const res = await fetch(`${node.signalingUrl}/app/ports?direction=whip`, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp', authorization: 'Bearer pw' },
    body: publisher.localDescription!.sdp,
  });
  assert.equal(res.status, 201);
  const ports = [...(await res.text()).matchAll(/^a=candidate:\S+ \d+ udp \d+ \S+ (\d+) typ/gim)].map((m) => Number(m[1]));
  assert.ok(ports.length > 0);
  for (const port of ports) assert.ok(port >= 41200 && port <= 41230, `candidate port ${port}`);
  await node.stop();
  await publisher.close();
});
