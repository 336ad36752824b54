import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKiln } from '../helpers/kiln-process.ts';

const printed = (output: string) => /API credential\s+(\S+:\S+)/.exec(output)?.[1];

test('without KILN_ACCESS_TOKEN a credential is generated, printed, and kept across restarts', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'kiln-cred-'));
  const first = await startKiln({ KILN_ACCESS_TOKEN: '', KILN_DATA_DIR: dataDir });
  const credential = printed(first.output());
  assert.ok(credential, first.output());
  const auth = `Basic ${Buffer.from(credential).toString('base64')}`;
  assert.equal((await fetch(`${first.apiUrl}/v1/vhosts`, { headers: { authorization: auth } })).status, 200);
  assert.equal(await first.stop(), 0);

  const second = await startKiln({ KILN_ACCESS_TOKEN: '', KILN_DATA_DIR: dataDir });
  assert.equal(printed(second.output()), credential, 'the same credential after a restart');
  assert.equal((await fetch(`${second.apiUrl}/v1/vhosts`, { headers: { authorization: auth } })).status, 200);
  assert.equal(await second.stop(), 0);
  rmSync(dataDir, { recursive: true, force: true });
});
