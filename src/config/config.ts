/**
 * Kiln's settings: embedded defaults, overridden by a config file (JSON with comments), overridden
 * by environment variables (SPEC.md §2). `kiln.example.jsonc` documents every setting.
 */
import { readFileSync, existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { isObject } from '../core/json.ts';

/** One application of a virtual host: streams live under `{vhost}/{app}`. */
export interface AppConfig {
  name: string;
  /** When true, WHEP and OME playback need `Authorization: Bearer <password>` too. Default false. */
  playbackRequiresToken: boolean;
  /** OvenMediaEngine's AdmissionWebhooks for this app's WHIP/WHEP/OME-signaling clients. Default none. */
  admissionWebhooks?: AdmissionWebhooksConfig;
  /** OvenMediaEngine's SignedPolicy for this app's WHIP/WHEP/OME-signaling clients. Default none. */
  signedPolicy?: SignedPolicyConfig;
}

/** Which directions an access rule covers. Default both. */
export interface AccessEnables {
  /** WHIP and OME-signaling publishers (OME's "incoming"). */
  publish: boolean;
  /** WHEP and OME-signaling players (OME's "outgoing"). */
  play: boolean;
}

/**
 * OvenMediaEngine's `<AdmissionWebhooks>`, per app: the control server is asked whether a publish
 * or play may open, and told when it closes, in requests signed with `X-OME-Signature`.
 */
export interface AdmissionWebhooksConfig {
  /** The control server's http(s) URL (OME's `ControlServerUrl`). */
  controlServerUrl: string;
  /** The HMAC-SHA1 key of `X-OME-Signature` (OME's `SecretKey`). */
  secretKey: string;
  /** How long to wait for the answer, ms (OME's `Timeout`). Default 3000. */
  timeoutMs: number;
  /** Whether a control server that fails (time-out, unreachable, bad answer) lets clients in. Default false. */
  failOpen: boolean;
  enables: AccessEnables;
}

/** OvenMediaEngine's `<SignedPolicy>`, per app. */
export interface SignedPolicyConfig {
  /** The HMAC-SHA1 key of the URL signatures (OME's `SecretKey`). */
  secretKey: string;
  /** The query parameter holding the policy. Default `policy`. */
  policyQueryKeyName: string;
  /** The query parameter holding the signature. Default `signature`. */
  signatureQueryKeyName: string;
  enables: AccessEnables;
}

export interface VhostConfig {
  name: string;
  apps: AppConfig[];
}

export interface KilnConfig {
  api: { host: string; port: number };
  signaling: { host: string; port: number };
  /**
   * `portSet`: the port was chosen (config file or KILN_OVT_PORT), so a port in use stops Kiln;
   * the default port, when taken, is replaced by a free one (other nodes learn it from the cluster).
   */
  ovt: { host: string; port: number; portSet?: boolean };
  ice: {
    /** UDP port range for WebRTC ICE, inclusive; undefined means ephemeral ports. */
    portRange: [number, number] | undefined;
    /** Addresses to offer as host candidates besides the interfaces' own (e.g. a public IP). */
    announcedAddresses: string[];
    /** Bind ICE to loopback too (127.0.0.1 candidates). Default true. */
    includeLoopback: boolean;
  };
  /** `user:password` pairs; empty means "generate one at first start and keep it in the data dir". */
  accessTokens: string[];
  dataDir: string;
  databaseUrl: string | undefined;
  publicUrl: string;
  nodeId: string;
  tls: { cert: string; key: string } | undefined;
  /** Origins allowed by CORS on the signaling and control API ports; `*` allows any. Default `*`. */
  corsOrigins: string[];
  /**
   * Where the web console (served at `/console/` on the signaling port) calls the control API, when
   * browsers reach it by another address than the page's host and the API port (a reverse proxy);
   * undefined (the default): `<page protocol>//<page host>:<API port>`.
   */
  consoleApiUrl: string | undefined;
  /** The web console's build directory. Default undefined: `<repo>/console/dist`. */
  consoleDir: string | undefined;
  vhosts: VhostConfig[];
  limits: {
    /** Largest accepted HTTP request body, bytes. Default 256 KiB. */
    bodyBytes: number;
    /** Largest accepted WebSocket message, bytes. Default 256 KiB. */
    wsMessageBytes: number;
    /** A publisher whose media stops for this long is considered gone, ms. Default 10000. */
    publisherTimeoutMs: number;
    /** A pull source (RTSP) must connect and answer each request within this long, ms. Default 5000. */
    pullTimeoutMs: number;
  };
  rooms: {
    /** The application (in the first vhost) that holds room participants' streams. Default `rooms`. */
    app: string;
    /** A room session with nobody in it ends after this long, ms. Default 5000. */
    emptyTimeoutMs: number;
    /** A participant whose room WebSocket is silent (no ping) for this long is removed, ms. Default 10000. */
    pingTimeoutMs: number;
    /** Dollars per member-minute for SignalWire's `cost_in_dollars`. Default 0 (no cost). */
    pricePerMemberMinute: number;
  };
  recordings: {
    /**
     * OpenVidu's `openvidu.recording.free-access`: recording files are served without credentials,
     * and a stopped recording reports `available` with its `url`. Default false.
     */
    freeAccess: boolean;
    /** The composed video's canvas and frame rate. Default 1280x720 at 30 fps. */
    width: number;
    height: number;
    fps: number;
    /** How long `stop` waits for the file to be composed before it answers anyway, ms. Default 120000. */
    stopWaitMs: number;
  };
  /** The ffmpeg executable: pulled AAC/G.711 audio to Opus, and recordings. Default `ffmpeg`. */
  ffmpegPath: string;
  logLevel: string;
  /** Whether `/metrics` asks for API credentials. Default false. */
  metricsRequireAuth: boolean;
  events: {
    /**
     * Endpoints that receive every event (JSON POST, `X-Kiln-Signature: sha256=<hex HMAC-SHA256 of
     * the body with the endpoint's secret>`), at least once and in order, from the store's outbox.
     */
    webhooks: EventWebhookConfig[];
    /** Events are kept this long for `GET /v1/events` once every endpoint has them, hours. Default 24. */
    retentionHours: number;
  };
}

/** One event webhook endpoint. */
export interface EventWebhookConfig {
  url: string;
  secret: string;
}

/** Error for a setting that cannot be used; main prints its message as one line and exits 2. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function defaultConfig(): KilnConfig {
  return {
    api: { host: '0.0.0.0', port: 8081 },
    signaling: { host: '0.0.0.0', port: 3333 },
    ovt: { host: '0.0.0.0', port: 9000 },
    ice: { portRange: undefined, announcedAddresses: [], includeLoopback: true },
    accessTokens: [],
    dataDir: './data',
    databaseUrl: undefined,
    publicUrl: 'http://localhost:3333',
    nodeId: hostname(),
    tls: undefined,
    corsOrigins: ['*'],
    consoleApiUrl: undefined,
    consoleDir: undefined,
    vhosts: [{ name: 'default', apps: [{ name: 'app', playbackRequiresToken: false }] }],
    limits: { bodyBytes: 256 * 1024, wsMessageBytes: 256 * 1024, publisherTimeoutMs: 10_000, pullTimeoutMs: 5000 },
    rooms: { app: 'rooms', emptyTimeoutMs: 5000, pingTimeoutMs: 10_000, pricePerMemberMinute: 0 },
    recordings: { freeAccess: false, width: 1280, height: 720, fps: 30, stopWaitMs: 120_000 },
    ffmpegPath: 'ffmpeg',
    logLevel: 'info',
    metricsRequireAuth: false,
    events: { webhooks: [], retentionHours: 24 },
  };
}

/** Strips `//` and `/* *\/` comments and trailing commas outside strings, so JSONC parses as JSON. */
export function stripJsonComments(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 2;
    } else {
      out += c;
      i++;
    }
  }
  return out.replace(/,(\s*[}\]])/g, '$1');
}

