/**
 * A browser participant driven by the unchanged `openvidu-browser` 1.9.0 bundle from npm, loaded
 * into a page of another origin. The page records every JSON-RPC message the server sends (by
 * wrapping the page's WebSocket), the Session events it sees and the remote streams it subscribed.
 */
import { fileURLToPath } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';
import { waitFor } from './browser.ts';

export const OPENVIDU_BROWSER = fileURLToPath(new URL('static/js/openvidu-browser-1.9.0.js', import.meta.resolve('openvidu-browser/package.json')));

/** What the page saw: server messages, session events, console errors. */
export interface PageLog {
  rpc: { method?: string; params?: Record<string, unknown>; error?: { code: number; message: string }; result?: Record<string, unknown> }[];
  events: { name: string; connectionId?: string; data?: string; streamId?: string }[];
  errors: string[];
}

export interface OpenViduParticipant {
  page: Page;
  /** The connection id the server gave (joinRoom's `id`). */
  connectionId: string;
  log: () => Promise<PageLog>;
  /** Video/audio figures of the subscription to `streamId` (the remote stream's id). */
  inbound: (streamId: string) => Promise<{ framesDecoded: number; frameWidth: number; audioPackets: number }>;
  /** Ids of the remote streams subscribed so far. */
  remoteStreams: () => Promise<string[]>;
  /** Starts publishing the fake camera and microphone (320x240). */
  publish: () => Promise<void>;
}

/** Opens a page at `siteUrl`, loads openvidu-browser and connects to `sessionId` with `token`. */
export async function joinWithOpenVidu(
  context: BrowserContext,
  siteUrl: string,
  sessionId: string,
  token: string,
  metadata: string,
): Promise<OpenViduParticipant> {
  const page = await context.newPage();
  await page.goto(siteUrl);
  await page.evaluate(() => {
    const w = window as unknown as Record<string, unknown>;
    const log = { rpc: [] as unknown[], events: [] as unknown[], errors: [] as string[] };
    w.kilnLog = log;
    const Native = WebSocket;
    w.WebSocket = class extends Native {
      constructor(url: string | URL, protocols?: string | string[]) {
        super(url, protocols);
        this.addEventListener('message', (e) => {
          try {
            log.rpc.push(JSON.parse(String(e.data)));
          } catch {
            log.rpc.push({ unparsable: String(e.data) });
          }
        });
      }
    };
    const error = console.error.bind(console);
    console.error = (...args: unknown[]) => {
      log.errors.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
      error(...args);
    };
    for (const id of ['publisher', 'subscribers']) {
      const div = document.createElement('div');
      div.id = id;
      document.body.appendChild(div);
    }
  });
  await page.addScriptTag({ path: OPENVIDU_BROWSER });
  const connectionId = await page.evaluate(async ({ sessionId, token, metadata }) => {
    const w = window as unknown as Record<string, any>;
    const log = w.kilnLog;
    const OV = new w.OpenVidu();
    const session = OV.initSession(sessionId);
    w.ov = OV;
    w.ovSession = session;
    w.remote = {};
    session.on('streamCreated', (e: any) => {
      log.events.push({ name: 'streamCreated', streamId: e.stream.streamId, connectionId: e.stream.connection.connectionId });
      w.remote[e.stream.streamId] = e.stream;
      session.subscribe(e.stream, 'subscribers');
    });
    session.on('streamDestroyed', (e: any) => log.events.push({ name: 'streamDestroyed', streamId: e.stream.streamId }));
    session.on('connectionCreated', (e: any) => log.events.push({ name: 'connectionCreated', connectionId: e.connection.connectionId, data: e.connection.data }));
    session.on('connectionDestroyed', (e: any) => log.events.push({ name: 'connectionDestroyed', connectionId: e.connection.connectionId }));
    session.on('participant-evicted', () => log.events.push({ name: 'participant-evicted' }));
    session.on('signal', (e: any) => log.events.push({ name: 'signal', data: e.data, connectionId: e.from?.connectionId }));
    await new Promise<void>((resolve, reject) => session.connect(token, metadata, (err: unknown) => (err ? reject(new Error(JSON.stringify(err))) : resolve())));
    return session.connection.connectionId as string;
  }, { sessionId, token, metadata });
  return {
    page,
    connectionId,
    log: () => page.evaluate(() => JSON.parse(JSON.stringify((window as unknown as { kilnLog: PageLog }).kilnLog))),
    remoteStreams: () => page.evaluate(() => Object.keys((window as unknown as { remote: object }).remote)),
    inbound: (streamId) => page.evaluate(async (streamId) => {
      const out = { framesDecoded: 0, frameWidth: 0, audioPackets: 0 };
      const stream = (window as unknown as { remote: Record<string, { getRTCPeerConnection: () => RTCPeerConnection }> }).remote[streamId];
      const pc = stream?.getRTCPeerConnection?.();
      if (!pc) return out;
      (await pc.getStats()).forEach((s: Record<string, unknown>) => {
        if (s.type !== 'inbound-rtp') return;
        if (s.kind === 'video') {
          out.framesDecoded += Number(s.framesDecoded ?? 0);
          out.frameWidth = Math.max(out.frameWidth, Number(s.frameWidth ?? 0));
        } else out.audioPackets += Number(s.packetsReceived ?? 0);
      });
      return out;
    }, streamId),
    publish: () => page.evaluate(() => {
      const w = window as unknown as Record<string, any>;
      const publisher = w.ov.initPublisher('publisher', { audio: true, video: true, quality: 'LOW' });
      w.publisher = publisher;
      w.ovSession.publish(publisher);
    }),
  };
}

/** Waits until `participant` decodes video (and receives audio) of `streamId`. */
export async function waitForMedia(participant: OpenViduParticipant, streamId: string, timeoutMs = 20_000) {
  return waitFor(() => participant.inbound(streamId), (s) => s.framesDecoded > 5 && s.frameWidth > 0 && s.audioPackets > 5, timeoutMs);
}
