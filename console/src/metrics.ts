/**
 * Reads Kiln's Prometheus text (`GET /metrics`) into the few series the charts draw, and turns
 * the byte counters of two scrapes into bit rates.
 */

export interface Sample {
  /** Seconds since the epoch (uPlot's x axis). */
  at: number;
  bytesIn: number;
  bytesOut: number;
  sessions: Record<string, number>;
  streams: number;
}

/** Parses the exposition text: metric name, labels, value per line; comments and junk skipped. */
export function parsePrometheus(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  const out: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    if (m[3]) {
      for (const pair of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2].replace(/\\(.)/g, '$1');
    }
    const value = Number(m[4]);
    if (Number.isNaN(value)) continue;
    out.push({ name: m[1], labels, value });
  }
  return out;
}

export function sampleOf(text: string, at: number): Sample {
  const sample: Sample = { at, bytesIn: 0, bytesOut: 0, sessions: {}, streams: 0 };
  for (const { name, labels, value } of parsePrometheus(text)) {
    if (name === 'kiln_media_bytes_total') {
      if (labels.direction === 'in') sample.bytesIn = value;
      else if (labels.direction === 'out') sample.bytesOut = value;
    } else if (name === 'kiln_sessions' && labels.kind) {
      sample.sessions[labels.kind] = value;
    } else if (name === 'kiln_streams') {
      sample.streams = value;
    }
  }
  return sample;
}

export interface Point {
  at: number;
  inBps: number;
  outBps: number;
  sessions: number;
  publishers: number;
  players: number;
}

/** The rate between two scrapes; null when they cannot be compared (a restart reset the counters). */
export function pointBetween(prev: Sample, next: Sample): Point | null {
  const dt = next.at - prev.at;
  if (dt <= 0 || next.bytesIn < prev.bytesIn || next.bytesOut < prev.bytesOut) return null;
  const total = Object.values(next.sessions).reduce((a, b) => a + b, 0);
  return {
    at: next.at,
    inBps: ((next.bytesIn - prev.bytesIn) * 8) / dt,
    outBps: ((next.bytesOut - prev.bytesOut) * 8) / dt,
    sessions: total,
    publishers: (next.sessions.publisher ?? 0) + (next.sessions.pull ?? 0),
    players: next.sessions.player ?? 0,
  };
}

/** A rolling window of points: the last `seconds` kept. */
export class History {
  readonly points: Point[] = [];
  #last: Sample | undefined;
  readonly seconds: number;

  constructor(seconds = 600) {
    this.seconds = seconds;
  }

  add(sample: Sample): Point | null {
    const point = this.#last ? pointBetween(this.#last, sample) : null;
    this.#last = sample;
    if (point) {
      this.points.push(point);
      const cutoff = sample.at - this.seconds;
      while (this.points.length > 0 && this.points[0].at < cutoff) this.points.shift();
    }
    return point;
  }
}
