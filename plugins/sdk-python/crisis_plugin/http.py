"""Outgoing HTTP through the host (wasi:http): the host applies the egress
policy, so errors keep their meaning:

- the host refused the request (not granted, private address, too large) -> `PluginError` denied;
- connection, DNS or timeout failures -> transient;
- an answer of 408, 429 or 5xx -> transient; any other non-2xx -> permanent
  (unless `raise_for_status=False`);
- a malformed or non-http(s) URL -> config.
"""

import json as _json
from urllib.parse import urlsplit

from componentize_py_types import Err
from wit_world.imports import outgoing_handler
from wit_world.imports import wasi_http_types as _t
from wit_world.imports.streams import StreamError_Closed

from .errors import PluginError

# wasi:io output streams accept at most 4096 bytes per blocking write.
_CHUNK = 4096
# Bytes of an error response kept in the error message.
_SNIPPET = 200
_METHODS = {
    "GET": _t.Method_Get, "HEAD": _t.Method_Head, "POST": _t.Method_Post, "PUT": _t.Method_Put,
    "DELETE": _t.Method_Delete, "OPTIONS": _t.Method_Options, "PATCH": _t.Method_Patch,
}


class Response:
    """The upstream's answer: `status`, `headers` (lowercase names), `body` (bytes)."""

    def __init__(self, status: int, headers: dict, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body
        self.sent_bytes = 0

    def header(self, name: str):
        return self.headers.get(name.lower())

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self):
        return _json.loads(self.body)


def post_json(url: str, body, headers=None, raise_for_status: bool = True) -> Response:
    """POST `body` as compact JSON (content-type application/json); see `request`."""
    data = _json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    all_headers = {"content-type": "application/json"}
    all_headers.update(headers or {})
    resp = request("POST", url, headers=all_headers, body=data, raise_for_status=raise_for_status)
    resp.sent_bytes = len(data)
    return resp


def request(method: str, url: str, headers=None, body: bytes = b"", raise_for_status: bool = True) -> Response:
    """Send one request through the host; raises `PluginError` as described above."""
    scheme, authority, path, origin = _split_url(url)
    if isinstance(body, str):
        body = body.encode()
    try:
        fields = _t.Fields.from_list([(k.lower(), str(v).encode()) for k, v in (headers or {}).items()])
    except Err as e:
        raise PluginError.config(f"a request header was refused: {e.value}")
    req = _t.OutgoingRequest(fields)
    m = method.upper()
    try:
        req.set_method(_METHODS[m]() if m in _METHODS else _t.Method_Other(m))
        req.set_scheme(scheme)
        req.set_authority(authority)
        req.set_path_with_query(path)
    except Err:
        raise PluginError.config(f"`{origin}` was refused (bad method, host or path)")
    out_body = req.body()
    try:
        future = outgoing_handler.handle(req, None)
    except Err as e:
        raise _map_error(e.value)
    # Stream the body after handing the request over; a refused request
    # closes the stream and the reason comes from the future.
    with out_body.write() as stream:
        try:
            for i in range(0, len(body), _CHUNK):
                stream.blocking_write_and_flush(body[i:i + _CHUNK])
        except Err:
            pass
    try:
        _t.OutgoingBody.finish(out_body, None)
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
        raise PluginError.transient("the HTTP response was already taken")
    inner = result.value
    if isinstance(inner, Err):
        raise _map_error(inner.value)
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
                    raise PluginError.transient(f"reading the response failed: {e.value.value.to_debug_string()}")
        _t.IncomingBody.finish(in_body).__exit__(None, None, None)
    resp = Response(status, resp_headers, bytes(data))
    if raise_for_status and not 200 <= status < 300:
        msg = f"{origin} answered {status}: {resp.body[:_SNIPPET].decode('utf-8', 'replace')}"
        if status in (408, 429) or status >= 500:
            raise PluginError.transient(msg)
        raise PluginError.permanent(msg)
    return resp


def _split_url(url: str):
    try:
        parts = urlsplit(url)
    except ValueError as e:
        raise PluginError.config(f"`{url}` is not a URL: {e}")
    if parts.scheme == "https":
        scheme = _t.Scheme_Https()
    elif parts.scheme == "http":
        scheme = _t.Scheme_Http()
    else:
        raise PluginError.config(f"`{url}` must start with https:// or http://")
    if not parts.netloc:
        raise PluginError.config(f"`{url}` has no host")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, parts.netloc, path, f"{parts.scheme}://{parts.hostname or parts.netloc}"


def _map_error(code) -> PluginError:
    """A wasi:http error code as the plugin error the host should record."""
    if isinstance(code, _t.ErrorCode_HttpRequestDenied):
        return PluginError.denied("request denied by the host's egress policy (host not granted?)")
    if isinstance(code, _t.ErrorCode_DestinationIpProhibited):
        return PluginError.denied("destination address is private/loopback and not granted (allow_private)")
    if isinstance(code, _t.ErrorCode_HttpRequestBodySize):
        return PluginError.denied(f"request body too large (limit {code.value})")
    if isinstance(code, _t.ErrorCode_HttpResponseBodySize):
        return PluginError.denied(f"response body too large (limit {code.value})")
    if isinstance(code, _t.ErrorCode_HttpRequestUriInvalid):
        return PluginError.config("the URL was refused as an invalid URI")
    name = type(code).__name__.removeprefix("ErrorCode_")
    value = getattr(code, "value", None)
    return PluginError.transient(f"HTTP transport error: {name}" + (f" {value}" if value is not None else ""))
