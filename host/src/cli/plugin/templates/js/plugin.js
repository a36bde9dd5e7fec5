// {{name}}: a crisis notifier that POSTs each notification as one JSON
// document to the configured `url`, with the invocation id as
// Idempotency-Key. The SDK maps failures: host refusal -> denied, transport
// error or 408/429/5xx -> transient, other 4xx -> permanent, missing or
// non-http(s) url -> config.
//
// sdk/crisis_plugin.js is copied from the crisis repository by build.sh.
import { notifier, http } from './sdk/crisis_plugin.js';

const NAME = '{{name}}';
const VERSION = '0.1.0';

export const { meta, notify } = notifier.plugin({
  name: NAME,
  version: VERSION,
  description: 'POST notifications as JSON to a configured URL',
  // The URL is operator configuration: the effective allow-list is `*` ∩ the operator's grant.
  allowedHosts: ['*'],
  configKeys: ['url'],
  send(ctx, note) {
    const url = notifier.requireConfig('url');
    const resp = http.postJson(url, notifier.document(ctx, note, NAME), {
      headers: { 'idempotency-key': ctx.invocationId, 'user-agent': `crisis-${NAME}/${VERSION}` },
    });
    notifier.log.info(`delivered ${resp.sentBytes} bytes, upstream answered ${resp.status}`);
    return {
      providerId: resp.header('x-request-id') ?? resp.header('x-message-id'),
      httpStatus: resp.status,
      detail: `delivered as json (${resp.sentBytes} bytes)`,
    };
  },
});
