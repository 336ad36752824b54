/**
 * The cluster layer (src/cluster) on a real PostgreSQL: the live-state mirror, the command bus
 * (answers small and large, errors, time-outs), dead-node detection, and losing and regaining the
 * database. Nodes here are Cluster objects over real catalogues and stores, in this process.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import pino from 'pino';
import { Catalog } from '../../src/core/catalog.ts';
import { Session } from '../../src/core/session.ts';
import { Cluster } from '../../src/cluster/cluster.ts';
import { KilnError } from '../../src/core/errors.ts';
import { PgStore } from '../../src/store/postgres/pg-store.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { waitFor } from '../helpers/browser.ts';
import { recordingRecord } from '../helpers/store-contract.ts';

let db: TestPostgres;
let store: PgStore;
const logger = pino({ level: 'silent' });

before(async () => {
  db = await startPostgres();
  store = await PgStore.open(db.url);
});
after(async () => {
  await store?.close();
  await db?.stop();
});

function node(id: string, catalog = newCatalog()): { cluster: Cluster; catalog: Catalog } {
  const cluster = new Cluster({
    url: db.url, nodeId: id, publicUrl: `http://${id}.example:3333`, apiUrl: 'http://127.0.0.1:1', ovtUrl: 'ovt://127.0.0.1:2',
    catalog, store, logger, heartbeatMs: 200, deadAfterMs: 1500, commandTimeoutMs: 1500,
  });
  return { cluster, catalog };
}

const newCatalog = () => new Catalog([{ name: 'default', apps: [{ name: 'app', playbackRequiresToken: false }] }]);

function player(catalog: Catalog, id: string, stream = 'cam'): Session {
  const session = new Session({ id, kind: 'player', protocol: 'whep', remoteAddress: '127.0.0.2', remotePort: 5000, vhost: 'default', app: 'app', stream });
  catalog.addSession(session);
  return session;
}

async function sql<T extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    return (await client.query<T>(text, params)).rows;
  } finally {
    await client.end();
  }
}

describe('two nodes', () => {
  let a: ReturnType<typeof node>;
  let b: ReturnType<typeof node>;
  before(async () => {
    a = node('a');
    b = node('b');
    await Promise.all([a.cluster.start(), b.cluster.start()]);
  });
  after(async () => {
    await a.cluster.stop();
    await b.cluster.stop();
  });

  test('a session opened on A is seen by B with its counters, and gone once it closes', async () => {
    const s = player(a.catalog, 'p-1');
    s.counters.bytesOut = 1234;
    s.activate();
    await a.cluster.flush();
    const [seen] = await b.cluster.remoteSessions();
    assert.equal(seen.id, 'p-1');
    assert.equal(seen.nodeId, 'a');
    assert.equal(seen.kind, 'player');
    assert.equal(seen.state, 'active');
    assert.equal(seen.counters.bytesOut, 1234);
    assert.deepEqual((await b.cluster.remoteSessions({ vhost: 'default', app: 'app', name: 'cam' })).map((x) => x.id), ['p-1']);
    assert.deepEqual(await b.cluster.remoteSessions({ vhost: 'default', app: 'app', name: 'other' }), []);
    assert.deepEqual(await a.cluster.remoteSessions(), [], 'a node does not see its own as remote');
    // Counters follow within a couple of heartbeats.
    s.counters.bytesOut = 99_999;
    await waitFor(async () => (await b.cluster.remoteSession('p-1'))?.counters.bytesOut, (n) => n === 99_999, 3000, 100);
    s.close('client-left');
    await a.cluster.flush();
    assert.equal(await b.cluster.remoteSession('p-1'), undefined);
  });

  test('a command runs on the node it is sent to and answers after its effect is mirrored', async () => {
    const s = player(a.catalog, 'p-2');
    await a.cluster.flush();
    a.cluster.handle('kick-session', async (args) => {
      a.catalog.sessions.get(String(args.id))?.close('kicked');
      return { kicked: args.id };
    });
    assert.deepEqual(await b.cluster.request('a', 'kick-session', { id: 'p-2' }), { kicked: 'p-2' });
    assert.equal(s.closeReason, 'kicked');
    assert.equal(await b.cluster.remoteSession('p-2'), undefined, 'the mirror shows it when the answer arrives');
  });

  test('a large answer travels through the replies table; errors keep their code; a silent node times out', async () => {
    const big = 'x'.repeat(50_000);
    a.cluster.handle('big', async () => ({ big }));
    assert.deepEqual(await b.cluster.request('a', 'big', {}), { big });
    assert.deepEqual(await sql('SELECT id FROM bus_replies'), [], 'fetched once, then deleted');
    a.cluster.handle('fails', async () => {
      throw new KilnError('SESSION_NOT_FOUND', 'no such session');
    });
    await assert.rejects(b.cluster.request('a', 'fails', {}), (err: KilnError) => err.code === 'SESSION_NOT_FOUND' && err.message === 'no such session');
    await assert.rejects(b.cluster.request('a', 'unknown-op', {}), (err: KilnError) => err.code === 'BAD_REQUEST');
    const started = Date.now();
    await assert.rejects(b.cluster.request('nobody', 'big', {}), (err: KilnError) => err.code === 'UNAVAILABLE');
    assert.ok(Date.now() - started >= 1400, 'waited for the time-out');
  });

  test('a node that stops heartbeating is declared dead: its mirror and room sessions are closed, others are told', async () => {
    const at = new Date().toISOString();
    await sql(`INSERT INTO cluster_nodes (id, instance, state, public_url, api_url, ovt_url, started_at, heartbeat_at)
      VALUES ('ghost', 'x', 'alive', 'http://ghost', 'http://ghost', 'ovt://ghost', now(), now())`);
    await sql(`INSERT INTO live_sessions (id, node_id, info, kind, vhost, app, stream, connected_at) SELECT id, 'ghost', info, kind, vhost, app, stream, connected_at
      FROM (VALUES ('g-1', '{"kind":"player","protocol":"whep","remoteAddress":"","remotePort":0,"userAgent":"","user":"","vhost":"default","app":"app","stream":"cam","roomSession":null,"connectedAt":"${at}","state":"active","counters":{"bytesIn":0,"bytesOut":0,"packetsIn":0,"packetsOut":0,"lastActivity":0},"ioActivity":0,"memory":0}', 'player', 'default', 'app', 'cam', '${at}')) AS v(id, info, kind, vhost, app, stream, connected_at)`);
    await store.putRoomSession({ id: 'rs-ghost', roomId: null, name: 'ghostroom', settings: {}, openvidu: null, status: 'in-progress', createdAt: at, updatedAt: at, startTime: at, endTime: null, endReason: null, nodeId: 'ghost' });
    await store.putRoomSession({ id: 'rs-b', roomId: null, name: 'broom', settings: {}, openvidu: null, status: 'in-progress', createdAt: at, updatedAt: at, startTime: at, endTime: null, endReason: null, nodeId: 'b' });
    await store.putRecording({ ...recordingRecord('ghost-rec', at, 'started'), nodeId: 'ghost' });
    assert.equal((await a.cluster.remoteSession('g-1'))?.nodeId, 'ghost');
    const told = new Promise<string[]>((resolve) => b.cluster.onNodesDead(resolve));
    const declaredAt = Date.now();
    const dead = await told;
    assert.deepEqual(dead, ['ghost']);
    assert.ok(Date.now() - declaredAt < 4000, `declared in ${Date.now() - declaredAt} ms`);
    assert.equal(await a.cluster.remoteSession('g-1'), undefined);
    assert.deepEqual(await sql(`SELECT id FROM live_sessions WHERE node_id = 'ghost'`), []);
    const ghost = await store.getRoomSession('rs-ghost');
    assert.deepEqual([ghost?.status, ghost?.endReason], ['completed', 'node-lost']);
    assert.equal((await store.getRoomSession('rs-b'))?.status, 'in-progress', 'a live node keeps its room sessions');
    assert.equal((await store.getRecording('ghost-rec'))?.status, 'stopped', 'its recording waits for it to come back to be composed');
    assert.deepEqual((await a.cluster.nodes()).map((n) => [n.id, n.state]), [['a', 'alive'], ['b', 'alive'], ['ghost', 'dead']]);
  });

  test('a second process with a running node\'s id is refused', async () => {
    const kept = player(a.catalog, 'p-kept');
    await a.cluster.flush();
    const twin = node('a');
    await assert.rejects(twin.cluster.start(), /KILN_NODE_ID a is in use/);
    await twin.cluster.stop();
    // The refused twin leaves the running node's registration and mirror alone.
    assert.equal((await b.cluster.remoteSession('p-kept'))?.nodeId, 'a');
    assert.deepEqual((await b.cluster.nodes()).filter((n) => n.id === 'a').map((n) => n.state), ['alive']);
    kept.close('client-left');
    await a.cluster.flush();
  });

  test('a node taken for dead while it ran (cut off) rejoins: registered again, its mirror rewritten, told to rewrite what it holds', async () => {
    const s = player(a.catalog, 'p-revived');
    await a.cluster.flush();
    let revived = 0;
    a.cluster.onRevived(() => revived++);
    // What a sweep does to a node cut off for longer than the dead-after time.
    await sql(`UPDATE cluster_nodes SET state = 'dead' WHERE id = 'a'`);
    await sql(`DELETE FROM live_sessions WHERE node_id = 'a'`);
    await waitFor(async () => revived, (n) => n === 1, 3000, 50);
    assert.deepEqual((await b.cluster.nodes()).filter((n) => n.id === 'a').map((n) => n.state), ['alive']);
    await waitFor(async () => (await b.cluster.remoteSession('p-revived'))?.nodeId, (id) => id === 'a', 3000, 100);
    s.close('client-left');
    await a.cluster.flush();
  });

  test('losing the database: unavailable, then back with the mirror rewritten and nobody declared dead', async () => {
    const s = player(a.catalog, 'p-3');
    await a.cluster.flush();
    await db.pause();
    await waitFor(async () => a.cluster.available || b.cluster.available, (v) => !v, 5000, 50);
    await assert.rejects(b.cluster.remoteSessions(), (err: KilnError) => err.code === 'UNAVAILABLE');
    // Changes while away are written once the database is back.
    s.close('client-left');
    player(a.catalog, 'p-4');
    await new Promise((r) => setTimeout(r, 2000));
    await db.resume();
    await waitFor(async () => a.cluster.available && b.cluster.available, (v) => v, 10_000, 100);
    const ids = await waitFor(async () => (await b.cluster.remoteSessions()).map((x) => x.id), (v) => v.includes('p-4') && !v.includes('p-3'), 5000, 100);
    assert.deepEqual(ids, ['p-4']);
    // Both were away longer than the dead-after time, but came back: still alive after a while.
    await new Promise((r) => setTimeout(r, 2500));
    assert.deepEqual((await a.cluster.nodes()).filter((n) => n.id !== 'ghost').map((n) => [n.id, n.state]), [['a', 'alive'], ['b', 'alive']]);
  });
});
