/** The web console's settings: consoleApiUrl (KILN_CONSOLE_API_URL) and consoleDir (KILN_CONSOLE_DIR). */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfig, ConfigError } from '../../src/config/config.ts';

const dir = mkdtempSync(join(tmpdir(), 'kiln-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string): string => {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
};

test('by default the console finds the API at its own host and the API port, and is read from console/dist', () => {
  const c = loadConfig({ KILN_CONFIG: join(import.meta.dirname, '../../kiln.example.jsonc') });
  assert.equal(c.consoleApiUrl, undefined);
  assert.equal(c.consoleDir, undefined);
});

test('consoleApiUrl from the file or the environment, an absolute http(s) URL without trailing slash', () => {
  assert.equal(loadConfig({ KILN_CONFIG: file('a.jsonc', '{"consoleApiUrl": "https://api.example.com/kiln/"}') }).consoleApiUrl, 'https://api.example.com/kiln');
  assert.equal(loadConfig({ KILN_CONSOLE_API_URL: 'http://10.0.0.5:8081' }).consoleApiUrl, 'http://10.0.0.5:8081');
  assert.equal(loadConfig({ KILN_CONFIG: file('b.jsonc', '{"consoleApiUrl": "https://a.example"}'), KILN_CONSOLE_API_URL: 'https://b.example' }).consoleApiUrl, 'https://b.example');
  for (const bad of ['api.example.com', 'ftp://api.example.com', 'https://api.example.com/?x=1']) {
    assert.throws(() => loadConfig({ KILN_CONSOLE_API_URL: bad }), (e: Error) => e instanceof ConfigError && /KILN_CONSOLE_API_URL must be an absolute http\(s\) URL/.test(e.message), bad);
  }
  assert.throws(() => loadConfig({ KILN_CONFIG: file('c.jsonc', '{"consoleApiUrl": 8081}') }), /consoleApiUrl must be an absolute http\(s\) URL/);
});

test('consoleDir from the file or the environment, made absolute', () => {
  assert.equal(loadConfig({ KILN_CONSOLE_DIR: 'build/console' }).consoleDir, resolve('build/console'));
  assert.equal(loadConfig({ KILN_CONFIG: file('d.jsonc', '{"consoleDir": "/srv/console"}') }).consoleDir, '/srv/console');
  assert.throws(() => loadConfig({ KILN_CONFIG: file('e.jsonc', '{"consoleDir": ""}') }), /consoleDir must be a non-empty string/);
});
