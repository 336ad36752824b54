/**
 * RTSP 1.0 framing (RFC 2326 §4, §10.12): responses with headers and an optional body, and, on the
 * same TCP connection, interleaved binary frames `$ channel length data`. The reader is
 * incremental and bounded: malformed input becomes an RtspProtocolError, never a crash or an
 * unbounded buffer.
 */

/** A message from the server: a response, or (rarely) a request such as ANNOUNCE. */
export interface RtspMessage {
  /** Set for responses. */
  status?: number;
  reason?: string;
  /** Set for server requests. */
  method?: string;
  /** Lower-cased header names; repeated headers joined with ", " (WWW-Authenticate keeps each). */
  headers: Map<string, string>;
  /** Every WWW-Authenticate challenge, in order. */
  challenges: string[];
  body: Buffer;
}

export class RtspProtocolError extends Error {
  override name = 'RtspProtocolError';
}

const MAX_HEADER_BYTES = 64 * 1024;
const MAX_BODY_BYTES = 1024 * 1024;
const DOLLAR = 0x24;

export interface ReaderEvents {
  message(message: RtspMessage): void;
  /** One interleaved frame; `data` is a view valid for as long as the caller keeps it. */
  frame(channel: number, data: Buffer): void;
}

/**
 * Splits a byte stream into messages and interleaved frames. `push` throws RtspProtocolError on
 * input that is not RTSP; the connection should then be dropped.
 */
export class RtspReader {
  #pending: Buffer | undefined;
  readonly #events: ReaderEvents;

  constructor(events: ReaderEvents) {
    this.#events = events;
  }

  push(chunk: Buffer): void {
    let buf = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk;
    this.#pending = undefined;
    let offset = 0;
    while (offset < buf.length) {
      if (buf[offset] === DOLLAR) {
        if (buf.length - offset < 4) break;
        const channel = buf[offset + 1];
        const length = buf.readUInt16BE(offset + 2);
        if (buf.length - offset < 4 + length) break;
        this.#events.frame(channel, buf.subarray(offset + 4, offset + 4 + length));
        offset += 4 + length;
        continue;
      }
      const used = this.#message(buf, offset);
      if (used === 0) break;
      offset += used;
    }
    if (offset < buf.length) {
      // Keep only the unread tail (copied, so the socket's chunk can go).
      buf = buf.subarray(offset);
      if (buf.length > MAX_HEADER_BYTES + MAX_BODY_BYTES) throw new RtspProtocolError('RTSP message too large');
      this.#pending = Buffer.from(buf);
    }
  }

