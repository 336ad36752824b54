/** The `events` settings: webhooks from the config file or the environment, checked at load. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, ConfigError } from '../../src/config/config.ts';

const dir = mkdtempSync(join(tmpdir(), 'kiln-config-events-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const withFile = (events: unknown) => {
  const path = join(dir, `c${Math.random().toString(36).slice(2)}.jsonc`);
  writeFileSync(path, JSON.stringify({ events }));
  return loadConfig({ KILN_CONFIG: path });
};

test('no webhooks by default; events kept 24 h', () => {
  const c = loadConfig({ KILN_CONFIG: join(import.meta.dirname, '../../kiln.example.jsonc') });
  assert.deepEqual(c.events, { webhooks: [], retentionHours: 24 });
});

test('webhooks from the file and from KILN_EVENT_WEBHOOKS with KILN_EVENT_SECRET', () => {
  const c = withFile({ webhooks: [{ url: 'https://hooks.example.com/kiln', secret: 's' }], retentionHours: 2 });
  assert.deepEqual(c.events, { webhooks: [{ url: 'https://hooks.example.com/kiln', secret: 's' }], retentionHours: 2 });
  const e = loadConfig({ KILN_EVENT_WEBHOOKS: 'http://127.0.0.1:9/a, http://127.0.0.1:9/b', KILN_EVENT_SECRET: 'k' });
  assert.deepEqual(e.events.webhooks, [{ url: 'http://127.0.0.1:9/a', secret: 'k' }, { url: 'http://127.0.0.1:9/b', secret: 'k' }]);
});

test('bad event settings stop Kiln with one line naming them', () => {
  const bad: [unknown, RegExp][] = [
    [[], /events must be an object/],
    [{ webhooks: {} }, /events.webhooks must be an array/],
    [{ webhooks: [{ url: 'ftp://x/y', secret: 's' }] }, /events.webhooks\[0\].url must be an absolute http\(s\) URL/],
    [{ webhooks: [{ url: 'not a url', secret: 's' }] }, /events.webhooks\[0\].url/],
    [{ webhooks: [{ url: 'http://x/y' }] }, /events.webhooks\[0\].secret must be a non-empty string/],
    [{ webhooks: [{ url: 'http://x/y', secret: 's' }, { url: 'http://x/y', secret: 't' }] }, /lists a URL twice/],
    [{ retentionHours: 0 }, /retentionHours/],
    [{ retentionHours: 'long' }, /retentionHours/],
  ];
  for (const [events, message] of bad) assert.throws(() => withFile(events), (err: Error) => err instanceof ConfigError && message.test(err.message), JSON.stringify(events));
  assert.throws(() => loadConfig({ KILN_EVENT_WEBHOOKS: 'http://x/y' }), /KILN_EVENT_SECRET/);
  assert.throws(() => loadConfig({ KILN_EVENT_WEBHOOKS: 'nope', KILN_EVENT_SECRET: 'k' }), /KILN_EVENT_WEBHOOKS must be an absolute/);
});
