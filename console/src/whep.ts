/**
 * A muted WHEP player for the stream previews: receive-only video (and audio, so that the
 * stream's own tracks are what is offered), one POST to the signaling listener the console came
 * from, DELETE of its resource when the preview closes.
 */
export interface WhepPreview {
  stream: MediaStream;
  pc: RTCPeerConnection;
  /** Ends the preview: its resource DELETEd first (unless the server already ended it), then the connection closed. */
  close: (deleteResource?: boolean) => void;
}

/** Waits for ICE gathering to finish, at most `ms` (candidates found by then are in the offer). */
function gathered(pc: RTCPeerConnection, ms: number): Promise<void> {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const check = () => pc.iceGatheringState === 'complete' && done();
    const timer = setTimeout(done, ms);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

export async function startWhepPreview(app: string, stream: string, bearer: string, sessionName: string, signal: AbortSignal): Promise<WhepPreview> {
  const pc = new RTCPeerConnection();
  const media = new MediaStream();
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  pc.addEventListener('track', (e) => media.addTrack(e.track));
  let resource: string | null = null;
  // The resource is deleted before the connection closes: closed first, the server may end the
  // session on its own and answer the DELETE with 404.
  const close = (deleteResource = true) => {
    const url = resource;
    resource = null;
    if (!url || !deleteResource) return pc.close();
    void fetch(url, { method: 'DELETE', headers: { Authorization: `Bearer ${bearer}` }, keepalive: true })
      .catch(() => undefined)
      .finally(() => pc.close());
  };
  try {
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, 1000);
    const url = `${location.origin}/${encodeURIComponent(app)}/${encodeURIComponent(stream)}?direction=whep&session=${encodeURIComponent(sessionName)}`;
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${bearer}` },
      body: pc.localDescription!.sdp,
      signal,
    });
    if (response.status !== 201) {
      const text = await response.text();
      let message = text;
      try {
        const body = JSON.parse(text) as { message?: string; error?: string };
        message = body.message ?? body.error ?? text;
      } catch {
        // plain text
      }
      throw new Error(`WHEP ${response.status}: ${message || response.statusText}`);
    }
    const location_ = response.headers.get('Location');
    if (location_) resource = new URL(location_, url).href;
    await pc.setRemoteDescription({ type: 'answer', sdp: await response.text() });
    if (signal.aborted) throw new DOMException('aborted', 'AbortError');
    return { stream: media, pc, close };
  } catch (err) {
    close(true);
    throw err;
  }
}