function port(value: unknown, what: string): number {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw new ConfigError(`${what} must be a port number 0-65535, got ${JSON.stringify(value)}`);
  }
  return n;
}

function portRange(value: string, what: string): [number, number] {
  const m = /^(\d+)-(\d+)$/.exec(value.trim());
  if (!m) throw new ConfigError(`${what} must look like 10000-10100, got ${JSON.stringify(value)}`);
  const lo = port(m[1], what);
  const hi = port(m[2], what);
  if (lo < 1 || hi < lo) throw new ConfigError(`${what} must be an ascending range of non-zero ports, got ${value}`);
  return [lo, hi];
}

/** The non-empty items of a comma-separated value. */
function commaList(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter(Boolean);
}

function tokens(value: string, what: string): string[] {
  const list = commaList(value);
  for (const t of list) {
    const colon = t.indexOf(':');
    if (colon <= 0 || colon === t.length - 1) {
      throw new ConfigError(`${what} must be comma-separated user:password pairs`);
    }
  }
  return list;
}

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** An absolute http(s) URL for the console's API calls, without a trailing slash. */
function consoleApiUrl(v: unknown, what: string): string {
  let url: URL | undefined;
  try {
    url = typeof v === 'string' ? new URL(v) : undefined;
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.search || url.hash) {
    throw new ConfigError(`${what} must be an absolute http(s) URL without a query, got ${JSON.stringify(v)}`);
  }
  return String(v).replace(/\/+$/, '');
}


