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

test('access rules per app: admission webhooks and signed policy, with their defaults', () => {
  const dir = tempDir();
  const file = join(dir, 'access.jsonc');
  writeFileSync(file, JSON.stringify({ vhosts: [{ name: 'default', apps: [
    { name: 'app', admissionWebhooks: { controlServerUrl: 'https://control.example.com/v1/admission', secretKey: '1234' }, signedPolicy: { secretKey: 'aKq#1kj' } },
    { name: 'live', admissionWebhooks: { controlServerUrl: 'http://10.0.0.5:9595/hook', secretKey: 's', timeoutMs: 500, failOpen: true, enables: { publish: false } },
      signedPolicy: { secretKey: 'k', policyQueryKeyName: 'p', signatureQueryKeyName: 'sig', enables: { play: false } } },
  ] }] }));
  const [app, live] = loadConfig({ KILN_CONFIG: file }).vhosts[0].apps;
  assert.deepEqual(app, {
    name: 'app',
    playbackRequiresToken: false,
    admissionWebhooks: { controlServerUrl: 'https://control.example.com/v1/admission', secretKey: '1234', timeoutMs: 3000, failOpen: false, enables: { publish: true, play: true } },
    signedPolicy: { secretKey: 'aKq#1kj', policyQueryKeyName: 'policy', signatureQueryKeyName: 'signature', enables: { publish: true, play: true } },
  });
  assert.deepEqual(live.admissionWebhooks, { controlServerUrl: 'http://10.0.0.5:9595/hook', secretKey: 's', timeoutMs: 500, failOpen: true, enables: { publish: false, play: true } });
  assert.deepEqual(live.signedPolicy, { secretKey: 'k', policyQueryKeyName: 'p', signatureQueryKeyName: 'sig', enables: { publish: true, play: false } });
});

test('bad access rules are refused with a one-line reason', () => {
  const dir = tempDir();
  let n = 0;
  const load = (app: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
    const file = join(dir, `bad-${n++}.jsonc`);
    writeFileSync(file, JSON.stringify({ vhosts: [{ name: 'default', apps: [{ name: 'app', ...app }] }], ...extra }));
    return () => loadConfig({ KILN_CONFIG: file });
  };
  const hook = { controlServerUrl: 'http://h/hook', secretKey: 's' };
  const refused: [Record<string, unknown>, RegExp][] = [
    [{ admissionWebhooks: 'http://h/hook' }, /apps\[0\]\.admissionWebhooks must be an object/],
    [{ admissionWebhooks: { ...hook, controlServerUrl: 'ftp://h/hook' } }, /admissionWebhooks\.controlServerUrl must be an absolute http\(s\) URL/],
    [{ admissionWebhooks: { controlServerUrl: 'http://h/hook' } }, /admissionWebhooks\.secretKey must be a non-empty string/],
    [{ admissionWebhooks: { ...hook, timeoutMs: 0 } }, /admissionWebhooks\.timeoutMs must be an integer from 1 to 60000/],
    [{ admissionWebhooks: { ...hook, timeoutMs: 1.5 } }, /timeoutMs/],
    [{ admissionWebhooks: { ...hook, failOpen: 'yes' } }, /admissionWebhooks\.failOpen must be true or false/],
    [{ admissionWebhooks: { ...hook, enables: { play: 'no' } } }, /admissionWebhooks\.enables\.play must be true or false/],
    [{ admissionWebhooks: { ...hook, enables: { providers: 'webrtc' } } }, /admissionWebhooks\.enables: unknown setting "providers"/],
    [{ admissionWebhooks: { ...hook, secretkey: 's' } }, /admissionWebhooks: unknown setting "secretkey"/],
    [{ signedPolicy: {} }, /signedPolicy\.secretKey must be a non-empty string/],
    [{ signedPolicy: { secretKey: 'k', policyQueryKeyName: 'direction' } }, /policyQueryKeyName cannot be "direction"/],
    [{ signedPolicy: { secretKey: 'k', signatureQueryKeyName: 'a b' } }, /signatureQueryKeyName must be 1-64 of/],
    [{ signedPolicy: { secretKey: 'k', policyQueryKeyName: 'x', signatureQueryKeyName: 'x' } }, /must differ/],
    [{ playbackRequiresTokens: true }, /apps\[0\]: unknown setting "playbackRequiresTokens"/],
  ];
  for (const [app, reason] of refused) {
    assert.throws(load(app), (e: Error) => e instanceof ConfigError && reason.test(e.message) && !e.message.includes('\n'), `${JSON.stringify(app)} → ${reason}`);
  }
  assert.throws(load({ name: 'rooms', signedPolicy: { secretKey: 'k' } }), /"rooms" holds room media/);
  assert.throws(load({ name: 'meet', admissionWebhooks: hook }, { rooms: { app: 'meet' } }), /"meet" holds room media/);
});
