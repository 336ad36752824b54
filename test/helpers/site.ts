/**
 * A tiny web site on its own loopback port — another origin than Kiln's — to load third-party
 * clients into, as a real deployment would. Serves a blank page, plus the given files by path.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

export interface Site {
  url: string;
  close: () => Promise<void>;
}

const PAGE = '<!doctype html><html><body><div id="player"></div><video id="preview" muted autoplay playsinline></video></body></html>';

export async function startSite(files: Record<string, string> = {}): Promise<Site> {
  const server = createServer((req, res) => {
    const file = files[req.url ?? ''];
    if (file) res.writeHead(200, { 'content-type': 'text/javascript' }).end(readFileSync(file));
    else res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}/`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
