/**
 * The edge side of OVT: one TCP connection to an origin, its requests (describe, play, stop, and
 * Kiln's keyframe) and the media records that follow a play. Knows nothing of streams or
 * forwarders; `OvtPull` (src/ingest/ovt-pull.ts) builds those on it.
 */
import { connect, type Socket } from 'node:net';
import { encodeOvtPackets, OvtParser, OVT_MESSAGE_REQUEST, OVT_MESSAGE_RESPONSE } from './packet.ts';
import {
  encodeRequest, parseDescribeContents, parseOvtUrl, parseResponse, type OvtApplication, type OvtResponse, type OvtStreamDescription,
  type OvtTarget,
} from './signaling.ts';

export interface OvtClientOptions {
  /** `ovt://host[:port]/{app}/{stream}` (port 9000 when absent). */
  url: string;
  /** Longest wait for the connection and for each answer, ms. */
  timeoutMs: number;
  /** A media record from the origin (after play); the buffer is the callee's to keep. Must not throw. */
  onMedia: (record: Buffer) => void;
  /** The origin ended the stream (its unasked `stop`), with its message. */
  onStop: (message: string) => void;
  /** The connection is gone (not after `close()`); `err` says why when it broke. */
  onClose: (err: Error | undefined) => void;
  /** Proves to the origin that this edge is a node of its cluster (Kiln's `auth`, see OvtRequest). */
  auth?: (app: string, stream: string) => string;
}

/** Why a request failed, worded for the API's 502 (`connection refused`, `describe answered 404: …`). */
export class OvtClientError extends Error {
  override name = 'OvtClientError';
}

interface Pending {
  application: OvtApplication;
  resolve: (response: OvtResponse) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** What the origin's answers to the client must not exceed in total, bytes. */
const MAX_MESSAGE_BYTES = 1024 * 1024;
const MAX_MEDIA_BYTES = 256 * 1024;

export class OvtClient {
  readonly target: OvtTarget;
  readonly #options: OvtClientOptions;
  readonly #parser: OvtParser;
  readonly #pending = new Map<number, Pending>();
  #socket: Socket | undefined;
  #nextId = 1;
  #playing = false;
  #closed = false;
  /** Set when the connection broke, for the requests it fails and for `onClose`. */
  #failure: Error | undefined;

  constructor(options: OvtClientOptions) {
    this.#options = options;
    this.target = parseOvtUrl(options.url);
    this.#parser = new OvtParser({
      onMessage: (type, message) => this.#onMessage(type, message),
      onMedia: (record) => {
        if (this.#playing) this.#options.onMedia(record);
      },
      maxMessageBytes: MAX_MESSAGE_BYTES,
      maxMediaBytes: MAX_MEDIA_BYTES,
    });
  }

  /** Connects; rejects with `connection refused`, `no connection within N ms`, … */
  connect(): Promise<void> {
    const { host, port } = this.target;
    const ms = this.#options.timeoutMs;
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      this.#socket = socket;
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 10_000);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new OvtClientError(`no connection within ${ms} ms`));
      }, ms);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.on('data', (chunk: Buffer) => {
        try {
          this.#parser.push(chunk);
        } catch (err) {
          this.#fail(new OvtClientError(`malformed OVT from the origin: ${(err as Error).message}`));
        }
      });
      socket.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const cause = connectionError(err);
        this.#failure ??= cause;
        reject(cause);
      });
      socket.once('close', () => {
        clearTimeout(timer);
        reject(this.#failure ?? new OvtClientError('the origin closed the connection'));
        this.#onSocketClose();
      });
      if (this.#closed) socket.destroy();
    });
  }

  /** Describes the target; rejects with the origin's code and message unless 200. */
  async describe(): Promise<OvtStreamDescription> {
    const response = await this.#request('describe');
    return parseDescribeContents(response.contents);
  }

  /** Asks for media; resolves once the origin answers 200 (records may follow at once). */
  async play(): Promise<void> {
    // Records that arrive with the answer, in the same chunk, belong to the play.
    this.#playing = true;
    try {
      await this.#request('play');
    } catch (err) {
      this.#playing = false;
      throw err;
    }
  }

  /** Kiln's addition: asks the origin's source for a key frame (no answer). */
  requestKeyFrame(): void {
    this.#send('keyframe', this.#nextId++);
  }

  #request(application: OvtApplication): Promise<OvtResponse> {
    const id = this.#nextId++;
    const ms = this.#options.timeoutMs;
    return new Promise<OvtResponse>((resolve, reject) => {
      if (this.#failure || this.#closed) {
        reject(this.#failure ?? new OvtClientError('the pull was stopped'));
        return;
      }
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new OvtClientError(`no answer to ${application} within ${ms} ms`));
      }, ms);
      this.#pending.set(id, { application, resolve, reject, timer });
      this.#send(application, id);
    }).then((response) => {
      if (response.code !== 200) throw new OvtClientError(`${application} answered ${response.code}: ${response.message}`);
      return response;
    });
  }

  #send(application: OvtApplication, id: number): void {
    const socket = this.#socket;
    if (!socket || socket.destroyed || !socket.writable) return;
    // As OME's provider: the URL as given is the target.
    const auth = this.#options.auth?.(this.target.app, this.target.stream);
    socket.write(encodeOvtPackets(OVT_MESSAGE_REQUEST, encodeRequest({ id, application, target: this.#options.url, ...(auth ? { auth } : {}) })));
  }

  #onMessage(type: number, message: Buffer): void {
    if (type !== OVT_MESSAGE_RESPONSE) throw new OvtClientError(`payload type ${type} sent to the edge`);
    const response = parseResponse(message);
    const pending = this.#pending.get(response.id);
    if (pending && pending.application === response.application) {
      this.#pending.delete(response.id);
      clearTimeout(pending.timer);
      pending.resolve(response);
      return;
    }
    if (response.application === 'stop' && !this.#closed) {
      // The origin ended the stream: what is still asked fails with its word.
      const ended = new OvtClientError(`the origin stopped: ${response.message}`);
      this.#failure ??= ended;
      for (const p of this.#pending.values()) {
        clearTimeout(p.timer);
        p.reject(ended);
      }
      this.#pending.clear();
      if (this.#playing) this.#options.onStop(response.message);
    }
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    this.#parser.close();
    this.#socket?.destroy();
  }

  #onSocketClose(): void {
    this.#parser.close();
    const err = this.#failure ?? new OvtClientError('the origin closed the connection');
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.#pending.clear();
    if (!this.#closed) {
      this.#closed = true;
      this.#options.onClose(this.#failure);
    }
  }

  /** Sends `stop` when playing, then ends the connection; idempotent, no `onClose`. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#parser.close();
    const socket = this.#socket;
    if (!socket) return;
    if (this.#playing && socket.writable) this.#send('stop', this.#nextId++);
    this.#playing = false;
    socket.end();
    setTimeout(() => socket.destroy(), 1000).unref();
  }
}

function connectionError(err: NodeJS.ErrnoException): OvtClientError {
  switch (err.code) {
    case 'ECONNREFUSED': return new OvtClientError('connection refused');
    case 'ECONNRESET': return new OvtClientError('connection reset by the origin');
    case 'ENOTFOUND': case 'EAI_AGAIN': return new OvtClientError('unknown host');
    case 'EHOSTUNREACH': case 'ENETUNREACH': return new OvtClientError('host unreachable');
    default: return new OvtClientError(err.message);
  }
}
