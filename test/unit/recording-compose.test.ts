/**
 * The composer of room recordings: BEST_FIT geometry, grid segments and ffmpeg arguments (pure), then
 * real compositions by Debian's ffmpeg 5.1 from files shaped like Kiln's captures (IVF with 90 kHz
 * pts for VP8 and H.264 Annex-B, Ogg Opus), checked by ffprobe, by decoding and by their pixels.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bestFitTiles, compose, composeArgs, gridSegments, probe, type ComposeOptions, type ComposeTrack } from '../../src/recording/compose.ts';

const FFMPEG = '/usr/bin/ffmpeg';
const FFPROBE = '/usr/bin/ffprobe';

const video = (startMs: number, endMs: number, path = `/v${startMs}-${endMs}.ivf`): ComposeTrack => ({ path, kind: 'video', startMs, endMs });
const audio = (startMs: number, endMs: number, path = `/a${startMs}-${endMs}.ogg`): ComposeTrack => ({ path, kind: 'audio', startMs, endMs });
const options = (tracks: ComposeTrack[], durationMs = 5000): ComposeOptions => ({
  ffmpegPath: FFMPEG, tracks, durationMs, output: '/rec/out.mp4', width: 1280, height: 720, fps: 30,
});

/** The -filter_complex of an argument list. */
const graphOf = (args: string[]) => args[args.indexOf('-filter_complex') + 1]!;

describe('bestFitTiles', () => {
  test('1 video fills the canvas; 2 sit side by side; 4 make a 2x2 grid', () => {
    assert.deepEqual(bestFitTiles(1, 1280, 720), [{ x: 0, y: 0, w: 1280, h: 720 }]);
    assert.deepEqual(bestFitTiles(2, 1280, 720), [{ x: 0, y: 0, w: 640, h: 720 }, { x: 640, y: 0, w: 640, h: 720 }]);
    assert.deepEqual(bestFitTiles(4, 1280, 720), [
      { x: 0, y: 0, w: 640, h: 360 }, { x: 640, y: 0, w: 640, h: 360 },
      { x: 0, y: 360, w: 640, h: 360 }, { x: 640, y: 360, w: 640, h: 360 },
    ]);
  });

  test('3 videos use the 2x2 grid with the last one centred in the second row', () => {
    assert.deepEqual(bestFitTiles(3, 1280, 720), [
      { x: 0, y: 0, w: 640, h: 360 }, { x: 640, y: 0, w: 640, h: 360 }, { x: 320, y: 360, w: 640, h: 360 },
    ]);
  });

  test('5 videos make 3 columns by 2 rows; 9 make 3x3; tiles are even-sized', () => {
    assert.deepEqual(bestFitTiles(5, 1280, 720), [
      { x: 0, y: 0, w: 426, h: 360 }, { x: 426, y: 0, w: 426, h: 360 }, { x: 852, y: 0, w: 426, h: 360 },
      { x: 214, y: 360, w: 426, h: 360 }, { x: 640, y: 360, w: 426, h: 360 },
    ]);
    const nine = bestFitTiles(9, 1280, 720);
    assert.deepEqual(nine.map((t) => [t.x, t.y]), [[0, 0], [426, 0], [852, 0], [0, 240], [426, 240], [852, 240], [0, 480], [426, 480], [852, 480]]);
    assert.ok(nine.every((t) => t.w === 426 && t.h === 240));
  });

  test('any number of tiles stays inside the canvas, even and without overlap', () => {
    for (let n = 1; n <= 30; n++) {
      const tiles = bestFitTiles(n, 640, 360);
      assert.equal(tiles.length, n);
      for (const [i, a] of tiles.entries()) {
        assert.ok(a.x >= 0 && a.y >= 0 && a.x + a.w <= 640 && a.y + a.h <= 360, `n=${n} tile ${i} outside`);
        assert.ok([a.x, a.y, a.w, a.h].every((v) => v % 2 === 0), `n=${n} tile ${i} odd`);
        for (const b of tiles.slice(i + 1)) assert.ok(a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y, `n=${n} overlap`);
      }
    }
  });

  test('no video, no tile', () => {
    assert.deepEqual(bestFitTiles(0, 1280, 720), []);
  });
});

