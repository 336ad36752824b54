/**
 * Capture of one published track while a recording runs: an output of the stream's forwarder that
 * turns its RTP into frames (FrameAssembler) and writes them to a file ffmpeg reads (IVF for video,
 * Ogg Opus for audio). Lost video asks the source for a key frame; write errors end the capture.
 */
import type { ForwardTrack, Forwarder, MediaPacket, TrackOutput } from '../media/forwarder.ts';
import { FrameAssembler, type AssembledFrame, type CaptureCodec } from './depacketize.ts';
import { IvfWriter } from './ivf.ts';
import { OggOpusWriter } from './ogg.ts';

/** The codecs a recording can capture (what the composer decodes). */
export function captureCodec(codec: string): CaptureCodec | undefined {
  switch (codec) {
    case 'VP8':
    case 'VP9':
    case 'H264':
    case 'AV1':
      return codec;
    case 'OPUS':
      return 'OPUS';
    default:
      return undefined;
  }
}

/** File extension of a captured track. */
export function captureExtension(codec: CaptureCodec): string {
  return codec === 'OPUS' ? 'ogg' : 'ivf';
}

export interface TrackCaptureOptions {
  path: string;
  codec: CaptureCodec;
  track: ForwardTrack;
  forwarder: Forwarder;
  /** Told once, with the wall time, when the first frame is written. */
  onFirstFrame: (at: number) => void;
  /** Told once when the file cannot be written (disk full…). The capture then stops writing. */
  onError: (err: Error) => void;
}

export class TrackCapture implements TrackOutput {
  readonly path: string;
  readonly codec: CaptureCodec;
  readonly #track: ForwardTrack;
  readonly #forwarder: Forwarder;
  readonly #assembler: FrameAssembler;
  readonly #writer: IvfWriter | OggOpusWriter;
  readonly #onFirstFrame: (at: number) => void;
  readonly #onError: (err: Error) => void;
  /** Wall time of the first written frame; 0 until then. */
  firstFrameAt = 0;
  failed: Error | undefined;
  /** Bytes handed to the file up to the end of the first frame. */
  #firstFrameBytes = 0;
  #closed = false;

  constructor(options: TrackCaptureOptions) {
    this.path = options.path;
    this.codec = options.codec;
    this.#track = options.track;
    this.#forwarder = options.forwarder;
    this.#onFirstFrame = options.onFirstFrame;
    this.#onError = options.onError;
    const fail = (err: Error) => this.#fail(err);
    this.#writer = options.codec === 'OPUS' ? new OggOpusWriter(options.path, fail) : new IvfWriter(options.path, options.codec, fail);
    this.#assembler = new FrameAssembler(options.codec, (frame) => this.#write(frame), () => this.#forwarder.requestKeyFrame());
    this.#track.addOutput(this);
    if (options.codec !== 'OPUS') this.#forwarder.requestKeyFrame();
  }

  /** Frames lost on the way (not written: the file waits for the next key frame after a loss). */
  get droppedFrames(): number {
    return this.#assembler.droppedFrames;
  }

  /** Whether the file holds a frame: the bytes up to the first frame are in the file. */
  get holdsMedia(): boolean {
    return this.firstFrameAt > 0 && this.#writer.bytesOnDisk >= this.#firstFrameBytes;
  }

  /** Sends what the file gathered to the disk now. */
  flush(): void {
    this.#writer.flush();
  }

  /** The forwarder's entry: never throws (the media path must not see a capture's trouble). */
  send(rtp: MediaPacket): void {
    if (this.#closed) return;
    try {
      this.#assembler.push(rtp.header.sequenceNumber, rtp.header.timestamp, rtp.header.marker, rtp.payload);
    } catch (err) {
      this.#fail(err as Error);
    }
  }

  #write(frame: AssembledFrame): void {
    if (this.#closed) return;
    this.#writer.write(frame);
    if (this.firstFrameAt === 0) {
      this.#firstFrameBytes = this.#writer.bytesWritten;
      this.firstFrameAt = Date.now();
      this.#onFirstFrame(this.firstFrameAt);
    }
  }

  #fail(err: Error): void {
    if (this.failed) return;
    this.failed = err;
    this.#track.removeOutput(this);
    this.#onError(err);
  }

  /** Stops capturing and closes the file; resolves once it is on disk. */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      this.#assembler.flush();
    } catch {
      // a malformed tail is dropped
    }
    this.#closed = true;
    this.#track.removeOutput(this);
    await this.#writer.close();
  }
}
