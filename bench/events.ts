/**
 * `npm run bench:events`: the event outbox and its webhook delivery, on the embedded store (a real
 * SQLite file) and a real HTTP receiver on loopback, as Kiln runs them:
 *
 *   append    N events queued at once (session opened/closed pairs, as the catalogue emits them):
 *             the time to write them all to the outbox, per event;
 *   deliver   the same N events POSTed to the receiver one at a time in order, signed: events per
 *             second, and the time from an event's emit to its arrival (p50/p99) while the
 *             outbox drains a backlog and when events come one at a time;
 *
 * then `bench/admission.ts`: the time a synchronous admission webhook adds to a WHEP session set-up.
 *
 *   npm run bench:events -- [--events N] [--rounds R]     (defaults: 5000 events, 3 rounds; then 40
 *   WHEP set-ups each way for the admission hook, about 90 s)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { EventLog } from '../src/events/event-log.ts';
import { EventDelivery } from '../src/events/delivery.ts';
import { startWebhookReceiver } from '../test/helpers/webhook-receiver.ts';
import { runAdmissionBench } from './admission.ts';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const EVENTS = arg('events', 5000);
const ROUNDS = arg('rounds', 3);
const logger = pino({ level: 'silent' });

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

interface Round { appendUsPerEvent: number; deliveredPerSecond: number; backlogP50: number; backlogP99: number; singleP50: number; singleP99: number }

async function round(): Promise<Round> {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-bench-events-'));
  const receiver = await startWebhookReceiver();
  const store = new SqliteStore(dir);
  const delivery = new EventDelivery({ store: store.events, webhooks: [{ url: receiver.url, secret: 'bench' }], logger });
  const log = new EventLog({ store: store.events, nodeId: 'bench', endpoints: [receiver.url], logger, onAppended: () => delivery.wake() });
  const data = (i: number) => ({ session: { id: `s${i >> 1}`, kind: 'player', protocol: 'whep', vhost: 'default', app: 'app', stream: 'cam', remote_address: '127.0.0.1', remote_port: 50000 + i, user_agent: 'bench', emitted: performance.now() } });
  try {
    // Backlog: N events queued at once, then delivered.
    const t0 = performance.now();
    for (let i = 0; i < EVENTS; i++) {
      if (i % 2 === 0) log.open('session.opened', `session:s${i >> 1}`, `s${i >> 1}`, data(i));
      else log.close('session.closed', `session:s${i >> 1}`, `s${i >> 1}`, { ...data(i), reason: 'client-left' });
    }
    await log.flush(120_000);
    const appended = performance.now();
    delivery.start();
    while (receiver.received.length < EVENTS) await new Promise((r) => setTimeout(r, 5));
    const delivered = performance.now();
    const backlogDelays = receiver.received.map((r) => r.at - performance.timeOrigin - r.event.data.session.emitted);
    // One at a time: an event every 5 ms, each delivered before the next comes.
    const single: number[] = [];
    for (let i = 0; i < 200; i++) {
      const before = receiver.received.length;
      const emitted = performance.now();
      log.emit('recording.status', `r${i}`, { i });
      while (receiver.received.length === before) await new Promise((r) => setImmediate(r));
      single.push(performance.now() - emitted);
      await new Promise((r) => setTimeout(r, 5));
    }
    return {
      appendUsPerEvent: ((appended - t0) * 1000) / EVENTS,
      deliveredPerSecond: EVENTS / ((delivered - appended) / 1000),
      backlogP50: quantile(backlogDelays, 0.5),
      backlogP99: quantile(backlogDelays, 0.99),
      singleP50: quantile(single, 0.5),
      singleP99: quantile(single, 0.99),
    };
  } finally {
    await delivery.stop();
    await store.close();
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const rounds: Round[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const result = await round();
  rounds.push(result);
  console.log(`round ${r + 1}: append ${result.appendUsPerEvent.toFixed(1)} µs/event; delivered ${result.deliveredPerSecond.toFixed(0)} events/s; `
    + `emit→arrival with a ${EVENTS}-event backlog p50 ${result.backlogP50.toFixed(0)} ms p99 ${result.backlogP99.toFixed(0)} ms; `
    + `one at a time p50 ${result.singleP50.toFixed(2)} ms p99 ${result.singleP99.toFixed(2)} ms`);
}
console.log(`\nevents (median of ${ROUNDS} rounds, ${EVENTS} events each, SQLite outbox, one loopback endpoint):`);
console.log(`  outbox append:        ${median(rounds.map((r) => r.appendUsPerEvent)).toFixed(1)} µs per event`);
console.log(`  delivered:            ${median(rounds.map((r) => r.deliveredPerSecond)).toFixed(0)} events/s`);
console.log(`  emit → arrival, one at a time: p50 ${median(rounds.map((r) => r.singleP50)).toFixed(2)} ms, p99 ${median(rounds.map((r) => r.singleP99)).toFixed(2)} ms`);

console.log('');
await runAdmissionBench();
process.exit(0);
