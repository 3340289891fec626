"""Serve a Lambda proxy handler over HTTP on loopback, the way API Gateway (REST) would call it.

Each HTTP request becomes an API Gateway proxy event; the handler's answer becomes the HTTP
response. Requests are handled one at a time, as one warm Lambda instance would.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

ProxyHandler = Callable[[dict[str, Any], Any], dict[str, Any]]

# API Gateway refuses payloads above 10 MB; Lambda's own 6 MB limit is applied by the handler's
# wrapper (sagewatch.local.lambda_limits.api_limits), as in AWS.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
STAGE = "local"
TEXT_TYPES = ("application/json", "text/", "application/x-www-form-urlencoded")


@dataclass
class LocalContext:
    """The parts of a Lambda context that Powertools and our handlers read."""

    function_name: str = "sagewatch-api"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:sagewatch-api"
    log_group_name: str = "/aws/lambda/sagewatch-api"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        """Always 29 s, API Gateway's timeout: the longest a request may run."""
        return 29_000


def proxy_event(
    method: str, raw_path: str, headers: dict[str, str], body: bytes, source_ip: str = "127.0.0.1"
) -> dict[str, Any]:
    """An API Gateway REST proxy event for one HTTP request."""
    parts = urlsplit(raw_path)
    path = parts.path or "/"  # REST APIs keep the path percent-encoded; path parameters arrive decoded
    multi_query = parse_qs(parts.query, keep_blank_values=True)
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    encoded_body, is_base64 = _encode_body(body, content_type)
    request_id = str(uuid.uuid4())
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method.upper(),
        "headers": dict(headers),
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": {"proxy": unquote(path.lstrip("/"))},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method.upper(),
            "path": f"/{STAGE}{path}",
            "stage": STAGE,
            "requestId": request_id,
            "extendedRequestId": request_id,
            "identity": {"sourceIp": source_ip, "userAgent": headers.get("User-Agent", "")},
            "protocol": "HTTP/1.1",
        },
        "body": encoded_body,
        "isBase64Encoded": is_base64,
    }


def _encode_body(body: bytes, content_type: str) -> tuple[str | None, bool]:
    """Text bodies pass as they are; binary ones (multipart, Parquet) base64, as API Gateway does."""
    if not body:
        return None, False
    if any(content_type.startswith(t) for t in TEXT_TYPES):
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), True


def make_server(handler: ProxyHandler, host: str = "127.0.0.1", port: int = 8080) -> ThreadingHTTPServer:
    """An HTTP server (not yet serving) that passes every request through `handler`."""
    lock = threading.Lock()

    class Bridge(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _dispatch(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_PAYLOAD_BYTES:
                self._discard(length)  # read it all, so the client is sending no more when it reads the 413
                self._reply(
                    413,
                    {"Content-Type": "application/json"},
                    json.dumps(
                        {"message": f"request body is {length} bytes; at most {MAX_PAYLOAD_BYTES}"}
                    ).encode(),
                    close=True,
                )
                return
            body = self.rfile.read(length) if length else b""
            event = proxy_event(
                self.command, self.path, dict(self.headers.items()), body, self.client_address[0]
            )
            with lock:
                result = handler(event, LocalContext())
            payload = result.get("body") or ""
            data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode("utf-8")
            headers = dict(result.get("headers") or {})
            for key, values in (result.get("multiValueHeaders") or {}).items():
                headers[key] = ", ".join(values)
            self._reply(int(result.get("statusCode", 200)), headers, data)

        def _discard(self, length: int) -> None:
            while length > 0:
                chunk = self.rfile.read(min(length, 1 << 20))
                if not chunk:
                    return
                length -= len(chunk)

        def _reply(self, status: int, headers: dict[str, str], data: bytes, close: bool = False) -> None:
            self.send_response(status)
            for key, value in headers.items():
                if key.lower() not in ("content-length", "connection"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_TRACE = _dispatch

        def __getattr__(self, name: str) -> Any:
            """Every other method (TRACE, QUERY...) reaches the handler too, as API Gateway's would."""
            if name.startswith("do_"):
                return self._dispatch
            raise AttributeError(name)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: the runtime prints its own lines
            return

    server = ThreadingHTTPServer((host, port), Bridge)
    server.daemon_threads = True
    return server
