// The GitHub Actions cache, spoken directly (no npm dependencies, like lib.js): the action keeps its
// install there itself, as actions/setup-python does through @actions/cache, so a later job on a
// fresh hosted runner restores it instead of running pip. Only the install's directory (a virtualenv
// holding jobsecrets and its locked dependencies, plus the .pyc files its first run wrote) is ever
// archived: never the spec, the state directory or anything a step wrote a value into.
//
// The contracts, as @actions/cache speaks them (actions/toolkit, packages/cache/src):
// - which service: internal/config.ts getCacheServiceVersion(): v2 when ACTIONS_CACHE_SERVICE_V2 is
//   set and the server is not GHES (GITHUB_SERVER_URL's host is github.com, *.ghe.com or *.localhost),
//   else v1; v1's base URL is ACTIONS_CACHE_URL (else ACTIONS_RESULTS_URL), v2's ACTIONS_RESULTS_URL.
//   Both authenticate with `Authorization: Bearer $ACTIONS_RUNTIME_TOKEN`.
// - v1 (internal/cacheHttpClient.ts; what act serves, nektos/act pkg/artifactcache/handler.go, and
//   GHES): `GET {base}_apis/artifactcache/cache?keys=K&version=V` with
//   `Accept: application/json;api-version=6.0-preview.1` -> 204 (miss) or 200
//   {archiveLocation, cacheKey}; save: `POST {base}_apis/artifactcache/caches` {key, version,
//   cacheSize} -> {cacheId}, then `PATCH .../caches/{id}` chunks (Content-Range `bytes S-E/*`,
//   application/octet-stream, 32 MiB each by default, options.ts), then `POST .../caches/{id}` {size}.
// - v2 (internal/shared/cacheTwirpClient.ts, generated/results/api/v1/cache.twirp-client.ts and
//   cache.ts): Twirp JSON, `POST {origin}/twirp/github.actions.results.api.v1.CacheService/<Method>`
//   with proto field names: CreateCacheEntry {key, version} -> {ok, signed_upload_url, message};
//   FinalizeCacheEntryUpload {key, version, size_bytes (int64 as a string)} -> {ok, entry_id,
//   message}; GetCacheEntryDownloadURL {key, restore_keys, version} -> {ok, signed_download_url,
//   matched_key}. The archive goes to the signed Azure Blob URL: uploadUtils.ts uploads a file under
//   maxSingleShotSize (128 MiB) in one Put Blob, i.e. `PUT` with `x-ms-blob-type: BlockBlob`; the
//   download is a plain GET of the signed URL.
// - version (internal/cacheUtils.ts getCacheVersion): sha256 of the paths, the compression method
//   ('zstd-without-long' or 'gzip', constants.ts) and the salt '1.0', joined with '|', so an entry
//   made with zstd is never handed to a runner that only has gzip.
// Signed URLs are credentials for the blob: they are never printed (toolkit masks them).
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');
const https = require('https');
const net = require('net');
const tls = require('tls');
const { finished } = require('stream');
const { spawn, spawnSync } = require('child_process');

const TWIRP_SERVICE = 'github.actions.results.api.v1.CacheService';
const VERSION_SALT = '1.0';
const V1_ACCEPT = 'application/json;api-version=6.0-preview.1';
const V1_CHUNK = 32 * 1024 * 1024;
const AZURE_BLOB_VERSION = '2023-11-03';
// A cache that does not answer must not hold the job up: the install it would save takes seconds.
const API_TIMEOUT_MS = 10_000;
const TRANSFER_TIMEOUT_MS = 120_000;
// The most of an API answer (JSON: a lookup, a reservation, a Twirp reply; a few hundred bytes)
// read into memory. A service or proxy that sends more (hundreds of MB) is an error the caller
// turns into a warning, not a string too long for node (an uncaught throw) and a step at 1.5 GB.
// Archive downloads are streams, never held whole: no such limit.
const MAX_ANSWER_BYTES = 1024 * 1024;

