import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Session } from '../../src/core/session.ts';

const session = () => new Session({ kind: 'player', protocol: 'whep', remoteAddress: '127.0.0.1', remotePort: 1, vhost: 'default', app: 'app', stream: 's' });

test('io_activity counts packets in and out over the last 30 samples', () => {
  const s = session();
  for (let i = 0; i < 10; i++) {
    s.counters.packetsOut += 10;
    s.sampleActivity(Date.now());
  }
  assert.equal(s.ioActivity, 100, 'younger than the window: everything since the start');
  for (let i = 0; i < 30; i++) {
    s.counters.packetsIn += 1;
    s.sampleActivity(Date.now());
  }
  assert.equal(s.ioActivity, 30, 'the last 30 samples only');
  for (let i = 0; i < 31; i++) s.sampleActivity(Date.now());
  assert.equal(s.ioActivity, 0);
});

test('idle: a sample marks a path that does not stamp per packet active; a stamped one is left alone', () => {
  const s = session();
  const t0 = s.counters.lastActivity;
  s.sampleActivity(t0 + 1000);
  assert.equal(s.idleSeconds(t0 + 1000), 1, 'no packet: idle grows');
  s.counters.packetsOut += 5;
  s.sampleActivity(t0 + 2000);
  assert.equal(s.counters.lastActivity, t0 + 2000, 'packets moved unstamped: active at the sample');
  assert.equal(s.idleSeconds(t0 + 2500), 0.5);
  // A path that stamps its own time (publishers, participants) keeps it.
  s.counters.packetsIn += 1;
  s.counters.lastActivity = t0 + 2100;
  s.sampleActivity(t0 + 3000);
  assert.equal(s.counters.lastActivity, t0 + 2100);
  assert.equal(s.idleSeconds(t0 + 3000), 0.9);
});

test('a participant counts signaling, not media', () => {
  const p = new Session({ kind: 'participant', protocol: 'openvidu', remoteAddress: '', remotePort: 0, vhost: 'default', app: 'rooms', stream: '' });
  assert.equal(p.countsMedia, false);
  assert.equal(session().countsMedia, true);
});
