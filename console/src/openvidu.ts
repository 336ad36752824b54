/**
 * Loads the unchanged `openvidu-browser` 1.9.0 bundle (the room client of that era, which Kiln's
 * room signaling speaks) as a classic script: it defines `window.OpenVidu`.
 */
import bundleUrl from 'openvidu-browser/static/js/openvidu-browser-1.9.0.min.js?url';

/** The parts of openvidu-browser 1.9's API the join page uses. */
export interface OvStream {
  streamId: string;
  connection: { connectionId: string; data: string };
}
export interface OvSession {
  on(event: 'streamCreated' | 'streamDestroyed', handler: (e: { stream: OvStream }) => void): void;
  on(event: 'sessionDisconnected' | 'participant-evicted' | 'connectionCreated' | 'connectionDestroyed', handler: (e: unknown) => void): void;
  connect(token: string, metadata: string, callback: (error: unknown) => void): void;
  subscribe(stream: OvStream, element: string | HTMLElement): unknown;
  publish(publisher: unknown): void;
  disconnect(): void;
  connection?: { connectionId: string };
}
export interface OvClient {
  initSession(sessionId: string): OvSession;
  initPublisher(element: string | HTMLElement, options: { audio: boolean; video: boolean; quality: 'LOW' | 'MEDIUM' | 'HIGH' }): unknown;
}

let loading: Promise<new () => OvClient> | undefined;

/** Told when the server says a recording of the joined session started or stopped. */
export const recordingListeners = new Set<(recording: boolean) => void>();

/**
 * openvidu-browser 1.9 has no handler for `recordingStarted`/`recordingStopped` (notifications
 * of OpenVidu 2 that Kiln sends, SPEC.md §2) and logs each as an error. The join page shows
 * them instead: those two lines go to the listeners and to console.info; nothing else changes.
 */
function takeRecordingNotifications(): void {
  const error = console.error;
  console.error = (...args: unknown[]) => {
    const m = args.length === 1 && typeof args[0] === 'string' ? /^Method (recordingStarted|recordingStopped) not registered in client$/.exec(args[0]) : null;
    if (!m) return error.apply(console, args);
    for (const listener of recordingListeners) listener(m[1] === 'recordingStarted');
    console.info(`${m[1]} (openvidu-browser 1.9 has no handler for it; the join page shows it)`);
  };
}

export function loadOpenVidu(): Promise<new () => OvClient> {
  loading ??= new Promise((resolve, reject) => {
    const existing = (window as unknown as { OpenVidu?: new () => OvClient }).OpenVidu;
    if (existing) return resolve(existing);
    const script = document.createElement('script');
    script.src = bundleUrl;
    script.onload = () => {
      const OpenVidu = (window as unknown as { OpenVidu?: new () => OvClient }).OpenVidu;
      if (OpenVidu) {
        takeRecordingNotifications();
        resolve(OpenVidu);
      }
      else reject(new Error('openvidu-browser did not load'));
    };
    script.onerror = () => {
      loading = undefined;
      reject(new Error('openvidu-browser could not be loaded'));
    };
    document.head.appendChild(script);
  });
  return loading;
}
