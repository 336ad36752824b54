import { describe, expect, it } from 'vitest';
import { History, parsePrometheus, pointBetween, sampleOf } from './metrics.ts';

const scrape = (bytesIn: number, bytesOut: number, players = 2) => `# HELP kiln_streams Live streams
# TYPE kiln_streams gauge
kiln_streams 1
kiln_sessions{kind="publisher"} 1
kiln_sessions{kind="player"} ${players}
kiln_sessions{kind="pull"} 0
kiln_sessions{kind="participant"} 0
kiln_media_bytes_total{direction="in"} ${bytesIn}
kiln_media_bytes_total{direction="out"} ${bytesOut}
kiln_events_total 0
`;

describe('metrics', () => {
  it('parses names, labels (escapes too) and values, skipping comments and junk', () => {
    const rows = parsePrometheus('# c\nfoo{a="x\\"y",b="z"} 1.5\nbar 2e3\nnot a metric line\nbaz NaNx\n');
    expect(rows).toEqual([
      { name: 'foo', labels: { a: 'x"y', b: 'z' }, value: 1.5 },
      { name: 'bar', labels: {}, value: 2000 },
    ]);
  });

  it('turns two scrapes into bit rates and counts', () => {
    const a = sampleOf(scrape(1000, 5000), 100);
    const b = sampleOf(scrape(126_000, 255_000, 3), 102);
    expect(pointBetween(a, b)).toEqual({ at: 102, inBps: 500_000, outBps: 1_000_000, sessions: 4, publishers: 1, players: 3 });
  });

  it('skips the step across a restart (counters went back) and keeps only the window', () => {
    const h = new History(10);
    expect(h.add(sampleOf(scrape(0, 0), 0))).toBeNull();
    for (let t = 1; t <= 20; t++) h.add(sampleOf(scrape(t * 1000, t * 2000), t));
    expect(h.points.length).toBe(11);
    expect(h.points[0].at).toBe(10);
    expect(h.add(sampleOf(scrape(10, 10), 21))).toBeNull();
    expect(h.add(sampleOf(scrape(1010, 2010), 22))?.inBps).toBe(8000);
  });
});
