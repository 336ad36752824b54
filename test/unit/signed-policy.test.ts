import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { checkSignedPolicy, signUrl } from '../../src/access/signed-policy.ts';

const keys = { secretKey: 'aKq#1kj' };
const now = 1_800_000_000_000;
const base = 'ws://media.example.com:3333/app/stream';

test('a URL signed as OME signs it passes; its stream expiry is given back', () => {
  const url = signUrl(base, { url_expire: now + 60_000, stream_expire: now + 3_600_000 }, keys);
  // The signature is HMAC-SHA1 of the URL up to (and with) the policy, base64url without padding.
  const signed = url.slice(0, url.indexOf('&signature='));
  const expected = createHmac('sha1', keys.secretKey).update(signed).digest('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  assert.equal(url.slice(url.indexOf('&signature=') + '&signature='.length), expected);
  assert.deepEqual(checkSignedPolicy(url, '203.0.113.9', keys, now), { allowed: true, streamExpireAt: now + 3_600_000 });
});

test('each rule of the policy refuses with its reason', () => {
  const check = (policy: Record<string, unknown>, client = '203.0.113.9') => checkSignedPolicy(signUrl(base, policy, keys), client, keys, now);
  assert.match(String((check({ url_expire: now - 1 }) as { reason: string }).reason), /expired/);
  assert.match(String((check({ url_expire: now + 1000, url_activate: now + 500 }) as { reason: string }).reason), /not active yet/);
  assert.match(String((check({ url_expire: now + 1000, stream_expire: now - 1 }) as { reason: string }).reason), /stream has expired/);
  assert.match(String((check({}) as { reason: string }).reason), /url_expire/);
  assert.match(String((check({ url_expire: 'soon' }) as { reason: string }).reason), /url_expire/);
  assert.match(String((check({ url_expire: now + 1000, allow_ip: '192.168.0.0/24' }) as { reason: string }).reason), /not allowed/);
  assert.equal(check({ url_expire: now + 1000, allow_ip: '192.168.0.0/24' }, '192.168.0.77').allowed, true);
  assert.equal(check({ url_expire: now + 1000, allow_ip: '192.168.0.0/24' }, '::ffff:192.168.0.77').allowed, true, 'an IPv4-mapped address');
  assert.equal(check({ url_expire: now + 1000, allow_ip: '2001:db8::/32' }, '2001:db8::1').allowed, true);
  assert.match(String((check({ url_expire: now + 1000, allow_ip: '10.0.0.0/33' }) as { reason: string }).reason), /not a valid CIDR/);
  assert.match(String((check({ url_expire: now + 1000, allow_ip: 'nonsense' }) as { reason: string }).reason), /not a valid CIDR/);
});

test('a forged or missing signature, a changed URL or policy, a wrong key: refused', () => {
  const url = signUrl(base, { url_expire: now + 60_000 }, keys);
  assert.equal(checkSignedPolicy(url, '1.2.3.4', { secretKey: 'other' }, now).allowed, false);
  assert.equal(checkSignedPolicy(url.replace('/app/stream', '/app/other'), '1.2.3.4', keys, now).allowed, false);
  const forgedPolicy = signUrl(base, { url_expire: now + 60_000 }, keys).replace(/policy=[^&]+/, `policy=${Buffer.from(JSON.stringify({ url_expire: now + 9e9 })).toString('base64url')}`);
  assert.equal(checkSignedPolicy(forgedPolicy, '1.2.3.4', keys, now).allowed, false);
  assert.match(String((checkSignedPolicy(url.replace(/&signature=.*/, ''), '1.2.3.4', keys, now) as { reason: string }).reason), /no signature/);
  assert.match(String((checkSignedPolicy(`${base}?signature=x`, '1.2.3.4', keys, now) as { reason: string }).reason), /no policy/);
  assert.match(String((checkSignedPolicy(url.replace(/signature=.*/, 'signature='), '1.2.3.4', keys, now) as { reason: string }).reason), /empty/);
  assert.match(String((checkSignedPolicy(`${base}?policy=%E0%A4%A&signature=x`, '1.2.3.4', keys, now) as { reason: string }).reason), /malformed/);
  // Badly encoded parameters elsewhere in the query: refused, never thrown.
  assert.equal(checkSignedPolicy(`${url}&bad=%E0%A4%A&%ZZ=1`, '1.2.3.4', keys, now).allowed, false);
});

test('a signed policy that is not JSON is refused as malformed; other query parameters and custom key names work', () => {
  const notJson = `${base}?policy=${Buffer.from('not json').toString('base64url')}`;
  const signed = `${notJson}&signature=${createHmac('sha1', keys.secretKey).update(notJson).digest('base64url')}`;
  assert.match(String((checkSignedPolicy(signed, '1.2.3.4', keys, now) as { reason: string }).reason), /wrong format/);
  const custom = { ...keys, policyKey: 'p', signatureKey: 's' };
  const url = signUrl(`${base}?direction=whep&session=tv`, { url_expire: now + 1000 }, custom);
  assert.ok(url.includes('direction=whep&session=tv&p='));
  assert.equal(checkSignedPolicy(url, '1.2.3.4', custom, now).allowed, true);
});
