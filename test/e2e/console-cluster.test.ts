/**
 * The web console on a two-node cluster (issue 8 + issue 10): a real PostgreSQL (started here),
 * nodes A and B on it, Chromium publishing over WHIP on A and running the console served by B.
 * The Nodes view lists both nodes alive with their loads and what each holds (A: the publisher and
 * app/cam; B: nothing until the console's preview asks B for the stream, then that preview and the
 * relay's OVT pull); the Streams view shows the stream with Node = node-a and a preview that decodes
 * through B (relayed over OVT from A); after A is killed with SIGKILL, the Nodes view shows it dead
 * and the stream card goes, both within the cluster's death detection time + 2 s. Screenshots go
 * to test-output/console/ (or $KILN_TEST_OUTPUT/console): cluster-nodes.png, cluster-streams.png,
 * cluster-node-dead.png. The relay's legs are told apart: the stream's Node is its origin on
 * either node's console, and the OVT leg is no viewer.
 * Needs the built console (`npm run build:console`).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { freePort, startKiln, type KilnProcess } from '../helpers/kiln-process.ts';
import { launchChromium, publishPage, waitFor, type LaunchedBrowser } from '../helpers/browser.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { CONSOLE_OUTPUT, previewFrames, signInToConsole } from '../helpers/console-page.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const OUTPUT = CONSOLE_OUTPUT;

/**
 * The cluster's death detection (src/cluster/cluster.ts defaults; no setting changes them): nodes
 * heartbeat every second, and one whose heartbeat is older than 5 s is declared dead by the next
 * tick of another node. So a node killed just after a beat is declared dead at most 5 s + one tick
 * later; the console polls every second on top of that.
 */
const HEARTBEAT_MS = 1000;
const DEAD_AFTER_MS = 5000;
const DETECTION_MS = DEAD_AFTER_MS + HEARTBEAT_MS;
/** What the brief allows the console: the detection time + 2 s. */
const SHOWN_WITHIN_MS = DETECTION_MS + 2000;

let db: TestPostgres;
let chromium: LaunchedBrowser;
let a: KilnProcess;
let b: KilnProcess;
/** The console served by B, signed in: Nodes first, then Streams (kept open for the kill). */
let page: Page;
/** A second console tab on B, kept on the Nodes view while the first shows the preview. */
let nodesTab: Page;
let publisher: Page;
/** Console errors (and uncaught errors) of the console tabs, with the tab and step. */
const consoleErrors: string[] = [];
let step = 'start';

async function startNode(id: string): Promise<KilnProcess> {
  const sigPort = String(await freePort());
  return startKiln({
    KILN_DATABASE_URL: db.url,
    KILN_NODE_ID: id,
    KILN_SIGNALING_PORT: sigPort,
    KILN_PUBLIC_URL: `http://127.0.0.1:${sigPort}`,
  });
}

async function call(node: KilnProcess, path: string): Promise<any> {
  const res = await fetch(`${node.apiUrl}${path}`, { headers: { authorization: node.basic } });
  assert.equal(res.status, 200, `GET ${path} on ${node.apiUrl}`);
  return res.json();
}
const metrics = async (node: KilnProcess) => (await fetch(`${node.apiUrl}/metrics`)).text();

function collectErrors(p: Page, tab: string): void {
  p.on('console', (msg) => {
    // Chromium's "Failed to load resource" lines name no URL: the location does.
    if (msg.type() === 'error') consoleErrors.push(`[${tab} ${step}] ${msg.text()} (${msg.location().url})`);
  });
  p.on('pageerror', (err) => consoleErrors.push(`[${tab} ${step}] uncaught: ${err.message}`));
}

/** A console tab on `node`, signed in (a tab keeps its credential in sessionStorage: each signs in). */
async function consoleTab(node: KilnProcess, tab: string): Promise<Page> {
  const p = await chromium.browser.newPage();
  await p.setViewportSize({ width: 1280, height: 900 });
  collectErrors(p, tab);
  await signInToConsole(p, `${node.signalingUrl}/console/`, node.user, node.password);
  return p;
}

