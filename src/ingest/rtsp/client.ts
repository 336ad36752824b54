/**
 * Kiln's RTSP 1.0 client (RFC 2326): OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN over one TCP
 * connection, with Basic/Digest authentication, RTP over TCP interleaved frames or UDP (and a
 * fallback between them), keep-alive within the session timeout and RTCP receiver reports.
 *
 * It knows nothing of streams or WebRTC: it hands each RTP packet of each chosen media to
 * `onRtp` and tells `onClose` when the connection ends.
 */
import { connect, type Socket } from 'node:net';
import type { Socket as UdpSocket } from 'node:dgram';
import { randomBytes, randomInt } from 'node:crypto';
import { bindPortPair } from '../../media/rtp-udp.ts';
import { authorizer, type Credentials } from './auth.ts';
import { formatRequest, parseSession, parseTransport, RtspProtocolError, RtspReader, type RtspMessage } from './message.ts';
import { parseSessionDescription, SdpError, type MediaDescription } from './sdp.ts';
import { ReceptionStats, receiverReport, senderReports } from './rtcp.ts';

export type RtspTransport = 'tcp' | 'udp';

/** Why a pull could not be made; the message names the cause for the API's 502. */
export class RtspError extends Error {
  override name = 'RtspError';
  /** The RTSP status when the server refused a request. */
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message);
    this.status = status;
  }
}

export interface RtspClientOptions {
  /** `rtsp://[user:password@]host[:port]/path`. */
  url: string;
  transport: RtspTransport;
  /** Connect and per-request timeout, ms. */
  timeoutMs: number;
  /** Each RTP packet of media `index` (a position in the DESCRIBE answer). Must not throw. */
  onRtp: (index: number, packet: Buffer) => void;
  /** A sender report for media `index`: NTP time and the RTP time it maps to. */
  onSenderReport?: (index: number, ntp: bigint, rtp: number) => void;
  /** The connection ended after `play()` (server closed it, socket error, protocol error). */
  onClose: (err: Error | undefined) => void;
  userAgent?: string;
}

interface Pending {
  method: string;
  resolve: (m: RtspMessage) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

interface Channel {
  index: number;
  stats: ReceptionStats;
  /** UDP: our sockets and the server's ports. */
  rtp?: UdpSocket;
  rtcp?: UdpSocket;
  serverRtcpPort?: number;
  /** TCP: the interleaved channel for our RTCP. */
  rtcpChannel?: number;
}

/** Masks the password of an `rtsp://user:password@host/…` URL for logs and APIs. */
export function maskUrl(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)(.*)$/is.exec(url);
  if (!m) return url;
  // The host follows the last "@" of the authority; a password may contain "@" itself.
  const at = m[2].lastIndexOf('@');
  if (at < 0) return url;
  const userinfo = m[2].slice(0, at);
  const colon = userinfo.indexOf(':');
  if (colon < 0) return url;
  return `${m[1]}${userinfo.slice(0, colon)}:****@${m[2].slice(at + 1)}${m[3]}`;
}

export class RtspClient {
  readonly url: string;
  readonly #requestUrl: string;
  readonly #credentials: Credentials | undefined;
  readonly #options: RtspClientOptions;
  #transport: RtspTransport;
  #socket: Socket | undefined;
  #reader: RtspReader;
  #cseq = 0;
  readonly #pending = new Map<number, Pending>();
  #authorize: ((method: string, uri: string) => string) | undefined;
  #session: string | undefined;
  #timeout = 60;
  #publicMethods = new Set<string>();
  #contentBase: string;
  /** The aggregate control URL (session-level a=control) for PLAY, keep-alive and TEARDOWN. */
  #aggregate: string;
  #connectFailed: ((err: Error) => void) | undefined;
  readonly #channels: Channel[] = [];
  /** Interleaved channel → (channel, is RTCP). */
  readonly #byInterleaved: ({ channel: Channel; rtcp: boolean } | undefined)[] = new Array(256);
  #keepAlive: NodeJS.Timeout | undefined;
  #reports: NodeJS.Timeout | undefined;
  readonly #ssrc = randomInt(1, 0xffffffff);
  readonly #cname = `kiln-${randomBytes(6).toString('hex')}`;
  #playing = false;
  #closed = false;
  /** The server's address, once connected. */
  remoteAddress = '';
  remotePort = 0;

