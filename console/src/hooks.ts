import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import type { Api } from './api.ts';

/** How often the live views ask again: well within the 2 s a change must take to show. */
export const POLL_MS = 1000;

export interface Polled<T> {
  data: T | undefined;
  error: string | undefined;
  /** When the data last came (ms), for "updated" hints. */
  at: number | undefined;
  /** Asks again now (after an action), without waiting for the next tick. */
  refresh: () => void;
}

/**
 * Loads `load()` now and every POLL_MS while the page is visible; one call at a time (a slow
 * answer delays the next tick instead of piling calls up). `key` restarts it (another page, filter).
 */
export function usePoll<T>(load: (signal: AbortSignal) => Promise<T>, key: string, intervalMs = POLL_MS): Polled<T> {
  const [state, setState] = useState<{ data?: T; error?: string; at?: number; key: string }>({ key });
  const loadRef = useRef(load);
  loadRef.current = load;
  const kick = useRef<() => void>(() => {});

  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let running: AbortController | undefined;
    // After failures the next try waits longer (1, 2, 4 … 30 s): an API that is down or refuses
    // is not asked every second; coming back to the tab or online asks at once.
    let failures = 0;
    setState((s) => (s.key === key ? s : { key }));
    const tick = async () => {
      clearTimeout(timer);
      if (stopped) return;
      if (running) return;
      if (document.visibilityState === 'hidden') {
        timer = setTimeout(tick, intervalMs);
        return;
      }
      running = new AbortController();
      try {
        const data = await loadRef.current(running.signal);
        failures = 0;
        if (!stopped) setState({ data, error: undefined, at: Date.now(), key });
      } catch (err) {
        if ((err as Error).name !== 'AbortError') {
          failures++;
          if (!stopped) setState((s) => ({ ...s, error: (err as Error).message, key }));
        }
      } finally {
        running = undefined;
        if (!stopped) timer = setTimeout(tick, failures === 0 ? intervalMs : Math.min(30_000, intervalMs * 2 ** Math.min(failures, 5)));
      }
    };
    kick.current = () => void tick();
    const onVisible = () => document.visibilityState === 'visible' && void tick();
    document.addEventListener('visibilitychange', onVisible);
    window.addEventListener('online', onVisible);
    void tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
      running?.abort();
      document.removeEventListener('visibilitychange', onVisible);
      window.removeEventListener('online', onVisible);
    };
  }, [key, intervalMs]);

  const refresh = useCallback(() => kick.current(), []);
  const current = state.key === key ? state : { key };
  return { data: current.data, error: current.error, at: current.at, refresh };
}

/** The hash route: `#/rooms/abc?x=1` → `['rooms', 'abc']` and its query. */
export function useRoute(): { parts: string[]; query: URLSearchParams } {
  const read = () => {
    const hash = location.hash.replace(/^#\/?/, '');
    const [path, search = ''] = hash.split('?');
    const decode = (part: string) => {
      try {
        return decodeURIComponent(part);
      } catch {
        return part; // a malformed escape: the view says it found nothing
      }
    };
    return { parts: path.split('/').filter(Boolean).map(decode), query: new URLSearchParams(search) };
  };
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const on = () => setRoute(read());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}

/** Runs an action (kick, end, delete…), keeping its error to show next to the control. */
export function useAction(): { busy: boolean; error: string | undefined; run: (action: () => Promise<unknown>) => Promise<boolean>; clear: () => void } {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const run = useCallback(async (action: () => Promise<unknown>) => {
    setBusy(true);
    setError(undefined);
    try {
      await action();
      return true;
    } catch (err) {
      setError((err as Error).message);
      return false;
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, run, clear: () => setError(undefined) };
}

/** SignalWire's paging links. */
export interface Links {
  self: string;
  first: string;
  next?: string;
  prev?: string;
}

/**
 * Pages through a SignalWire list by its links: the first page from the query, then each `next`
 * and `prev` as the API gave them; the page shown is asked again on every tick.
 */
export function usePagedList<T>(api: Api, first: string, key: string) {
  const [trail, setTrail] = useState<string[]>([]);
  const [trailKey, setTrailKey] = useState(key);
  if (trailKey !== key) {
    setTrailKey(key);
    setTrail([]);
  }
  const url = trail.length > 0 && trailKey === key ? trail[trail.length - 1] : first;
  const polled = usePoll((signal) => api.get<{ links: Links; data: T[] }>(url, signal), `${key} ${url}`);
  // A page token expires after a while: back to the first page rather than a stale one.
  if (polled.error && /page_token/.test(polled.error) && trail.length > 0 && trailKey === key) setTrail([]);
  return {
    polled,
    page: trailKey === key ? trail.length : 0,
    next: () => polled.data?.links.next && setTrail([...trail, polled.data.links.next]),
    prev: () => setTrail(trail.slice(0, -1)),
    first: () => setTrail([]),
    hasNext: Boolean(polled.data?.links.next),
    hasPrev: trail.length > 0,
  };
}
