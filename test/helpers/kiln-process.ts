/**
 * Starts a real Kiln process (`node src/main.ts`) on free ports with a fresh data directory, for
 * tests that cross the process boundary. `stop()` sends SIGTERM and checks the clean exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { defaultConfig, type KilnConfig } from '../../src/config/config.ts';
import { Kiln } from '../../src/kiln.ts';

export interface KilnProcess {
  child: ChildProcess;
  apiUrl: string;
  signalingUrl: string;
  wsUrl: string;
  user: string;
  password: string;
  /** `Basic …` header value for the API credential. */
  basic: string;
  dataDir: string;
  output: () => string;
  /** SIGTERM, then resolves with the exit code (kills after `timeoutMs`). */
  stop: (timeoutMs?: number) => Promise<number | null>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

const ROOT = new URL('../../', import.meta.url).pathname;

export async function startKiln(env: Record<string, string> = {}): Promise<KilnProcess> {
  const dataDir = env.KILN_DATA_DIR ?? mkdtempSync(join(tmpdir(), 'kiln-test-'));
  const apiPort = env.KILN_API_PORT ?? String(await freePort());
  const sigPort = env.KILN_SIGNALING_PORT ?? String(await freePort());
  const ovtPort = env.KILN_OVT_PORT ?? String(await freePort());
  const user = 'admin';
  const password = 'test-secret';
  const child = spawn(process.execPath, [join(ROOT, 'src/main.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      KILN_API_HOST: '127.0.0.1',
      KILN_SIGNALING_HOST: '127.0.0.1',
      KILN_OVT_HOST: '127.0.0.1',
      KILN_API_PORT: apiPort,
      KILN_SIGNALING_PORT: sigPort,
      KILN_OVT_PORT: ovtPort,
      KILN_DATA_DIR: dataDir,
      KILN_ACCESS_TOKEN: `${user}:${password}`,
      KILN_LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Kiln did not start in 20 s:\n${out}`)), 20_000);
    const check = () => {
      if (out.includes('Press Ctrl-C to stop.')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Kiln exited with ${code} before it started:\n${out}`));
    });
  });
  return {
    child,
    apiUrl: `http://127.0.0.1:${apiPort}`,
    signalingUrl: `http://127.0.0.1:${sigPort}`,
    wsUrl: `ws://127.0.0.1:${sigPort}`,
    user,
    password,
    basic: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
    dataDir,
    output: () => out,
    stop: async (timeoutMs = 10_000) => {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      if (!env.KILN_DATA_DIR) rmSync(dataDir, { recursive: true, force: true });
      return code;
    },
  };
}

/** A Kiln node in the test's own process, on loopback with free ports and a fresh data directory. */
export interface InProcessKiln {
  kiln: Kiln;
  signalingUrl: string;
  /** Stops the node and removes its data directory. */
  stop: () => Promise<void>;
}

/** Starts Kiln in-process; `configure` may change the settings first. The API password is `pw`. */
export async function startKilnInProcess(configure: (config: KilnConfig) => void = () => {}): Promise<InProcessKiln> {
  const dataDir = mkdtempSync(join(tmpdir(), 'kiln-inproc-'));
  const config = defaultConfig();
  Object.assign(config, { dataDir, accessTokens: ['admin:pw'] });
  config.api = { host: '127.0.0.1', port: 0 };
  config.signaling = { host: '127.0.0.1', port: 0 };
  config.ovt = { host: '127.0.0.1', port: 0 };
  configure(config);
  const kiln = new Kiln(config, pino({ level: 'silent' }));
  await kiln.start();
  return {
    kiln,
    signalingUrl: `http://127.0.0.1:${kiln.signaling!.port}`,
    stop: async () => {
      await kiln.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
