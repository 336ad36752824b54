/**
 * What every benchmark player process measures, whichever WebRTC stack it runs on: per-track loss
 * from RTP sequence numbers (with wrap), forwarding delay from the publisher's send time stamped in
 * the last 8 bytes of each payload, and the time to each player's first video packet and first key
 * frame (from its WHEP POST; the key frame also from its WHEP answer). It also speaks
 * the IPC of `bench/fanout.ts`: `ready` out; `start` resets the counters; `stop` gets `result`.
 * A process with several groups of players (`bench/cluster-players.ts`) keeps one PlayerStats per
 * group and calls `reset()` and `result()` itself.
 */

export const now = (): number => performance.timeOrigin + performance.now();

/** What a PlayerStats measured between `reset()` and `result()`. */
export interface PlayerResult {
  type: 'result';
  firstKeyFrameMs: number[];
  firstVideoMs: number[];
  answerToKeyMs: number[];
  /** RTP packets expected (from the sequence numbers) and received, over all tracks. */
  expected: number;
  received: number;
  /** Publisher send → player receive, ms (NaN without stamps), and how many packets had a stamp. */
  delayP50: number;
  delayP99: number;
  samples: number;
}

/** Packets received by one track within the measuring window. */
export interface TrackCounter {
  received: number;
  first: number;
  last: number;
  cycles: number;
  started: boolean;
}

export class PlayerStats {
  readonly counters: TrackCounter[] = [];
  /** Per player, ms: WHEP POST → first key frame, POST → first video packet, answer → first key frame. */
  readonly firstKeyFrameMs: number[] = [];
  readonly firstVideoMs: number[] = [];
  readonly answerToKeyMs: number[] = [];
  readonly #delays = new Float64Array(4_000_000);
  #delayCount = 0;
  measuring = false;

  track(): TrackCounter {
    const c = { received: 0, first: 0, last: 0, cycles: 0, started: false };
    this.counters.push(c);
    return c;
  }

  /** Counts one packet received at `t`; `sentAt` is the stamp from its payload (NaN if none). */
  record(c: TrackCounter, seq: number, t: number, sentAt: number): void {
    if (!this.measuring) return;
    if (!c.started) {
      c.started = true;
      c.first = seq;
      c.last = seq;
    } else if (seq < 0x1000 && c.last > 0xf000) {
      c.cycles++; // wrapped
      c.last = seq;
    } else if (seq > c.last && !(seq > 0xf000 && c.last < 0x1000)) {
      c.last = seq;
    }
    c.received++;
    if (!Number.isNaN(sentAt) && this.#delayCount < this.#delays.length) this.#delays[this.#delayCount++] = t - sentAt;
  }

  /** Clears the counters and starts measuring. */
  reset(): void {
    for (const c of this.counters) Object.assign(c, { received: 0, first: 0, last: 0, cycles: 0, started: false });
    this.#delayCount = 0;
    this.measuring = true;
  }

  /** Stops measuring and sums up what was measured since `reset()`. */
  result(): PlayerResult {
    this.measuring = false;
    let expected = 0;
    let received = 0;
    for (const c of this.counters) {
      if (!c.started) continue;
      expected += c.cycles * 65536 + c.last - c.first + 1;
      received += c.received;
    }
    const sorted = this.#delays.subarray(0, this.#delayCount).sort();
    const pick = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : NaN);
    return { type: 'result', firstKeyFrameMs: this.firstKeyFrameMs, firstVideoMs: this.firstVideoMs, answerToKeyMs: this.answerToKeyMs, expected, received, delayP50: pick(0.5), delayP99: pick(0.99), samples: this.#delayCount };
  }

  /** Tells the parent the players are ready, then measures on `start` and reports on `stop`. */
  serve(shutdown: (code: number) => void, beforeResult?: () => void): void {
    process.send!({ type: 'ready' });
    process.on('message', (msg: { type: string }) => {
      if (msg.type === 'start') this.reset();
      else if (msg.type === 'stop') {
        const result = this.result();
        beforeResult?.();
        process.send!(result, () => shutdown(0));
      }
    });
  }
}
