"""Live RTSP test camera for Kiln's tests (gst-rtsp-server). Prints `READY <port>` once listening."""
import argparse, signal, sys
import gi
gi.require_version('Gst', '1.0'); gi.require_version('GstRtsp', '1.0'); gi.require_version('GstRtspServer', '1.0')
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer as S

p = argparse.ArgumentParser()
p.add_argument('--port', type=int, required=True)
p.add_argument('--user', default='kiln'); p.add_argument('--password', default='camera-secret')
args = p.parse_args()
Gst.init(None)

VIDEO = ('videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=360,framerate=30/1 ! videoconvert'
         ' ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! video/x-h264,profile=constrained-baseline'
         ' ! rtph264pay name=pay0 pt=96 config-interval=-1')
AAC = next(e for e in ('fdkaacenc', 'voaacenc', 'avenc_aac') if Gst.ElementFactory.find(e))
def audio(rate, ch, enc):
    return (f' audiotestsrc is-live=true wave=sine volume=0.2 samplesperbuffer={rate // 50}'
            f' ! audio/x-raw,rate={rate},channels={ch} ! audioconvert ! audioresample ! {enc} name=pay1 pt=97')
OPUS = audio(48000, 2, 'opusenc ! rtpopuspay')
MOUNTS = {'/h264-opus': VIDEO + OPUS, '/h264-aac': VIDEO + audio(48000, 2, f'{AAC} ! rtpmp4gpay'),
          '/h264-pcmu': VIDEO + audio(8000, 1, 'mulawenc ! rtppcmupay').replace('pt=97', 'pt=0'), '/h264': VIDEO,
          '/digest/h264-opus': VIDEO + OPUS, '/basic/h264-opus': VIDEO + OPUS}

class PathAuth(S.RTSPAuth):
    """One RTSPAuth serves every mount; the challenge (Basic or Digest) depends on the requested path."""
    def do_generate_authenticate_header(self, ctx):
        basic = ctx.uri is not None and ctx.uri.abspath.startswith('/basic/')
        self.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC if basic else GstRtsp.RTSPAuthMethod.DIGEST)
        S.RTSPAuth.do_generate_authenticate_header(self, ctx)

def token(role):
    t = S.RTSPToken(); t.set_string(S.RTSP_TOKEN_MEDIA_FACTORY_ROLE, role); return t

auth = PathAuth()
auth.set_default_token(token('anonymous'))  # unauthenticated requests reach the open mounts
auth.add_digest(args.user, args.password, token('digest'))
auth.add_basic(S.RTSPAuth.make_basic(args.user, args.password), token('basic'))
server = S.RTSPServer(); server.set_address('127.0.0.1'); server.set_service(str(args.port)); server.set_auth(auth)
for path, launch in MOUNTS.items():
    factory = S.RTSPMediaFactory(); factory.set_launch(f'( {launch} )'); factory.set_shared(True)
    own = path.split('/')[1] if path.count('/') > 1 else None
    perms = S.RTSPPermissions()
    for role in ('anonymous', 'digest', 'basic'):
        # ACCESS without CONSTRUCT answers 401 + challenge (ACCESS denied would answer 404).
        perms.add_permission_for_role(role, S.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
        perms.add_permission_for_role(role, S.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, own in (None, role))
    factory.set_permissions(perms)
    server.get_mount_points().add_factory(path, factory)

loop = GLib.MainLoop()
for sig in (signal.SIGTERM, signal.SIGINT):
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
if server.attach(None) == 0:
    sys.exit(f'cannot listen on 127.0.0.1:{args.port}')
print(f'READY {server.get_bound_port()}', flush=True)
loop.run()
