/**
 * `npm run bench:recording`: one OpenVidu room of K headless participants (`rooms-participants.ts`:
 * each publishes the 720p30 VP8 + Opus fixture and receives every other one) in a Kiln process on
 * loopback, recorded for S seconds through the OpenVidu REST API. Prints:
 *
 * - capture: Kiln's CPU (process and reaped children, median of 1 s samples) without a recording
 *   (a window before the recording and one after its composition, pooled, so that drift in what else
 *   runs on the machine cancels out) and while recording, the difference per participant and per
 *   captured packet, and the bytes the captured tracks put on disk per second;
 * - composition: the time from the stop request to its answer (the MP4 composed) as a multiple of
 *   the recorded duration, the CPU ffmpeg (and ffprobe) used per recorded second, ffmpeg's peak RSS,
 *   what else ran meanwhile (the room goes on while the file is composed), and the MP4 as ffprobe
 *   reads it;
 * - loss at the participants over the whole run (baselines, recording and composition).
 *
 *   npm run bench:recording -- [--seconds S] [--participants K]
 *
 * (default 60 s recorded, 4 participants; each baseline window is min(20, S) s.)
 */
import { execFile, fork } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKiln, type KilnProcess } from '../test/helpers/kiln-process.ts';
import { loadFixture } from './fixture.ts';
import { children, cpuTimes, median, now } from './fanout.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TICK = 100; // USER_HZ on Linux

/** CPU seconds of a process and of its children it has reaped (utime, stime, cutime, cstime). */
function cpuWithReaped(pid: number): { self: number; reaped: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { self: (Number(f[11]) + Number(f[12])) / TICK, reaped: (Number(f[13]) + Number(f[14])) / TICK };
}

/** The running children of `pid` (a scan of /proc: this kernel has no per-task `children` file). */
function childrenOf(pid: number): { pid: number; name: string; cpu: number; threads: number; hwmMb: number }[] {
  const found = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) !== pid) continue;
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      found.push({
        pid: Number(entry),
        name: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')),
        cpu: (Number(f[11]) + Number(f[12])) / TICK,
        threads: Number(f[17]),
        hwmMb: Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024,
      });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Kiln's RTP packets received from publishers so far (every one of them is captured while recording). */