/** Applies a parsed config file on top of `config`, checking every value it sets. */
function applyFile(config: KilnConfig, file: Record<string, unknown>, path: string): void {
  const where = (k: string) => `${path}: ${k}`;
  const known = new Set(['api', 'signaling', 'ovt', 'ice', 'accessTokens', 'dataDir', 'databaseUrl', 'publicUrl',
    'nodeId', 'tls', 'corsOrigins', 'consoleApiUrl', 'consoleDir', 'vhosts', 'limits', 'logLevel', 'metricsRequireAuth', 'ffmpegPath', 'rooms', 'recordings', 'events']);
  for (const k of Object.keys(file)) if (!known.has(k)) throw new ConfigError(where(`unknown setting "${k}"`));
  for (const key of ['api', 'signaling', 'ovt'] as const) {
    const v = file[key];
    if (v === undefined) continue;
    if (!isObject(v)) throw new ConfigError(where(`${key} must be an object`));
    if (v.host !== undefined) {
      if (typeof v.host !== 'string') throw new ConfigError(where(`${key}.host must be a string`));
      config[key].host = v.host;
    }
    if (v.port !== undefined) config[key].port = port(v.port, where(`${key}.port`));
    if (v.port !== undefined && key === 'ovt') config.ovt.portSet = true;
  }
  if (file.ice !== undefined) {
    const ice = file.ice;
    if (!isObject(ice)) throw new ConfigError(where('ice must be an object'));
    if (ice.portRange !== undefined && ice.portRange !== null) {
      config.ice.portRange = portRange(String(ice.portRange), where('ice.portRange'));
    }
    if (ice.announcedAddresses !== undefined) {
      if (!Array.isArray(ice.announcedAddresses) || !ice.announcedAddresses.every((a) => typeof a === 'string')) {
        throw new ConfigError(where('ice.announcedAddresses must be an array of strings'));
      }
      config.ice.announcedAddresses = ice.announcedAddresses as string[];
    }
    if (ice.includeLoopback !== undefined) {
      if (typeof ice.includeLoopback !== 'boolean') throw new ConfigError(where('ice.includeLoopback must be true or false'));
      config.ice.includeLoopback = ice.includeLoopback;
    }
  }
  if (file.accessTokens !== undefined) {
    if (!Array.isArray(file.accessTokens)) throw new ConfigError(where('accessTokens must be an array'));
    config.accessTokens = tokens(file.accessTokens.join(','), where('accessTokens'));
  }
  for (const key of ['dataDir', 'publicUrl', 'nodeId', 'logLevel', 'databaseUrl', 'ffmpegPath', 'consoleDir'] as const) {
    const v = file[key];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string' || v === '') throw new ConfigError(where(`${key} must be a non-empty string`));
    config[key] = v;
  }
  if (file.metricsRequireAuth !== undefined) {
    if (typeof file.metricsRequireAuth !== 'boolean') throw new ConfigError(where('metricsRequireAuth must be true or false'));
    config.metricsRequireAuth = file.metricsRequireAuth;
  }
  if (file.tls !== undefined && file.tls !== null) {
    const t = file.tls;
    if (!isObject(t) || typeof t.cert !== 'string' || typeof t.key !== 'string') {
      throw new ConfigError(where('tls must be {"cert": path, "key": path}'));
    }
    config.tls = { cert: t.cert, key: t.key };
  }
  if (file.corsOrigins !== undefined) {
    if (!Array.isArray(file.corsOrigins) || !file.corsOrigins.every((o) => typeof o === 'string')) {
      throw new ConfigError(where('corsOrigins must be an array of strings'));
    }
    config.corsOrigins = file.corsOrigins as string[];
  }
  if (file.consoleApiUrl !== undefined && file.consoleApiUrl !== null) {
    config.consoleApiUrl = consoleApiUrl(file.consoleApiUrl, where('consoleApiUrl'));
  }
  if (file.vhosts !== undefined) {
    if (!Array.isArray(file.vhosts) || file.vhosts.length === 0) throw new ConfigError(where('vhosts must be a non-empty array'));
    config.vhosts = file.vhosts.map((vh, i) => {
      if (!isObject(vh) || typeof vh.name !== 'string' || !NAME.test(vh.name)) {
        throw new ConfigError(where(`vhosts[${i}].name must be 1-64 of A-Z a-z 0-9 _ . -`));
      }
      if (!Array.isArray(vh.apps)) throw new ConfigError(where(`vhosts[${i}].apps must be an array`));
      const apps = vh.apps.map((app, j) => {
        if (!isObject(app) || typeof app.name !== 'string' || !NAME.test(app.name)) {
          throw new ConfigError(where(`vhosts[${i}].apps[${j}].name must be 1-64 of A-Z a-z 0-9 _ . -`));
        }
        if (app.name === 'room') throw new ConfigError(where(`vhosts[${i}].apps[${j}]: "room" is the path of the room WebSocket, not an app name`));
        if (app.playbackRequiresToken !== undefined && typeof app.playbackRequiresToken !== 'boolean') {
          throw new ConfigError(where(`vhosts[${i}].apps[${j}].playbackRequiresToken must be true or false`));
        }
        const known = new Set(['name', 'playbackRequiresToken', 'admissionWebhooks', 'signedPolicy']);
        for (const k of Object.keys(app)) if (!known.has(k)) throw new ConfigError(where(`vhosts[${i}].apps[${j}]: unknown setting "${k}"`));
        const out: AppConfig = { name: app.name, playbackRequiresToken: app.playbackRequiresToken === true };
        if (app.admissionWebhooks !== undefined) out.admissionWebhooks = admissionWebhooks(app.admissionWebhooks, where(`vhosts[${i}].apps[${j}].admissionWebhooks`));
        if (app.signedPolicy !== undefined) out.signedPolicy = signedPolicy(app.signedPolicy, where(`vhosts[${i}].apps[${j}].signedPolicy`));
        return out;
      });
      return { name: vh.name, apps };
    });
  }
  if (file.limits !== undefined) {
    const l = file.limits;
    if (!isObject(l)) throw new ConfigError(where('limits must be an object'));
    for (const key of ['bodyBytes', 'wsMessageBytes', 'publisherTimeoutMs', 'pullTimeoutMs'] as const) {
      const v = l[key];
      if (v === undefined) continue;
      if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new ConfigError(where(`limits.${key} must be a positive integer`));
      config.limits[key] = v;
    }
  }
  if (file.rooms !== undefined) {
    const r = file.rooms;
    if (!isObject(r)) throw new ConfigError(where('rooms must be an object'));
    if (r.app !== undefined) {
      if (typeof r.app !== 'string' || !NAME.test(r.app)) throw new ConfigError(where('rooms.app must be 1-64 of A-Z a-z 0-9 _ . -'));
      if (r.app === 'room' || r.app.startsWith('.')) throw new ConfigError(where('rooms.app cannot be "room" (the room WebSocket\'s path) nor start with "."'));
      config.rooms.app = r.app;
    }
    for (const key of ['emptyTimeoutMs', 'pingTimeoutMs'] as const) {
      const v = r[key];
      if (v === undefined) continue;
      if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new ConfigError(where(`rooms.${key} must be a positive integer`));
      config.rooms[key] = v;
    }
    if (r.pricePerMemberMinute !== undefined) {
      const v = r.pricePerMemberMinute;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new ConfigError(where('rooms.pricePerMemberMinute must be a number ≥ 0'));
      config.rooms.pricePerMemberMinute = v;
    }
  }
  if (file.events !== undefined) applyEvents(config, file.events, where);
  const roomsApp = config.vhosts[0].apps.find((a) => a.name === config.rooms.app);
  if (roomsApp && (roomsApp.admissionWebhooks || roomsApp.signedPolicy)) {
    throw new ConfigError(where(`the app "${roomsApp.name}" holds room media (rooms.app): admissionWebhooks and signedPolicy do not apply to it`));
  }
  if (file.recordings !== undefined) {
    const r = file.recordings;
    if (!isObject(r)) throw new ConfigError(where('recordings must be an object'));
    if (r.freeAccess !== undefined) {
      if (typeof r.freeAccess !== 'boolean') throw new ConfigError(where('recordings.freeAccess must be true or false'));
      config.recordings.freeAccess = r.freeAccess;
    }
    const limits = { width: [16, 3840], height: [16, 2160], fps: [1, 60], stopWaitMs: [0, 3_600_000] } as const;
    for (const key of ['width', 'height', 'fps', 'stopWaitMs'] as const) {
      const v = r[key];
      if (v === undefined) continue;
      const [min, max] = limits[key];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new ConfigError(where(`recordings.${key} must be an integer from ${min} to ${max}`));
      if ((key === 'width' || key === 'height') && v % 2 !== 0) throw new ConfigError(where(`recordings.${key} must be even (H.264 4:2:0)`));
      config.recordings[key] = v;
    }
  }
}

