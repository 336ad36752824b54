/**
 * Creates werift peer connections configured for a server: no STUN/TURN (the server's own
 * addresses are its candidates), the configured UDP port range, loopback candidates on demand.
 */
import { RTCPeerConnection, useAbsSendTime, useSdesMid, type RTCRtpCodecParameters } from 'werift';

/** ICE settings shared by every peer connection of a node. */
export interface IceSettings {
  portRange: [number, number] | undefined;
  announcedAddresses: string[];
  includeLoopback: boolean;
}

export interface PeerOptions {
  ice: IceSettings;
  video: RTCRtpCodecParameters[];
  audio: RTCRtpCodecParameters[];
}

export function createPeerConnection(options: PeerOptions): RTCPeerConnection {
  const additional = [...options.ice.announcedAddresses];
  if (options.ice.includeLoopback && !additional.includes('127.0.0.1')) additional.push('127.0.0.1');
  return new RTCPeerConnection({
    iceServers: [],
    icePortRange: options.ice.portRange,
    iceAdditionalHostAddresses: additional,
    iceUseIpv6: false,
    iceUseTcp: false,
    bundlePolicy: 'max-bundle',
    codecs: { video: options.video, audio: options.audio },
    headerExtensions: { video: [useSdesMid(), useAbsSendTime()], audio: [useSdesMid()] },
  });
}

/** Resolves once ICE gathering is complete (or after `timeoutMs`), so answers carry candidates. */
export function gatheringComplete(pc: RTCPeerConnection, timeoutMs = 3000): Promise<void> {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, timeoutMs);
    const { unSubscribe } = pc.iceGatheringStateChange.subscribe((state) => {
      if (state === 'complete') done();
    });
    function done() {
      clearTimeout(timer);
      unSubscribe();
      resolve();
    }
  });
}
