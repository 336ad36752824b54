/**
 * A real RTSP camera for tests: `rtsp-server.py` (GStreamer's gst-rtsp-server through Debian's
 * python3-gi) serving live H.264 with Opus, AAC, PCMU or no audio, over UDP and TCP-interleaved.
 *
 * Mounts: `/h264-opus`, `/h264-aac`, `/h264-pcmu`, `/h264` (open), `/digest/h264-opus` (Digest
 * auth only) and `/basic/h264-opus` (Basic auth only). Each mount is one shared live pipeline.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from './kiln-process.ts';

export interface RtspServer {
  port: number;
  /** `rtsp://127.0.0.1:<port><path>`, with `user:password@` when `auth` is given. */
  url(path: string, auth?: { user: string; password: string }): string;
  /** SIGTERM (SIGKILL after 2 s); resolves once the process has exited and the port is free. */
  stop(): Promise<void>;
}

const SCRIPT = join(import.meta.dirname, 'rtsp-server.py');
const READY_TIMEOUT_MS = 15_000;

export async function startRtspServer(
  options: { port?: number; user?: string; password?: string } = {},
): Promise<RtspServer> {
  const port = options.port ?? (await freePort());
  const user = options.user ?? 'kiln';
  const password = options.password ?? 'camera-secret';
  const child = spawn('/usr/bin/python3', [SCRIPT, '--port', String(port), '--user', user, '--password', password], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => (stderr += d));
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });

  try {
    await new Promise<void>((resolve, reject) => {
      const fail = (why: string) => {
        cleanup();
        reject(new Error(`RTSP test server on port ${port} ${why}:\n${stderr}`));
      };
      const onData = (d: string) => {
        stdout += d;
        const match = /^READY (\d+)$/m.exec(stdout);
        if (match) {
          cleanup();
          if (Number(match[1]) === port) resolve();
          else reject(new Error(`RTSP test server bound ${match[1]}, expected ${port}`));
        }
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => fail(`exited (${code ?? signal}) before READY`);
      const onError = (err: Error) => fail(`could not be spawned (${err.message})`);
      const timer = setTimeout(() => fail(`was not READY within ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS);
      const cleanup = () => {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        child.off('exit', onExit);
        child.off('error', onError);
      };
      child.stdout.on('data', onData);
      child.once('exit', onExit);
      child.once('error', onError);
    });
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    throw err;
  }
  child.stdout.resume(); // keep draining, the script prints nothing more

  let stopping: Promise<void> | undefined;
  return {
    port,
    url(path, auth) {
      const credentials = auth ? `${encodeURIComponent(auth.user)}:${encodeURIComponent(auth.password)}@` : '';
      return `rtsp://${credentials}127.0.0.1:${port}${path.startsWith('/') ? path : `/${path}`}`;
    },
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 2_000);
          await exited;
          clearTimeout(timer);
        }
      })();
      return stopping;
    },
  };
}
