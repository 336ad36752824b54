import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, stripJsonComments, ConfigError } from '../../src/config/config.ts';

/** Temp directories of config files, removed at the end. */
const made: string[] = [];
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-config-'));
  made.push(dir);
  return dir;
};
after(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

test('the embedded defaults follow SPEC.md §2', () => {
  const c = loadConfig({ KILN_CONFIG: join(import.meta.dirname, '../../kiln.example.jsonc') });
  assert.equal(c.api.port, 8081);
  assert.equal(c.signaling.port, 3333);
  assert.equal(c.ovt.port, 9000);
  assert.equal(c.publicUrl, 'http://localhost:3333');
  assert.deepEqual(c.vhosts, [{ name: 'default', apps: [{ name: 'app', playbackRequiresToken: false }] }]);
  assert.deepEqual(c.corsOrigins, ['*']);
  assert.equal(c.accessTokens.length, 0);
});

test('environment variables override the config file', () => {
  const dir = tempDir();
  const file = join(dir, 'k.jsonc');
  writeFileSync(file, '{ // comment\n "api": {"port": 9001}, /* block */ "accessTokens": ["a:b"], }');
  const c = loadConfig({ KILN_CONFIG: file, KILN_API_PORT: '9002', KILN_ICE_PORTS: '10000-10100', KILN_ACCESS_TOKEN: 'x:y,z:w' });
  assert.equal(c.api.port, 9002);
  assert.deepEqual(c.ice.portRange, [10000, 10100]);
  assert.deepEqual(c.accessTokens, ['x:y', 'z:w']);
});

test('bad settings are refused with a reason', () => {
  assert.throws(() => loadConfig({ KILN_API_PORT: 'eighty' }), (e: Error) => e instanceof ConfigError && /KILN_API_PORT/.test(e.message));
  assert.throws(() => loadConfig({ KILN_ICE_PORTS: '2000-1000' }), ConfigError);
  assert.throws(() => loadConfig({ KILN_ACCESS_TOKEN: 'nopassword' }), /user:password/);
  assert.throws(() => loadConfig({ KILN_PUBLIC_URL: 'ftp://x' }), /http or https/);
  const dir = tempDir();
  writeFileSync(join(dir, 'bad.jsonc'), '{"apii": {}}');
  assert.throws(() => loadConfig({ KILN_CONFIG: join(dir, 'bad.jsonc') }), /unknown setting "apii"/);
});

test('the public URL follows the signaling port and TLS unless it is set', () => {
  assert.equal(loadConfig({ KILN_SIGNALING_PORT: '13333' }).publicUrl, 'http://localhost:13333');
  assert.equal(loadConfig({ KILN_SIGNALING_PORT: '13333', KILN_TLS_CERT: '/c.pem', KILN_TLS_KEY: '/k.pem' }).publicUrl, 'https://localhost:13333');
  assert.equal(loadConfig({ KILN_SIGNALING_PORT: '13333', KILN_PUBLIC_URL: 'https://media.example.com' }).publicUrl, 'https://media.example.com');
  const dir = tempDir();
  writeFileSync(join(dir, 'p.jsonc'), '{"publicUrl": "https://rooms.example.com:8443"}');
  assert.equal(loadConfig({ KILN_CONFIG: join(dir, 'p.jsonc'), KILN_SIGNALING_PORT: '13333' }).publicUrl, 'https://rooms.example.com:8443');
});

test('room settings: defaults, and the room WebSocket path is no app name', () => {
  const c = loadConfig({ KILN_CONFIG: join(import.meta.dirname, '../../kiln.example.jsonc') });
  assert.deepEqual(c.rooms, { app: 'rooms', emptyTimeoutMs: 5000, pingTimeoutMs: 10000, pricePerMemberMinute: 0 });
  const dir = tempDir();
  const write = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  assert.throws(() => loadConfig({ KILN_CONFIG: write('a.jsonc', '{"rooms": {"app": "room"}}') }), /rooms\.app cannot be "room"/);
  assert.throws(() => loadConfig({ KILN_CONFIG: write('b.jsonc', '{"rooms": {"app": ".."}}') }), /rooms\.app/);
  assert.throws(() => loadConfig({ KILN_CONFIG: write('c.jsonc', '{"rooms": {"pingTimeoutMs": 0}}') }), /rooms\.pingTimeoutMs must be a positive integer/);
  assert.throws(() => loadConfig({ KILN_CONFIG: write('p.jsonc', '{"rooms": {"pricePerMemberMinute": -1}}') }), /rooms\.pricePerMemberMinute must be a number/);
  assert.equal(loadConfig({ KILN_CONFIG: write('q.jsonc', '{"rooms": {"pricePerMemberMinute": 0.004}}') }).rooms.pricePerMemberMinute, 0.004);
  assert.throws(() => loadConfig({ KILN_CONFIG: write('d.jsonc', '{"vhosts": [{"name": "default", "apps": [{"name": "room"}]}]}') }), /path of the room WebSocket/);
  assert.equal(loadConfig({ KILN_CONFIG: write('e.jsonc', '{"rooms": {"app": "meet", "emptyTimeoutMs": 100}}') }).rooms.app, 'meet');
});

test('comments are stripped outside strings only', () => {
  assert.deepEqual(JSON.parse(stripJsonComments('{"u": "http://x/*y*/", // c\n "v": [1,2,],}')), { u: 'http://x/*y*/', v: [1, 2] });
});