/** Which cache service this runner has, as @actions/cache decides (config.ts): 'v1' or 'v2'. */
function serviceVersion(env = process.env) {
  let host = 'GITHUB.COM';
  try {
    host = new URL(env.GITHUB_SERVER_URL || 'https://github.com').hostname.trim().toUpperCase();
  } catch {
    // an unparsable server URL: treated like @actions/cache would fail to, as GHES below
    host = '';
  }
  const ghes = !(host === 'GITHUB.COM' || host.endsWith('.GHE.COM') || host.endsWith('.LOCALHOST'));
  if (ghes) return 'v1';
  return env.ACTIONS_CACHE_SERVICE_V2 ? 'v2' : 'v1';
}

/**
 * The cache service of this job, or null when it has none (a self-hosted runner outside Actions,
 * or `act --no-cache-server`): { version, base, token }.
 */
function service(env = process.env) {
  const version = serviceVersion(env);
  const base = version === 'v2' ? env.ACTIONS_RESULTS_URL : env.ACTIONS_CACHE_URL;
  const token = env.ACTIONS_RUNTIME_TOKEN || '';
  // As @actions/cache: v2 needs the token (cacheUtils.ts getRuntimeToken throws without it), v1
  // only its URL (cache.ts isFeatureAvailable; cacheHttpClient.ts sends `$ACTIONS_RUNTIME_TOKEN ||
  // ''`): act gives a JavaScript action ACTIONS_CACHE_URL and no token, its server needs none.
  if (!base || (version === 'v2' && !token)) return null;
  return { version, base: base.endsWith('/') ? base : `${base}/`, token };
}

/** zstd when the runner has it (as @actions/cache prefers, cacheUtils.ts), else gzip. */
function compression() {
  const zstd = spawnSync('zstd', ['--version'], { stdio: 'ignore' });
  return zstd.status === 0 ? 'zstd-without-long' : 'gzip';
}

/**
 * Whether tar can run the zstd decompressor itself: `unzstd` on PATH, which @actions/cache
 * extracts with too (tar.ts: `--use-compress-program unzstd`; GNU tar and bsdtar both take it).
 */
