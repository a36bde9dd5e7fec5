"""The notifier world: describe the plugin, register `send`, read config, log.

componentize-py instantiates the `Meta` and `Notify` classes it finds in the
app module, so the app re-exports them: `from crisis_plugin.notifier import Meta, Notify`.
"""

from wit_world import exports
from wit_world.exports import notify as _notify
from wit_world.imports import crisis_plugin_types as types
from wit_world.imports import host as _host

from .errors import PluginError

Receipt = _notify.Receipt
"""What `send` returns: `Receipt(provider_id=None, http_status=None, detail="")`."""

_info = None
_send = None


def describe(name: str, version: str, description: str, allowed_hosts=(), config_keys=()) -> None:
    """What `crisis plugin inspect` shows and the host checks egress against."""
    global _info
    _info = types.PluginInfo(
        name=name,
        version=version,
        description=description,
        allowed_hosts=list(allowed_hosts),
        config_keys=list(config_keys),
    )


def send(fn):
    """Decorator: `fn(ctx, note) -> Receipt` handles every notification."""
    global _send
    _send = fn
    return fn


def config(key: str):
    """A config value (grant config merged with the target's), stripped; None when unset or blank."""
    value = _host.config(key)
    if value is None or not value.strip():
        return None
    return value.strip()


def require_config(key: str) -> str:
    """A config value that must be set; a `config` error saying where to set it otherwise."""
    value = config(key)
    if value is None:
        raise PluginError.config(
            f"config `{key}` is not set: add `config = {{ {key} = \"...\" }}` to the "
            "plugin's [plugins.NAME] grant or to the target")
    return value


class _Log:
    """Logging through the host, which scrubs secrets and caps the volume."""

    def debug(self, message: str) -> None:
        _host.log(_host.Level.DEBUG, str(message))

    def info(self, message: str) -> None:
        _host.log(_host.Level.INFO, str(message))

    def warn(self, message: str) -> None:
        _host.log(_host.Level.WARN, str(message))

    def error(self, message: str) -> None:
        _host.log(_host.Level.ERROR, str(message))


log = _Log()


def mode(ctx) -> str:
    """`drill` or `live`: in a drill the host captures outgoing requests."""
    return "drill" if ctx.mode == types.RunMode.DRILL else "live"


def document(ctx, note, source: str) -> dict:
    """The generic `crisis.notification` JSON document (the shape webhook-notify posts)."""
    inc = note.incident
    return {
        "kind": "crisis.notification",
        "version": 1,
        "source": source,
        "invocation_id": ctx.invocation_id,
        "mode": mode(ctx),
        "sent_at_unix_ms": ctx.now_unix_ms,
        "target": note.target,
        "subject": note.subject,
        "text": note.body_text,
        "incident": {
            "id": inc.id,
            "title": inc.title,
            "playbook": inc.playbook_id,
            "severity": inc.severity.name.lower(),
            "category": inc.category.name.lower().replace("_", "-"),
            "phase": inc.phase,
            "summary": inc.summary,
            "labels": dict(inc.labels),
        },
        "params": dict(note.params),
    }


class Meta(exports.Meta):
    def describe(self) -> types.PluginInfo:
        if _info is None:
            raise RuntimeError("call crisis_plugin.notifier.describe(...) in the app module")
        return _info


class Notify(exports.Notify):
    def send(self, ctx: types.Invocation, note: _notify.Notification) -> _notify.Receipt:
        if _send is None:
            raise PluginError.permanent("the app registered no send function (@notifier.send)").to_err()
        try:
            return _send(ctx, note)
        except PluginError as e:
            raise e.to_err()
