/**
 * `npm run bench:api`: the SignalWire room-session listing over a big history. 100 000 room
 * sessions (with members) are written into the embedded store of a fresh data directory, then a
 * Kiln process serves it. A closed-loop load of C concurrent clients (this process, fetch) runs
 * for S seconds against each of:
 *
 * - the first page (`GET /api/video/room_sessions`, 50 rows),
 * - a filtered page (`?status=completed&room_name_matches=7&page_size=100`),
 * - a deep cursor page (the `next` link followed 1 000 times at 50 rows, about row 50 000),
 *
 * and, as the yardstick, a minimal Fastify route (`{"ok":true}`, same auth check) in its own
 * process. Prints requests per second and p50/p99 latency for each, and Kiln's rate as a ratio of
 * the minimal route's.
 *
 *   npm run bench:api -- [--sessions N] [--seconds S] [--concurrency C]
 *
 * (default 100000 sessions, 5 s, 16 clients.)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { freePort, startKiln } from '../test/helpers/kiln-process.ts';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const SESSIONS = flag('--sessions', 100_000);
const SECONDS = flag('--seconds', 5);
const CONCURRENCY = flag('--concurrency', 16);
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

/** Writes `n` room sessions (two members each) straight into the store's database. */
async function seed(dataDir: string, n: number): Promise<void> {
  await new SqliteStore(dataDir).close(); // creates the schema
  const db = new DatabaseSync(join(dataDir, 'kiln.db'));
  const session = db.prepare(`INSERT INTO room_sessions (id, room_id, name, settings, openvidu, status, created_at, updated_at, start_time, end_time, end_reason)
    VALUES (?, ?, ?, '{}', NULL, ?, ?, ?, ?, ?, ?)`);
  const member = db.prepare(`INSERT INTO room_members (id, room_session_id, name, role, server_data, client_data, remote_address, joined_at, left_at, leave_reason)
    VALUES (?, ?, ?, 'PUBLISHER', '', '', '127.0.0.1', ?, ?, 'disconnect')`);
  const rooms = Array.from({ length: 200 }, () => randomUUID());
  const start = Date.parse('2024-01-01T00:00:00Z');
  db.exec('BEGIN');
  for (let i = 0; i < n; i++) {
    const id = randomUUID();
    const at = new Date(start + i * 60_000).toISOString();
    const end = new Date(start + i * 60_000 + 1_800_000).toISOString();
    const done = i < n - 20;
    session.run(id, i % 3 === 0 ? null : rooms[i % rooms.length], `room${i % 1000}`, done ? 'completed' : 'in-progress', at, end, at, done ? end : null, done ? 'session-ended' : null);
    for (const who of ['a', 'b']) member.run(`${who}${i}`, id, who, at, done ? end : null);
  }
  db.exec('COMMIT');
  db.close();
}

interface Load {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

async function load(url: string, auth: string): Promise<Load> {
  const times: number[] = [];
  let errors = 0;
  const until = performance.now() + SECONDS * 1000;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() < until) {
      const t = performance.now();
      const res = await fetch(url, { headers: { authorization: auth } });
      await res.arrayBuffer();
      if (res.status !== 200) errors++;
      times.push(performance.now() - t);
    }
  }));
  return { rps: times.length / SECONDS, p50: quantile(times, 0.5), p99: quantile(times, 0.99), errors };
}

/** A minimal Fastify route in its own process: the yardstick. */
async function minimalFastify(): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const code = `
    import Fastify from 'fastify';
    const app = Fastify();
    app.addHook('onRequest', async (req, reply) => { if (!req.headers.authorization) return reply.code(401).send({ error: 'Unauthorized' }); });
    app.get('/ok', async () => ({ ok: true }));
    await app.listen({ host: '127.0.0.1', port: ${port} });
    process.send?.('ready');`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { cwd: new URL('..', import.meta.url).pathname, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (c) => reject(new Error(`minimal Fastify exited ${c}`)));
  });
  return { url: `http://127.0.0.1:${port}/ok`, child };
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'kiln-bench-api-'));
  const t0 = performance.now();
  await seed(dataDir, SESSIONS);
  console.log(`bench:api: ${SESSIONS} room sessions (200 rooms, 2 members each) written in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${CONCURRENCY} clients, ${SECONDS} s per case`);
  const kiln = await startKiln({ KILN_DATA_DIR: dataDir });
  const minimal = await minimalFastify();
  try {
    const base = `${kiln.apiUrl}/api/video/room_sessions`;
    let deep = `${base}?page_size=50`;
    const d0 = performance.now();
    for (let i = 0; i < 1000; i++) {
      const page = await (await fetch(deep, { headers: { authorization: kiln.basic } })).json() as { links: { next?: string } };
      if (!page.links.next) break;
      deep = page.links.next;
    }
    console.log(`following next 1000 times took ${((performance.now() - d0) / 1000).toFixed(1)} s (${((performance.now() - d0) / 1000).toFixed(2)} ms a page)`);
    const cases: [string, string, string][] = [
      ['minimal Fastify route (yardstick)', minimal.url, 'Basic eA=='],
      ['first page (50 rows)', base, kiln.basic],
      ['filtered page (status, room_name_matches, 100 rows)', `${base}?status=completed&room_name_matches=7&page_size=100`, kiln.basic],
      ['deep cursor page (row ~50 000)', deep, kiln.basic],
    ];
    const results: Load[] = [];
    console.log('| request | req/s | p50 ms | p99 ms | errors | req/s ÷ minimal |');
    console.log('|---|---|---|---|---|---|');
    for (const [name, url, auth] of cases) {
      const r = await load(url, auth);
      results.push(r);
      console.log(`| ${name} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.errors} | ${(r.rps / results[0].rps).toFixed(2)} |`);
    }
  } finally {
    minimal.child.kill();
    await kiln.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
