/**
 * Debian's Chromium through playwright-core, with the flags the project's tests use (fake camera
 * and microphone, no network services) and a fresh profile per launch.
 */
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
];

export interface LaunchedBrowser {
  /** A persistent context on a fresh profile directory (Chromium's `--user-data-dir`). */
  browser: BrowserContext;
  close: () => Promise<void>;
}

export async function launchChromium(): Promise<LaunchedBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'kiln-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: process.env.KILN_CHROMIUM_LOG ? [...CHROMIUM_FLAGS, '--enable-logging=stderr', `--vmodule=${process.env.KILN_CHROMIUM_LOG}`] : CHROMIUM_FLAGS,
  });
  return {
    browser,
    close: async () => {
      await browser.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export interface InboundStats {
  framesDecoded: number;
  frameWidth: number;
  frameHeight: number;
  audioPacketsReceived: number;
  videoBytesReceived: number;
}

/** Inbound RTP figures of the page's RTCPeerConnection stored at `window[name]`. */
export async function inboundStats(page: Page, name: string): Promise<InboundStats> {
  return page.evaluate(async (name) => {
    const pc = (window as unknown as Record<string, RTCPeerConnection>)[name];
    const out = { framesDecoded: 0, frameWidth: 0, frameHeight: 0, audioPacketsReceived: 0, videoBytesReceived: 0 };
    if (!pc) return out;
    const report = await pc.getStats();
    report.forEach((s: Record<string, unknown>) => {
      if (s.type !== 'inbound-rtp') return;
      if (s.kind === 'video') {
        out.framesDecoded += Number(s.framesDecoded ?? 0);
        out.frameWidth = Math.max(out.frameWidth, Number(s.frameWidth ?? 0));
        out.frameHeight = Math.max(out.frameHeight, Number(s.frameHeight ?? 0));
        out.videoBytesReceived += Number(s.bytesReceived ?? 0);
      } else if (s.kind === 'audio') {
        out.audioPacketsReceived += Number(s.packetsReceived ?? 0);
      }
    });
    return out;
  }, name);
}

/** Polls `probe` until `done` holds or `timeoutMs` passes; returns the last value. */
export async function waitFor<T>(probe: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 15_000, stepMs = 250): Promise<T> {
  const end = Date.now() + timeoutMs;
  let value = await probe();
  while (!done(value) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, stepMs));
    value = await probe();
  }
  return value;
}

/** Opens Kiln's WHIP publish page for `stream` and waits until it is connected (asserted). */
export async function publishPage(browser: LaunchedBrowser, signalingUrl: string, stream: string, token: string): Promise<Page> {
  const page = await browser.browser.newPage();
  await page.goto(`${signalingUrl}/publish.html?autostart=1&stream=${stream}&token=${token}`);
  assert.equal(await waitFor(() => page.textContent('#status'), (s) => s === 'connection: connected' || /WHIP|Error/.test(s ?? ''), 15_000), 'connection: connected');
  return page;
}

/** Opens Kiln's WHEP play page as session `session` and waits until it decodes frames (asserted). */
export async function playPage(browser: LaunchedBrowser, signalingUrl: string, stream: string, session: string): Promise<Page> {
  const page = await browser.browser.newPage();
  await page.goto(`${signalingUrl}/play.html?autostart=1&stream=${stream}&session=${session}`);
  const stats = await waitFor(() => inboundStats(page, 'kilnPlayer'), (s) => s.framesDecoded > 5, 15_000);
  assert.ok(stats.framesDecoded > 5, `${session} decodes: ${stats.framesDecoded} frames`);
  return page;
}