  /** Parses one message at `offset`; returns the bytes it used, or 0 when it is not complete yet. */
  #message(buf: Buffer, offset: number): number {
    // Some servers send a stray CRLF between messages.
    if (buf[offset] === 0x0d || buf[offset] === 0x0a) return 1;
    const first = buf[offset];
    if (first < 0x41 || first > 0x5a) throw new RtspProtocolError(`unexpected byte 0x${first.toString(16).padStart(2, '0')} where an RTSP message should start`);
    let end = buf.indexOf('\r\n\r\n', offset, 'latin1');
    let sep = 4;
    const lf = buf.indexOf('\n\n', offset, 'latin1');
    if (lf >= 0 && (end < 0 || lf < end)) {
      end = lf;
      sep = 2;
    }
    if (end < 0) {
      if (buf.length - offset > MAX_HEADER_BYTES) throw new RtspProtocolError('RTSP header block too large');
      return 0;
    }
    if (end - offset > MAX_HEADER_BYTES) throw new RtspProtocolError('RTSP header block too large');
    const lines = buf.toString('latin1', offset, end).split(/\r?\n/);
    const startLine = lines[0];
    const message: RtspMessage = { headers: new Map(), challenges: [], body: Buffer.alloc(0) };
    const status = /^RTSP\/1\.\d (\d{3})(?: (.*))?$/.exec(startLine);
    if (status) {
      message.status = Number(status[1]);
      message.reason = status[2] ?? '';
    } else {
      const request = /^([A-Z_]+) (\S+) RTSP\/1\.\d$/.exec(startLine);
      if (!request) throw new RtspProtocolError(`malformed RTSP status line: ${JSON.stringify(startLine.slice(0, 80))}`);
      message.method = request[1];
    }
    // Folded header lines (a leading space or tab) continue the previous one (RFC 2616 §2.2).
    for (let i = lines.length - 1; i > 1; i--) {
      if (lines[i].startsWith(' ') || lines[i].startsWith('\t')) {
        lines[i - 1] += ` ${lines[i].trim()}`;
        lines.splice(i, 1);
      }
    }
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i];
      const colon = line.indexOf(':');
      if (colon <= 0) throw new RtspProtocolError(`malformed RTSP header line: ${JSON.stringify(line.slice(0, 80))}`);
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'www-authenticate') message.challenges.push(value);
      const prev = message.headers.get(name);
      message.headers.set(name, prev === undefined ? value : `${prev}, ${value}`);
    }
    const lengthHeader = message.headers.get('content-length');
    let length = 0;
    if (lengthHeader !== undefined) {
      if (!/^\d+$/.test(lengthHeader)) throw new RtspProtocolError(`malformed Content-Length: ${JSON.stringify(lengthHeader.slice(0, 40))}`);
      length = Number(lengthHeader);
      if (length > MAX_BODY_BYTES) throw new RtspProtocolError(`RTSP body too large (${length} bytes)`);
    }
    const bodyStart = end + sep;
    if (buf.length - bodyStart < length) return 0;
    message.body = Buffer.from(buf.subarray(bodyStart, bodyStart + length));
    this.#events.message(message);
    return bodyStart + length - offset;
  }
}

/** Serialises a request. Header values must not contain CR or LF (checked). */
export function formatRequest(method: string, url: string, headers: Record<string, string>): Buffer {
  let text = `${method} ${url} RTSP/1.0\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (/[\r\n]/.test(value)) throw new RtspProtocolError(`header ${name} contains a line break`);
    text += `${name}: ${value}\r\n`;
  }
  return Buffer.from(`${text}\r\n`, 'latin1');
}

/** One `Transport` header entry (RFC 2326 §12.39), as the server answered it. */
export interface TransportSpec {
  tcp: boolean;
  interleaved?: [number, number];
  serverPort?: [number, number];
  source?: string;
  ssrc?: number;
}

export function parseTransport(value: string): TransportSpec {
  const first = value.split(',')[0];
  const parts = first.split(';').map((p) => p.trim());
  const spec: TransportSpec = { tcp: /\/TCP$/i.test(parts[0] ?? '') };
  const pair = (v: string): [number, number] | undefined => {
    const m = /^(\d+)(?:-(\d+))?$/.exec(v);
    if (!m) return undefined;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a + 1 : Number(m[2]);
    return a <= 65535 && b <= 65535 ? [a, b] : undefined;
  };
  for (const part of parts.slice(1)) {
    const eq = part.indexOf('=');
    const key = (eq < 0 ? part : part.slice(0, eq)).toLowerCase();
    const v = eq < 0 ? '' : part.slice(eq + 1);
    if (key === 'interleaved') spec.interleaved = pair(v);
    else if (key === 'server_port') spec.serverPort = pair(v);
    else if (key === 'source') spec.source = v;
    else if (key === 'ssrc' && /^[0-9a-f]{1,8}$/i.test(v)) spec.ssrc = parseInt(v, 16);
  }
  return spec;
}

/** `Session: id;timeout=60` → id and timeout (seconds, default 60 per RFC 2326 §12.37). */
export function parseSession(value: string): { id: string; timeout: number } {
  const [id, ...params] = value.split(';').map((p) => p.trim());
  let timeout = 60;
  for (const p of params) {
    const m = /^timeout=(\d+)$/i.exec(p);
    if (m) timeout = Math.max(5, Math.min(Number(m[1]), 3600));
  }
  return { id, timeout };
}