function tarCanUnzstd() {
  return spawnSync('unzstd', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** The entry's version: getCacheVersion(paths, method) of cacheUtils.ts. */
function entryVersion(paths, method) {
  return crypto
    .createHash('sha256')
    .update([...paths, method, VERSION_SALT].join('|'))
    .digest('hex');
}

/** A cache key as @actions/cache accepts it (cache.ts checkKey): <= 512 characters, no comma. */
function checkKey(key) {
  if (key.length > 512 || key.includes(',')) throw new Error(`invalid cache key ${key}`);
}

const USER_AGENT = 'jobsecrets-action';
const REDIRECTS = [301, 302, 303, 307, 308];
const MAX_REDIRECTS = 5;
// Marks a socket that was opened ahead (see WarmAgent), on the socket itself.
const OPENED_AHEAD = Symbol('opened ahead');

/**
 * Node's keep-alive agent (with the options of Node 20's global agent) that can open a connection
 * before the first request to an origin needs it: preconnect() during the step's other work,
 * the request then finds the handshake (one round trip, two or three with TLS) already done.
 * Only an optimisation: a connection that fails or closes before it is used is dropped, and the
 * request opens its own as it always did.
 */
function warmAgent(Base) {
  return class WarmAgent extends Base {
    constructor() {
      super({ keepAlive: true, scheduling: 'lifo', timeout: 5000 });
      this.ahead = new Map();
    }

    /** Open one connection to `url`'s origin now, for the next request to it. */
    open(url) {
      const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
      const host = url.hostname.replace(/^\[|\]$/g, '');
      const key = `${host}:${port}`;
      if (this.ahead.has(key)) return;
      // What the agent itself would connect with (https: the name the certificate must hold).
      const options = { host, port };
      if (url.protocol === 'https:' && !/^[\d.]+$|:/.test(host)) options.servername = host;
      const socket = super.createConnection(options);
      socket[OPENED_AHEAD] = true;
      socket.unref(); // never what keeps the step's process alive
      socket.on('error', () => {}); // its request (if any) hears of it too; unused, it is dropped
      socket.once('close', () => {
        if (this.ahead.get(key) === socket) this.ahead.delete(key);
      });
      this.ahead.set(key, socket);
    }

    createConnection(options, callback) {
      const key = `${options.host}:${options.port}`;
      const socket = this.ahead.get(key);
      if (socket && !socket.destroyed) {
        this.ahead.delete(key);
        socket.ref();
        return socket;
      }
      return super.createConnection(options, callback);
    }
  };
}

const AGENTS = { 'http:': new (warmAgent(http.Agent))(), 'https:': new (warmAgent(https.Agent))() };

/**
 * Open a connection to the cache service of `svc` ahead of its first request (the lookup): for a
 * step that will look its install up (nothing installed on this runner yet), called before it
 * reads the spec, finds Python and hashes the install's files. Not through a proxy (proxyFor):
 * each request through one opens its own tunnel.
 */
function preconnect(svc, env = process.env) {
  try {
    const url = new URL(svc.base);
    if (!proxyFor(url, env)) AGENTS[url.protocol]?.open(url);
  } catch {
    // A base URL node cannot parse: the lookup will say so.
  }
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|::1|\[::1\])$/i;

/**
 * The proxy a request to `target` goes through, as @actions/cache's http-client decides
 * (@actions/http-client proxy.ts: getProxyUrl, checkBypass), so the cache works wherever the
 * runner's own actions reach it, a self-hosted runner behind a proxy included: $https_proxy or
 * $HTTPS_PROXY for an https URL, $http_proxy or $HTTP_PROXY for http (never one for the other);
 * none for a loopback host or one $no_proxy/$NO_PROXY names (comma-separated, case-insensitive:
 * `*`, a host, `host:port`, or a domain whose subdomains are meant too, with or without a leading
 * dot). A proxy without a scheme is http://. Null: connect directly.
 */
function proxyFor(target, env = process.env) {
  const secure = target.protocol === 'https:';
  const raw = secure ? env.https_proxy || env.HTTPS_PROXY : env.http_proxy || env.HTTP_PROXY;
  if (!raw || !target.hostname || LOOPBACK.test(target.hostname)) return null;
  const port = target.port || (secure ? '443' : '80');
  const host = target.hostname.toUpperCase();
  const names = [host, `${host}:${port}`];
  const bypass = (env.no_proxy || env.NO_PROXY || '')
    .split(',')
    .map((entry) => entry.trim().toUpperCase())
    .filter(Boolean)
    .some(
      (entry) =>
        entry === '*' ||
        names.some(
          (name) =>
            name === entry ||
            name.endsWith(`.${entry}`) ||
            (entry.startsWith('.') && name.endsWith(entry))
        )
    );
  if (bypass) return null;
  try {
    return new URL(/^https?:\/\//i.test(raw) ? raw : `http://${raw}`);
  } catch {
    throw new Error('cache: the proxy variable is not a URL');
  }
}

/**
 * A connection to `target` through `proxy`: an HTTP CONNECT tunnel (as @actions/http-client
 * makes one, with the proxy URL's user and password as Basic Proxy-Authorization), and TLS inside
 * it to an https target, its certificate checked against the target's name as on a direct
 * connection. `done(err, socket)`; gives up at `deadline`.
 */
function tunnel(target, proxy, deadline, done) {
  const secure = target.protocol === 'https:';
  const authority = `${target.hostname}:${target.port || (secure ? 443 : 80)}`;
  const headers = { Host: authority, 'User-Agent': USER_AGENT };
  if (proxy.username || proxy.password) {
    const user = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
    headers['Proxy-Authorization'] = `Basic ${Buffer.from(user).toString('base64')}`;
  }
  const viaTls = proxy.protocol === 'https:';
  const connect = (viaTls ? https : http).request({
    host: proxy.hostname.replace(/^\[|\]$/g, ''),
    port: Number(proxy.port) || (viaTls ? 443 : 80),
    method: 'CONNECT',
    path: authority,
    headers,
    agent: false,
  });
  const timer = setTimeout(
    () => connect.destroy(new Error('timed out')),
    Math.max(0, deadline - Date.now())
  );
  const finish = (err, socket) => {
    clearTimeout(timer);
    done(err, socket);
  };
  connect.once('error', (err) => finish(new Error(`cache: proxy: ${err.message}`)));
  connect.once('connect', (res, socket, head) => {
    if (res.statusCode !== 200) {
      socket.destroy();
      finish(new Error(`cache: the proxy refused the tunnel: HTTP ${res.statusCode}`));
      return;
    }
    if (head && head.length) socket.unshift(head);
    if (!secure) {
      finish(null, socket);
      return;
    }
    const name = target.hostname.replace(/^\[|\]$/g, '');
    finish(null, tls.connect({ socket, servername: net.isIP(name) ? undefined : name }));
  });
  connect.end();
}

/**
 * One HTTP(S) request with node's own http/https modules. Not fetch(): Node 20's first fetch loads
 * undici, 53-59 ms to a local server where the first http.get takes 10-18 ms (3 runs each): ~40 ms
 * of every restoring or saving step, whose first request this is.
 *
 * Resolves like a fetch Response, with what this file uses: `status`, `ok`, `headers.get(name)`,
 * `text()`, `json()`; the body read whole first, unless `stream` is set: then `body` is the
 * response stream, read by the caller (a download). The timeout covers the whole exchange, the
 * body included, as fetch's AbortSignal.timeout did. A GET follows up to five redirects, as fetch
 * does; Authorization is not sent on to another origin.
 */
function request(url, init = {}, timeoutMs = API_TIMEOUT_MS) {
  const { method = 'GET', headers = {}, body = null, stream = false } = init;
  return send(new URL(url), method, headers, body, stream, Date.now() + timeoutMs, 0);
}

function send(target, method, headers, body, stream, deadline, hops, fresh = false) {
  return new Promise((resolve, reject) => {
    const module = { 'https:': https, 'http:': http }[target.protocol];
    if (!module) {
      reject(new Error(`cache: unsupported URL scheme ${target.protocol}`));
      return;
    }
    // A User-Agent, as @actions/cache's http-client sends one (some services refuse requests
    // without); fetch sent `node`.
    const sent = { 'User-Agent': USER_AGENT, ...headers };
    if (body !== null) sent['Content-Length'] = Buffer.byteLength(body);
    // `fresh`: never a connection opened ahead (the retry below).
    const agent = fresh ? module.globalAgent : AGENTS[target.protocol];
    let proxy;
    try {
      proxy = proxyFor(target);
    } catch (err) {
      reject(err);
      return;
    }
    // Through a proxy: no agent (node then takes the connection from createConnection), one
    // tunnel per request.
    const options = proxy
      ? {
          method,
          headers: sent,
          createConnection: (_options, done) => tunnel(target, proxy, deadline, done),
        }
      : { method, headers: sent, agent };
    const req = module.request(target, options);
    const timer = setTimeout(
      () => req.destroy(new Error('timed out')),
      Math.max(0, deadline - Date.now())
    );
    const fail = (err) => {
      clearTimeout(timer);
      reject(err);
    };
    let answered = false;
    req.on('error', (err) => {
      // A connection opened ahead that the server (or a middlebox) closed meanwhile: the
      // request goes again once on a new connection, as it would have from the start.
      if (!answered && !fresh && req.socket?.[OPENED_AHEAD] && Date.now() < deadline) {
        clearTimeout(timer);
        send(target, method, headers, body, stream, deadline, hops, true).then(resolve, reject);
        return;
      }
      fail(err);
    });
    req.on('response', (res) => {
      answered = true;
      // Answered once: from now on this connection is an ordinary kept-alive one (a request on it
      // is not sent twice).
      if (req.socket) req.socket[OPENED_AHEAD] = false;
      const status = res.statusCode;
      const location = res.headers.location;
      if (method === 'GET' && REDIRECTS.includes(status) && location && hops < MAX_REDIRECTS) {
        res.resume();
        clearTimeout(timer);
        let next;
        try {
          next = new URL(location, target);
        } catch {
          reject(new Error(`cache: HTTP ${status} to an unreadable location`));
          return;
        }
        const onward = Object.fromEntries(
          Object.entries(headers).filter(
            ([name]) => next.origin === target.origin || name.toLowerCase() !== 'authorization'
          )
        );
        send(next, method, onward, null, stream, deadline, hops + 1).then(resolve, reject);
        return;
      }
      const reply = {
        status,
        ok: status >= 200 && status < 300,
        headers: { get: (name) => res.headers[name.toLowerCase()] ?? null },
      };
      if (stream) {
        // The timer runs until the caller has read the body (or it failed): then it is cleared.
        res.once('close', () => clearTimeout(timer));
        resolve({ ...reply, body: res });
        return;
      }
      const tooLarge = () => {
        fail(new Error(`cache: HTTP ${status} answer larger than ${MAX_ANSWER_BYTES >> 20} MiB`));
        req.destroy();
      };
      if (Number(res.headers['content-length']) > MAX_ANSWER_BYTES) {
        tooLarge();
        return;
      }
      const chunks = [];
      let size = 0;
      res.on('data', (chunk) => {
        size += chunk.length;
        if (size > MAX_ANSWER_BYTES) tooLarge();
        else chunks.push(chunk);
      });
      res.on('error', fail);
      // Cut before the end (a timeout destroys the request, the server drops the connection):
      // an error, not a short body taken for the whole one. After 'end' this changes nothing.
      res.on('close', () => {
        if (!res.complete) fail(new Error('connection closed before the end of the response'));
      });
      res.on('end', () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ ...reply, text: async () => text, json: async () => JSON.parse(text) });
      });
    });
    req.end(body === null ? undefined : body);
  });
}

