/**
 * OVT signaling (OME v0.20.0): requests and responses with OME's field names and error texts,
 * `ovt://` URLs, and the describe contents with Kiln's per-track codec block, validated member
 * by member.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  describeContents, encodeRequest, encodeResponse, OvtSignalingError, OVT_SIGNALING_VERSION, parseDescribeContents, parseOvtUrl,
  parseRequest, parseResponse, type OvtStreamDescription,
} from '../../src/protocols/ovt/signaling.ts';

const json = (v: unknown) => Buffer.from(JSON.stringify(v));

test('requests read as OME\'s publisher reads them: id, application (any case), target; its 404 texts otherwise', () => {
  assert.deepEqual(parseRequest(json({ id: 3921931, application: 'DESCRIBE', target: 'ovt://h:9000/app/s' })), { id: 3921931, application: 'describe', target: 'ovt://h:9000/app/s' });
  assert.equal(parseRequest(json({ id: 1, application: 'keyframe', target: 'ovt://h/app/s' })).application, 'keyframe');
  const cases: [Buffer, string][] = [
    [Buffer.from('not json'), 'An invalid request : Json format'],
    [json([1, 2]), 'An invalid request : Json format'],
    [json({ application: 'play', target: 'ovt://h/a/s' }), 'An invalid request : id or target or application are invalid'],
    [json({ id: -1, application: 'play', target: 'ovt://h/a/s' }), 'An invalid request : id or target or application are invalid'],
    [json({ id: 2 ** 32, application: 'play', target: 'ovt://h/a/s' }), 'An invalid request : id or target or application are invalid'],
    [json({ id: 1, application: 'play', target: 5 }), 'An invalid request : id or target or application are invalid'],
    [json({ id: 1, application: 'publish', target: 'ovt://h/a/s' }), 'Unknown application'],
  ];
  for (const [message, text] of cases) {
    assert.throws(() => parseRequest(message), (err: Error) => err instanceof OvtSignalingError && err.message === text && err.code === 404, text);
  }
  assert.deepEqual(JSON.parse(encodeRequest({ id: 4, application: 'stop', target: 'ovt://h/a/s' }).toString()), { id: 4, application: 'stop', target: 'ovt://h/a/s' });
});

test('responses need id, application, code and message; contents is optional', () => {
  const r = parseResponse(encodeResponse({ id: 7, application: 'play', code: 200, message: 'ok' }));
  assert.deepEqual(r, { id: 7, application: 'play', code: 200, message: 'ok', contents: undefined });
  assert.equal(parseResponse(json({ id: 0, application: 'STOP', code: 200, message: 'bye' })).application, 'stop');
  for (const bad of [{ id: 1, application: 'play', code: '200', message: 'ok' }, { id: 1, application: 'play', code: 200 }, { application: 'play', code: 200, message: '' }]) {
    assert.throws(() => parseResponse(json(bad)), OvtSignalingError);
  }
  assert.throws(() => parseResponse(Buffer.from('{')), /not a JSON object/);
});

test('ovt:// URLs name host, port (9000 by default), app and stream', () => {
  assert.deepEqual(parseOvtUrl('ovt://origin.example:9100/app/cam?x=1'), { host: 'origin.example', port: 9100, app: 'app', stream: 'cam' });
  assert.deepEqual(parseOvtUrl('ovt://10.0.0.1/live/a%20b'), { host: '10.0.0.1', port: 9000, app: 'live', stream: 'a b' });
  assert.deepEqual(parseOvtUrl('ovt://[::1]:9000/app/s'), { host: '::1', port: 9000, app: 'app', stream: 's' });
  const bad: [string, RegExp][] = [
    ['rtsp://h/app/s', /scheme is not ovt/],
    ['ovt://h/app', /\/\{app\}\/\{stream\}/],
    ['ovt://h/app/s/extra', /\/\{app\}\/\{stream\}/],
    ['ovt:///app/s', /no host|\/\{app\}/],
    ['ovt://h:99999/app/s', /not a URL/],
    ['nonsense', /not a URL/],
  ];
  for (const [url, error] of bad) assert.throws(() => parseOvtUrl(url), error, url);
});

const STREAM: OvtStreamDescription = {
  appName: 'app',
  streamName: 'cam',
  originStreamUUID: '2f1c-…',
  tracks: [
    {
      id: 1, kind: 'video', mimeType: 'video/H264', clockRate: 90000, channels: 0,
      sdpFmtpLine: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
      rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }, { type: 'ccm', parameter: 'fir' }],
      width: 1280, height: 720, frameRate: 29.97, bitrate: 1_500_000,
    },
    {
      id: 2, kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2, sdpFmtpLine: 'minptime=10;useinbandfec=1',
      rtcpFeedback: [], width: 0, height: 0, frameRate: 0, bitrate: 64000, transcodedFrom: { codec: 'AAC', clockRate: 44100, channels: 2 },
    },
  ],
};

test('the describe contents have OME\'s shape (version 0x12, stream, tracks with codecId, mediaType, timebase…) and Kiln\'s codec block', () => {
  const contents = describeContents(STREAM) as { version: number; stream: Record<string, unknown> & { tracks: Record<string, unknown>[] } };
  assert.equal(contents.version, OVT_SIGNALING_VERSION);
  assert.equal(contents.version, 0x12);
  assert.equal(contents.stream.appName, 'app');
  assert.equal(contents.stream.streamName, 'cam');
  assert.equal(contents.stream.originStreamUUID, '2f1c-…');
  assert.deepEqual(contents.stream.playlists, []);
  const [video, audio] = contents.stream.tracks;
  assert.deepEqual(Object.keys(video), ['id', 'name', 'codecId', 'mediaType', 'timebaseNum', 'timebaseDen', 'bitrate', 'startFrameTime', 'lastFrameTime', 'videoTrack', 'audioTrack', 'kiln']);
  assert.equal(video.codecId, 1, 'OME MediaCodecId H264');
  assert.equal(video.mediaType, 0);
  assert.equal(video.timebaseNum, 1);
  assert.equal(video.timebaseDen, 90000);
  assert.deepEqual(video.videoTrack, { framerate: 29.97, width: 1280, height: 720 });
  assert.equal(audio.codecId, 9, 'OME MediaCodecId Opus');
  assert.equal(audio.mediaType, 1);
  assert.deepEqual(audio.audioTrack, { samplerate: 48000, sampleFormat: -1, layout: 3 });
  assert.deepEqual(parseDescribeContents(JSON.parse(JSON.stringify(contents))), STREAM);
});

test('a describe that an edge cannot rebuild tracks from is refused, naming the member', () => {
  const base = () => JSON.parse(JSON.stringify(describeContents(STREAM)));
  const cases: [string, (c: any) => void, RegExp][] = [
    ['no contents', (c) => Object.keys(c).forEach((k) => delete c[k]), /no stream/],
    ['another signaling version', (c) => (c.version = 0x11), /signaling version 17, expected 18/],
    ['tracks not an array', (c) => (c.stream.tracks = {}), /stream.tracks is not an array/],
    ['no tracks', (c) => (c.stream.tracks = []), /no tracks/],
    ['17 tracks', (c) => (c.stream.tracks = Array.from({ length: 17 }, (_, i) => ({ ...c.stream.tracks[0], id: i }))), /more than 16 tracks/],
    ['an OME origin (no kiln block)', (c) => delete c.stream.tracks[0].kiln, /tracks\[0\].kiln missing: the origin is not a Kiln node/],
    ['a codec Kiln does not forward', (c) => (c.stream.tracks[0].kiln.mimeType = 'video/MJPEG'), /tracks\[0\].kiln.mimeType/],
    ['audio mime type on a video track', (c) => (c.stream.tracks[0].kiln.mimeType = 'audio/opus'), /tracks\[0\].kiln.mimeType must be a video codec/],
    ['a duplicate id', (c) => (c.stream.tracks[1].id = 1), /tracks\[1\].id 1 is used twice/],
    ['a negative id', (c) => (c.stream.tracks[1].id = -2), /tracks\[1\].id/],
    ['mediaType 2 (data)', (c) => (c.stream.tracks[1].mediaType = 2), /mediaType must be 0/],
    ['a clock rate of 0', (c) => (c.stream.tracks[0].kiln.clockRate = 0), /clockRate/],
    ['an fmtp line that breaks SDP', (c) => (c.stream.tracks[0].kiln.sdpFmtpLine = 'a=1\r\nm=video'), /sdpFmtpLine must be one line/],
    ['feedback that is not words', (c) => (c.stream.tracks[0].kiln.rtcpFeedback = [{ type: 'nack\r\n' }]), /rtcpFeedback\[0\]/],
    ['9 channels', (c) => (c.stream.tracks[1].kiln.channels = 9), /channels/],
  ];
  for (const [what, spoil, error] of cases) {
    const c = base();
    spoil(c);
    assert.throws(() => parseDescribeContents(c), (err: Error) => err instanceof OvtSignalingError && error.test(err.message), what);
  }
  assert.throws(() => parseDescribeContents(undefined), /no contents/);
  // Absurd facts are read as unknown, not trusted.
  const c = base();
  c.stream.tracks[0].videoTrack = { width: -5, height: 'big', framerate: 1e9 };
  const parsed = parseDescribeContents(c);
  assert.deepEqual([parsed.tracks[0].width, parsed.tracks[0].height, parsed.tracks[0].frameRate], [0, 0, 0]);
});
