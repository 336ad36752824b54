/**
 * A real HTTP receiver for Kiln's event webhooks, in the test process: it records every request
 * (body, parsed event, headers), can answer errors for a while, and can go down and come back up
 * on the same port.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createHmac } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export interface ReceivedEvent {
  raw: string;
  event: { id: string; seq: number; type: string; time: string; node: string; subject: string; data: Record<string, any> };
  headers: IncomingHttpHeaders;
  at: number;
}

export interface WebhookReceiver {
  url: string;
  port: number;
  received: ReceivedEvent[];
  /** Answers `status` to the next `n` requests (records them as refused, not received). */
  refuseNext(n: number, status?: number): void;
  refused: number;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

/** Whether a request's `X-Kiln-Signature` is the HMAC-SHA256 of its body with `secret`. */
export function signedWith(secret: string, r: ReceivedEvent): boolean {
  return r.headers['x-kiln-signature'] === `sha256=${createHmac('sha256', secret).update(r.raw).digest('hex')}`;
}

export async function startWebhookReceiver(port = 0): Promise<WebhookReceiver> {
  let server: Server | undefined;
  let refuse = 0;
  let refuseStatus = 503;
  const sockets = new Set<import('node:net').Socket>();
  const receiver: WebhookReceiver = {
    url: '',
    port,
    received: [],
    refused: 0,
    refuseNext(n, status = 503) {
      refuse = n;
      refuseStatus = status;
    },
    async up() {
      server = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          if (refuse > 0) {
            refuse--;
            receiver.refused++;
            res.writeHead(refuseStatus).end();
            return;
          }
          const raw = Buffer.concat(chunks).toString('utf8');
          receiver.received.push({ raw, event: JSON.parse(raw), headers: req.headers, at: Date.now() });
          res.writeHead(204).end();
        });
      });
      server.on('connection', (s) => {
        sockets.add(s);
        s.once('close', () => sockets.delete(s));
      });
      await new Promise<void>((resolve, reject) => {
        server!.once('error', reject);
        server!.listen(receiver.port, '127.0.0.1', () => resolve());
      });
      receiver.port = (server.address() as AddressInfo).port;
      receiver.url = `http://127.0.0.1:${receiver.port}/hook`;
    },
    async down() {
      if (!server) return;
      const s = server;
      server = undefined;
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
    async close() {
      await receiver.down();
    },
  };
  await receiver.up();
  return receiver;
}
