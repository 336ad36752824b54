/**
 * The composer of room recordings: one MP4 (H.264 yuv420p + AAC stereo 48 kHz, `+faststart`) made by
 * one ffmpeg run from the files captured per track (IVF video with 90 kHz pts from 0: VP8, VP9, H.264
 * Annex-B, AV1; Ogg Opus with 48 kHz granules from 0) and the times the manifest gives them.
 *
 * Video is OpenVidu's BEST_FIT grid, re-tiled whenever a video starts or ends: the recording is cut
 * into segments (gridSegments, snapped to whole frames) and each video track gets the tile of its
 * place in each segment (bestFitTiles). The graph is one black canvas of exactly the recording's
 * frames and, per video track, one overlay enabled while it is on screen, its place a step function
 * of t and its size changed by `sendcmd` at each re-tiling. So the canvas decides the length (a file
 * with fewer frames than its interval leaves its last frame, `tpad` clone), and memory is one
 * chain per track however often the grid re-tiles (a chain per segment, concatenated, grew by ~6 MB a
 * segment at 720p on ffmpeg 5.1, which frees no filter buffers before the end). Tiles are fitted per
 * frame (`eval=frame`) and inputs use `-reinit_filter 0`: a publisher that changes resolution (WebRTC
 * does under load) keeps its tile instead of restarting the graph, which would lose the timing.
 *
 * Audio: every track is placed at its start (adelay), its gaps filled with silence (aresample async),
 * all mixed without normalisation (amix `normalize=0`, as the room heard it) and padded/cut to length.
 * Gaps of any length are kept (`-dts_delta_threshold`: ffmpeg would otherwise close those over 10 s).
 *
 * compose() first checks each file with ffprobe and leaves out (and names) those it cannot read, so
 * one broken capture does not cost the whole recording.
 *
 * Written for Debian 12's ffmpeg 5.1.
 */
