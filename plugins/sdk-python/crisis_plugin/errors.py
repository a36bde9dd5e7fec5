"""PluginError: the four ways a plugin call can fail, as the host records them."""

from componentize_py_types import Err
from wit_world.imports import crisis_plugin_types as types


class PluginError(Exception):
    """Raise one of `PluginError.config/denied/transient/permanent(message)`.

    config: the operator must fix the configuration; denied: the host refused
    (not granted, too large); transient: may succeed on retry (timeouts,
    408/429/5xx); permanent: retrying will not help (other 4xx, bad data).
    """

    KINDS = ("config", "denied", "transient", "permanent")

    def __init__(self, kind: str, message: str):
        if kind not in self.KINDS:
            raise ValueError(f"unknown plugin error kind {kind!r}: use one of {', '.join(self.KINDS)}")
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = str(message)

    @classmethod
    def config(cls, message: str) -> "PluginError":
        return cls("config", message)

    @classmethod
    def denied(cls, message: str) -> "PluginError":
        return cls("denied", message)

    @classmethod
    def transient(cls, message: str) -> "PluginError":
        return cls("transient", message)

    @classmethod
    def permanent(cls, message: str) -> "PluginError":
        return cls("permanent", message)

    def to_err(self) -> Err:
        """The WIT `plugin-error` the export returns to the host."""
        variant = {
            "config": types.PluginError_Config,
            "denied": types.PluginError_Denied,
            "transient": types.PluginError_Transient,
            "permanent": types.PluginError_Permanent,
        }[self.kind]
        return Err(variant(self.message))