async function open(p: Page, view: string): Promise<void> {
  step = view;
  await p.evaluate((v) => (location.hash = v), `#/${view}`);
  await p.getByRole('heading', { level: 2, name: view[0].toUpperCase() + view.slice(1) }).waitFor();
}

const screenshot = (p: Page, name: string) => p.screenshot({ path: join(OUTPUT, `${name}.png`), fullPage: true });

interface NodeRow { node: string; state: string; sessions: string; streams: string; memory: string; holds: string; heartbeat: string; addresses: string }

/** The Nodes table's rows as text, by node id. */
async function nodeRows(p: Page): Promise<Record<string, NodeRow>> {
  const rows = await p.locator('#nodes-table tbody tr[data-node]').evaluateAll((trs) =>
    trs.map((tr) => [tr.getAttribute('data-node')!, ...[...tr.querySelectorAll(':scope > td')].map((td) => (td as HTMLElement).innerText.replace(/\s+/g, ' ').trim())]),
  );
  const out: Record<string, NodeRow> = {};
  for (const [id, node, state, sessions, streams, memory, holds, heartbeat, addresses] of rows) out[id] = { node, state, sessions, streams, memory, holds, heartbeat, addresses };
  return out;
}

/** The `<dd>` of the fact `name` on a stream card. */
const fact = (card: Locator, name: string) => card.locator('dl.facts dt').filter({ hasText: new RegExp(`^${name}$`) }).locator('xpath=following-sibling::dd[1]');


before(async () => {
  assert.ok(existsSync(join(ROOT, 'console', 'dist', 'index.html')), 'the console is not built: npm run build:console');
  mkdirSync(OUTPUT, { recursive: true });
  [db, chromium] = await Promise.all([startPostgres(), launchChromium()]);
  [a, b] = await Promise.all([startNode('node-a'), startNode('node-b')]);
});

after(async () => {
  await chromium?.close();
  for (const node of [a, b]) await node?.stop(15_000).catch(() => {});
  await db?.stop();
});

