/**
 * Recordings of room sessions (SPEC.md §1): while a recording runs, every published track of the
 * room session is captured to its own file (capture.ts); on stop one MP4 is composed from them with
 * ffmpeg (compose.ts): OpenVidu's BEST_FIT grid, re-tiled as videos come and go, all audio mixed.
 *
 * Why compose on stop and not live: capture costs a copy of each packet to disk (no decoding), so a
 * room pays almost nothing while it records, and a crash loses nothing that reached the disk: the
 * next start composes what was captured. A live composer would decode and encode every stream for
 * the whole session on the media machine. The price is the wait after stop (composition runs at a
 * few times real time on this class of machine), during which the recording is `stopped`.
 *
 * Layout on disk, under `<dataDir>/recordings/<id>/`: `tracks/*.ivf|ogg`, `manifest.json` (when
 * each track started and ended, rewritten on every change), and `<id>.mp4` once composed.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { errors, KilnError } from '../core/errors.ts';
import type { Participant, PublishedStream, RoomSession } from '../core/room.ts';
import type { MediaEngine } from '../media/engine.ts';
import type { Rooms } from '../rooms/rooms.ts';
import type { RecordingRecord, RecordingStatus, Store } from '../store/store.ts';
import { captureCodec, captureExtension, TrackCapture } from './capture.ts';
import { compose } from './compose.ts';
import { scanIvf } from './ivf.ts';
import { scanOgg } from './ogg.ts';

/** How long after its first frame a starting recording waits for the other tracks' first frames, ms. */
const START_GRACE_MS = 300;

/** What a recording id may look like: a room session's name, maybe with `-N`. Nothing else reaches the disk. */
export const RECORDING_ID = /^[A-Za-z0-9_-]{1,140}$/;

export interface RecordingsOptions {
  store: Store;
  engine: MediaEngine;
  rooms: Rooms;
  /** `<dataDir>/recordings`. */
  dir: string;
  ffmpegPath: string;
  width: number;
  height: number;
  fps: number;
  /** How long `stop` waits for composition before answering, ms. */
  stopWaitMs: number;
  /** How long `start` waits for the published tracks' first frames, ms. Default 5000. */
  startWaitMs?: number;
  /** This node: its recordings' files are on its disk. */
  nodeId: string;
  /** Whether other nodes share the store (cluster mode): recovery then takes only this node's. Default false. */
  shared?: boolean;
  /** Called after a recording's record was written with a status it did not have before. */
  onStatus?: (record: RecordingRecord) => void;
  logger: Logger;
}

/** One captured track as the manifest keeps it. */
interface ManifestTrack {
  /** Relative to the recording's folder. */
  file: string;
  kind: 'video' | 'audio';
  codec: string;
  participant: string;
  stream: string;
  /** ms after the recording's zero; null while nothing was written. */
  startMs: number | null;
  /** ms after zero; null while it runs (or when the process died). */
  endMs: number | null;
}

interface Manifest {
  id: string;
  /** Wall time (epoch ms) of the recording's zero: its first written frame. */
  zeroAt: number | null;
  /** Set on stop. */
  durationMs: number | null;
  tracks: ManifestTrack[];
}

/** A recording in progress on this node. */
interface Active {
  record: RecordingRecord;
  roomSession: RoomSession;
  manifest: Manifest;
  captures: Map<string, { capture: TrackCapture; entry: ManifestTrack }>;
  /** Started automatically (ALWAYS, record_on_start): stops when the last participant leaves. */
  automatic: boolean;
  unsubscribe: () => void;
  /** Resolves when the tracks present at start hold media. */
  firstMedia: Promise<void>;
  /**
   * Resolves a moment (START_GRACE_MS) after the first frame of any track, the recording's zero:
   * start answers then even if a camera's key frame is late, so that the file's duration stays the
   * time between start's answer and stop (a late track begins where its frames begin).
   */
  soonAfterZero: Promise<void>;
  zeroReached: () => void;
  stopping: Promise<RecordingRecord> | undefined;
  /** Resolves when stopping begins (a start waiting for media stops waiting). */
  halted: Promise<void>;
  halt: () => void;
  manifestWrite: Promise<void>;
}