import { spawn, execFile } from 'node:child_process';
import { setPriority } from 'node:os';
import { access, constants, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export interface ComposeTrack {
  /** Absolute path of the captured file. */
  path: string;
  kind: 'video' | 'audio';
  /** When its first frame belongs, ms from the recording's start (>= 0). */
  startMs: number;
  /** When it ended, ms from the recording's start (> startMs); clamped to the recording's duration. */
  endMs: number;
}

export interface ComposeOptions {
  /** The ffmpeg binary, e.g. '/usr/bin/ffmpeg'. ffprobe is looked for beside it, then on PATH. */
  ffmpegPath: string;
  /** Any number, possibly zero. Tracks that end before they start, or start after the end, are left out. */
  tracks: ComposeTrack[];
  /** The recording's length (> 0); the output lasts this long, to the nearest frame. */
  durationMs: number;
  /** The .mp4 path. ffmpeg writes `output + '.part'`, renamed on success: a half file is never at `output`. */
  output: string;
  /** Canvas width, even. */
  width: number;
  /** Canvas height, even. */
  height: number;
  /** Canvas frame rate, a whole number of frames per second (1–120). */
  fps: number;
  /** Aborts ffmpeg (SIGKILL); compose() then rejects with the signal's reason once ffmpeg has exited. */
  signal?: AbortSignal;
  /** x264 preset; default 'veryfast'. */
  preset?: string;
}

/** One stretch of the recording during which the same videos are on screen. */
export interface GridSegment {
  startMs: number;
  endMs: number;
  /** Indices into the `tracks` given, in order of start (then of index): tile 0 is the first to join. */
  videos: number[];
}

/** One tile of the grid, in canvas pixels (all even). */
export interface Tile {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** What compose() resolves with. */
export interface ComposeResult {
  /** The file's duration as ffprobe reads it, seconds. */
  durationSeconds: number;
  /** The file's size, bytes. */
  size: number;
  /** Tracks left out because ffprobe could not read a stream of their kind from the file, and why. */
  leftOut: { path: string; reason: string }[];
}

/** What probe() reads from a file. */
export interface ProbeResult {
  durationSeconds: number;
  streams: { codecType: string; codecName: string; width?: number; height?: number }[];
}

/** ffmpeg runs at this niceness (lower priority than the server's media path). */
const COMPOSE_NICENESS = 10;

/** Segments shorter than this are merged into their neighbours, so joins a moment apart re-tile once. */
export const MIN_SEGMENT_MS = 100;

/** ffprobe runs at once when checking the captured files. */
const PROBE_CONCURRENCY = 4;

/** How long one ffprobe may take, ms. */
const PROBE_TIMEOUT_MS = 60_000;

/** Lines of ffmpeg's stderr kept for the error of a failed run. */
const STDERR_LINES = 20;

/** Above this length the filter graph goes through `-filter_complex_script` (Linux caps one argument at 128 KiB). */
const MAX_GRAPH_ARGUMENT = 64 * 1024;

/** A track's interval within [0, durationMs], or undefined when nothing of it is left. */
function clampedInterval(track: ComposeTrack, durationMs: number): { startMs: number; endMs: number } | undefined {
  const startMs = Math.max(0, track.startMs);
  const endMs = Math.min(track.endMs, durationMs);
  return Number.isFinite(startMs) && Number.isFinite(endMs) && endMs > startMs ? { startMs, endMs } : undefined;
}

/**
 * Pure: the segments of the grid, covering [0, durationMs] without gaps, each with the video tracks
 * on screen (indices into `tracks`, in order of start). A segment shorter than `minSegmentMs`
 * (default MIN_SEGMENT_MS) is merged into its neighbour; a merged segment shows the videos that cover
 * its middle. A recording without video is one segment with no videos; durationMs <= 0 gives none.
 */
export function gridSegments(tracks: ComposeTrack[], durationMs: number, minSegmentMs = MIN_SEGMENT_MS): GridSegment[] {
  if (!(durationMs > 0)) return [];
  const videos = tracks
    .map((track, index) => ({ index, kind: track.kind, interval: clampedInterval(track, durationMs) }))
    .filter((v) => v.kind === 'video' && v.interval !== undefined)
    .map((v) => ({ index: v.index, ...v.interval! }))
    .sort((a, b) => a.startMs - b.startMs || a.index - b.index);
  const cuts = [...new Set([0, durationMs, ...videos.flatMap((v) => [v.startMs, v.endMs])])].sort((a, b) => a - b);
  const kept = mergeShortCuts(cuts, minSegmentMs);
  const segments: GridSegment[] = [];
  for (let i = 0; i + 1 < kept.length; i++) {
    const startMs = kept[i]!;
    const endMs = kept[i + 1]!;
    const middle = (startMs + endMs) / 2;
    const on = videos.filter((v) => v.startMs <= middle && middle < v.endMs).map((v) => v.index);
    const last = segments.at(-1);
    if (last && sameList(last.videos, on)) last.endMs = endMs;
    else segments.push({ startMs, endMs, videos: on });
  }
  return segments;
}

/** Sorted cut points from 0 to the end, without those closer than `min` to the one kept before (the end always stays). */
function mergeShortCuts(cuts: number[], min: number): number[] {
  const end = cuts.at(-1)!;
  const kept = [cuts[0]!];
  for (const cut of cuts.slice(1, -1)) if (cut - kept.at(-1)! >= min && end - cut >= min) kept.push(cut);
  kept.push(end);
  return kept;
}

/** Whether two lists hold the same numbers in the same order. */
function sameList(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The largest even number not above `x`. */
function even(x: number): number {
  return 2 * Math.floor(x / 2);
}

/**
 * Pure: the tile rectangles of BEST_FIT for n videos on a WxH canvas: 1 → the whole canvas;
 * 2 → side by side; 3–4 → 2x2; n → ceil(sqrt(n)) columns and ceil(n/columns) rows. Tiles are equal
 * and even-sized, filled row by row from the top left; a last row that is not full is centred, as in
 * OpenVidu. (Each video is then scaled into its tile keeping its aspect, centred, black around.)
 */
export function bestFitTiles(n: number, width: number, height: number): Tile[] {
  if (!(n >= 1)) return [];
  const columns = Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / columns);
  const w = even(width / columns);
  const h = even(height / rows);
  const top = even((height - rows * h) / 2);
  const tiles: Tile[] = [];
  for (let i = 0; i < n; i++) {
    const row = Math.floor(i / columns);
    const inRow = Math.min(columns, n - row * columns);
    const left = even((width - inRow * w) / 2);
    tiles.push({ x: left + (i % columns) * w, y: top + row * h, w, h });
  }
  return tiles;
}

/** Seconds for ffmpeg, from ms, without exponent notation. */
function seconds(ms: number): string {
  return (ms / 1000).toFixed(6).replace(/\.?0+$/, '');
}

/** Throws a TypeError naming the first option that cannot be composed. */
function validate(options: ComposeOptions): void {
  const { durationMs, width, height, fps, tracks } = options;
  if (!(Number.isFinite(durationMs) && durationMs > 0)) throw new TypeError(`durationMs must be a positive number of ms, not ${durationMs}`);
  for (const [name, v] of [['width', width], ['height', height]] as const) {
    if (!(Number.isInteger(v) && v >= 2 && v % 2 === 0 && v <= 8192)) throw new TypeError(`${name} must be an even number of pixels (2–8192), not ${v}`);
  }
  if (!(Number.isInteger(fps) && fps >= 1 && fps <= 120)) throw new TypeError(`fps must be a whole number from 1 to 120, not ${fps}`);
  if (!options.output) throw new TypeError('output must be a path');
  if (!Array.isArray(tracks)) throw new TypeError('tracks must be an array');
  tracks.forEach((t, i) => {
    if (!t || typeof t.path !== 'string' || !t.path) throw new TypeError(`tracks[${i}].path must be a path`);
    if (t.kind !== 'video' && t.kind !== 'audio') throw new TypeError(`tracks[${i}].kind must be 'video' or 'audio', not ${String(t.kind)}`);
    if (!Number.isFinite(t.startMs) || !Number.isFinite(t.endMs)) throw new TypeError(`tracks[${i}] must have finite startMs and endMs`);
  });
}

/** A grid segment in whole frames of the canvas: [start, end). */
interface FrameSegment {
  start: number;
  end: number;
  videos: number[];
}

/** The grid segments snapped to whole frames, covering [0, frames); a segment that snaps to nothing joins the one before. */
function frameSegments(tracks: ComposeTrack[], durationMs: number, fps: number): FrameSegment[] {
  const frames = Math.max(1, Math.round((durationMs * fps) / 1000));
  const out: FrameSegment[] = [];
  for (const s of gridSegments(tracks, durationMs)) {
    const start = out.at(-1)?.end ?? 0;
    const end = s.endMs >= durationMs ? frames : Math.min(frames, Math.round((s.endMs * fps) / 1000));
    if (end <= start) continue;
    const last = out.at(-1);
    if (last && sameList(last.videos, s.videos)) last.end = end;
    else out.push({ start, end, videos: s.videos });
  }
  out.at(-1)!.end = frames;
  return out;
}

/** Seconds of the boundary before frame `frame`: half a frame early, so no frame time ever equals it. */
function boundary(frame: number, fps: number): string {
  return seconds(((frame - 0.5) * 1000) / fps);
}

/**
 * An ffmpeg expression of `t` that is `values[0]` until `cuts[0]`, then `values[1]`… : a flat sum of
 * steps (no nesting, however many re-tilings), defined for every t.
 */
function stepExpression(values: number[], cuts: string[]): string {
  let expr = String(values[0]);
  for (let i = 1; i < values.length; i++) {
    const step = values[i]! - values[i - 1]!;
    if (step !== 0) expr += `${step > 0 ? '+' : ''}${step}*gte(t,${cuts[i - 1]})`;
  }
  return expr;
}

/**
 * The video part of the graph, ending in [vout]: one black canvas of exactly the recording's frames,
 * and per video track one overlay, enabled while the track is on screen, whose tile (size and place)
 * follows the segments as functions of t. Memory stays that of one chain per track, however many
 * times the grid re-tiles. `inputOf` maps a track index to its ffmpeg input.
 */
function videoGraph(segments: FrameSegment[], inputOf: Map<number, number>, o: ComposeOptions): string[] {
  const { width: W, height: H, fps: F } = o;
  const frames = segments.at(-1)!.end;
  const chains = [`color=c=black:s=${W}x${H}:r=${F}:d=${seconds(((frames - 0.5) * 1000) / F)},format=yuv420p,setsar=1[c0]`];
  // Each track's tile in each segment it is in, in order of time.
  const tilesOf = new Map<number, { seg: FrameSegment; tile: Tile }[]>();
  for (const seg of segments) {
    const tiles = bestFitTiles(seg.videos.length, W, H);
    seg.videos.forEach((t, i) => tilesOf.set(t, [...(tilesOf.get(t) ?? []), { seg, tile: tiles[i]! }]));
  }
  const order = [...tilesOf.keys()].sort((a, b) => tilesOf.get(a)![0]!.seg.start - tilesOf.get(b)![0]!.seg.start || a - b);
  order.forEach((t, k) => {
    const spans = tilesOf.get(t)!;
    const cuts = spans.slice(1).map((s) => boundary(s.seg.start, F));
    const of = (key: keyof Tile) => stepExpression(spans.map((s) => s.tile[key]), cuts);
    const shown = runs(spans.map((s) => s.seg));
    const end = shown.at(-1)![1];
    const enable = shown.map(([a, b]) => `between(t,${boundary(a, F)},${boundary(b, F)})`).join('+');
    const start = seconds(Math.max(0, o.tracks[t]!.startMs));
    // fps: the tile is refreshed every canvas frame, so a paused video takes its new size at once; tpad:
    // a file that ends before its interval keeps its last frame, re-tiled with the others; trim (exact,
    // the time base being 1/F): a file that runs on past its interval does not hold the canvas open.
    // The size changes by command: the scaler is rebuilt once per re-tiling, where a t-expression
    // would rebuild it every frame (~40% slower).
    const resize = spans.slice(1).flatMap((s, i) => {
      const before = spans[i]!.tile;
      return s.tile.w === before.w && s.tile.h === before.h ? [] : [`${cuts[i]} scale@v${k} w ${s.tile.w}, scale@v${k} h ${s.tile.h}`];
    });
    chains.push(
      `[${inputOf.get(t)}:v:0]setpts=PTS-STARTPTS+${start}/TB,fps=${F},` +
        `tpad=stop_mode=clone:stop_duration=${seconds((end * 1000) / F)},trim=end_pts=${end},` +
        (resize.length > 0 ? `sendcmd=c='${resize.join('; ')}',` : '') +
        `scale@v${k}=w=${spans[0]!.tile.w}:h=${spans[0]!.tile.h}:force_original_aspect_ratio=decrease:force_divisible_by=2:eval=frame,setsar=1[v${k}]`,
      // Centred in its tile (overlay_w is the frame's), on screen only while the grid holds it.
      `[c${k}][v${k}]overlay=x='${of('x')}+(${of('w')}-overlay_w)/2':y='${of('y')}+(${of('h')}-overlay_h)/2'` +
        `:eval=frame:eof_action=repeat:format=yuv420:enable='${enable}'[c${k + 1}]`,
    );
  });
  chains.push(`[c${order.length}]trim=end_frame=${frames}[vout]`);
  return chains;
}

/** Contiguous runs of segments as [first frame, end frame) pairs. */
function runs(segments: FrameSegment[]): [number, number][] {
  const out: [number, number][] = [];
  for (const s of segments) {
    const last = out.at(-1);
    if (last && last[1] === s.start) last[1] = s.end;
    else out.push([s.start, s.end]);
  }
  return out;
}

/** The audio part of the graph, ending in [aout]. `audio` pairs ffmpeg inputs with their tracks. */
function audioGraph(audio: { input: number; track: ComposeTrack }[], durationMs: number): string[] {
  const T = seconds(durationMs);
  if (audio.length === 0) return [`anullsrc=r=48000:cl=stereo,atrim=duration=${T}[aout]`];
  const chains = audio.map(({ input, track }, j) => {
    const delayMs = Math.round(Math.max(0, track.startMs));
    // async fills the gaps a lossy capture leaves with silence; adelay puts the track at its start.
    return `[${input}:a:0]asetpts=PTS-STARTPTS,aresample=async=1:first_pts=0,` +
      `aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo,adelay=delays=${delayMs}:all=1[a${j}]`;
  });
  const mixed = audio.length === 1 ? '[a0]' : `${audio.map((_, j) => `[a${j}]`).join('')}amix=inputs=${audio.length}:normalize=0:dropout_transition=0,`;
  chains.push(`${mixed}apad=whole_dur=${T},atrim=duration=${T}[aout]`);
  return chains;
}

/**
 * Pure: the ffmpeg argument list (inputs, -filter_complex, output options) for `options`, writing to
 * `output + '.part'`. One input per track used; throws a TypeError on options that cannot be composed.
 */
export function composeArgs(options: ComposeOptions): string[] {
  validate(options);
  const { tracks, durationMs } = options;
  const segments = frameSegments(tracks, durationMs, options.fps);
  const shown = new Set(segments.flatMap((s) => s.videos));
  const inputOf = new Map<number, number>();
  const audio: { input: number; track: ComposeTrack }[] = [];
  const inputs: string[] = [];
  tracks.forEach((track, t) => {
    const used = track.kind === 'video' ? shown.has(t) : clampedInterval(track, durationMs) !== undefined;
    if (!used) return;
    const input = inputs.length / 2;
    if (track.kind === 'video') inputOf.set(t, input);
    else audio.push({ input, track });
    inputs.push('-i', track.path);
  });
  const graph = [...videoGraph(segments, inputOf, options), ...audioGraph(audio, durationMs)].join(';');
  return [
    '-nostdin', '-hide_banner', '-y', '-v', 'error',
    // Ogg is a format with timestamp discontinuities: by default ffmpeg closes a gap over 10 s in an
    // audio track (a long silence of a muted publisher), putting what follows early. Keep every gap.
    '-dts_delta_threshold', '1000000',
    // A publisher that changes resolution must not rebuild the whole graph (the timing would restart): scale copes.
    ...inputs.flatMap((arg, i) => (i % 2 === 0 ? ['-reinit_filter', '0', arg] : [arg])),
    '-filter_complex', graph,
    '-map', '[vout]', '-map', '[aout]',
    '-c:v', 'libx264', '-preset', options.preset ?? 'veryfast', '-crf', '23', '-pix_fmt', 'yuv420p',
    '-c:a', 'aac', '-b:a', '128k', '-ar', '48000', '-ac', '2',
    '-movflags', '+faststart', '-f', 'mp4', `${options.output}.part`,
  ];
}

/** The ffprobe beside `ffmpegPath`, or 'ffprobe' (found on PATH) when there is none. */
async function ffprobePathFor(ffmpegPath: string): Promise<string> {
  const beside = join(dirname(ffmpegPath), 'ffprobe');
  try {
    await access(beside, constants.X_OK);
    return beside;
  } catch {
    return 'ffprobe';
  }
}

/** The last `limit` lines of a stream of text, each cut to 500 characters. */
function lastLines(limit: number): { push(chunk: string): void; text(): string } {
  const lines: string[] = [];
  let partial = '';
  return {
    push(chunk) {
      const parts = (partial + chunk).split(/\r?\n|\r/);
      partial = parts.pop()!.slice(-500);
      for (const line of parts) if (line.trim()) lines.push(line.slice(0, 500));
      lines.splice(0, Math.max(0, lines.length - limit));
    },
    text() {
      return [...lines, ...(partial.trim() ? [partial] : [])].slice(-limit).join('\n');
    },
  };
}

/** Runs ffmpeg to its exit; rejects with the signal's reason when aborted, or with stderr's tail when it fails. */
function runFfmpeg(ffmpegPath: string, args: string[], signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const stderr = lastLines(STDERR_LINES);
    const child = spawn(ffmpegPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    // Composition is batch work: live media on the same cores goes first.
    if (child.pid !== undefined) {
      try {
        setPriority(child.pid, COMPOSE_NICENESS);
      } catch {
        // not allowed here: it runs at normal priority
      }
    }
    const kill = () => child.kill('SIGKILL');
    signal?.addEventListener('abort', kill, { once: true });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));
    let spawnError: Error | undefined;
    child.on('error', (err) => (spawnError ??= err));
    child.on('close', (code, killedBy) => {
      signal?.removeEventListener('abort', kill);
      if (signal?.aborted) return reject(signal.reason);
      if (spawnError) return reject(new Error(`ffmpeg could not be run (${ffmpegPath}): ${spawnError.message}`));
      if (code === 0) return resolve();
      const status = code === null ? `was killed by ${killedBy}` : `exited with code ${code}`;
      const tail = stderr.text();
      reject(new Error(`ffmpeg ${status}${tail ? `:\n${tail}` : ' and printed nothing'}`));
    });
  });
}

