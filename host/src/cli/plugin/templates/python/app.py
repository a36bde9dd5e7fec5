"""{{name}}: a crisis notifier that POSTs each notification as one JSON
document to the configured `url`, with the invocation id as Idempotency-Key.

The SDK maps failures: host refusal -> denied, transport error or
408/429/5xx -> transient, other 4xx -> permanent, missing or non-http(s)
url -> config.
"""

from crisis_plugin import http, notifier
from crisis_plugin.notifier import Meta, Notify  # noqa: F401 (the exports componentize-py instantiates)

NAME = "{{name}}"
VERSION = "0.1.0"

# The URL is operator configuration: the effective allow-list is `*` ∩ the operator's grant.
notifier.describe(name=NAME, version=VERSION, allowed_hosts=["*"], config_keys=["url"],
                  description="POST notifications as JSON to a configured URL")


@notifier.send
def send(ctx, note):
    url = notifier.require_config("url")
    resp = http.post_json(url, notifier.document(ctx, note, NAME),
                          headers={"idempotency-key": ctx.invocation_id, "user-agent": f"crisis-{NAME}/{VERSION}"})
    notifier.log.info(f"delivered {resp.sent_bytes} bytes, upstream answered {resp.status}")
    return notifier.Receipt(provider_id=resp.header("x-request-id") or resp.header("x-message-id"),
                            http_status=resp.status, detail=f"delivered as json ({resp.sent_bytes} bytes)")
