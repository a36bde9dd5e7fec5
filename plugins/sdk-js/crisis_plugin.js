// crisis_plugin: the JavaScript SDK for crisis notifier plugins (componentize-js).
//
//   import { notifier, http, PluginError } from '../../plugins/sdk-js/crisis_plugin.js';
//   export const { meta, notify } = notifier.plugin({ name, version, description,
//     allowedHosts: ['*'], configKeys: ['url'], send(ctx, note) { ... } });
//
// Outgoing HTTP uses wasi:http directly (not fetch), so the host's answer
// keeps its meaning: a request the host refuses is `denied`, a transport
// failure or 408/429/5xx answer is `transient`, any other 4xx is `permanent`
// and a malformed URL is `config`. Throw a PluginError for your own errors;
// anything else thrown becomes `permanent` with its message.
import { log as hostLog, config as hostConfig } from 'crisis:plugin/host@0.1.2';
import { handle } from 'wasi:http/outgoing-handler@0.2.12';
import { Fields, OutgoingRequest, OutgoingBody, IncomingBody } from 'wasi:http/types@0.2.12';

// wasi:io output streams accept at most 4096 bytes per blocking write.
const CHUNK = 4096;
// Bytes of an error response kept in the error message.
const SNIPPET = 200;
const dispose = (r) => {
  const d = r && (r[Symbol.dispose] ?? r[Symbol.for('dispose')]);
  if (d) d.call(r);
};

/** A plugin error for the host: componentize-js returns `payload` as the `err` of the export. */
export class PluginError extends Error {
  constructor(kind, message) {
    super(`${kind}: ${message}`);
    this.kind = kind;
    this.payload = { tag: kind, val: String(message) };
  }
  static config(m) { return new PluginError('config', m); }
  static denied(m) { return new PluginError('denied', m); }
  static transient(m) { return new PluginError('transient', m); }
  static permanent(m) { return new PluginError('permanent', m); }
}

const asPluginError = (e) =>
  e instanceof PluginError ? e : PluginError.permanent(e && e.message ? e.message : String(e));

/** Logging through the host (the host scrubs secrets and caps the volume). */
const log = {
  debug: (m) => hostLog('debug', String(m)),
  info: (m) => hostLog('info', String(m)),
  warn: (m) => hostLog('warn', String(m)),
  error: (m) => hostLog('error', String(m)),
};

/** A config value (grant config merged with the target's), trimmed; undefined when unset or blank. */
function config(key) {
  const v = hostConfig(key);
  return v == null || !String(v).trim() ? undefined : String(v).trim();
}

/** A config value that must be set; a `config` error naming where to set it otherwise. */
function requireConfig(key) {
  const v = config(key);
  if (v === undefined) {
    throw PluginError.config(`config \`${key}\` is not set: add \`config = { ${key} = "..." }\` to the plugin's [plugins.NAME] grant or to the target`);
  }
  return v;
}

/** The generic `crisis.notification` JSON document (the shape webhook-notify posts). */
function document(ctx, note, source) {
  const inc = note.incident;
  return {
    kind: 'crisis.notification',
    version: 1,
    source,
    invocation_id: ctx.invocationId,
    mode: ctx.mode,
    // u64 arrives as a BigInt; JSON has no BigInt.
    sent_at_unix_ms: Number(ctx.nowUnixMs),
    target: note.target,
    subject: note.subject,
    text: note.bodyText,
    incident: {
      id: inc.id,
      title: inc.title,
      playbook: inc.playbookId,
      severity: inc.severity,
      category: inc.category,
      phase: inc.phase,
      summary: inc.summary,
      labels: Object.fromEntries(inc.labels),
    },
    params: Object.fromEntries(note.params),
  };
}

/** The `meta` and `notify` exports of a notifier component, from a description and a `send` function. */
function plugin({ name, version, description, allowedHosts = [], configKeys = [], send }) {
  return {
    meta: { describe: () => ({ name, version, description, allowedHosts, configKeys }) },
    notify: {
      send(ctx, note) {
        try {
          const r = send(ctx, note) ?? {};
          return { providerId: r.providerId ?? undefined, httpStatus: r.httpStatus ?? undefined, detail: r.detail ?? '' };
        } catch (e) {
          throw asPluginError(e);
        }
      },
    },
  };
}

export const notifier = { plugin, config, requireConfig, log, document };

/** A wasi:http error code as the plugin error the host should record. */
function mapErrorCode(code) {
  const tag = code && code.tag;
  switch (tag) {
    case 'HTTP-request-denied':
      return PluginError.denied("request denied by the host's egress policy (host not granted?)");
    case 'destination-IP-prohibited':
      return PluginError.denied('destination address is private/loopback and not granted (allow_private)');
    case 'HTTP-request-body-size':
      return PluginError.denied(`request body too large (limit ${code.val})`);
    case 'HTTP-response-body-size':
      return PluginError.denied(`response body too large (limit ${code.val})`);
    case 'HTTP-request-URI-invalid':
      return PluginError.config('the URL was refused as an invalid URI');
    default:
      return PluginError.transient(`HTTP transport error: ${tag ?? code}${code && code.val != null ? ` ${code.val}` : ''}`);
  }
}