describe('gridSegments', () => {
  test('without tracks the recording is one segment with nothing on screen; without duration there is none', () => {
    assert.deepEqual(gridSegments([], 5000), [{ startMs: 0, endMs: 5000, videos: [] }]);
    assert.deepEqual(gridSegments([audio(0, 5000)], 5000), [{ startMs: 0, endMs: 5000, videos: [] }]);
    assert.deepEqual(gridSegments([video(0, 1000)], 0), []);
  });

  test('overlapping videos: a new segment each time one starts or ends, black after the last', () => {
    assert.deepEqual(gridSegments([video(0, 4000), video(1000, 3000), audio(500, 4500)], 5000), [
      { startMs: 0, endMs: 1000, videos: [0] },
      { startMs: 1000, endMs: 3000, videos: [0, 1] },
      { startMs: 3000, endMs: 4000, videos: [0] },
      { startMs: 4000, endMs: 5000, videos: [] },
    ]);
  });

  test('disjoint videos leave a black segment between them', () => {
    assert.deepEqual(gridSegments([video(0, 2000), video(3000, 5000)], 5000), [
      { startMs: 0, endMs: 2000, videos: [0] },
      { startMs: 2000, endMs: 3000, videos: [] },
      { startMs: 3000, endMs: 5000, videos: [1] },
    ]);
  });

  test('a late joiner comes after those already on screen, whatever its place in the list', () => {
    assert.deepEqual(gridSegments([video(2000, 5000), video(0, 5000), video(0, 5000)], 5000), [
      { startMs: 0, endMs: 2000, videos: [1, 2] },
      { startMs: 2000, endMs: 5000, videos: [1, 2, 0] },
    ]);
  });

  test('tracks that end before they start are skipped, and ends past the recording are clamped', () => {
    assert.deepEqual(gridSegments([video(1000, 1000), video(3000, 2000), video(6000, 7000), video(2000, 9000)], 5000), [
      { startMs: 0, endMs: 2000, videos: [] },
      { startMs: 2000, endMs: 5000, videos: [3] },
    ]);
  });

  test('changes closer than 100 ms re-tile once: joins a moment apart, and a flash of a video, merge', () => {
    assert.deepEqual(gridSegments([video(0, 5000), video(1000, 5000), video(1040, 5000)], 5000), [
      { startMs: 0, endMs: 1000, videos: [0] },
      { startMs: 1000, endMs: 5000, videos: [0, 1, 2] },
    ]);
    assert.deepEqual(gridSegments([video(0, 5000), video(2000, 2050)], 5000), [{ startMs: 0, endMs: 5000, videos: [0] }]);
  });
});

