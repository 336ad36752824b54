/**
 * Turns audio a WebRTC player cannot take (AAC, G.711, G.722, L16, MPEG audio) into Opus, with
 * ffmpeg as a child process: the source's RTP goes to ffmpeg over loopback UDP described by an SDP
 * on its stdin, and ffmpeg's Opus RTP comes back on a loopback socket.
 *
 * Why ffmpeg: it already depacketizes every one of these RTP formats (RFC 3640 AAC with its
 * AudioSpecificConfig, LATM, G.711, …), decodes, resamples and encodes with libopus, and it runs
 * out of process, so a codec fault cannot take the server down and the work lands on another core.
 * The cost is about 50 ms of added latency and one process per transcoded track.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { bindPortPair, rtpPayload } from './rtp-udp.ts';

/** The RTP encodings this module turns into Opus (upper-case SDP names). */
export const TRANSCODABLE_AUDIO = new Set(['MPEG4-GENERIC', 'MP4A-LATM', 'PCMU', 'PCMA', 'G722', 'L16', 'MPA']);

export interface AudioSource {
  payloadType: number;
  encoding: string;
  clockRate: number;
  channels: number;
  /** `a=fmtp` parameters, passed to ffmpeg as they came. */
  fmtp: Map<string, string>;
}

export interface AudioTranscoderOptions {
  source: AudioSource;
  /** Path of the ffmpeg executable. */
  ffmpeg: string;
  /** Each Opus RTP payload with its (ffmpeg-chosen) 48 kHz timestamp. Must not throw. */
  onOpus: (payload: Buffer, timestamp: number) => void;
  /** ffmpeg ended before `close()` (its stderr tail says why). */
  onExit?: (message: string) => void;
}

const OPUS_PT = 111;

export class AudioTranscoder {
  readonly #options: AudioTranscoderOptions;
  #process: ChildProcess | undefined;
  #input: Socket | undefined;
  #output: Socket | undefined;
  #inputPort = 0;
  #closed = false;
  #stderr = '';

  constructor(options: AudioTranscoderOptions) {
    this.#options = options;
  }

  /** Binds the sockets and starts ffmpeg. */
  async start(): Promise<void> {
    if (this.#closed) throw new Error('the transcoder was closed');
    this.#output = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      this.#output!.once('error', reject);
      this.#output!.bind(0, '127.0.0.1', () => resolve());
    });
    this.#output.on('message', (msg) => this.#onOutput(msg));
    this.#output.on('error', () => {});
    this.#input = createSocket('udp4');
    this.#input.on('error', () => {});
    this.#inputPort = await freeEvenPort();
    const outPort = this.#output.address().port;
    const s = this.#options.source;
    const fmtp = [...s.fmtp].map(([k, v]) => `${k}=${v}`).join(';');
    const channels = s.channels > 1 ? `/${s.channels}` : '';
    const sdp = [
      'v=0',
      'o=- 0 0 IN IP4 127.0.0.1',
      's=kiln',
      'c=IN IP4 127.0.0.1',
      't=0 0',
      `m=audio ${this.#inputPort} RTP/AVP ${s.payloadType}`,
      `a=rtpmap:${s.payloadType} ${s.encoding}/${s.clockRate}${channels}`,
      ...(fmtp ? [`a=fmtp:${s.payloadType} ${fmtp}`] : []),
      '',
    ].join('\r\n');
    const args = [
      '-hide_banner', '-loglevel', 'error',
      '-protocol_whitelist', 'pipe,udp,rtp',
      '-fflags', 'nobuffer', '-flags', 'low_delay', '-probesize', '32', '-analyzeduration', '0',
      '-reorder_queue_size', '0',
      '-f', 'sdp', '-i', 'pipe:0',
      '-vn', '-c:a', 'libopus', '-b:a', '64k', '-ar', '48000', '-ac', '2',
      '-application', 'lowdelay', '-frame_duration', '20',
      '-f', 'rtp', '-payload_type', String(OPUS_PT), `rtp://127.0.0.1:${outPort}?pkt_size=1200`,
    ];
    if (this.#closed) throw new Error('the transcoder was closed');
    const child = spawn(this.#options.ffmpeg, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    this.#process = child;
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      this.#stderr = (this.#stderr + d).slice(-2000);
    });
    child.on('exit', (code, signal) => this.#exited(`ffmpeg exited (${signal ?? code}): ${this.#stderr.trim().split('\n').pop() ?? ''}`));
    child.stdin!.on('error', () => {});
    try {
      // A missing or unusable binary fails here, not later as a silent track.
      await once(child, 'spawn');
    } catch (err) {
      this.close();
      throw new Error(`cannot run ${this.#options.ffmpeg}: ${(err as Error).message}`);
    }
    child.on('error', (err) => this.#exited(err.message));
    child.stdin!.end(sdp);
  }

  #exited(message: string): void {
    if (this.#closed) return;
    this.close();
    this.#options.onExit?.(message);
  }

  /** Hands one RTP packet of the source to ffmpeg. */
  push(packet: Buffer): void {
    if (this.#closed || !this.#input) return;
    this.#input.send(packet, this.#inputPort, '127.0.0.1');
  }

  #onOutput(msg: Buffer): void {
    const payload = rtpPayload(msg);
    if (payload && (msg[1] & 0x7f) === OPUS_PT) this.#options.onOpus(payload, msg.readUInt32BE(4));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#process?.kill('SIGKILL');
    try {
      this.#input?.close();
      this.#output?.close();
    } catch {
      // already closed
    }
  }
}

/** An even UDP port on loopback with the odd one above it free too (ffmpeg binds both). */
async function freeEvenPort(): Promise<number> {
  const [rtp, rtcp] = await bindPortPair('127.0.0.1');
  const port = rtp.address().port;
  rtp.close();
  rtcp.close();
  return port;
}
