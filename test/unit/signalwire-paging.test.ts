import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PageTokens } from '../../src/api/signalwire/paging.ts';

const cursor = { createdAt: '2026-01-01T00:00:00.000Z', id: 'a' };

test('a page token reads back its cursor and page; size, number and the token are checked', () => {
  const tokens = new PageTokens(randomBytes(32));
  const token = tokens.issue('n', cursor, 3, 'f');
  assert.deepEqual(tokens.read({ page_token: token, page_size: '10' }, 'f'), { size: 10, number: 3, before: cursor });
  assert.deepEqual(tokens.read({ page_token: tokens.issue('p', cursor, 2, 'f') }, 'f'), { size: 50, number: 2, after: cursor });
  assert.deepEqual(tokens.read({}, 'f'), { size: 50, number: 0 });
  const bad = (query: Record<string, string>, parameter: string) =>
    assert.throws(() => tokens.read(query, 'f'), (err: { code: string; subject: { parameter: string } }) => err.code === 'INVALID_PARAMETER' && err.subject.parameter === parameter);
  bad({ page_size: '1001' }, 'page_size');
  bad({ page_size: '1.5' }, 'page_size');
  bad({ page_number: '2' }, 'page_token');
  bad({ page_token: token, page_number: '4' }, 'page_number');
  bad({ page_token: new PageTokens(randomBytes(32)).issue('n', cursor, 1, 'f') }, 'page_token');
  assert.throws(() => tokens.read({ page_token: token }, 'other filters'), { code: 'INVALID_PARAMETER' });
});

test('a page token expires after an hour', (t) => {
  const tokens = new PageTokens(randomBytes(32));
  const token = tokens.issue('n', cursor, 1, 'f');
  const now = Date.now();
  t.mock.method(Date, 'now', () => now + 60 * 60 * 1000 + 1);
  assert.throws(() => tokens.read({ page_token: token }, 'f'), /expired/);
});