  constructor(options: RtspClientOptions) {
    this.#options = options;
    this.#transport = options.transport;
    const parsed = new URL(options.url);
    if (parsed.protocol !== 'rtsp:') throw new RtspError(`unsupported URL scheme "${parsed.protocol.replace(':', '')}" (Kiln pulls rtsp:// URLs)`);
    if (parsed.username !== '' || parsed.password !== '') {
      try {
        this.#credentials = { user: decodeURIComponent(parsed.username), password: decodeURIComponent(parsed.password) };
      } catch {
        throw new RtspError('the credentials in the URL must be percent-encoded (e.g. %25 for "%")');
      }
      parsed.username = '';
      parsed.password = '';
    }
    this.url = options.url;
    this.#requestUrl = parsed.toString();
    this.#contentBase = this.#requestUrl;
    this.#aggregate = this.#requestUrl;
    this.#reader = new RtspReader({ message: (m) => this.#onMessage(m), frame: (c, d) => this.#onFrame(c, d) });
  }

  get transport(): RtspTransport {
    return this.#transport;
  }

  /** Connects and asks for the session description. Rejects with RtspError naming the cause. */
  async describe(): Promise<MediaDescription[]> {
    await this.#connect();
    const options = await this.#request('OPTIONS', this.#requestUrl, {}, true);
    for (const m of (options.headers.get('public') ?? '').split(',')) this.#publicMethods.add(m.trim().toUpperCase());
    const answer = await this.#request('DESCRIBE', this.#requestUrl, { Accept: 'application/sdp' });
    const base = answer.headers.get('content-base') ?? answer.headers.get('content-location');
    if (base && /^rtsp:\/\//i.test(base)) this.#contentBase = base;
    const type = answer.headers.get('content-type');
    if (type !== undefined && !/application\/sdp/i.test(type)) throw new RtspError(`DESCRIBE answered ${type}, not an SDP`);
    try {
      const description = parseSessionDescription(answer.body.toString('utf8'), this.#contentBase);
      this.#aggregate = description.aggregate;
      return description.media;
    } catch (err) {
      if (err instanceof SdpError) throw new RtspError(`bad session description: ${err.message}`);
      throw err;
    }
  }

  /** Sets up the chosen media (falling back to the other transport if the server refuses one), then plays. */
  async play(media: MediaDescription[], indices: number[]): Promise<void> {
    for (const index of indices) await this.#setup(media[index], index);
    const headers: Record<string, string> = { Range: 'npt=0.000-' };
    await this.#request('PLAY', this.#aggregate, headers);
    this.#playing = true;
    this.#startTimers();
  }

  async #setup(media: MediaDescription, index: number): Promise<void> {
    const channel: Channel = { index, stats: new ReceptionStats(media.clockRate || 90000) };
    try {
      await this.#setupChannel(media, channel);
    } catch (err) {
      // Sockets bound for a SETUP that failed are not in #channels yet: close them here.
      this.#closeUdp(channel);
      throw err;
    }
    this.#channels.push(channel);
  }

  async #setupChannel(media: MediaDescription, channel: Channel): Promise<void> {
    const attempt = async (transport: RtspTransport): Promise<RtspMessage> => {
      let header: string;
      if (transport === 'tcp') {
        const base = this.#channels.length * 2;
        header = `RTP/AVP/TCP;unicast;interleaved=${base}-${base + 1}`;
      } else {
        await this.#bindUdp(channel);
        header = `RTP/AVP;unicast;client_port=${channel.rtp!.address().port}-${channel.rtcp!.address().port}`;
      }
      return this.#request('SETUP', media.control, { Transport: header }, false, [461]);
    };
    let answer = await attempt(this.#transport);
    // 461 Unsupported Transport: try the other one, for this and every later media.
    if (answer.status === 461 && this.#channels.length === 0) {
      this.#closeUdp(channel);
      this.#transport = this.#transport === 'tcp' ? 'udp' : 'tcp';
      answer = await attempt(this.#transport);
    }
    if (answer.status !== 200) throw new RtspError(`SETUP answered ${answer.status} ${answer.reason}`.trim(), answer.status);
    const sessionHeader = answer.headers.get('session');
    if (sessionHeader) {
      const { id, timeout } = parseSession(sessionHeader);
      this.#session = id;
      this.#timeout = timeout;
    }
    const transport = parseTransport(answer.headers.get('transport') ?? '');
    if (this.#transport === 'tcp') {
      const base = this.#channels.length * 2;
      const [rtp, rtcp] = transport.interleaved ?? [base, base + 1];
      this.#byInterleaved[rtp] = { channel, rtcp: false };
      this.#byInterleaved[rtcp] = { channel, rtcp: true };
      channel.rtcpChannel = rtcp;
    } else {
      channel.serverRtcpPort = transport.serverPort?.[1];
      this.#listenUdp(channel);
    }
  }

  /** Binds an even/odd UDP port pair on the address the control connection uses. */
  async #bindUdp(channel: Channel): Promise<void> {
    try {
      [channel.rtp, channel.rtcp] = await bindPortPair(this.#socket?.localAddress ?? '0.0.0.0');
    } catch (err) {
      throw new RtspError((err as Error).message);
    }
  }

  #listenUdp(channel: Channel): void {
    const server = this.remoteAddress;
    const index = channel.index;
    channel.rtp!.on('message', (msg, rinfo) => {
      if (rinfo.address !== server || this.#closed) return;
      this.#onRtp(channel, msg);
    });
    channel.rtcp!.on('message', (msg, rinfo) => {
      if (rinfo.address !== server || this.#closed) return;
      this.#onRtcp(channel, msg, index);
    });
    channel.rtp!.on('error', () => {});
    channel.rtcp!.on('error', () => {});
  }

  #closeUdp(channel: Channel): void {
    try {
      channel.rtp?.close();
      channel.rtcp?.close();
    } catch {
      // already closed
    }
    channel.rtp = undefined;
    channel.rtcp = undefined;
  }

  #connect(): Promise<void> {
    const url = new URL(this.#requestUrl);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = url.port === '' ? 554 : Number(url.port);
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port, noDelay: true });
      this.#socket = socket;
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new RtspError(`timed out connecting to ${host}:${port} after ${this.#options.timeoutMs} ms`));
      }, this.#options.timeoutMs);
      this.#connectFailed = (err) => {
        clearTimeout(timer);
        reject(err);
      };
      socket.once('connect', () => {
        this.#connectFailed = undefined;
        clearTimeout(timer);
        this.remoteAddress = socket.remoteAddress ?? host;
        this.remotePort = socket.remotePort ?? port;
        resolve();
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const cause = err.code === 'ECONNREFUSED' ? 'connection refused' : err.code === 'ENOTFOUND' ? 'host not found' : err.message;
        const failure = new RtspError(`${cause} (${host}:${port})`);
        reject(failure);
        this.#fail(failure);
      });
      socket.on('data', (chunk) => {
        try {
          this.#reader.push(chunk);
        } catch (err) {
          this.#fail(err instanceof RtspProtocolError ? new RtspError(`malformed RTSP from the server: ${err.message}`) : (err as Error));
        }
      });
      socket.once('close', () => this.#fail(new RtspError('the server closed the connection')));
    });
  }

  /**
   * Sends a request and waits for its response. A 401 is answered once with the URL's credentials;
   * any other status ≥ 300 rejects, unless listed in `allow`.
   */
  async #request(method: string, url: string, headers: Record<string, string>, optional = false, allow: number[] = []): Promise<RtspMessage> {
    let answer = await this.#send(method, url, headers);
    if (answer.status === 401 && this.#credentials) {
      // Answer the (new, or stale-nonce) challenge once.
      this.#authorize = authorizer(answer.challenges, this.#credentials);
      if (this.#authorize) answer = await this.#send(method, url, headers);
    }
    const status = answer.status ?? 0;
    if (status === 200 || allow.includes(status)) return answer;
    if (optional && status !== 401) return answer;
    if (status === 401) {
      throw new RtspError(this.#credentials ? `${method} answered 401 ${answer.reason}: wrong credentials` : `${method} answered 401 ${answer.reason}: the camera needs credentials (rtsp://user:password@…)`, 401);
    }
    const where = status === 301 || status === 302 ? ` (moved to ${answer.headers.get('location') ?? '?'})` : '';
    throw new RtspError(`${method} answered ${status} ${answer.reason ?? ''}${where}`.replace(/\s+$/, ''), status);
  }

  #send(method: string, url: string, extra: Record<string, string>): Promise<RtspMessage> {
    const socket = this.#socket;
    if (!socket || this.#closed) return Promise.reject(new RtspError('the connection is closed'));
    const cseq = ++this.#cseq;
    const headers: Record<string, string> = { CSeq: String(cseq), 'User-Agent': this.#options.userAgent ?? 'Kiln', ...extra };
    if (this.#session) headers.Session = this.#session;
    if (this.#authorize) headers.Authorization = this.#authorize(method, url);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(cseq);
        reject(new RtspError(`no answer to ${method} within ${this.#options.timeoutMs} ms`));
      }, this.#options.timeoutMs);
      this.#pending.set(cseq, { method, resolve, reject, timer });
      socket.write(formatRequest(method, url, headers));
    });
  }

  #onMessage(message: RtspMessage): void {
    if (message.method !== undefined) {
      // A request from the server (ANNOUNCE, SET_PARAMETER…): not supported, say so.
      const cseq = message.headers.get('cseq') ?? '0';
      this.#socket?.write(`RTSP/1.0 501 Not Implemented\r\nCSeq: ${cseq.replace(/[\r\n]/g, '')}\r\n\r\n`);
      return;
    }
    const cseqHeader = message.headers.get('cseq');
    let cseq = cseqHeader !== undefined && /^\s*\d+\s*$/.test(cseqHeader) ? Number(cseqHeader) : NaN;
    // Some cameras omit or garble CSeq: then the oldest request is the one answered.
    if (Number.isNaN(cseq)) cseq = this.#pending.keys().next().value ?? -1;
    const pending = this.#pending.get(cseq);
    if (!pending) return;
    this.#pending.delete(cseq);
    clearTimeout(pending.timer);
    pending.resolve(message);
  }

  #onFrame(channelId: number, data: Buffer): void {
    const entry = this.#byInterleaved[channelId];
    if (!entry || this.#closed) return;
    if (entry.rtcp) this.#onRtcp(entry.channel, data, entry.channel.index);
    else this.#onRtp(entry.channel, data);
  }

  #onRtp(channel: Channel, packet: Buffer): void {
    if (packet.length < 12 || packet[0] >> 6 !== 2) return;
    channel.stats.update(packet.readUInt32BE(8), packet.readUInt16BE(2), packet.readUInt32BE(4), performance.now());
    this.#options.onRtp(channel.index, packet);
  }

  #onRtcp(channel: Channel, packet: Buffer, index: number): void {
    senderReports(packet, (ssrc, ntp, rtp) => {
      if (ssrc !== channel.stats.ssrc && channel.stats.active) return;
      channel.stats.onSenderReport(Number((ntp >> 16n) & 0xffffffffn), performance.now());
      this.#options.onSenderReport?.(index, ntp, rtp);
    });
  }

  #startTimers(): void {
    // Keep the session alive at half its timeout: GET_PARAMETER when offered, else OPTIONS.
    const every = Math.max(2, Math.min(this.#timeout / 2, 30)) * 1000;
    const method = this.#publicMethods.has('GET_PARAMETER') ? 'GET_PARAMETER' : 'OPTIONS';
    this.#keepAlive = setInterval(() => {
      // Through #request, so a stale Digest nonce (401) is answered again.
      this.#request(method, this.#aggregate, {}, true, [454]).then((answer) => {
        if (answer.status === 454) this.#fail(new RtspError('the server forgot the session (454 Session Not Found)'));
      }, () => {});
    }, every);
    // The first receiver report soon after PLAY, then every 5 s (RFC 3550 §6.2 at this rate).
    this.#reports = setTimeout(() => {
      this.#sendReports();
      this.#reports = setInterval(() => this.#sendReports(), 5000);
    }, 1000);
  }

  #sendReports(): void {
    const now = performance.now();
    for (const channel of this.#channels) {
      if (!channel.stats.active) continue;
      const report = receiverReport(this.#ssrc, channel.stats, this.#cname, now);
      if (this.#transport === 'tcp') {
        const frame = Buffer.allocUnsafe(4 + report.length);
        frame[0] = 0x24;
        frame[1] = channel.rtcpChannel!;
        frame.writeUInt16BE(report.length, 2);
        report.copy(frame, 4);
        this.#socket?.write(frame);
      } else if (channel.rtcp && channel.serverRtcpPort) {
        channel.rtcp.send(report, channel.serverRtcpPort, this.remoteAddress);
      }
    }
  }

  #fail(err: Error): void {
    if (this.#closed) return;
    this.#teardownLocal();
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(err);
    }
    this.#pending.clear();
    if (this.#playing) this.#options.onClose(err);
  }

  #teardownLocal(): void {
    this.#closed = true;
    clearInterval(this.#keepAlive);
    clearInterval(this.#reports);
    for (const channel of this.#channels) this.#closeUdp(channel);
    this.#socket?.destroy();
  }

  /** Sends TEARDOWN (best effort, without waiting) and closes everything; idempotent. */
  close(): void {
    if (this.#closed) return;
    const socket = this.#socket;
    if (socket && this.#session && !socket.destroyed) {
      const headers: Record<string, string> = { CSeq: String(++this.#cseq), 'User-Agent': this.#options.userAgent ?? 'Kiln', Session: this.#session };
      if (this.#authorize) headers.Authorization = this.#authorize('TEARDOWN', this.#aggregate);
      try {
        socket.end(formatRequest('TEARDOWN', this.#aggregate, headers));
      } catch {
        // the socket is going anyway
      }
    }
    this.#playing = false;
    this.#closed = true;
    this.#connectFailed?.(new RtspError('the pull was stopped'));
    this.#connectFailed = undefined;
    clearInterval(this.#keepAlive);
    clearInterval(this.#reports);
    for (const channel of this.#channels) this.#closeUdp(channel);
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(new RtspError('the pull was stopped'));
    }
    this.#pending.clear();
    // Give TEARDOWN a moment to leave, then drop the connection.
    if (socket) setTimeout(() => socket.destroy(), 200);
  }
}