export class Recordings {
  readonly #options: RecordingsOptions;
  readonly #store: Store;
  readonly #log: Logger;
  /** Recordings in progress, by id. */
  readonly #active = new Map<string, Active>();
  /** Compositions queued or running, by id (one ffmpeg at a time). */
  readonly #composing = new Map<string, { done: Promise<void>; abort: AbortController; running: boolean }>();
  #queue: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(options: RecordingsOptions) {
    this.#options = options;
    this.#store = options.store;
    this.#log = options.logger;
    options.rooms.watch((rs) => this.#follow(rs));
  }

  /** The statuses last written, by uuid (so that `onStatus` hears changes only). */
  readonly #written = new Map<string, RecordingStatus>();

  /** Writes a recording's record, and tells `onStatus` when its status changed. */
  async #put(record: RecordingRecord): Promise<void> {
    await this.#store.putRecording(record);
    if (this.#written.get(record.uuid) === record.status) return;
    this.#written.set(record.uuid, record.status);
    if (record.status === 'available' || record.status === 'failed') {
      // Final: nothing more to compare with.
      this.#written.delete(record.uuid);
    }
    try {
      this.#options.onStatus?.({ ...record });
    } catch (err) {
      this.#log.error({ err }, 'a recording status listener failed');
    }
  }

  /** How long `stop` may wait for the composition, ms (an HTTP caller keeps its connection that long). */
  get stopWaitMs(): number {
    return this.#options.stopWaitMs;
  }