describe('composeArgs', () => {
  test('one input per track used, in order, then the graph, the encoders and the .part output', () => {
    const tracks = [video(0, 5000, '/t/a.ivf'), audio(0, 5000, '/t/a.ogg'), video(1000, 4000, '/t/b.ivf'), audio(2000, 3000, '/t/b.ogg')];
    const args = composeArgs(options(tracks));
    assert.deepEqual(args.flatMap((a, i) => (args[i - 1] === '-i' ? [a] : [])), ['/t/a.ivf', '/t/a.ogg', '/t/b.ivf', '/t/b.ogg']);
    const graph = graphOf(args);
    assert.equal(graph.match(/overlay=/g)?.length, 2);
    assert.match(graph, /\[1:a:0\].*\[3:a:0\].*amix=inputs=2:normalize=0/);
    assert.match(graph, /color=c=black:s=1280x720:r=30/);
    assert.match(graph, /trim=end_frame=150\[vout\]/);
    assert.match(graph, /atrim=duration=5\[aout\]/);
    for (const [flag, value] of [['-c:v', 'libx264'], ['-preset', 'veryfast'], ['-crf', '23'], ['-pix_fmt', 'yuv420p'], ['-c:a', 'aac'], ['-b:a', '128k'], ['-ar', '48000'], ['-ac', '2'], ['-movflags', '+faststart'], ['-f', 'mp4']]) {
      assert.equal(args[args.indexOf(flag!) + 1], value, flag);
    }
    assert.ok(!args.includes('-r'));
    assert.equal(args.at(-1), '/rec/out.mp4.part');
  });

  test('tracks with nothing inside the recording get no input', () => {
    const args = composeArgs(options([video(0, 5000, '/t/a.ivf'), video(3000, 3000, '/t/empty.ivf'), audio(6000, 7000, '/t/late.ogg')]));
    assert.equal(args.filter((a) => a === '-i').length, 1);
  });

  test('no tracks: a black canvas and silence, no inputs', () => {
    const args = composeArgs(options([], 3000));
    assert.ok(!args.includes('-i'));
    const graph = graphOf(args);
    assert.match(graph, /color=c=black/);
    assert.match(graph, /anullsrc=r=48000:cl=stereo,atrim=duration=3\[aout\]/);
    assert.doesNotMatch(graph, /overlay/);
  });

  test('a re-tiled video changes its size by command and its place by time', () => {
    const graph = graphOf(composeArgs(options([video(0, 5000), video(2000, 5000)])));
    // Video 0: full canvas, then the left half from frame 60 (boundary half a frame early).
    assert.match(graph, /sendcmd=c='1\.983333 scale@v0 w 640, scale@v0 h 720',scale@v0=w=1280:h=720:/);
    assert.match(graph, /enable='between\(t,1\.983333,/);
  });

  test('the x264 preset can be chosen', () => {
    const args = composeArgs({ ...options([]), preset: 'ultrafast' });
    assert.equal(args[args.indexOf('-preset') + 1], 'ultrafast');
  });

  test('options that cannot be composed are a TypeError', () => {
    assert.throws(() => composeArgs(options([], 0)), TypeError);
    assert.throws(() => composeArgs({ ...options([]), width: 641 }), TypeError);
    assert.throws(() => composeArgs({ ...options([]), fps: 29.97 }), TypeError);
    assert.throws(() => composeArgs(options([{ path: '/x', kind: 'data' as 'video', startMs: 0, endMs: 1 }])), TypeError);
  });
});

// ---- End to end, with ffmpeg -------------------------------------------------------------------

/** Runs a command; resolves with stdout (a Buffer) and stderr. */
function exec(command: string, args: string[]): Promise<{ stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args.join(' ')}: ${stderr.toString()}`));
      else resolve({ stdout, stderr: stderr.toString() });
    });
  });
}
const ffmpeg = (...args: string[]) => exec(FFMPEG, ['-v', 'error', '-y', ...args]);

interface IvfFrame {
  pts90k: number;
  data: Buffer;
}

/** The frames of an IVF file, their pts on 90 kHz. */
function readIvf(path: string): { fourcc: string; frames: IvfFrame[] } {
  const file = readFileSync(path);
  const rate = file.readUInt32LE(16);
  const scale = file.readUInt32LE(20);
  const frames: IvfFrame[] = [];
  for (let at = file.readUInt16LE(6); at + 12 <= file.length; ) {
    const size = file.readUInt32LE(at);
    const pts = Number(file.readBigUInt64LE(at + 4));
    frames.push({ pts90k: Math.round((pts * scale * 90000) / rate), data: file.subarray(at + 12, at + 12 + size) });
    at += 12 + size;
  }
  return { fourcc: file.toString('latin1', 8, 12), frames };
}

/** An IVF file as Kiln's capture writes it: 90 kHz time base, pts from 0. */
function writeIvf(path: string, fourcc: string, width: number, height: number, frames: IvfFrame[]): void {
  const header = Buffer.alloc(32);
  header.write('DKIF', 0, 'latin1');
  header.writeUInt16LE(32, 6);
  header.write(fourcc, 8, 'latin1');
  header.writeUInt16LE(width, 12);
  header.writeUInt16LE(height, 14);
  header.writeUInt32LE(90000, 16);
  header.writeUInt32LE(1, 20);
  header.writeUInt32LE(frames.length, 24);
  const parts: Uint8Array[] = [header];
  for (const f of frames) {
    const h = Buffer.alloc(12);
    h.writeUInt32LE(f.data.length, 0);
    h.writeBigUInt64LE(BigInt(f.pts90k), 4);
    parts.push(h, f.data);
  }
  writeFileSync(path, Buffer.concat(parts));
}

/** A VP8 clip of one colour, re-timed to 90 kHz. */
async function vp8(dir: string, name: string, color: string, size: string, seconds: number): Promise<IvfFrame[]> {
  const raw = join(dir, `${name}.raw.ivf`);
  await ffmpeg('-f', 'lavfi', '-i', `color=c=${color}:s=${size}:r=30`, '-t', String(seconds), '-c:v', 'libvpx', '-b:v', '200k', '-f', 'ivf', raw);
  return readIvf(raw).frames;
}

/**
 * An H.264 clip in IVF (fourcc H264, Annex-B access units), as Kiln captures it. ffmpeg 5.1's IVF
 * muxer refuses H.264, so the access units of a raw stream (one AUD each) are written here.
 */
async function h264Ivf(path: string, color: string, width: number, height: number, seconds: number): Promise<void> {
  const raw = `${path}.h264`;
  await ffmpeg('-f', 'lavfi', '-i', `color=c=${color}:s=${width}x${height}:r=30`, '-t', String(seconds),
    '-c:v', 'libx264', '-profile:v', 'baseline', '-pix_fmt', 'yuv420p', '-x264-params', 'aud=1', '-f', 'h264', raw);
  const stream = readFileSync(raw);
  const starts: number[] = [];
  for (let i = 0; i + 4 < stream.length; i++) {
    if (stream[i] === 0 && stream[i + 1] === 0 && stream[i + 2] === 0 && stream[i + 3] === 1 && (stream[i + 4]! & 0x1f) === 9) starts.push(i);
  }
  writeIvf(path, 'H264', width, height, starts.map((s, k) => ({ pts90k: k * 3000, data: stream.subarray(s, starts[k + 1] ?? stream.length) })));
}

/** Luma of the frame at `t` seconds, one byte a pixel. */
async function lumaAt(file: string, t: number): Promise<Buffer> {
  return (await ffmpeg('-ss', String(t), '-i', file, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'gray', '-')).stdout;
}

/** Mean luma of a box of a frame `width` wide. */
function meanLuma(frame: Uint8Array, width: number, box: { x0: number; x1: number; y0: number; y1: number }): number {
  let sum = 0;
  for (let y = box.y0; y < box.y1; y++) for (let x = box.x0; x < box.x1; x++) sum += frame[y * width + x]!;
  return sum / ((box.x1 - box.x0) * (box.y1 - box.y0));
}

/** The audio of a file as 48 kHz mono 16-bit samples. */
async function pcm(file: string): Promise<Int16Array> {
  const { stdout } = await ffmpeg('-i', file, '-vn', '-ac', '1', '-ar', '48000', '-f', 's16le', '-');
  return new Int16Array(stdout.buffer, stdout.byteOffset, stdout.length / 2);
}

/** RMS of the samples between two times, seconds. */
function rms(samples: Int16Array, from: number, to: number): number {
  const part = samples.subarray(Math.round(from * 48000), Math.round(to * 48000));
  return Math.sqrt(part.reduce((s, v) => s + v * v, 0) / part.length);
}

describe('compose, with ffmpeg', () => {
  let dir = '';
  // Luma of the three videos (limited range): black is 16.
  const WHITE = 'white';
  const GRAY = '0x808080';
  const DARK = '0x505050';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiln-compose-'));
    const [a169, a43, b] = await Promise.all([
      vp8(dir, 'a169', WHITE, '640x360', 3.5),
      vp8(dir, 'a43', WHITE, '640x480', 1.5),
      vp8(dir, 'b', GRAY, '320x240', 1.5),
      h264Ivf(join(dir, 'c.ivf'), DARK, 320, 240, 3),
      ffmpeg('-f', 'lavfi', '-i', 'sine=frequency=440:duration=4.5', '-c:a', 'libopus', '-f', 'ogg', join(dir, 'one.ogg')),
      ffmpeg('-f', 'lavfi', '-i', 'sine=frequency=660:duration=2', '-c:a', 'libopus', '-f', 'ogg', join(dir, 'two.ogg')),
    ]);
    // A publisher that goes from 16:9 to 4:3 at 3.5 s (WebRTC changes resolution under load).
    writeIvf(join(dir, 'a.ivf'), 'VP80', 640, 360, [...a169!, ...a43!.map((f) => ({ ...f, pts90k: f.pts90k + 3.5 * 90000 }))]);
    writeIvf(join(dir, 'b.ivf'), 'VP80', 320, 240, b!);
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  test('three videos (VP8 and H.264) and two voices make one H.264/AAC file whose grid re-tiles as they come and go', async () => {
    const output = join(dir, 'room.mp4');
    const result = await compose({
      ffmpegPath: FFMPEG, durationMs: 5000, output, width: 640, height: 360, fps: 30,
      tracks: [
        { path: join(dir, 'a.ivf'), kind: 'video', startMs: 0, endMs: 5000 },
        // Joins at 1 s; its file holds 1.5 s for a 4 s interval: its last frame stays, and is re-tiled.
        { path: join(dir, 'b.ivf'), kind: 'video', startMs: 1000, endMs: 5000 },
        // H.264, leaves at 3 s.
        { path: join(dir, 'c.ivf'), kind: 'video', startMs: 0, endMs: 3000 },
        { path: join(dir, 'one.ogg'), kind: 'audio', startMs: 500, endMs: 5000 },
        { path: join(dir, 'two.ogg'), kind: 'audio', startMs: 1000, endMs: 3000 },
      ],
    });

    assert.ok(Math.abs(result.durationSeconds - 5) <= 0.2, `duration ${result.durationSeconds}`);
    assert.deepEqual(result.leftOut, []);
    assert.ok(!existsSync(`${output}.part`));
    const probed = await probe(FFPROBE, output);
    assert.ok(Math.abs(probed.durationSeconds - 5) <= 0.2);
    assert.deepEqual(probed.streams.find((s) => s.codecType === 'video'), { codecType: 'video', codecName: 'h264', width: 640, height: 360 });
    assert.equal(probed.streams.find((s) => s.codecType === 'audio')?.codecName, 'aac');
    assert.equal((await exec(FFMPEG, ['-v', 'error', '-i', output, '-f', 'null', '-'])).stderr, '');

    // 0–1 s: a and c side by side in 320x360 tiles (a 16:9 at y 90–270, c 4:3 at y 60–300).
    // 1–3 s: a and c on top, b centred below, in 320x180 tiles (a fills its tile; c and b are 240x180).
    // 3–5 s: a and b side by side; a turns 4:3 at 3.5 s; b's file ended at 2.5 s.
    const at = {
      half: await lumaAt(output, 0.5), two: await lumaAt(output, 2), three: await lumaAt(output, 3.2), four: await lumaAt(output, 4.5),
    };
    const region = (frame: Uint8Array, x0: number, x1: number, y0: number, y1: number) => meanLuma(frame, 640, { x0, x1, y0, y1 });
    const black = (v: number) => v < 30;
    const white = (v: number) => v > 200;
    const gray = (v: number) => v > 100 && v < 160;
    const dark = (v: number) => v > 50 && v < 100;
    // Left edge, lower half: a's half-canvas tile, not its quarter tile.
    assert.ok(white(region(at.half, 8, 32, 190, 260)));
    assert.ok(black(region(at.two, 8, 32, 190, 260)));
    // Top strip: only the 2x2 grid puts a there.
    assert.ok(black(region(at.half, 100, 200, 10, 40)));
    assert.ok(white(region(at.two, 100, 200, 10, 40)));
    assert.ok(black(region(at.four, 100, 200, 10, 40)));
    // Bottom centre: b's tile only while three are on screen.
    assert.ok(black(region(at.half, 280, 360, 320, 350)));
    assert.ok(gray(region(at.two, 280, 360, 320, 350)));
    assert.ok(black(region(at.four, 280, 360, 320, 350)));
    // Right: c (H.264) until it leaves, then b's last frame, at the size of its new tile (320x240, y 60–300).
    assert.ok(dark(region(at.half, 420, 540, 100, 140)));
    assert.ok(dark(region(at.two, 420, 540, 100, 140)));
    assert.ok(gray(region(at.four, 420, 540, 100, 140)));
    assert.ok(gray(region(at.four, 420, 540, 65, 85)));
    // a's new 4:3 picture is fitted to its tile again (320x240 at y 60–300), not kept in its old 16:9 box.
    assert.ok(black(region(at.three, 100, 200, 65, 85)));
    assert.ok(white(region(at.four, 100, 200, 65, 85)));
    assert.ok(white(region(at.four, 8, 32, 150, 200)));

    // Audio: silence until 0.5 s, one voice, both from 1 to 3 s (mixed, not normalised), one again.
    const samples = await pcm(output);
    const one = rms(samples, 0.6, 0.95);
    assert.ok(rms(samples, 0.05, 0.45) < 30, 'silent before the first voice');
    assert.ok(one > 1000, `one voice: ${one}`);
    assert.ok(rms(samples, 1.5, 2.5) > 1.25 * one, 'two voices are louder than one');
    assert.ok(Math.abs(rms(samples, 3.5, 4.4) - one) < 0.2 * one, 'one voice again after 3 s');
  });

  test('a recording without tracks is black and silent for its whole duration', async () => {
    const output = join(dir, 'empty.mp4');
    const result = await compose({ ffmpegPath: FFMPEG, tracks: [], durationMs: 3000, output, width: 320, height: 180, fps: 30 });
    assert.ok(Math.abs(result.durationSeconds - 3) <= 0.2, `duration ${result.durationSeconds}`);
    const probed = await probe(FFPROBE, output);
    assert.deepEqual(probed.streams.map((s) => `${s.codecType}:${s.codecName}`), ['video:h264', 'audio:aac']);
    const frame = await lumaAt(output, 1.5);
    assert.equal(frame.length, 320 * 180);
    assert.ok(frame.every((v) => v <= 20), 'black');
    assert.ok((await pcm(output)).every((v) => Math.abs(v) <= 1), 'silent');
  });

  test('a long silence inside an audio track (a gap in its granules) stays where it was', async () => {
    const gappy = join(dir, 'gap.ogg');
    // 2 s of tone with a jump of 12 s in its timestamps after the first second.
    await ffmpeg('-f', 'lavfi', '-i', 'sine=frequency=440:duration=2', '-af', 'asetpts=if(gte(T\\,1)\\,PTS+48000*12\\,PTS)', '-c:a', 'libopus', '-f', 'ogg', gappy);
    const packets = (await exec(FFPROBE, ['-v', 'error', '-show_entries', 'packet=pts_time', '-of', 'csv=p=0', gappy])).stdout.toString();
    const resumes = packets.split('\n').map(Number).find((t) => t > 5)!;
    assert.ok(resumes > 12, `the file resumes at ${resumes} s`);
    const output = join(dir, 'gap.mp4');
    await compose({ ffmpegPath: FFMPEG, durationMs: 16_000, output, width: 160, height: 90, fps: 10, tracks: [{ path: gappy, kind: 'audio', startMs: 0, endMs: 16_000 }] });
    const samples = await pcm(output);
    assert.ok(rms(samples, 0.2, 0.8) > 1000, 'tone before the gap');
    assert.ok(rms(samples, 1.3, resumes - 0.3) < 30, 'silence through the gap');
    assert.ok(rms(samples, resumes + 0.2, resumes + 0.8) > 1000, 'tone again where the file resumes');
  });

  test('a track whose file is missing or unreadable is left out and named; the others are composed', async () => {
    const output = join(dir, 'partial.mp4');
    writeFileSync(join(dir, 'junk.ogg'), 'not an ogg file');
    const result = await compose({
      ffmpegPath: FFMPEG, durationMs: 2000, output, width: 320, height: 180, fps: 30,
      tracks: [
        { path: join(dir, 'b.ivf'), kind: 'video', startMs: 0, endMs: 2000 },
        { path: join(dir, 'gone.ivf'), kind: 'video', startMs: 0, endMs: 2000 },
        { path: join(dir, 'junk.ogg'), kind: 'audio', startMs: 0, endMs: 2000 },
      ],
    });
    assert.deepEqual(result.leftOut.map((l) => l.path), [join(dir, 'gone.ivf'), join(dir, 'junk.ogg')]);
    assert.match(result.leftOut[0]!.reason, /No such file/);
    assert.ok(Math.abs(result.durationSeconds - 2) <= 0.2);
    // b alone: the whole canvas (4:3 in 16:9: x 40–280).
    assert.ok(meanLuma(await lumaAt(output, 1), 320, { x0: 100, x1: 220, y0: 40, y1: 140 }) > 100);
  });

  test('when ffmpeg fails, compose rejects with its exit code and the end of its stderr, and leaves no file', async () => {
    const output = join(dir, 'failed.mp4');
    await assert.rejects(
      compose({ ffmpegPath: FFMPEG, tracks: [{ path: join(dir, 'b.ivf'), kind: 'video', startMs: 0, endMs: 1000 }], durationMs: 1000, output, width: 320, height: 180, fps: 30, preset: 'no-such-preset' }),
      (err: Error) => /exited with code \d+:\n[\s\S]*preset/.test(err.message),
    );
    assert.ok(!existsSync(output) && !existsSync(`${output}.part`));
    await assert.rejects(
      compose({ ffmpegPath: '/bin/false', tracks: [], durationMs: 1000, output, width: 320, height: 180, fps: 30 }),
      /ffmpeg exited with code 1/,
    );
    await assert.rejects(
      compose({ ffmpegPath: join(dir, 'no-ffmpeg'), tracks: [], durationMs: 1000, output, width: 320, height: 180, fps: 30 }),
      /ffmpeg could not be run .*ENOENT/,
    );
    assert.ok(!existsSync(output) && !existsSync(`${output}.part`));
  });

  test('aborting kills ffmpeg: compose rejects with the abort and leaves no file', async () => {
    const output = join(dir, 'aborted.mp4');
    const abort = new AbortController();
    const running = compose({
      ffmpegPath: FFMPEG, durationMs: 60_000, output, width: 640, height: 360, fps: 30, signal: abort.signal,
      tracks: [{ path: join(dir, 'a.ivf'), kind: 'video', startMs: 0, endMs: 60_000 }],
    });
    setTimeout(() => abort.abort(), 300);
    await assert.rejects(running, { name: 'AbortError' });
    assert.ok(!existsSync(output) && !existsSync(`${output}.part`));
  });
});
