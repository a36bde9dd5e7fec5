"""python-notifier: a crisis `notifier` plugin written in Python.

Built with componentize-py against crisis:plugin@0.1.0 (see README.md):

    componentize-py -d plugins/wit/crisis-plugin@0.1.0 -w notifier \
        componentize app -p examples/python-notifier -o python_notifier.wasm

What `send` does:

- reads `url` with `host.config` (the operator's grant config merged with
  the target's config); missing or malformed -> `config` error;
- formats the notification as one JSON document (subject, body, incident);
- POSTs it through `wasi:http/outgoing-handler`, with the invocation id as
  `Idempotency-Key` so a retried intent is recognisable upstream;
- maps the answer: 2xx -> receipt, 408/429/5xx and transport failures ->
  `transient`, other 4xx -> `permanent`, a refusal by the host's egress
  policy -> `denied`.

The host decides what really leaves the machine: in a drill the request is
captured and answered with a synthetic 200; credentials are injected by the
host as headers and never seen here.
"""

import json
from urllib.parse import urlsplit

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.exports import notify
from wit_world.imports import crisis_plugin_types as types
from wit_world.imports import host
from wit_world.imports import outgoing_handler
from wit_world.imports import wasi_http_types as http
from wit_world.imports.streams import StreamError_Closed

NAME = "python-notifier"
VERSION = "0.1.0"
USER_AGENT = f"crisis-{NAME}/{VERSION}"
# wasi:io output streams accept at most 4096 bytes per blocking write.
CHUNK = 4096
# Bytes of an error response kept for the error message.
SNIPPET = 200


class Meta(exports.Meta):
    def describe(self) -> types.PluginInfo:
        return types.PluginInfo(
            name=NAME,
            version=VERSION,
            description="POST notifications as JSON to a configured URL (Python, componentize-py)",
            # The URL is operator configuration, so the plugin defers to the
            # operator's grant: the effective allow-list is `*` ∩ grant.
            allowed_hosts=["*"],
            config_keys=["url"],
        )


class Notify(exports.Notify):
    def send(self, ctx: types.Invocation, note: notify.Notification) -> notify.Receipt:
        url = host.config("url")
        if url is None or not url.strip():
            raise Err(types.PluginError_Config(
                "config `url` is not set: add `config = { url = \"https://...\" }` to the "
                "plugin's [plugins.NAME] grant or to the target"))
        body = json.dumps(payload(ctx, note), ensure_ascii=False, separators=(",", ":")).encode()
        headers = [
            ("content-type", "application/json"),
            ("idempotency-key", ctx.invocation_id),
            ("user-agent", USER_AGENT),
        ]
        status, resp_headers, resp_body = post(url.strip(), headers, body)
        snippet = resp_body[:SNIPPET].decode("utf-8", "replace")
        if 200 <= status < 300:
            provider_id = resp_headers.get("x-request-id") or resp_headers.get("x-message-id")
            host.log(host.Level.INFO, f"delivered {len(body)} bytes, upstream answered {status}")
            return notify.Receipt(
                provider_id=provider_id,
                http_status=status,
                detail=f"delivered as json ({len(body)} bytes)",
            )
        if status in (408, 429) or status >= 500:
            raise Err(types.PluginError_Transient(f"webhook answered {status}: {snippet}"))
        raise Err(types.PluginError_Permanent(f"webhook answered {status}: {snippet}"))


def payload(ctx: types.Invocation, note: notify.Notification) -> dict:
    inc = note.incident
    return {
        "kind": "crisis.notification",
        "version": 1,
        "source": NAME,
        "invocation_id": ctx.invocation_id,
        "mode": "drill" if ctx.mode == types.RunMode.DRILL else "live",
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


# --------------------------------------------------------------- wasi:http


def post(url: str, headers: list, body: bytes):
    """POST `body` to `url`; returns (status, {lowercase header: value}, body bytes).

    Raises `Err(PluginError)`: `config` for a bad URL, `denied` when the host's
    policy refuses the request, `transient` for transport failures.
    """
    scheme, authority, path = split_url(url)
    try:
        fields = http.Fields.from_list([(k, v.encode()) for k, v in headers])
    except Err as e:
        raise Err(types.PluginError_Config(f"a request header was refused: {e.value}"))
    request = http.OutgoingRequest(fields)
    try:
        request.set_method(http.Method_Post())
        request.set_scheme(scheme)
        request.set_authority(authority)
        request.set_path_with_query(path)
    except Err:
        raise Err(types.PluginError_Config(f"config `url` `{url}` was refused (bad host or path)"))
    out_body = request.body()
    try:
        future = outgoing_handler.handle(request, None)
    except Err as e:
        raise Err(map_error(e.value))

    # Stream the body after handing the request to the host; a refused
    # request closes the stream and the reason comes from the future.
    with out_body.write() as stream:
        try:
            for i in range(0, len(body), CHUNK):
                stream.blocking_write_and_flush(body[i:i + CHUNK])
        except Err:
            pass
    try:
        http.OutgoingBody.finish(out_body, None)
    except Err:
        pass

    with future:
        while True:
            result = future.get()
            if result is not None:
                break
            with future.subscribe() as pollable:
                pollable.block()
    if isinstance(result, Err):
        raise Err(types.PluginError_Transient("the HTTP response was already taken"))
    inner = result.value
    if isinstance(inner, Err):
        raise Err(map_error(inner.value))
    with inner.value as response:
        status = response.status()
        with response.headers() as h:
            resp_headers = {k.lower(): v.decode("utf-8", "replace") for k, v in h.entries()}
        data = bytearray()
        in_body = response.consume()
        with in_body.stream() as s:
            while True:
                try:
                    data += s.blocking_read(64 * 1024)
                except Err as e:
                    if isinstance(e.value, StreamError_Closed):
                        break
                    raise Err(types.PluginError_Transient(
                        f"reading the response failed: {e.value.value.to_debug_string()}"))
        http.IncomingBody.finish(in_body).__exit__(None, None, None)
    return status, resp_headers, bytes(data)


def split_url(url: str):
    try:
        parts = urlsplit(url)
    except ValueError as e:
        raise Err(types.PluginError_Config(f"config `url` `{url}` is not a URL: {e}"))
    if parts.scheme == "https":
        scheme = http.Scheme_Https()
    elif parts.scheme == "http":
        scheme = http.Scheme_Http()
    else:
        raise Err(types.PluginError_Config(
            f"config `url` `{url}` must start with https:// or http://"))
    if not parts.netloc:
        raise Err(types.PluginError_Config(f"config `url` `{url}` has no host"))
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, parts.netloc, path


def map_error(code) -> object:
    """A wasi:http error code as the plugin-error the host should record."""
    if isinstance(code, http.ErrorCode_HttpRequestDenied):
        return types.PluginError_Denied("request denied by the host's egress policy (host not granted?)")
    if isinstance(code, http.ErrorCode_DestinationIpProhibited):
        return types.PluginError_Denied("destination address is private/loopback and not granted (allow_private)")
    if isinstance(code, http.ErrorCode_HttpRequestBodySize):
        return types.PluginError_Denied(f"request body too large (limit {code.value})")
    if isinstance(code, http.ErrorCode_HttpResponseBodySize):
        return types.PluginError_Denied(f"response body too large (limit {code.value})")
    if isinstance(code, http.ErrorCode_HttpRequestUriInvalid):
        return types.PluginError_Config("config `url` was refused as an invalid URI")
    return types.PluginError_Transient(f"HTTP transport error: {type(code).__name__.removeprefix('ErrorCode_')}"
                                       + (f" {code.value}" if getattr(code, "value", None) is not None else ""))
