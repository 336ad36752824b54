/** Byte ranges and temporary links of recording files. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRange, RecordingLinks } from '../../src/recording/file-route.ts';
import { RECORDING_ID } from '../../src/recording/recordings.ts';

test('parseRange: one range within the file, suffixes, open ends; what cannot be served is unsatisfiable', () => {
  assert.equal(parseRange(undefined, 100), undefined);
  assert.deepEqual(parseRange('bytes=0-9', 100), { start: 0, end: 9 });
  assert.deepEqual(parseRange('bytes=90-', 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=90-500', 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=-10', 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=-500', 100), { start: 0, end: 99 });
  assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=5-4', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=-0', 100), 'unsatisfiable');
  // Several ranges or another unit: the whole file.
  assert.equal(parseRange('bytes=0-1,5-6', 100), undefined);
  assert.equal(parseRange('items=0-1', 100), undefined);
  assert.equal(parseRange('bytes=-', 100), undefined);
});

test('RecordingLinks: a link holds for its id until it expires; another id, a later expiry or a changed signature do not', () => {
  const links = new RecordingLinks(Buffer.alloc(32, 7));
  const now = 1_700_000_000_000;
  const q = new URLSearchParams(links.query('room-1', 60, now));
  const expires = q.get('expires')!;
  const signature = q.get('signature')!;
  assert.equal(Number(expires), 1_700_000_060);
  assert.equal(links.valid('room-1', expires, signature, now), true);
  assert.equal(links.valid('room-1', expires, signature, now + 59_000), true);
  assert.equal(links.valid('room-1', expires, signature, now + 60_000), false);
  assert.equal(links.valid('room-2', expires, signature, now), false);
  assert.equal(links.valid('room-1', String(Number(expires) + 1), signature, now), false);
  assert.equal(links.valid('room-1', expires, `${signature.slice(0, -1)}${signature.endsWith('A') ? 'B' : 'A'}`, now), false);
  assert.equal(links.valid('room-1', expires, undefined, now), false);
  assert.equal(links.valid('room-1', 'soon', signature, now), false);
  const other = new RecordingLinks(Buffer.alloc(32, 8));
  assert.equal(other.valid('room-1', expires, signature, now), false);
});

test('RECORDING_ID: names and -N suffixes only; nothing that walks the file system', () => {
  for (const ok of ['abcdefghij012345', 'weekly_sync', 'weekly_sync-1', 'A-b_9']) assert.ok(RECORDING_ID.test(ok), ok);
  for (const bad of ['', '.', '..', '../x', 'a/b', 'a\\b', 'a\u0000b', 'a.mp4', 'x'.repeat(141), ' a']) assert.ok(!RECORDING_ID.test(bad), JSON.stringify(bad));
});
