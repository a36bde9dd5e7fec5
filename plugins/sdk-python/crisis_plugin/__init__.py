"""crisis_plugin: the Python SDK for crisis notifier plugins (componentize-py).

    from crisis_plugin import notifier, http, PluginError
    from crisis_plugin.notifier import Meta, Notify  # the exports componentize-py looks for

    notifier.describe(name="my-notifier", version="0.1.0", description="...",
                      allowed_hosts=["*"], config_keys=["url"])

    @notifier.send
    def send(ctx, note):
        resp = http.post_json(notifier.require_config("url"), {...})
        return notifier.Receipt(http_status=resp.status, detail="delivered")

Build with `componentize-py -d plugins/wit/crisis-plugin@0.1.0 -w notifier
componentize app -p YOUR_DIR -p plugins/sdk-python -o plugin.wasm`.
"""

from .errors import PluginError
from . import http, notifier

__all__ = ["PluginError", "http", "notifier"]