/**
 * Composes the recording: runs ffmpeg on composeArgs(options), checks the result with ffprobe and
 * moves it to `output`. Resolves with the file's duration as ffprobe reads it and its size; rejects
 * with an Error holding ffmpeg's exit code and the last lines of its stderr when it fails, or with
 * the signal's reason when aborted. Either way nothing is left at `output` or `output + '.part'`.
 */
export async function compose(options: ComposeOptions): Promise<ComposeResult> {
  options.signal?.throwIfAborted();
  validate(options);
  const ffprobePath = await ffprobePathFor(options.ffmpegPath);
  const { tracks, leftOut } = await readableTracks(ffprobePath, options, options.signal);
  const args = composeArgs({ ...options, tracks });
  const part = `${options.output}.part`;
  const script = `${options.output}.filtergraph`;
  const graphAt = args.indexOf('-filter_complex') + 1;
  const viaScript = args[graphAt]!.length > MAX_GRAPH_ARGUMENT;
  try {
    if (viaScript) {
      await writeFile(script, args[graphAt]!);
      args.splice(graphAt - 1, 2, '-filter_complex_script', script);
    }
    await runFfmpeg(options.ffmpegPath, args, options.signal);
    const probed = await probe(ffprobePath, part);
    options.signal?.throwIfAborted();
    await rename(part, options.output);
    const { size } = await stat(options.output);
    return { durationSeconds: probed.durationSeconds, size, leftOut };
  } catch (err) {
    await rm(part, { force: true });
    throw err;
  } finally {
    if (viaScript) await rm(script, { force: true });
  }
}

