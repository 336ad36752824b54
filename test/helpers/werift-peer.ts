/**
 * Headless werift peers for tests and benchmarks: a WHIP publisher and WHEP players, on
 * loopback. Not part of the server.
 */
import { RTCPeerConnection, RTCRtpCodecParameters, useNACK, usePLI, useSdesMid } from 'werift';
import { prepareLocal, useKeyObjects } from '../../src/media/peer.ts';

export const VP8 = () => new RTCRtpCodecParameters({ mimeType: 'video/VP8', clockRate: 90000, payloadType: 96, rtcpFeedback: [useNACK(), usePLI()] });
export const OPUS = () => new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2, payloadType: 111 });

export function loopbackPeer(): RTCPeerConnection {
  return new RTCPeerConnection({
    iceServers: [],
    iceUseIpv6: false,
    iceUseTcp: false,
    iceInterfaceAddresses: { udp4: '127.0.0.1' },
    iceAdditionalHostAddresses: ['127.0.0.1'],
    bundlePolicy: 'max-bundle',
    codecs: { video: [VP8()], audio: [OPUS()] },
    headerExtensions: { video: [useSdesMid()], audio: [useSdesMid()] },
  });
}

export async function gathered(pc: RTCPeerConnection): Promise<void> {
  if (pc.iceGatheringState === 'complete') return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 3000);
    pc.iceGatheringStateChange.subscribe((s) => {
      if (s === 'complete') {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

/** POSTs the local offer to a WHIP/WHEP endpoint and applies the answer. */
export async function negotiate(pc: RTCPeerConnection, url: string, token?: string): Promise<string> {
  prepareLocal(pc, false);
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: pc.localDescription!.sdp,
  });
  if (res.status !== 201) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
  return res.headers.get('location') ?? '';
}

/** Resolves when connected; the SRTP keys become KeyObjects, as in the server (see useKeyObjects). */
export function connected(pc: RTCPeerConnection, timeoutMs = 10_000): Promise<void> {
  if (pc.connectionState === 'connected') {
    useKeyObjects(pc);
    return Promise.resolve();
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('peer did not connect')), timeoutMs);
    pc.connectionStateChange.subscribe((s) => {
      if (s === 'connected') {
        clearTimeout(timer);
        useKeyObjects(pc);
        resolve();
      }
    });
  });
}