/** A Twirp call (JSON); the parsed reply, or an error naming the method and status only. */
async function twirp(svc, method, body) {
  const url = new URL(`/twirp/${TWIRP_SERVICE}/${method}`, svc.base).href;
  const res = await request(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${svc.token}` },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method}: HTTP ${res.status}`);
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${method}: not JSON`);
  }
}

// protobuf-ts' fromJson (what the generated client parses with) takes a field under its proto name
// or its JSON (lowerCamel) name: so do we.
const field = (obj, proto, json) => obj?.[proto] ?? obj?.[json];

function v1Url(svc, resource) {
  return `${svc.base}_apis/artifactcache/${resource}`;
}

function v1Headers(svc, extra = {}) {
  const auth = svc.token ? { Authorization: `Bearer ${svc.token}` } : {};
  return { Accept: V1_ACCEPT, ...auth, ...extra };
}

/** Where the archive of `key` can be downloaded, or null on a miss. */
async function lookup(svc, key, version) {
  if (svc.version === 'v2') {
    const reply = await twirp(svc, 'GetCacheEntryDownloadURL', { key, restore_keys: [], version });
    const url = field(reply, 'signed_download_url', 'signedDownloadUrl');
    return reply.ok && url ? url : null;
  }
  const resource = `cache?keys=${encodeURIComponent(key)}&version=${version}`;
  const res = await request(v1Url(svc, resource), { headers: v1Headers(svc) });
  if (res.status === 204) return null;
  if (!res.ok) throw new Error(`cache lookup: HTTP ${res.status}`);
  const entry = await res.json();
  return entry?.archiveLocation || null;
}

/** Spawn `cmd args`; resolves when it exits 0, rejects otherwise (stderr kept for the message). */
function child(cmd, args, options) {
  const proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...options });
  let stderr = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (chunk) => {
    if (stderr.length < 2000) stderr += chunk;
  });
  proc.done = new Promise((resolve, reject) => {
    proc.on('error', reject);
    proc.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}: ${stderr.trim().slice(0, 300)}`))
    );
  });
  return proc;
}