const errorOf = (e) => (e && e.payload !== undefined ? e.payload : e);

function splitUrl(url) {
  let u;
  try {
    u = new URL(url);
  } catch (e) {
    throw PluginError.config(`\`${url}\` is not a URL: ${e.message}`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') {
    throw PluginError.config(`\`${url}\` must start with https:// or http://`);
  }
  if (!u.host) throw PluginError.config(`\`${url}\` has no host`);
  return { scheme: { tag: u.protocol === 'https:' ? 'HTTPS' : 'HTTP' }, authority: u.host, path: (u.pathname || '/') + u.search, origin: `${u.protocol}//${u.host}` };
}

const METHODS = ['get', 'head', 'post', 'put', 'delete', 'connect', 'options', 'trace', 'patch'];

/** The upstream's answer: `status`, `headers` (lowercase names), `body` (Uint8Array), `text()`, `json()`, `header(name)`. */
class Response {
  constructor(status, headers, body) {
    this.status = status;
    this.headers = headers;
    this.body = body;
  }
  header(name) { return this.headers[name.toLowerCase()]; }
  text() { return new TextDecoder().decode(this.body); }
  json() { return JSON.parse(this.text()); }
}

/**
 * Send one request through the host and return its Response for any status
 * (`ok: false` leaves non-2xx answers to you). Throws PluginError: `config`
 * for a bad URL, `denied` when the host refuses, `transient` for transport
 * failures; by default also `transient` for 408/429/5xx, `permanent` for other non-2xx.
 */
function request(method, url, { headers = {}, body = undefined, raiseForStatus = true } = {}) {
  const { scheme, authority, path, origin } = splitUrl(url);
  const enc = new TextEncoder();
  const bytes = body === undefined ? new Uint8Array(0) : typeof body === 'string' ? enc.encode(body) : body;
  let fields;
  try {
    fields = Fields.fromList(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), enc.encode(String(v))]));
  } catch (e) {
    throw PluginError.config(`a request header was refused: ${JSON.stringify(errorOf(e))}`);
  }
  const req = new OutgoingRequest(fields);
  const m = method.toLowerCase();
  try {
    req.setMethod(METHODS.includes(m) ? { tag: m } : { tag: 'other', val: method });
    req.setScheme(scheme);
    req.setAuthority(authority);
    req.setPathWithQuery(path);
  } catch {
    throw PluginError.config(`\`${origin}\` was refused (bad method, host or path)`);
  }
  const outBody = req.body();
  let future;
  try {
    future = handle(req, undefined);
  } catch (e) {
    throw mapErrorCode(errorOf(e));
  }
  // Stream the body after handing the request over; a refused request
  // closes the stream and the reason comes from the future.
  const stream = outBody.write();
  try {
    for (let i = 0; i < bytes.length; i += CHUNK) stream.blockingWriteAndFlush(bytes.subarray(i, i + CHUNK));
  } catch {
    // The host stopped reading; the future says why.
  }
  dispose(stream);
  try {
    OutgoingBody.finish(outBody, undefined);
  } catch {
    // As above.
  }
  let result;
  while ((result = future.get()) === undefined) {
    const p = future.subscribe();
    p.block();
    dispose(p);
  }
  dispose(future);
  if (result.tag === 'err') throw PluginError.transient('the HTTP response was already taken');
  if (result.val.tag === 'err') throw mapErrorCode(result.val.val);
  const resp = result.val.val;
  const status = resp.status();
  const h = resp.headers();
  const respHeaders = {};
  for (const [k, v] of h.entries()) respHeaders[k.toLowerCase()] = new TextDecoder().decode(v);
  dispose(h);
  const inBody = resp.consume();
  const input = inBody.stream();
  const chunks = [];
  let total = 0;
  for (;;) {
    let chunk;
    try {
      chunk = input.blockingRead(65536n);
    } catch (e) {
      const err = errorOf(e);
      if (err && err.tag === 'closed') break;
      throw PluginError.transient(`reading the response failed: ${err && err.val && err.val.toDebugString ? err.val.toDebugString() : JSON.stringify(err)}`);
    }
    chunks.push(chunk);
    total += chunk.length;
  }
  dispose(input);
  dispose(IncomingBody.finish(inBody));
  dispose(resp);
  const all = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.length;
  }
  const response = new Response(status, respHeaders, all);
  if (raiseForStatus && (status < 200 || status >= 300)) {
    const snippet = response.text().slice(0, SNIPPET);
    const msg = `${origin} answered ${status}: ${snippet}`;
    throw status === 408 || status === 429 || status >= 500 ? PluginError.transient(msg) : PluginError.permanent(msg);
  }
  return response;
}

/** POST `value` as compact JSON (content-type application/json); see `request`. */
function postJson(url, value, { headers = {}, raiseForStatus = true } = {}) {
  const body = JSON.stringify(value);
  const resp = request('POST', url, { headers: { 'content-type': 'application/json', ...headers }, body, raiseForStatus });
  resp.sentBytes = new TextEncoder().encode(body).length;
  return resp;
}

export const http = { request, postJson };
