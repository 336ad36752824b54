/**
 * Starts a real, throwaway PostgreSQL server for tests, from Debian's packaged binaries
 * (`/usr/lib/postgresql/<highest version>/bin`), on 127.0.0.1 and a free port, with trust auth for
 * the user `kiln` and an empty database `kiln_test`. As root (initdb refuses to run as root) the
 * server runs as the `postgres` system user. Durability is off (fsync, synchronous_commit,
 * full_page_writes) for speed: the data directory is deleted by `stop()`.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './kiln-process.ts';

/** A running test server: `url` points at its `kiln_test` database. */
export interface TestPostgres {
  url: string;
  /** Stops the server (`pg_ctl stop -m immediate`) and deletes its files; idempotent. */
  stop: () => Promise<void>;
  /** Stops the server as an outage would (connections cut), keeping its files. */
  pause: () => Promise<void>;
  /** Starts the paused server again on the same port; resolves once it accepts connections. */
  resume: () => Promise<void>;
}

const PG_ROOT = '/usr/lib/postgresql';
const START_TIMEOUT_MS = 20_000;

/** The bin directory of the highest installed PostgreSQL version. */
function postgresBin(): string {
  const versions = existsSync(PG_ROOT)
    ? readdirSync(PG_ROOT).filter((v) => /^\d+(\.\d+)?$/.test(v) && existsSync(join(PG_ROOT, v, 'bin', 'initdb')))
    : [];
  if (versions.length === 0) throw new Error(`No PostgreSQL server found under ${PG_ROOT}/<version>/bin (Debian package postgresql)`);
  versions.sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
  return join(PG_ROOT, versions[0], 'bin');
}

function run(file: string, args: string[], timeout = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

const firstExisting = (...paths: string[]): string => paths.find((p) => existsSync(p)) ?? paths[paths.length - 1];

/** Starts a fresh server; resolves once `kiln_test` accepts connections. */
export async function startPostgres(): Promise<TestPostgres> {
  const bin = postgresBin();
  const asRoot = process.getuid?.() === 0;
  const runuser = firstExisting('/usr/sbin/runuser', '/sbin/runuser', '/usr/bin/runuser', 'runuser');
  /** Runs one PostgreSQL program, as `postgres` when we are root. */
  const pgRun = (program: string, args: string[], timeout?: number): Promise<string> =>
    asRoot ? run(runuser, ['-u', 'postgres', '--', join(bin, program), ...args], timeout) : run(join(bin, program), args, timeout);

  const dir = mkdtempSync(join(tmpdir(), 'kiln-pg-'));
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  const readLog = (): string => (existsSync(log) ? readFileSync(log, 'utf8') : '(no server log)');
  let started = false;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    try {
      if (started) await pgRun('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop'], 30_000).catch(() => {});
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  try {
    if (asRoot) await run('chown', ['-R', 'postgres:postgres', dir]);
    await pgRun('initdb', ['-D', data, '-A', 'trust', '-U', 'kiln', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions']);
    let port = 0;
    let options = '';
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      options = [
        `-c listen_addresses=127.0.0.1`, `-p ${port}`, `-k ${dir}`,
        '-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off', '-c max_connections=100',
      ].join(' ');
      try {
        await pgRun('pg_ctl', ['-D', data, '-l', log, '-o', options, '-w', '-t', String(START_TIMEOUT_MS / 1000), 'start'], START_TIMEOUT_MS + 5_000);
        started = true;
        break;
      } catch (err) {
        // Another process may have taken the port between freePort() and the bind: try another.
        started = true; // pg_ctl may have left a server behind; stop() tries to stop it.
        await pgRun('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop'], 30_000).catch(() => {});
        if (attempt >= 3 || !/could not bind|address already in use/i.test(readLog())) throw err;
      }
    }
    await waitForConnections(`postgres://kiln@127.0.0.1:${port}/postgres`);
    const admin = new pg.Client({ connectionString: `postgres://kiln@127.0.0.1:${port}/postgres` });
    await admin.connect();
    try {
      await admin.query('CREATE DATABASE kiln_test');
    } finally {
      await admin.end();
    }
    const pause = async (): Promise<void> => {
      await pgRun('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop'], 30_000);
    };
    const resume = async (): Promise<void> => {
      await pgRun('pg_ctl', ['-D', data, '-l', log, '-o', options, '-w', '-t', String(START_TIMEOUT_MS / 1000), 'start'], START_TIMEOUT_MS + 5_000);
      await waitForConnections(`postgres://kiln@127.0.0.1:${port}/kiln_test`);
    };
    return { url: `postgres://kiln@127.0.0.1:${port}/kiln_test`, stop, pause, resume };
  } catch (err) {
    const serverLog = readLog();
    await stop();
    throw new Error(`PostgreSQL did not start: ${(err as Error).message}\n--- server log ---\n${serverLog}`, { cause: err });
  }
}

async function waitForConnections(url: string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      return;
    } catch (err) {
      await client.end().catch(() => {});
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
