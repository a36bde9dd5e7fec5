// js-notifier: a crisis `notifier` plugin written in JavaScript.
//
// Built into a WebAssembly component with componentize-js (see build.mjs and
// README.md) against crisis:plugin@0.1.0, world `notifier`.
//
// What `notify.send` does:
// - reads `url` with `host.config` (the operator's grant config merged with
//   the target's config); missing or malformed -> `config` error;
// - formats the notification as one JSON document (subject, body, incident);
// - POSTs it with `fetch()`, which the StarlingMonkey engine implements on
//   `wasi:http/outgoing-handler`, with the invocation id as `Idempotency-Key`
//   so a retried intent is recognisable upstream;
// - maps the answer: 2xx -> receipt, 408/429/5xx and transport failures ->
//   `transient`, other 4xx -> `permanent`.
//
// The host decides what really leaves the machine: in a drill the request is
// captured and answered with a synthetic 200; credentials are injected by the
// host as headers and never seen here.

import { log, config } from 'crisis:plugin/host@0.1.0';

const NAME = 'js-notifier';
const VERSION = '0.1.0';
// Bytes of an error response kept for the error message.
const SNIPPET = 200;

/// A `plugin-error` for the host: componentize-js returns `payload` as the
/// `err` case of the export's `result`.
class PluginError extends Error {
  constructor(kind, message) {
    super(`${kind}: ${message}`);
    this.payload = { tag: kind, val: message };
  }
}

export const meta = {
  describe() {
    return {
      name: NAME,
      version: VERSION,
      description: 'POST notifications as JSON to a configured URL (JavaScript, componentize-js)',
      // The URL is operator configuration, so the plugin defers to the
      // operator's grant: the effective allow-list is `*` ∩ grant.
      allowedHosts: ['*'],
      configKeys: ['url'],
    };
  },
};

export const notify = {
  async send(ctx, note) {
    const url = (config('url') ?? '').trim();
    if (!url) {
      throw new PluginError('config',
        'config `url` is not set: add `config = { url = "https://..." }` to the plugin\'s [plugins.NAME] grant or to the target');
    }
    let parsed;
    try {
      parsed = new URL(url);
    } catch (e) {
      throw new PluginError('config', `config \`url\` \`${url}\` is not a URL: ${e.message}`);
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
      throw new PluginError('config', `config \`url\` \`${url}\` must start with https:// or http://`);
    }
    const body = JSON.stringify(payload(ctx, note));
    let resp;
    try {
      resp = await fetch(parsed.href, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'idempotency-key': ctx.invocationId,
          'user-agent': `crisis-${NAME}/${VERSION}`,
        },
        body,
      });
    } catch (e) {
      // StarlingMonkey reports every wasi:http error code (including the
      // host's policy refusals) as a TypeError; the host's HTTP record says which.
      throw new PluginError('transient', `HTTP request failed: ${e && e.message ? e.message : e}`);
    }
    const text = await resp.text().catch(() => '');
    const status = resp.status;
    const bytes = new TextEncoder().encode(body).length;
    if (status >= 200 && status < 300) {
      log('info', `delivered ${bytes} bytes, upstream answered ${status}`);
      return {
        providerId: resp.headers.get('x-request-id') ?? resp.headers.get('x-message-id') ?? undefined,
        httpStatus: status,
        detail: `delivered as json (${bytes} bytes)`,
      };
    }
    const snippet = text.slice(0, SNIPPET);
    if (status === 408 || status === 429 || status >= 500) {
      throw new PluginError('transient', `webhook answered ${status}: ${snippet}`);
    }
    throw new PluginError('permanent', `webhook answered ${status}: ${snippet}`);
  },
};

function payload(ctx, note) {
  const inc = note.incident;
  return {
    kind: 'crisis.notification',
    version: 1,
    source: NAME,
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