/**
 * Download `url` and unpack it into `dest` as it arrives (download, decompression and tar in
 * parallel: no archive file, no second pass over it). The byte count is checked against
 * Content-Length, as downloadUtils.ts does, so a cut transfer is never taken for a whole one.
 */
async function downloadInto(url, method, dest) {
  const res = await request(url, { stream: true }, TRANSFER_TIMEOUT_MS);
  const body = res.body;
  if (!res.ok) {
    body.destroy();
    throw new Error(`archive download: HTTP ${res.status}`);
  }
  const expected = Number(res.headers.get('content-length') ?? NaN);
  // As the step's user whatever the archive says, with the step's umask and no setuid or setgid
  // bits: a step running as root (a container job, a root self-hosted runner) would otherwise
  // take an archive's owners, world-writable directories and setuid files as they are. GNU tar
  // and bsdtar (macOS) both have these (the defaults of a user that is not root).
  const tarArgs = ['--no-same-owner', '--no-same-permissions', '-xf', '-', '-C', dest];
  // zstd: tar runs the decompressor on a pipe of its own when it can, so the unpacked install
  // (~40 MB for Vault + AWS) does not go through this process's event loop, which shares the
  // runner's cores with the download and the unpacking.
  const tarDecompresses = method !== 'gzip' && tarCanUnzstd();
  let args = tarArgs;
  if (method === 'gzip') args = ['-z', ...tarArgs];
  else if (tarDecompresses) args = ['--use-compress-program', 'unzstd', ...tarArgs];
  const tar = child('tar', args, { stdio: ['pipe', 'ignore', 'pipe'] });
  let sink = tar.stdin;
  const procs = [tar];
  if (method !== 'gzip' && !tarDecompresses) {
    const zstd = child('zstd', ['-d', '-q', '-c'], { stdio: ['pipe', 'pipe', 'pipe'] });
    zstd.stdout.pipe(tar.stdin);
    sink = zstd.stdin;
    procs.push(zstd);
  }
  let received = 0;
  body.on('data', (chunk) => {
    received += chunk.length;
  });
  const piped = new Promise((resolve, reject) => {
    // Ended, or cut (an error, a timeout, a connection closed before the end): finished() tells.
    finished(body, (err) => {
      if (!err) {
        resolve();
        return;
      }
      sink.destroy(); // the decompressor and tar then see the end and exit
      reject(err);
    });
    sink.on('error', reject);
  });
  body.pipe(sink);
  // Every process has exited before the caller removes the directory they write into.
  const outcomes = await Promise.allSettled([piped, ...procs.map((p) => p.done)]);
  const failed = outcomes.find((o) => o.status === 'rejected');
  if (failed) throw failed.reason;
  if (Number.isFinite(expected) && received !== expected) {
    throw new Error(`archive download: ${received} of ${expected} bytes`);
  }
  return received;
}