/** An http(s) URL for an event webhook, or a ConfigError naming `what`. */
function webhookUrl(value: unknown, what: string): string {
  let url: URL | undefined;
  try {
    url = typeof value === 'string' ? new URL(value) : undefined;
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw new ConfigError(`${what} must be an absolute http(s) URL, got ${JSON.stringify(value)}`);
  return url.href;
}

/** Fails unless `v` is an object whose keys are all in `known`. */
function objectOf(v: unknown, known: string[], what: string, shape: string): Record<string, unknown> {
  if (!isObject(v)) throw new ConfigError(`${what} must be an object ${shape}`);
  for (const k of Object.keys(v)) if (!known.includes(k)) throw new ConfigError(`${what}: unknown setting "${k}"`);
  return v;
}

function secretKey(v: unknown, what: string, algorithm = 'HMAC-SHA1'): string {
  if (typeof v !== 'string' || v === '') throw new ConfigError(`${what} must be a non-empty string (the ${algorithm} key)`);
  return v;
}

function enables(v: unknown, what: string): AccessEnables {
  if (v === undefined) return { publish: true, play: true };
  const e = objectOf(v, ['publish', 'play'], what, '{"publish": bool, "play": bool}');
  for (const k of ['publish', 'play'] as const) {
    if (e[k] !== undefined && typeof e[k] !== 'boolean') throw new ConfigError(`${what}.${k} must be true or false`);
  }
  return { publish: e.publish !== false, play: e.play !== false };
}

function admissionWebhooks(v: unknown, what: string): AdmissionWebhooksConfig {
  const a = objectOf(v, ['controlServerUrl', 'secretKey', 'timeoutMs', 'failOpen', 'enables'], what, '{"controlServerUrl", "secretKey", …}');
  const timeoutMs = a.timeoutMs ?? 3000;
  if (typeof timeoutMs !== 'number' || !Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 60_000) {
    throw new ConfigError(`${what}.timeoutMs must be an integer from 1 to 60000 (ms), got ${JSON.stringify(a.timeoutMs)}`);
  }
  if (a.failOpen !== undefined && typeof a.failOpen !== 'boolean') throw new ConfigError(`${what}.failOpen must be true or false`);
  return {
    controlServerUrl: webhookUrl(a.controlServerUrl, `${what}.controlServerUrl`),
    secretKey: secretKey(a.secretKey, `${what}.secretKey`),
    timeoutMs,
    failOpen: a.failOpen === true,
    enables: enables(a.enables, `${what}.enables`),
  };
}

/** Query keys the signaling reads itself (WHIP/WHEP, OME's WebSocket); a signed policy cannot take them. */
const SIGNALING_QUERY_KEYS = ['direction', 'session', 'transport', 'token'];

function signedPolicy(v: unknown, what: string): SignedPolicyConfig {
  const s = objectOf(v, ['secretKey', 'policyQueryKeyName', 'signatureQueryKeyName', 'enables'], what, '{"secretKey", …}');
  const keyName = (k: 'policyQueryKeyName' | 'signatureQueryKeyName', fallback: string): string => {
    const name = s[k] ?? fallback;
    if (typeof name !== 'string' || !/^[A-Za-z0-9_.~-]{1,64}$/.test(name)) throw new ConfigError(`${what}.${k} must be 1-64 of A-Z a-z 0-9 _ . ~ -, got ${JSON.stringify(s[k])}`);
    if (SIGNALING_QUERY_KEYS.includes(name)) throw new ConfigError(`${what}.${k} cannot be "${name}" (a query parameter of the signaling)`);
    return name;
  };
  const policyQueryKeyName = keyName('policyQueryKeyName', 'policy');
  const signatureQueryKeyName = keyName('signatureQueryKeyName', 'signature');
  if (policyQueryKeyName === signatureQueryKeyName) throw new ConfigError(`${what}: policyQueryKeyName and signatureQueryKeyName must differ`);
  return { secretKey: secretKey(s.secretKey, `${what}.secretKey`), policyQueryKeyName, signatureQueryKeyName, enables: enables(s.enables, `${what}.enables`) };
}

function applyEvents(config: KilnConfig, e: unknown, where: (k: string) => string): void {
  if (!isObject(e)) throw new ConfigError(where('events must be an object'));
  if (e.webhooks !== undefined) {
    if (!Array.isArray(e.webhooks)) throw new ConfigError(where('events.webhooks must be an array of {"url", "secret"}'));
    config.events.webhooks = e.webhooks.map((w, i) => {
      if (!isObject(w)) throw new ConfigError(where(`events.webhooks[${i}] must be {"url", "secret"}`));
      return { url: webhookUrl(w.url, where(`events.webhooks[${i}].url`)), secret: secretKey(w.secret, where(`events.webhooks[${i}].secret`), 'HMAC-SHA256') };
    });
    if (new Set(config.events.webhooks.map((w) => w.url)).size !== config.events.webhooks.length) throw new ConfigError(where('events.webhooks lists a URL twice'));
  }
  if (e.retentionHours !== undefined) {
    const v = e.retentionHours;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > 24 * 365) throw new ConfigError(where('events.retentionHours must be a number of hours, more than 0'));
    config.events.retentionHours = v;
  }
}