async function packetsIn(apiUrl: string): Promise<number> {
  const text = await (await fetch(`${apiUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  return Number(/^kiln_media_packets_total\{direction="in"\} (\d+)/m.exec(text)?.[1] ?? NaN);
}

async function openVidu(kiln: KilnProcess, method: string, path: string, timeoutMs: number, body?: object): Promise<any> {
  const res = await fetch(`${kiln.apiUrl}/api${path}`, {
    method,
    headers: { authorization: `Basic ${Buffer.from(`OPENVIDUAPP:${kiln.password}`).toString('base64')}`, 'content-type': 'application/json' },
    body: body && JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${method} /api${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

/** One 1 s sample: Kiln CPU share (process and reaped children) and packets received per second. */
interface Sample {
  cpuShare: number;
  packetsPerSecond: number;
}

/** Samples Kiln every second for `seconds` s. */
async function sampleWindow(kiln: KilnProcess, seconds: number): Promise<Sample[]> {
  const pid = kiln.child.pid!;
  const cpu = () => {
    const c = cpuWithReaped(pid);
    return c.self + c.reaped;
  };
  const samples: Sample[] = [];
  let t = now();
  let c = cpu();
  let p = await packetsIn(kiln.apiUrl);
  const start = t;
  for (let i = 1; i <= seconds; i++) {
    await sleep(Math.max(0, start + i * 1000 - now()));
    const t1 = now();
    const c1 = cpu();
    const p1 = await packetsIn(kiln.apiUrl);
    const dt = (t1 - t) / 1000;
    samples.push({ cpuShare: (c1 - c) / dt, packetsPerSecond: (p1 - p) / dt });
    t = t1;
    c = c1;
    p = p1;
  }
  return samples;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Every file under `dir`, with its size in bytes. */
function filesOf(dir: string): { name: string; bytes: number }[] {
  return readdirSync(dir).map((name) => ({ name, bytes: statSync(join(dir, name)).size }));
}

function ffprobe(path: string): Promise<any> {
  return new Promise((resolve, reject) => {
    execFile('ffprobe', ['-v', 'error', '-count_packets', '-show_entries',
      'format=duration,size,bit_rate:stream=codec_type,codec_name,width,height,avg_frame_rate,sample_rate,channels,nb_read_packets',
      '-of', 'json', path], { timeout: 60_000 }, (err, stdout) => (err ? reject(err) : resolve(JSON.parse(stdout))));
  });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const flag = (name: string, fallback: number) => {
    const i = args.indexOf(name);
    const v = i >= 0 ? Number(args[i + 1]) : fallback;
    if (!Number.isInteger(v) || v < 1) throw new TypeError(`${name} ${args[i + 1]}: expected a whole number >= 1`);
    return v;
  };
  const seconds = flag('--seconds', 60);
  const k = flag('--participants', 4);
  const baselineSeconds = Math.min(20, seconds);
  // Composition may take several times the recorded duration on this machine: stop waits for it.
  const stopWaitMs = Math.max(600_000, seconds * 20_000);
  // Nothing may hang: the whole run is bounded.
  const deadline = setTimeout(() => {
    console.error(`bench:recording: no result after ${Math.round((stopWaitMs + 300_000 + seconds * 2000) / 1000)} s, giving up`);
    for (const c of children) c.kill('SIGKILL');
    process.exit(1);
  }, stopWaitMs + 300_000 + seconds * 2000);
  deadline.unref();

  await loadFixture();
  const loadStart = loadavg()[0];
  const configDir = mkdtempSync(join(tmpdir(), 'kiln-bench-recording-'));
  const configPath = join(configDir, 'kiln.config.jsonc');
  writeFileSync(configPath, JSON.stringify({ recordings: { stopWaitMs } }));
  const kiln = await startKiln({ KILN_LOG_LEVEL: 'warn', KILN_ACCESS_TOKEN: 'OPENVIDUAPP:bench', KILN_CONFIG: configPath });
  kiln.password = 'bench';
  const pid = kiln.child.pid!;
  const participants = fork(new URL('./rooms-participants.ts', import.meta.url).pathname, [kiln.wsUrl, kiln.apiUrl, kiln.password, String(k), '1'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(participants);
  const exited = new Promise<void>((resolve) => participants.once('exit', () => {
    children.delete(participants);
    resolve();
  }));
  try {
    console.log(`1 room of ${k} participants (720p30 VP8 + Opus each, all subscribed to all), ${seconds} s recorded, baseline 2 × ${baselineSeconds} s; Kiln pid ${pid}`);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the participants were not ready in 90 s')), 90_000);
      const onMessage = (m: { type: string; message?: string }) => {
        if (m.type === 'error') reject(new Error(m.message));
        else if (m.type === 'ready') {
          clearTimeout(timer);
          participants.off('message', onMessage);
          resolve();
        }
      };
      participants.on('message', onMessage);
      participants.once('exit', (code) => reject(new Error(`participants exited ${code}`)));
    });
    await sleep(3000);
    participants.send({ type: 'start' }); // loss is counted from here to the end

    // 1. Baseline: the room without a recording.
    const baseline = await sampleWindow(kiln, baselineSeconds);
    const sessions = (await openVidu(kiln, 'GET', '/sessions', 10_000)) as string[];
    if (sessions.length !== 1) throw new Error(`expected one open session, got ${JSON.stringify(sessions)}`);

    // 2. Recording: start, S seconds sampled, stop.
    const startedAt = now();
    const started = await openVidu(kiln, 'POST', '/recordings/start', 30_000, { session: sessions[0] });
    const startMs = now() - startedAt;
    if (started.status !== 'started') throw new Error(`recording start answered ${JSON.stringify(started)}`);
    const id = started.id as string;
    const recording = await sampleWindow(kiln, seconds);
    const tracksDir = join(kiln.dataDir, 'recordings', id, 'tracks');

    // 3. Stop: the answer comes once the MP4 is composed. ffmpeg's CPU is counted when Kiln reaps
    // it (cutime); its threads and peak RSS are read from /proc while it runs.
    const ownBefore = cpuWithReaped(pid);
    const participantsBefore = cpuTimes(participants.pid!);
    const stopAt = now();
    let watching = true;
    const seen = new Map<number, { name: string; cpu: number; threads: number; hwmMb: number; first: number; last: number }>();
    const watch = (async () => {
      while (watching) {
        for (const c of childrenOf(pid)) {
          const s = seen.get(c.pid);
          const t = now();
          if (!s) seen.set(c.pid, { ...c, first: t, last: t });
          else Object.assign(s, { cpu: c.cpu, threads: Math.max(s.threads, c.threads), hwmMb: Math.max(s.hwmMb, c.hwmMb), last: t });
        }
        await sleep(200);
      }
    })();
    let stopped: any;
    // Set when the server closes the stop request before it answers: composition is then timed by
    // polling the recording until its file has a size.
    let stopCut: string | undefined;
    try {
      try {
        stopped = await openVidu(kiln, 'POST', `/recordings/stop/${encodeURIComponent(id)}`, stopWaitMs + 60_000);
      } catch (err) {
        const cause = (err as { cause?: { message?: string } }).cause?.message;
        stopCut = `after ${((now() - stopAt) / 1000).toFixed(1)} s (${(err as Error).message}${cause ? `: ${cause}` : ''})`;
        while (true) {
          const r = await openVidu(kiln, 'GET', `/recordings/${encodeURIComponent(id)}`, 10_000);
          if (r.size > 0) {
            stopped = r;
            break;
          }
          if (r.status !== 'stopped' || now() - stopAt > stopWaitMs) throw new Error(`the stop request failed ${stopCut} and the recording is ${JSON.stringify(r)}`);
          await sleep(250);
        }
      }
    } finally {
      watching = false;
      await watch;
    }
    const composeMs = now() - stopAt;
    const ownAfter = cpuWithReaped(pid);
    const participantsAfter = cpuTimes(participants.pid!);
    if (!(stopped.size > 0)) throw new Error(`the recording was not composed in ${stopWaitMs / 1000} s: ${JSON.stringify(stopped)}`);
    const record = await openVidu(kiln, 'GET', `/recordings/${encodeURIComponent(id)}`, 10_000);
    const mp4 = join(kiln.dataDir, 'recordings', id, `${id}.mp4`);
    const probe = await ffprobe(mp4);
    const tracks = filesOf(tracksDir);
    const after = await sampleWindow(kiln, baselineSeconds);

    const loss = await new Promise<{ expected: number; received: number }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the participants did not report in 15 s')), 15_000);
      participants.once('message', (m: { expected: number; received: number }) => {
        clearTimeout(timer);
        resolve(m);
      });
      participants.send({ type: 'stop' });
    });
    await Promise.race([exited, sleep(10_000)]);

    // Figures.
    const without = [...baseline, ...after].map((s) => s.cpuShare);
    const base = median(without);
    const rec = median(recording.map((s) => s.cpuShare));
    const added = rec - base;
    const addedMean = mean(recording.map((s) => s.cpuShare)) - mean(without);
    const captured = median(recording.map((s) => s.packetsPerSecond));
    const duration = Number(stopped.duration);
    const composeSeconds = composeMs / 1000;
    const childCpu = ownAfter.reaped - ownBefore.reaped;
    const ffmpegs = [...seen.values()].filter((s) => s.name === 'ffmpeg');
    const ffmpegWall = ffmpegs.length ? (Math.max(...ffmpegs.map((s) => s.last)) - Math.min(...ffmpegs.map((s) => s.first))) / 1000 : NaN;
    const ffmpegCpu = ffmpegs.reduce((a, s) => a + s.cpu, 0);
    const trackBytes = tracks.reduce((a, t) => a + t.bytes, 0);
    const video = probe.streams.find((s: any) => s.codec_type === 'video');
    const audio = probe.streams.find((s: any) => s.codec_type === 'audio');
    const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
    const rows: [string, string][] = [
      ['Kiln CPU, room without recording', `${pct(base)} of a core (median of ${baseline.length} × 1 s before and ${after.length} × 1 s after: ${pct(median(baseline.map((s) => s.cpuShare)))}, ${pct(median(after.map((s) => s.cpuShare)))}; mean ${pct(mean(without))})`],
      ['Kiln CPU, room while recording', `${pct(rec)} of a core (median of ${recording.length} × 1 s; mean ${pct(mean(recording.map((s) => s.cpuShare)))})`],
      ['added by capture (medians)', `${pct(added)} of a core, ${pct(added / k)} per participant, ${(added * 1e6 / captured).toFixed(1)} µs per captured packet`],
      ['added by capture (means)', `${pct(addedMean)} of a core, ${pct(addedMean / k)} per participant, ${(addedMean * 1e6 / captured).toFixed(1)} µs per captured packet`],
      ['captured packets', `${captured.toFixed(0)} /s (median of 1 s samples)`],
      ['captured to disk', `${tracks.length} track files, ${(trackBytes / 1e6).toFixed(1)} MB = ${(trackBytes / duration / 1e3).toFixed(0)} kB/s (${(trackBytes / duration / 1e3 / k).toFixed(0)} kB/s per participant)`],
      ['recording start (POST → started)', `${startMs.toFixed(0)} ms`],
      [`recorded duration (${stopCut ? 'GET' : 'stop answer'})`, `${duration.toFixed(2)} s`],
      ['stop request', stopCut ? `closed by the server ${stopCut} without an answer; composition timed by polling GET /api/recordings/<id> (250 ms)` : 'answered once composed'],
      [`composition (stop POST → ${stopCut ? 'file composed' : 'answer'})`, `${composeSeconds.toFixed(1)} s = ${(composeSeconds / duration).toFixed(2)} × the recorded duration`],
      ['ffmpeg + ffprobe CPU (reaped by Kiln)', `${childCpu.toFixed(1)} s = ${(childCpu / duration).toFixed(2)} CPU-s per recorded s; ${(childCpu / composeSeconds).toFixed(2)} cores on average over the composition`],
      ['ffmpeg as seen in /proc', ffmpegs.length ? `${ffmpegs.length} run, ${ffmpegCpu.toFixed(1)} CPU-s over ${ffmpegWall.toFixed(1)} s, up to ${Math.max(...ffmpegs.map((s) => s.threads))} threads, peak RSS ${Math.max(...ffmpegs.map((s) => s.hwmMb)).toFixed(0)} MB` : 'not seen'],
      ['during composition, Kiln itself', `${pct((ownAfter.self - ownBefore.self) / composeSeconds)} of a core (the room goes on)`],
      ['during composition, participants', `${pct((participantsAfter.user + participantsAfter.system - participantsBefore.user - participantsBefore.system) / composeSeconds)} of a core`],
      ['MP4 (ffprobe)', `${Number(probe.format.duration).toFixed(2)} s, ${(Number(probe.format.size) / 1e6).toFixed(1)} MB, ${(Number(probe.format.bit_rate) / 1e3).toFixed(0)} kb/s; ${video ? `${video.codec_name} ${video.width}x${video.height} ${video.avg_frame_rate} fps ${video.nb_read_packets} frames` : 'no video'}; ${audio ? `${audio.codec_name} ${audio.sample_rate} Hz ${audio.channels} ch` : 'no audio'}`],
      ['recording record (GET)', `status ${record.status}, duration ${record.duration} s, size ${record.size} B`],
      ['load average (1 min), start → end', `${loadStart.toFixed(2)} → ${loadavg()[0].toFixed(2)} on ${availableParallelism()} cores`],
      ['loss at participants, whole run', `${(loss.expected > 0 ? Math.max(0, (1 - loss.received / loss.expected) * 100) : NaN).toFixed(2)} % of ${loss.expected} packets`],
    ];
    const width = Math.max(...rows.map(([name]) => name.length));
    console.log('');
    console.log(`${'figure'.padEnd(width)} | value`);
    console.log(`${'-'.repeat(width)}-|------`);
    for (const [name, value] of rows) console.log(`${name.padEnd(width)} | ${value}`);
    console.log('');
    console.log('Kiln CPU % of a core, 1 s samples:');
    for (const [name, xs] of [['before', baseline], ['recording', recording], ['after', after]] as const) {
      console.log(`  ${name.padEnd(9)} ${xs.map((x) => (x.cpuShare * 100).toFixed(0)).join(' ')}`);
    }
  } finally {
    for (const c of children) c.kill('SIGKILL');
    const code = await kiln.stop(30_000);
    rmSync(configDir, { recursive: true, force: true });
    if (code !== 0) console.error(`Kiln exited with ${code}:\n${kiln.output().slice(-4000)}`);
    for (const line of kiln.output().split('\n')) if (line.includes('recording track lost frames')) console.log(`capture loss: ${line}`);
  }
}

if (import.meta.main) {
  main().then(() => process.exit(0), (err) => {
    console.error(err);
    for (const c of children) c.kill('SIGKILL');
    process.exit(1);
  });
}
