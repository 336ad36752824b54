/**
 * The composition root: reads the configuration, starts a Kiln node, prints where it serves and
 * the API credential, and stops cleanly on SIGINT/SIGTERM (exit 0). Bad configuration or a port in
 * use: one line on stderr and a non-zero exit.
 */
import { loadConfig, ConfigError } from './config/config.ts';
import { Kiln } from './kiln.ts';

async function main(): Promise<number> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`kiln: configuration error: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const kiln = new Kiln(config);
  try {
    await kiln.start();
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { port?: number };
    if (e.code === 'EADDRINUSE') process.stderr.write(`kiln: cannot listen: address in use (${e.message.replace(/^.*EADDRINUSE:?\s*/, '')})\n`);
    else process.stderr.write(`kiln: cannot start: ${e.message}\n`);
    return 1;
  }
  const scheme = config.tls ? 'https' : 'http';
  const ws = config.tls ? 'wss' : 'ws';
  const host = (h: string) => (h === '0.0.0.0' || h === '::' ? 'localhost' : h);
  const sig = `${scheme}://${host(config.signaling.host)}:${kiln.signaling!.port}`;
  const api = `${scheme}://${host(config.api.host)}:${kiln.api!.port}`;
  const lines = [
    `Kiln is running (node ${config.nodeId}, data in ${config.dataDir})`,
    `  web console       ${sig}/console/  (sign in with the API credential below)`,
    `  web pages         ${sig}/`,
    `  WHIP publish      ${sig}/{app}/{stream}?direction=whip`,
    `  WHEP play         ${sig}/{app}/{stream}?direction=whep`,
    `  OME signaling     ${ws}://${host(config.signaling.host)}:${kiln.signaling!.port}/{app}/{stream}`,
    `  room signaling    ${ws}://${host(config.signaling.host)}:${kiln.signaling!.port}/room  (openvidu-browser 1.x)`,
    `  control API       ${api}/v1/vhosts  (OvenMediaEngine REST v1), ${api}/api/sessions  (OpenVidu 1.x)`,
    `  health, metrics   ${api}/healthz  ${api}/metrics`,
    `  API credential    ${kiln.accessTokens[0]}  (HTTP Basic user:password; the password is the WHIP Bearer token)`,
    'Press Ctrl-C to stop.',
  ];
  // The handlers go in before the banner: whoever reads it may signal at once, and a signal with
  // no handler yet would kill the process without a clean stop.
  const stopped = new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      process.stdout.write(`kiln: ${signal} received, stopping\n`);
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  process.stdout.write(lines.join('\n') + '\n');
  await stopped;
  await kiln.stop();
  process.stdout.write('kiln: stopped\n');
  return 0;
}

// A closed terminal or pipe (EPIPE) must not turn every later write into another uncaught
// exception: the server keeps running, and stops on its signal, without its output.
process.stdout.on('error', () => {});
process.stderr.on('error', () => {});

process.on('uncaughtException', (err) => {
  process.stderr.write(`kiln: uncaught exception: ${err.stack ?? err}\n`);
});
process.on('unhandledRejection', (err) => {
  process.stderr.write(`kiln: unhandled rejection: ${(err as Error)?.stack ?? err}\n`);
});

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`kiln: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
