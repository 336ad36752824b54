/**
 * A minimal JSON-RPC 2.0 client for Kiln's room WebSocket (`/room`), speaking as openvidu-browser
 * does, for tests and benchmarks that need no browser. Keeps every notification it receives.
 */
import { WebSocket } from 'ws';

export interface RpcErrorBody {
  code: number;
  message: string;
}

export class RpcCallError extends Error {
  readonly code: number;
  constructor(body: RpcErrorBody) {
    super(`${body.code}: ${body.message}`);
    this.code = body.code;
  }
}

export interface Notification {
  method: string;
  params: Record<string, any>;
}

export class RoomRpc {
  readonly ws: WebSocket;
  readonly notifications: Notification[] = [];
  /** Every parsed message, in order (responses too). */
  readonly messages: Record<string, any>[] = [];
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  readonly #waiters = new Set<() => void>();

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      this.messages.push(m);
      if (m.method) this.notifications.push({ method: m.method, params: m.params ?? {} });
      else if (typeof m.id === 'number' && this.#pending.has(m.id)) {
        const p = this.#pending.get(m.id)!;
        this.#pending.delete(m.id);
        if (m.error) p.reject(new RpcCallError(m.error));
        else p.resolve(m.result);
      }
      for (const w of this.#waiters) w();
    });
  }

  /** Opens `url` (…/room). */
  static connect(url: string, options: { rejectUnauthorized?: boolean } = {}): Promise<RoomRpc> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, options);
      ws.once('open', () => resolve(new RoomRpc(ws)));
      ws.once('error', reject);
    });
  }

  /** Calls `method`; resolves with the result, rejects with RpcCallError. */
  call(method: string, params?: Record<string, unknown>, timeoutMs = 10_000): Promise<any> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${method}: no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (v) => { clearTimeout(timer); resolve(v); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      this.ws.send(JSON.stringify({ id, method, params, jsonrpc: '2.0' }));
    });
  }

  /** Sends raw text and resolves with the next message that answers it (or has id null). */
  raw(text: string, timeoutMs = 5000): Promise<Record<string, any>> {
    const seen = this.messages.length;
    this.ws.send(text);
    return this.until(() => this.messages.slice(seen).find((m) => !m.method), timeoutMs);
  }

  /** Resolves with the first notification `method` matching `where`, waiting up to `timeoutMs`. */
  notification(method: string, where: (params: Record<string, any>) => boolean = () => true, timeoutMs = 10_000): Promise<Notification> {
    return this.until(() => this.notifications.find((n) => n.method === method && where(n.params)), timeoutMs, `notification ${method}`);
  }

  until<T>(probe: () => T | undefined, timeoutMs: number, what = 'message'): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const v = probe();
        if (v === undefined) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(v);
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`no ${what} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }

  /** Resolves when the socket is closed (by either side). */
  closed(): Promise<void> {
    if (this.ws.readyState === this.ws.CLOSED) return Promise.resolve();
    return new Promise((resolve) => this.ws.once('close', () => resolve()));
  }

  close(): void {
    this.ws.close();
  }
}