/**
 * Loads the configuration: defaults, then the file named by `KILN_CONFIG` (or `./kiln.config.jsonc`
 * when it exists), then the environment. Throws ConfigError with a one-line reason.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): KilnConfig {
  const config = defaultConfig();
  let publicUrlInFile = false;
  const path = env.KILN_CONFIG ?? (existsSync('kiln.config.jsonc') ? 'kiln.config.jsonc' : undefined);
  if (path) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(stripJsonComments(readFileSync(path, 'utf8')));
    } catch (err) {
      throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
    }
    if (!isObject(parsed)) throw new ConfigError(`${path}: the config file must hold a JSON object`);
    applyFile(config, parsed, path);
    publicUrlInFile = parsed.publicUrl !== undefined && parsed.publicUrl !== null;
  }
  if (env.KILN_API_PORT) config.api.port = port(env.KILN_API_PORT, 'KILN_API_PORT');
  if (env.KILN_API_HOST) config.api.host = env.KILN_API_HOST;
  if (env.KILN_SIGNALING_PORT) config.signaling.port = port(env.KILN_SIGNALING_PORT, 'KILN_SIGNALING_PORT');
  if (env.KILN_SIGNALING_HOST) config.signaling.host = env.KILN_SIGNALING_HOST;
  if (env.KILN_OVT_PORT) {
    config.ovt.port = port(env.KILN_OVT_PORT, 'KILN_OVT_PORT');
    config.ovt.portSet = true;
  }
  if (env.KILN_OVT_HOST) config.ovt.host = env.KILN_OVT_HOST;
  if (env.KILN_ICE_PORTS) config.ice.portRange = portRange(env.KILN_ICE_PORTS, 'KILN_ICE_PORTS');
  if (env.KILN_ICE_ADDRESSES) config.ice.announcedAddresses = commaList(env.KILN_ICE_ADDRESSES);
  if (env.KILN_ACCESS_TOKEN) config.accessTokens = tokens(env.KILN_ACCESS_TOKEN, 'KILN_ACCESS_TOKEN');
  if (env.KILN_DATA_DIR) config.dataDir = env.KILN_DATA_DIR;
  if (env.KILN_DATABASE_URL) config.databaseUrl = env.KILN_DATABASE_URL;
  if (env.KILN_PUBLIC_URL) config.publicUrl = env.KILN_PUBLIC_URL;
  else if (!publicUrlInFile && config.signaling.port > 0) {
    // Unset: this node's own signaling listener as seen from this machine (the SPEC default,
    // http://localhost:3333, with the default port).
    config.publicUrl = `${config.tls || env.KILN_TLS_CERT ? 'https' : 'http'}://localhost:${config.signaling.port}`;
  }
  if (env.KILN_NODE_ID) config.nodeId = env.KILN_NODE_ID;
  if (env.KILN_CORS_ORIGINS) config.corsOrigins = commaList(env.KILN_CORS_ORIGINS);
  if (env.KILN_CONSOLE_API_URL) config.consoleApiUrl = consoleApiUrl(env.KILN_CONSOLE_API_URL, 'KILN_CONSOLE_API_URL');
  if (env.KILN_CONSOLE_DIR) config.consoleDir = env.KILN_CONSOLE_DIR;
  if (env.KILN_METRICS_AUTH) config.metricsRequireAuth = env.KILN_METRICS_AUTH === 'true' || env.KILN_METRICS_AUTH === '1';
  if (env.KILN_LOG_LEVEL) config.logLevel = env.KILN_LOG_LEVEL;
  if (env.KILN_FFMPEG) config.ffmpegPath = env.KILN_FFMPEG;
  if (env.KILN_RECORDING_FREE_ACCESS) config.recordings.freeAccess = env.KILN_RECORDING_FREE_ACCESS === 'true' || env.KILN_RECORDING_FREE_ACCESS === '1';
  if (env.KILN_EVENT_WEBHOOKS) {
    if (!env.KILN_EVENT_SECRET) throw new ConfigError('KILN_EVENT_WEBHOOKS needs KILN_EVENT_SECRET (the HMAC-SHA256 key of its signatures)');
    const urls = commaList(env.KILN_EVENT_WEBHOOKS).map((u) => webhookUrl(u, 'KILN_EVENT_WEBHOOKS'));
    config.events.webhooks = [...new Set(urls)].map((url) => ({ url, secret: env.KILN_EVENT_SECRET! }));
  }
  if (env.KILN_TLS_CERT || env.KILN_TLS_KEY) {
    if (!env.KILN_TLS_CERT || !env.KILN_TLS_KEY) throw new ConfigError('KILN_TLS_CERT and KILN_TLS_KEY must be set together');
    config.tls = { cert: env.KILN_TLS_CERT, key: env.KILN_TLS_KEY };
  }
  let url: URL;
  try {
    url = new URL(config.publicUrl);
  } catch {
    throw new ConfigError(`KILN_PUBLIC_URL must be an absolute http(s) URL, got ${JSON.stringify(config.publicUrl)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`KILN_PUBLIC_URL must be http or https, got ${url.protocol}`);
  }
  if (config.databaseUrl && !/^postgres(ql)?:\/\//.test(config.databaseUrl)) {
    throw new ConfigError('KILN_DATABASE_URL must be a postgres:// URL');
  }
  config.dataDir = resolve(config.dataDir);
  if (config.consoleDir !== undefined) config.consoleDir = resolve(config.consoleDir);
  return config;
}