/**
 * The tracks in use whose file ffprobe opens with a stream of their kind. The others (a capture cut
 * short in its headers, a file that is not what it says) would make ffmpeg fail the whole recording:
 * they are left out, with why.
 */
async function readableTracks(
  ffprobePath: string,
  options: ComposeOptions,
  signal: AbortSignal | undefined,
): Promise<{ tracks: ComposeTrack[]; leftOut: { path: string; reason: string }[] }> {
  const used = options.tracks.filter((t) => clampedInterval(t, options.durationMs) !== undefined);
  const reasons = await mapLimited(used, PROBE_CONCURRENCY, async (track) => {
    const args = ['-v', 'error', '-show_entries', 'stream=codec_type', '-of', 'csv=p=0', track.path];
    try {
      const types = (await run(ffprobePath, args, signal)).split(/\s+/);
      return types.includes(track.kind) ? undefined : `no ${track.kind} stream in it`;
    } catch (err) {
      signal?.throwIfAborted();
      return (err as Error).message;
    }
  });
  const leftOut = used.flatMap((t, i) => (reasons[i] === undefined ? [] : [{ path: t.path, reason: reasons[i]! }]));
  return { tracks: used.filter((_, i) => reasons[i] === undefined), leftOut };
}

/** `f` over `items`, at most `limit` at a time, results in order. */
async function mapLimited<T, R>(items: T[], limit: number, f: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await f(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Runs a command (no shell) and resolves with its stdout; rejects with its stderr when it fails. */
function run(command: string, args: string[], signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: 4 * 1024 * 1024, timeout: PROBE_TIMEOUT_MS, signal }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const file = args.at(-1);
      reject(new Error(`${command} failed on ${file}: ${String(stderr).trim() || err.message}`));
    });
  });
}

/** ffprobe's JSON for -show_entries format=duration:stream=…. */
interface FfprobeJson {
  format?: { duration?: string };
  streams?: { codec_type?: string; codec_name?: string; width?: number; height?: number }[];
}

/**
 * ffprobe: the file's duration (seconds) and its streams (type, codec, width and height of video).
 * Rejects when ffprobe fails or reads no duration.
 */
export async function probe(ffprobePath: string, file: string): Promise<ProbeResult> {
  const args = ['-v', 'error', '-show_entries', 'format=duration:stream=codec_type,codec_name,width,height', '-of', 'json', file];
  const json = JSON.parse(await run(ffprobePath, args)) as FfprobeJson;
  const durationSeconds = Number(json.format?.duration);
  if (!Number.isFinite(durationSeconds)) throw new Error(`ffprobe read no duration from ${file}`);
  const streams = (json.streams ?? []).map((s) => ({
    codecType: s.codec_type ?? 'unknown',
    codecName: s.codec_name ?? 'unknown',
    ...(s.width !== undefined ? { width: s.width } : {}),
    ...(s.height !== undefined ? { height: s.height } : {}),
  }));
  return { durationSeconds, streams };
}