describe('the web console on a two-node cluster', () => {
  test("B's Nodes view lists both nodes alive with their loads; A holds the publisher and app/cam, B nothing", async () => {
    [publisher, page] = await Promise.all([publishPage(chromium, a.signalingUrl, 'cam', a.password), consoleTab(b, 'B console')]);
    await open(page, 'nodes');
    // A's load is written with its heartbeat (every second) and its sessions are mirrored as they
    // open: wait until both show.
    const rows = await waitFor(() => nodeRows(page), (r) => /app\/cam/.test(r['node-a']?.holds ?? '') && r['node-a']?.sessions === '1', 5_000, 100);
    assert.deepEqual(Object.keys(rows), ['node-a', 'node-b']);
    const [rowA, rowB] = [rows['node-a'], rows['node-b']];
    assert.equal(rowA.state, 'alive');
    assert.equal(rowB.state, 'alive');
    // Loads: A has one session (the WHIP publisher) and one stream; B none; both their memory.
    assert.deepEqual([rowA.sessions, rowA.streams], ['1', '1']);
    assert.deepEqual([rowB.sessions, rowB.streams], ['0', '0']);
    assert.match(rowA.memory, /^\d+(\.\d)? (KiB|MiB|GiB)$/);
    assert.match(rowB.memory, /^\d+(\.\d)? (KiB|MiB|GiB)$/);
    // What each holds: A the publisher and its stream; B nothing (no preview has asked for a relay
    // yet: the Streams view is not open).
    assert.equal(rowA.holds, '1 publisher streams: app/cam');
    assert.equal(rowB.holds, 'nothing');
    // B serves this console's API; both show their public, API and OVT addresses.
    assert.equal(rowA.node, 'node-a');
    assert.equal(rowB.node, "node-b (this console's API)");
    assert.ok(rowA.addresses.startsWith(`${a.signalingUrl} API ${a.apiUrl} OVT ovt://`), rowA.addresses);
    assert.ok(rowB.addresses.startsWith(`${b.signalingUrl} API ${b.apiUrl} OVT ovt://`), rowB.addresses);
    assert.match(rowA.heartbeat, /^\d+ s ago up since /);
    assert.equal(await page.locator('#nodes-h + p').textContent(), '2 of 2 nodes alive');
    // The same as B's API says (the console shows MaxScale's servers resources).
    const servers = (await call(b, '/v1/servers')).data as any[];
    assert.deepEqual(servers.map((s) => [s.id, s.attributes.node_state, s.attributes.load.sessions, s.attributes.load.streams]), [['node-a', 'alive', 1, 1], ['node-b', 'alive', 0, 0]]);
    await screenshot(page, 'cluster-nodes');
  });

  test("B's Streams view shows app/cam on node-a, and its preview decodes through B (OVT relay from A)", async () => {
    await open(page, 'streams');
    const card = page.locator('article[data-stream="app/cam"]');
    await card.waitFor({ timeout: 5000 });
    assert.equal(await fact(card, 'Node').textContent(), 'node-a');
    assert.match(await fact(card, 'Source').textContent() ?? '', /^WebRTC/);
    const preview = await waitFor(() => previewFrames(page, 'app/cam'), (p) => p.frames > 10 && p.width > 0, 20_000);
    assert.ok(preview.frames > 10 && preview.width > 0, `the preview decoded ${preview.frames} frames at width ${preview.width}`);
    assert.equal(await card.locator('.preview-state').textContent(), 'live');
    // It plays through B: the console's WHEP player is a session on node-b, fed by B's one relay of
    // A's stream over OVT (one OVT connection on A).
    const sessions = (await call(b, '/v1/sessions')).data as any[];
    const previews = sessions.filter((s) => s.id.startsWith('console-preview-'));
    assert.deepEqual(previews.map((s) => [s.attributes.kind, s.attributes.protocol, s.attributes.stream, s.attributes.node]), [['player', 'whep', 'cam', 'node-b']]);
    assert.match(await metrics(b), /^kiln_relays 1$/m);
    assert.match(await metrics(a), /^kiln_ovt_connections 1$/m);
    // Still one card (B's relay is no stream of its own) and still on node-a, now that the relay's
    // sessions are listed too; the relay's OVT leg on A is no viewer.
    assert.equal(await page.locator('article[data-stream]').count(), 1);
    assert.equal(await fact(card, 'Node').textContent(), 'node-a');
    assert.equal(await card.locator('.viewers').textContent(), '0');
    await waitFor(() => card.locator('.resolution').textContent(), (t) => /\d+×\d+/.test(t ?? ''), 5000);
    await screenshot(page, 'cluster-streams');
  });

  test("while the preview plays, B's Nodes view (a second tab) shows the relay: B holds its OVT pull and the preview", async () => {
    nodesTab = await consoleTab(b, 'B nodes tab');
    await open(nodesTab, 'nodes');
    const rows = await waitFor(() => nodeRows(nodesTab), (r) => r['node-b']?.sessions === '2' && r['node-a']?.sessions === '2', 5_000, 100);
    // What /v1/sessions says, grouped by node: the preview (a WHEP player on B) is fed by a relay,
    // which is a session on each side: an OVT pull on B ("Kiln OVT client") and an OVT player on
    // A ("OVT edge"). The Nodes view tells them apart: relay legs, and the console's preview.
    assert.deepEqual(rows['node-b'], { ...rows['node-b'], state: 'alive', sessions: '2', streams: '1', holds: 'nothing relays from other nodes: app/cam relay legs: 1 console previews: 1' });
    assert.deepEqual(rows['node-a'], { ...rows['node-a'], state: 'alive', sessions: '2', streams: '1', holds: '1 publisher streams: app/cam relay legs: 1' });
  });

  test('the relay is invisible on the Streams cards: Node is the origin on any node\'s console, the relay leg is no viewer', async () => {
    // B's console: the OVT edge player on A (the relay's leg, for B's console preview) is no viewer.
    const viewersOnB = await page.locator('article[data-stream="app/cam"] .viewers').textContent();
    // A's console lists A's sessions first and B's relay pull last: the publisher still wins.
    const onA = await consoleTab(a, 'A console');
    try {
      await open(onA, 'streams');
      const card = onA.locator('article[data-stream="app/cam"]');
      await card.waitFor({ timeout: 5000 });
      await waitFor(() => fact(card, 'Node').textContent(), (t) => t !== null, 3000);
      const nodeOnA = await fact(card, 'Node').textContent();
      // The preview on A closes (its WHEP resource deleted) before the tab goes.
      await open(onA, 'overview');
      assert.deepEqual({ viewersOnB, nodeOnA }, { viewersOnB: '0', nodeOnA: 'node-a' });
    } finally {
      await onA.close();
    }
  });

  test(`kill -9 A: B's console shows A dead and the stream card gone within ${SHOWN_WITHIN_MS / 1000} s`, async () => {
    step = 'kill';
    const card = page.locator('article[data-stream="app/cam"]');
    // Before the kill: A alive, its stream's card shown (else the timings below would mean nothing).
    assert.equal((await nodeRows(nodesTab))['node-a']?.state, 'alive', `node-a is alive before the kill; node-b's log:\n${b.output()}`);
    assert.equal(await card.count(), 1, 'the card is there before the kill');
    const killedAt = Date.now();
    a.child.kill('SIGKILL');
    const [deadAfter, goneAfter] = await Promise.all([
      (async () => {
        await waitFor(() => nodeRows(nodesTab), (r) => r['node-a']?.state === 'dead', SHOWN_WITHIN_MS + 5000, 100);
        return Date.now() - killedAt;
      })(),
      (async () => {
        await card.waitFor({ state: 'detached', timeout: SHOWN_WITHIN_MS + 5000 });
        return Date.now() - killedAt;
      })(),
    ]);
    // B declared A dead once, and only after the kill (pino's JSON lines, KILN_LOG_LEVEL=warn).
    const declared = b.output().split('\n').filter((l) => l.includes('node declared dead')).map((l) => JSON.parse(l) as { node: string; time: number });
    assert.deepEqual(declared.map((d) => d.node), ['node-a'], b.output());
    const detectedAfter = declared[0].time - killedAt;
    console.log(`# kill -9 of node-a: declared dead by node-b after ${detectedAfter} ms; the console showed it dead after ${deadAfter} ms, its stream card gone after ${goneAfter} ms`);
    assert.ok(detectedAfter > 0 && detectedAfter <= DETECTION_MS + 500, `node-b declared node-a dead ${detectedAfter} ms after the kill`);
    // The console's part: at most its poll (1 s) and the calls after the cluster knew.
    assert.ok(deadAfter - detectedAfter <= 2000, `node-a shown dead ${deadAfter - detectedAfter} ms after node-b declared it dead`);
    assert.ok(goneAfter - detectedAfter <= 2000, `the stream card went ${goneAfter - detectedAfter} ms after node-b declared node-a dead`);
    // And in all, within the detection time + 2 s.
    assert.ok(deadAfter <= SHOWN_WITHIN_MS, `node-a shown dead ${deadAfter} ms after the kill`);
    assert.ok(goneAfter <= SHOWN_WITHIN_MS, `the stream card went ${goneAfter} ms after the kill`);
    await page.getByText('No live streams.').waitFor({ timeout: 3000 });

    // What the dead node held is closed: A holds nothing; B's relay and preview ended with the stream.
    const rows = await waitFor(() => nodeRows(nodesTab), (r) => r['node-a']?.holds === 'nothing' && r['node-b']?.holds === 'nothing' && r['node-b']?.sessions === '0', 5_000, 100);
    assert.deepEqual([rows['node-a'].state, rows['node-a'].holds, rows['node-a'].sessions, rows['node-a'].streams, rows['node-a'].memory], ['dead', 'nothing', '–', '–', '–']);
    assert.match(rows['node-a'].heartbeat, /^last /);
    assert.deepEqual([rows['node-b'].state, rows['node-b'].holds, rows['node-b'].sessions, rows['node-b'].streams], ['alive', 'nothing', '0', '0']);
    assert.equal(await nodesTab.locator('#nodes-h + p').textContent(), '1 of 2 nodes alive');
    await screenshot(nodesTab, 'cluster-node-dead');
    await publisher.close();

    // As the card goes, its preview does not DELETE its WHEP resource: B ended that player with
    // the stream (a DELETE would be answered 404). No console error (the polls never failed).
  });

  test('no other console errors on the console tabs', () => {
    assert.deepEqual(consoleErrors, []);
  });
});