  /** The folder of one recording. */
  folderOf(id: string): string {
    return join(this.#options.dir, id);
  }

  /** The composed file of one recording (whether or not it exists). */
  fileOf(id: string): string {
    return join(this.folderOf(id), `${id}.mp4`);
  }

  /** A recording by id (OpenVidu) or uuid (SignalWire). */
  async get(id: string): Promise<RecordingRecord | undefined> {
    for (const a of this.#active.values()) if (a.record.id === id || a.record.uuid === id) return { ...a.record };
    return this.#store.getRecording(id);
  }

  /**
   * Writes again the records of the recordings in progress (after other nodes, taking this one for
   * dead, marked them stopped in the shared store).
   */
  async rewriteActive(): Promise<void> {
    for (const a of this.#active.values()) if (a.record.id !== '') await this.#put(a.record);
  }

  /** Every recording, newest first, or those of one room session. */
  async list(roomSessionId?: string): Promise<RecordingRecord[]> {
    return this.#store.listRecordings(roomSessionId);
  }

  /** The recording in progress of a room session, if any. */
  activeOf(roomSession: RoomSession): RecordingRecord | undefined {
    for (const a of this.#active.values()) if (a.roomSession === roomSession) return a.record;
    return undefined;
  }

  /**
   * Starts recording a room session; resolves once the file holds media (OpenVidu: "the recording
   * can be stopped with guarantees"). BAD_REQUEST when nobody is connected, CONFLICT when it is
   * recorded already.
   */
  async start(roomSession: RoomSession, sessionId: string, automatic = false): Promise<RecordingRecord> {
    if (this.#closed) throw errors.unavailable('The server is stopping');
    if (roomSession.ended) throw new KilnError('NOT_FOUND', `Session ${sessionId} has ended`);
    if (roomSession.participants.size === 0) throw errors.badRequest(`Session ${sessionId} has no connected participants`);
    if (this.activeOf(roomSession)) throw new KilnError('CONFLICT', `Session ${sessionId} is already being recorded`);
    const now = new Date().toISOString();
    const record: RecordingRecord = {
      id: '', uuid: randomUUID(), roomSessionId: roomSession.id, sessionId, name: '', status: 'starting', createdAt: now, updatedAt: now,
      stoppedAt: null, duration: 0, size: 0, hasAudio: true, hasVideo: true, reason: null, nodeId: this.#options.nodeId,
    };
    // Claimed at once (before any await), so a second start meets it.
    const active: Active = {
      record, roomSession, automatic, captures: new Map(), manifest: { id: '', zeroAt: null, durationMs: null, tracks: [] },
      unsubscribe: () => {}, firstMedia: Promise.resolve(), stopping: undefined, manifestWrite: Promise.resolve(), halted: Promise.resolve(), halt: () => {},
      soonAfterZero: Promise.resolve(), zeroReached: () => {},
    };
    active.soonAfterZero = new Promise<void>((resolve) => (active.zeroReached = () => setTimeout(resolve, START_GRACE_MS)));
    active.halted = new Promise<void>((resolve) => (active.halt = resolve));
    const placeholder = `\u0000${record.uuid}`;
    this.#active.set(placeholder, active);
    // What start answers when the recording was stopped before it could start (shutdown, the
    // session ended, a capture failed): the reason, in the dialect's terms.
    const refusal = () => this.#closed ? errors.unavailable('The server is stopping')
      : roomSession.ended || roomSession.participants.size === 0 ? new KilnError('NOT_FOUND', `Session ${sessionId} ended before the recording started`)
      : new KilnError('INTERNAL', `The recording could not start: ${record.reason}`);
    try {
      const id = await this.#freeId(roomSession.name);
      if (active.stopping) throw refusal();
      record.id = record.name = active.manifest.id = id;
      this.#active.delete(placeholder);
      this.#active.set(id, active);
      await mkdir(join(this.folderOf(id), 'tracks'), { recursive: true });
      await this.#put(record);
    } catch (err) {
      this.#forget(active);
      throw err;
    }
    if (active.stopping) throw refusal();
    this.#attachAll(active);
    // The session may have ended (or emptied) while the recording was being set up.
    if (roomSession.ended || (automatic && roomSession.participants.size === 0)) {
      await this.#stopQuietly(active);
      throw refusal();
    }
    await this.#writeManifest(active);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([active.firstMedia, active.halted, active.soonAfterZero, new Promise((r) => (timer = setTimeout(r, this.#options.startWaitMs ?? 5000)))]);
    clearTimeout(timer);
    // OpenVidu answers once "the video file is already created and contains proper data": the
    // first frames are in the files, not only queued (a few ms).
    for (const { capture } of active.captures.values()) capture.flush();
    for (let i = 0; i < 40 && !active.stopping && [...active.captures.values()].some((c) => c.capture.firstFrameAt > 0 && !c.capture.holdsMedia); i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    // (Read through a function: TypeScript would keep the narrowing from before the awaits.)
    const stopping = ((a: Active) => a.stopping)(active);
    if (stopping) {
      const outcome = await stopping;
      if (outcome.status === 'failed') throw refusal();
      return outcome;
    }
    active.manifest.zeroAt ??= Date.now();
    record.status = 'started';
    record.updatedAt = new Date().toISOString();
    try {
      await this.#put(record);
    } catch (err) {
      record.status = 'starting';
      await this.#stopQuietly(active);
      throw err;
    }
    this.#log.info({ recording: record.id, roomSession: roomSession.id, tracks: active.captures.size }, 'recording started');
    roomSession.emit('recordingStarted', record.id, record.name);
    return { ...record };
  }

  /** Drops an in-progress recording from the map, under whichever key it is. */
  #forget(active: Active): void {
    for (const [key, a] of this.#active) if (a === active) this.#active.delete(key);
  }

  /** The room session's name if no recording has it as id, else `name-1`, `name-2`… */
  async #freeId(name: string): Promise<string> {
    if (!RECORDING_ID.test(name)) throw errors.badRequest(`Session ${name} cannot be recorded: its name is not a valid recording id`);
    const taken = async (id: string) => this.#active.has(id) || (await this.#store.getRecording(id)) !== undefined;
    if (!(await taken(name))) return name;
    for (let n = 1; ; n++) if (!(await taken(`${name}-${n}`))) return `${name}-${n}`;
  }

  /**
   * Stops a recording: capture ends, the files are closed, and the MP4 is composed; resolves with
   * the record once composed, or after `stopWaitMs` with the record as it is then (`stopped`).
   * NOT_FOUND (unknown, or not in progress), NOT_ACCEPTABLE (`starting`).
   */
  async stop(id: string): Promise<RecordingRecord> {
    const active = this.#active.get(id);
    if (!active) {
      const record = await this.#store.getRecording(id);
      // OpenVidu answers 404 for a recording that is not in progress, as for one that does not exist.
      if (!record || record.id !== id) throw new KilnError('NOT_FOUND', `Recording ${id} does not exist`);
      throw new KilnError('NOT_FOUND', `Recording ${id} is not being recorded (${record.status})`);
    }
    if (active.record.status === 'starting') throw new KilnError('NOT_ACCEPTABLE', `Recording ${id} is starting: wait until it has started`);
    const stopped = this.#stopActive(active);
    const composed = this.#composing.get(id)?.done ?? Promise.resolve();
    await stopped;
    const wait = new Promise((r) => setTimeout(r, this.#options.stopWaitMs).unref());
    await Promise.race([this.#composing.get(id)?.done ?? composed, wait]);
    return (await this.get(id)) ?? stopped;
  }

  /**
   * Ends capture, writes the manifest and queues the composition; idempotent. A recording stopped
   * before any media reached its files has nothing to compose: it fails, with the reason.
   */
  #stopActive(active: Active, why = 'it was stopped before any media arrived'): Promise<RecordingRecord> {
    active.halt();
    active.stopping ??= (async () => {
      const record = active.record;
      const now = Date.now();
      active.unsubscribe();
      const empty = active.manifest.zeroAt === null;
      active.manifest.zeroAt ??= now;
      const durationMs = Math.max(0, now - active.manifest.zeroAt);
      active.manifest.durationMs = durationMs;
      await Promise.all([...active.captures.values()].map(({ capture, entry }) => this.#endCapture(capture, entry, durationMs)));
      active.captures.clear();
      if (record.status !== 'failed' && (empty || durationMs === 0)) Object.assign(record, { status: 'failed', reason: why });
      else if (record.status !== 'failed') record.status = 'stopped';
      record.stoppedAt = new Date(now).toISOString();
      record.updatedAt = record.stoppedAt;
      // Until composed, the duration is the captured one (the file's replaces it).
      record.duration = Math.round(durationMs / 10) / 100;
      this.#forget(active);
      if (record.id === '') return { ...record };
      await this.#writeManifest(active);
      await this.#put(record);
      active.roomSession.emit('recordingStopped', record.id, record.name);
      if (record.status === 'failed') this.#log.error({ recording: record.id, reason: record.reason }, 'recording failed');
      else this.#log.info({ recording: record.id, durationMs }, 'recording stopped');
      if (record.status === 'stopped') this.#queueCompose({ ...record }, active.manifest);
      return { ...record };
    })();
    return active.stopping;
  }

  /** Closes a capture that runs until the end: its track ends with the recording. */
  async #endCapture(capture: TrackCapture, entry: ManifestTrack, durationMs: number): Promise<void> {
    await capture.close().catch(() => {});
    this.#reportLoss(capture, entry);
    if (entry.startMs !== null && entry.endMs === null) entry.endMs = durationMs;
  }

  /**
   * Deletes a recording, its files and its record. NOT_FOUND; CONFLICT while it is starting or
   * started. A composition in progress is cancelled.
   */
  async delete(id: string): Promise<void> {
    const active = this.#active.get(id);
    if (active) throw new KilnError('CONFLICT', `Recording ${id} is ${active.record.status}: stop it before deleting it`, { parameter: 'id', rule: 'recording_in_progress' });
    const record = await this.#store.getRecording(id);
    if (!record || record.id !== id) throw new KilnError('NOT_FOUND', `Recording ${id} does not exist`);
    const job = this.#composing.get(id);
    if (job) {
      job.abort.abort();
      // A running ffmpeg is killed and awaited (it holds the files); a queued one never starts.
      if (job.running) await job.done;
    }
    await this.#store.deleteRecording(id);
    if (RECORDING_ID.test(id)) await rm(this.folderOf(id), { recursive: true, force: true });
  }

  /** Records the tracks published now and follows the room session's publishes and leaves. */
  #attachAll(active: Active): void {
    const rs = active.roomSession;
    const waits: Promise<void>[] = [];
    for (const [participant, published] of rs.publishedStreams()) waits.push(this.#attachStream(active, participant, published));
    active.firstMedia = Promise.all(waits).then(() => {});
    const onPublished = (p: Participant, s: PublishedStream) => void this.#attachStream(active, p, s);
    const onUnpublished = (_p: Participant, s: PublishedStream) => this.#detachStream(active, s.id);
    const onLeft = () => {
      if (active.automatic && rs.participants.size === 0) void this.#stopQuietly(active);
    };
    const onEnding = () => void this.#stopQuietly(active);
    rs.on('published', onPublished);
    rs.on('unpublished', onUnpublished);
    rs.on('left', onLeft);
    rs.on('ending', onEnding);
    active.unsubscribe = () => {
      rs.off('published', onPublished);
      rs.off('unpublished', onUnpublished);
      rs.off('left', onLeft);
      rs.off('ending', onEnding);
    };
  }

  /** Captures each track of a published stream; resolves when all of them wrote a frame. */
  #attachStream(active: Active, participant: Participant, published: PublishedStream): Promise<void> {
    const forwarder = this.#options.engine.forwarderOf(published.stream);
    if (!forwarder || active.stopping) return Promise.resolve();
    const firsts: Promise<void>[] = [];
    for (const track of forwarder.tracks) {
      const codec = captureCodec(track.info.codec);
      const key = `${published.id}#${track.info.id}`;
      if (!codec || active.captures.has(key)) continue;
      const file = `tracks/${String(active.manifest.tracks.length + 1).padStart(3, '0')}-${safeName(published.id)}-${track.info.kind}.${captureExtension(codec)}`;
      const entry: ManifestTrack = { file, kind: track.info.kind, codec, participant: participant.id, stream: published.id, startMs: null, endMs: null };
      let resolveFirst = () => {};
      firsts.push(new Promise<void>((r) => (resolveFirst = r)));
      const capture = new TrackCapture({
        path: join(this.folderOf(active.record.id), file),
        codec,
        track,
        forwarder,
        onFirstFrame: (at) => {
          if (active.manifest.zeroAt === null) {
            active.manifest.zeroAt = at;
            active.zeroReached();
          }
          entry.startMs = Math.max(0, at - active.manifest.zeroAt);
          resolveFirst();
          void this.#writeManifest(active);
        },
        onError: (err) => {
          resolveFirst();
          this.#captureFailed(active, err);
        },
      });
      active.manifest.tracks.push(entry);
      active.captures.set(key, { capture, entry });
    }
    void this.#writeManifest(active);
    return Promise.all(firsts).then(() => {});
  }

  /** A track that lost frames on the way says so, once, when its capture ends. */
  #reportLoss(capture: TrackCapture, entry: ManifestTrack): void {
    if (capture.droppedFrames > 0) this.#log.warn({ file: entry.file, dropped: capture.droppedFrames }, 'recording track lost frames');
  }

  /** A stream left: its captures end now. */
  #detachStream(active: Active, streamId: string): void {
    for (const [key, { capture, entry }] of active.captures) {
      if (entry.stream !== streamId) continue;
      active.captures.delete(key);
      if (entry.startMs !== null) entry.endMs = Date.now() - (active.manifest.zeroAt ?? Date.now());
      void capture.close().catch(() => {}).then(() => {
        this.#reportLoss(capture, entry);
        return this.#writeManifest(active);
      });
    }
  }

  /** A file could not be written (disk full…): the recording fails, the captured tracks stay. */
  #captureFailed(active: Active, err: Error): void {
    if (active.record.status === 'failed') return;
    this.#log.error({ err, recording: active.record.id }, 'recording failed: a track could not be written');
    active.record.status = 'failed';
    active.record.reason = `capture failed: ${err.message}`;
    void this.#stopQuietly(active);
  }

  async #stopQuietly(active: Active): Promise<void> {
    try {
      await this.#stopActive(active);
    } catch (err) {
      this.#log.error({ err, recording: active.record.id }, 'recording could not be stopped cleanly');
    }
  }

  /** Writes the manifest atomically (temp file, then rename), in order. */
  #writeManifest(active: Active): Promise<void> {
    const dir = this.folderOf(active.record.id);
    const next = active.manifestWrite.then(async () => {
      const text = JSON.stringify(active.manifest, null, 2);
      await writeFile(join(dir, 'manifest.json.tmp'), text);
      await rename(join(dir, 'manifest.json.tmp'), join(dir, 'manifest.json'));
    }).catch((err) => this.#log.warn({ err, recording: active.record.id }, 'recording manifest could not be written'));
    active.manifestWrite = next;
    return next;
  }

  /** Queues the composition of a stopped recording (one ffmpeg at a time). */
  #queueCompose(record: RecordingRecord, manifest: Manifest): void {
    const job = { done: Promise.resolve(), abort: new AbortController(), running: false };
    const done = this.#queue.then(async () => {
      job.running = true;
      try {
        await this.#compose(record, manifest, job.abort.signal);
      } catch (err) {
        this.#log.error({ err, recording: record.id }, 'recording composition went wrong');
      }
    }).finally(() => {
      if (this.#composing.get(record.id) === job) this.#composing.delete(record.id);
    });
    job.done = done;
    this.#queue = done;
    this.#composing.set(record.id, job);
  }

  async #compose(record: RecordingRecord, manifest: Manifest, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const folder = this.folderOf(record.id);
    const durationMs = manifest.durationMs ?? 0;
    const tracks = manifest.tracks
      .filter((t) => t.startMs !== null && t.endMs !== null && t.endMs > t.startMs)
      .map((t) => ({ path: join(folder, t.file), kind: t.kind, startMs: t.startMs!, endMs: Math.min(t.endMs!, durationMs) }));
    const started = Date.now();
    try {
      const result = await compose({
        ffmpegPath: this.#options.ffmpegPath, tracks, durationMs, output: this.fileOf(record.id),
        width: this.#options.width, height: this.#options.height, fps: this.#options.fps, signal,
      });
      if (signal.aborted) return;
      if (result.leftOut.length > 0) this.#log.warn({ recording: record.id, leftOut: result.leftOut }, 'recording composed without some captured tracks');
      Object.assign(record, { status: 'available', duration: Math.round(result.durationSeconds * 100) / 100, size: result.size, updatedAt: new Date().toISOString() });
      this.#log.info({ recording: record.id, seconds: record.duration, bytes: record.size, composeMs: Date.now() - started }, 'recording composed');
    } catch (err) {
      if (signal.aborted) return;
      this.#log.error({ err, recording: record.id }, 'recording failed: the file could not be composed');
      Object.assign(record, { status: 'failed', reason: `composition failed: ${(err as Error).message}`, updatedAt: new Date().toISOString() });
    }
    // Deleted meanwhile: nothing to write back.
    if (!(await this.#store.getRecording(record.id))) return;
    await this.#put(record).catch((err) => this.#log.error({ err, recording: record.id }, 'recording could not be written'));
  }

  /** Recordings (ALWAYS / record_on_start) start with the first publish and stop when the last member leaves. */
  #follow(rs: RoomSession): void {
    if (rs.openvidu?.archiveMode !== 'ALWAYS' && !rs.settings.recordOnStart) return;
    rs.on('published', () => {
      if (this.#closed || rs.ended || this.activeOf(rs)) return;
      this.start(rs, this.#options.rooms.sessionIdOf(rs), true).catch((err) => {
        this.#log.error({ err, roomSession: rs.id }, 'automatic recording could not start');
      });
    });
  }

  /**
   * After a restart: what was being recorded when the process died is stopped where its files end,
   * and composed; what was stopped and not yet composed is composed. Runs in the background.
   */
  async recover(): Promise<void> {
    for (const record of await this.#store.listUnfinishedRecordings(this.#options.shared ? this.#options.nodeId : undefined)) {
      if (this.#closed) return;
      // Started by this run meanwhile: it is live, not left over.
      if (this.#active.has(record.id) || this.#composing.has(record.id)) continue;
      if (!RECORDING_ID.test(record.id)) {
        await this.#fail(record, 'its id is not a valid recording id');
        continue;
      }
      let manifest: Manifest;
      try {
        manifest = JSON.parse(await readFile(join(this.folderOf(record.id), 'manifest.json'), 'utf8')) as Manifest;
        if (!Array.isArray(manifest.tracks)) throw new Error('the manifest has no tracks');
      } catch (err) {
        await this.#fail(record, `nothing to compose after a restart: ${(err as Error).message}`);
        continue;
      }
      for (const t of manifest.tracks) {
        if (t.startMs === null || t.endMs !== null) continue;
        t.endMs = t.startMs + (await this.#capturedMs(join(this.folderOf(record.id), t.file), t.kind));
      }
      const ends = manifest.tracks.map((t) => t.endMs ?? 0);
      manifest.durationMs ??= Math.max(0, ...ends);
      if (manifest.durationMs <= 0) {
        await this.#fail(record, 'the process stopped before any media was captured');
        continue;
      }
      await writeFile(join(this.folderOf(record.id), 'manifest.json'), JSON.stringify(manifest, null, 2)).catch(() => {});
      const was = record.status;
      record.status = 'stopped';
      record.stoppedAt ??= new Date((manifest.zeroAt ?? Date.parse(record.createdAt)) + manifest.durationMs).toISOString();
      record.updatedAt = new Date().toISOString();
      await this.#put(record);
      this.#log.warn({ recording: record.id, was, durationMs: manifest.durationMs }, 'recording left unfinished by the last run: composing what was captured');
      this.#queueCompose(record, manifest);
    }
  }

  /** How long a captured file plays, ms (truncating a half-written last frame). */
  async #capturedMs(path: string, kind: 'video' | 'audio'): Promise<number> {
    try {
      await stat(path);
      if (kind === 'video') return Math.round((await scanIvf(path)).durationPts / 90);
      return Math.round((await scanOgg(path)).durationSamples / 48);
    } catch {
      return 0;
    }
  }

  async #fail(record: RecordingRecord, reason: string): Promise<void> {
    this.#log.error({ recording: record.id, reason }, 'recording failed');
    Object.assign(record, { status: 'failed', reason, updatedAt: new Date().toISOString() });
    await this.#put(record);
  }

  /**
   * On shutdown: recordings in progress are stopped and their files closed; compositions get up to
   * `graceMs` to finish, then are cancelled (the next start composes them). 5 s by default, within
   * what service managers wait before they kill (Docker: 10 s).
   */
  async close(graceMs = 5000): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#active.values()].map((a) => this.#stopQuietly(a)));
    const timer = setTimeout(() => {
      for (const job of this.#composing.values()) job.abort.abort();
    }, graceMs);
    await this.#queue.catch(() => {});
    clearTimeout(timer);
  }
}

/** A stream id as a file-name part. */
function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
}