/**
 * The path (relative to `dir`) of the first entry under `dir` that is not a regular file, a
 * directory or a symlink, or null. An install has nothing else; a device node or a FIFO in a
 * restored one (tar as root creates them as the archive says) is not what was saved. Links are
 * not followed (a directory entry's own type).
 */
function unusualEntry(dir) {
  const pending = [''];
  while (pending.length) {
    const rel = pending.pop();
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = path.join(rel, entry.name);
      if (entry.isDirectory()) pending.push(child);
      else if (!entry.isFile() && !entry.isSymbolicLink()) return child;
    }
  }
  return null;
}

/**
 * Restore the install `name` (a directory of `root`) saved under `key`. Returns null on a miss,
 * else what the restore cost, for the step's log: `{ bytes, lookupSeconds, unpackSeconds }` (the
 * archive's size; the lookup; the download, unpacked as it arrives, and the rename). Unpacked
 * into a temporary directory of `root` first and renamed into place only when complete (the
 * install's `.jobsecrets-complete` marker is in it), so a cut download never leaves a half
 * install that a later step would use.
 */
async function restore(svc, root, name, key) {
  checkKey(key);
  const started = process.hrtime.bigint();
  const since = (from) => Number(process.hrtime.bigint() - from) / 1e9;
  const method = compression();
  const url = await lookup(svc, key, entryVersion([name], method));
  if (!url) return null;
  const lookupSeconds = since(started);
  const looked = process.hrtime.bigint();
  fs.mkdirSync(root, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(root, '.restore-'));
  let bytes;
  try {
    bytes = await downloadInto(url, method, tmp);
    const unpacked = path.join(tmp, name);
    if (!fs.existsSync(path.join(unpacked, '.jobsecrets-complete'))) {
      throw new Error('the archive holds no complete install');
    }
    // Only as root: tar creates device nodes for no one else, and the walk costs 20-50 ms of a
    // restored step (~2,500 entries for Vault + AWS); a planted FIFO or socket is no more than
    // the code a planted install could hold anyway (docs/github.md: `cache: false`).
    const odd = process.getuid?.() === 0 ? unusualEntry(unpacked) : null;
    if (odd) throw new Error(`the archive holds a device, FIFO or socket (${odd}): not an install`);
    try {
      fs.renameSync(unpacked, path.join(root, name));
    } catch (err) {
      // Another job put the same install there first: use theirs.
      if (!fs.existsSync(path.join(root, name, '.jobsecrets-complete'))) throw err;
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return { bytes, lookupSeconds, unpackSeconds: since(looked) };
}

/** Archive `root/name` into `file` with the runner's tar (and zstd), paths relative to `root`. */
async function archive(root, name, file, method) {
  const out = fs.openSync(file, 'w', 0o600);
  try {
    if (method === 'gzip') {
      await child('tar', ['-czf', '-', '-C', root, name], { stdio: ['ignore', out, 'pipe'] }).done;
      return;
    }
    const tar = child('tar', ['-cf', '-', '-C', root, name], { stdio: ['ignore', 'pipe', 'pipe'] });
    const zstd = child('zstd', ['-q', '-T0', '-c'], { stdio: ['pipe', out, 'pipe'] });
    tar.stdout.pipe(zstd.stdin);
    const outcomes = await Promise.allSettled([tar.done, zstd.done]);
    const failed = outcomes.find((o) => o.status === 'rejected');
    if (failed) throw failed.reason;
  } finally {
    fs.closeSync(out);
  }
}

/** Upload `file` (size `size`) as the entry `key`/`version`. */
async function upload(svc, key, version, file, size) {
  if (svc.version === 'v2') {
    const created = await twirp(svc, 'CreateCacheEntry', { key, version });
    const url = field(created, 'signed_upload_url', 'signedUploadUrl');
    // Not ok: another job is saving (or saved) the same key; nothing to do.
    if (!created.ok || !url) return false;
    const put = await request(
      url,
      {
        method: 'PUT',
        headers: {
          'x-ms-blob-type': 'BlockBlob',
          // The Azure SDK always names its REST version (@azure/storage-blob 12.x sends its own,
          // e.g. 2025-11-05); without one a request may be served under an old default version.
          'x-ms-version': AZURE_BLOB_VERSION,
          'Content-Type': 'application/octet-stream',
        },
        body: fs.readFileSync(file),
      },
      TRANSFER_TIMEOUT_MS
    );
    if (!put.ok) throw new Error(`archive upload: HTTP ${put.status}`);
    const done = await twirp(svc, 'FinalizeCacheEntryUpload', { key, version, size_bytes: String(size) });
    if (!done.ok) throw new Error('FinalizeCacheEntryUpload: not ok');
    return true;
  }
  const reserve = await request(v1Url(svc, 'caches'), {
    method: 'POST',
    headers: v1Headers(svc, { 'Content-Type': 'application/json' }),
    body: JSON.stringify({ key, version, cacheSize: size }),
  });
  const reserved = reserve.ok ? await reserve.json() : null;
  // Not reserved: another job is saving the same key (cache.ts treats this as info, not a failure).
  if (!reserved?.cacheId) return false;
  const entry = v1Url(svc, `caches/${reserved.cacheId}`);
  const fd = fs.openSync(file, 'r');
  try {
    for (let start = 0; start < size; start += V1_CHUNK) {
      const length = Math.min(V1_CHUNK, size - start);
      const chunk = Buffer.alloc(length);
      fs.readSync(fd, chunk, 0, length, start);
      const res = await request(
        entry,
        {
          method: 'PATCH',
          headers: v1Headers(svc, {
            'Content-Type': 'application/octet-stream',
            'Content-Range': `bytes ${start}-${start + length - 1}/*`,
          }),
          body: chunk,
        },
        TRANSFER_TIMEOUT_MS
      );
      if (!res.ok) throw new Error(`archive upload: HTTP ${res.status}`);
    }
  } finally {
    fs.closeSync(fd);
  }
  const commit = await request(entry, {
    method: 'POST',
    headers: v1Headers(svc, { 'Content-Type': 'application/json' }),
    body: JSON.stringify({ size }),
  });
  if (!commit.ok) throw new Error(`cache commit: HTTP ${commit.status}`);
  return true;
}

/**
 * Save the install `root/name` under `key`. Returns the archive's size in bytes, or 0 when another
 * job holds the key. The archive is a 0600 file in $RUNNER_TEMP, removed in any case.
 */
async function save(svc, root, name, key) {
  checkKey(key);
  const method = compression();
  const dir = fs.mkdtempSync(path.join(process.env.RUNNER_TEMP || os.tmpdir(), 'jobsecrets-cache-'));
  const file = path.join(dir, method === 'gzip' ? 'cache.tgz' : 'cache.tzst');
  try {
    await archive(root, name, file, method);
    const size = fs.statSync(file).size;
    return (await upload(svc, key, entryVersion([name], method), file, size)) ? size : 0;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

module.exports = {
  service,
  serviceVersion,
  compression,
  entryVersion,
  preconnect,
  proxyFor,
  restore,
  save,
};
