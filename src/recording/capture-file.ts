/**
 * The file a captured track is written to: an fs.WriteStream (the event loop never waits on the
 * disk) that fails once, through `onError`, when the disk refuses a write or falls more than
 * `limit` bytes behind, and keeps what it had queued.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

/** How long writes are gathered before they go to the file, ms (what a crash can lose at most). */
const BATCH_MS = 100;

export class CaptureFile {
  readonly path: string;
  /** Bytes handed to the file so far. */
  bytesWritten = 0;
  /** Set once the file cannot be written; writes are dropped from then on. */
  failed: Error | undefined;
  readonly #stream: WriteStream;
  readonly #limit: number;
  readonly #onError: (err: Error) => void;
  #flush: NodeJS.Timeout | undefined;

  /** Creates (truncates) `path`; `limit` is how many bytes may wait for the disk. */
  constructor(path: string, limit: number, onError: (err: Error) => void) {
    this.path = path;
    this.#limit = limit;
    this.#onError = onError;
    this.#stream = createWriteStream(path);
    this.#stream.on('error', (err) => this.fail(err));
  }

  /** Bytes handed to the file but not yet written to it (0: everything so far is on disk). */
  get pendingBytes(): number {
    return this.#stream.writableLength;
  }

  /**
   * Queues `data` (the caller checks `failed` first). Writes are gathered for BATCH_MS and go to
   * the file in one `writev`: a few system calls a second per track, not two per frame.
   */
  write(data: Buffer): void {
    if (this.#flush === undefined) {
      this.#stream.cork();
      this.#flush = setTimeout(() => {
        this.#flush = undefined;
        this.#stream.uncork();
      }, BATCH_MS);
    }
    this.#stream.write(data);
    this.bytesWritten += data.length;
    if (this.#stream.writableLength > this.#limit) this.fail(new Error(`${this.path}: more than ${this.#limit} bytes wait for the disk`));
  }

  /** Bytes written to the file itself (on disk, or in the kernel's cache of it). */
  get bytesOnDisk(): number {
    return this.#stream.bytesWritten;
  }

  /** Sends what is gathered to the file now, not at the end of the batch. */
  flush(): void {
    this.#uncork();
  }

  /** Sends what is gathered to the file now. */
  #uncork(): void {
    if (this.#flush === undefined) return;
    clearTimeout(this.#flush);
    this.#flush = undefined;
    this.#stream.uncork();
  }

  /** Marks the file failed, once, and tells `onError`; what was queued is still written. */
  fail(err: Error): void {
    if (this.failed) return;
    this.failed = err;
    this.#uncork();
    if (!this.#stream.destroyed && !this.#stream.writableEnded) this.#stream.end();
    try {
      this.#onError(err);
    } catch {
      // the listener's trouble is its own
    }
  }

  /** Ends the stream; resolves when the file is closed (also after an error). */
  end(): Promise<void> {
    this.#uncork();
    const stream = this.#stream;
    return new Promise<void>((resolve) => {
      if (stream.closed) {
        resolve();
        return;
      }
      stream.once('close', () => resolve());
      if (!stream.destroyed && !stream.writableEnded) stream.end();
    });
  }
}

/** What both capture writers (IVF, Ogg Opus) have: their file, and its figures. */
export abstract class CaptureWriter {
  readonly path: string;
  protected readonly file: CaptureFile;

  /** Creates (truncates) `path`; see CaptureFile. */
  constructor(path: string, limit: number, onError: (err: Error) => void) {
    this.path = path;
    this.file = new CaptureFile(path, limit, onError);
  }

  /** Bytes handed to the file so far; the file's size once the writer is closed. */
  get bytesWritten(): number {
    return this.file.bytesWritten;
  }

  /** The write error, once there was one; nothing is written after it. */
  get failed(): Error | undefined {
    return this.file.failed;
  }

  /** Bytes handed to the file but not yet on disk. */
  get pendingBytes(): number {
    return this.file.pendingBytes;
  }

  /** Bytes written to the file itself. */
  get bytesOnDisk(): number {
    return this.file.bytesOnDisk;
  }

  /** Sends what is gathered to the file now. */
  flush(): void {
    this.file.flush();
  }
}

/** A window onto a captured file being scanned after a crash: read a chunk at a time, not whole. */
export class ScanWindow {
  /** The bytes read; `view` says where the asked ones are in it. */
  readonly buffer: Buffer;
  readonly #fh: FileHandle;
  #start = 0;
  #length = 0;

  constructor(fh: FileHandle, chunkBytes = 1024 * 1024) {
    this.#fh = fh;
    this.buffer = Buffer.allocUnsafe(chunkBytes);
  }

  /** Bytes read at the window's position (what a `view` that failed did find). */
  get available(): number {
    return this.#length;
  }

  /** Offset in `buffer` of the `n` bytes at `pos`, reading them in when needed; -1 when the file ends first. */
  async view(pos: number, n: number): Promise<number> {
    if (pos >= this.#start && pos + n <= this.#start + this.#length) return pos - this.#start;
    this.#start = pos;
    this.#length = (await this.#fh.read(this.buffer, 0, this.buffer.length, pos)).bytesRead;
    return n <= this.#length ? 0 : -1;
  }
}
