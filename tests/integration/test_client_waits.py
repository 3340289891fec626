"""The Python client waits for a query the API runs in Athena: a 202's poll URL is followed until
the rows come (served here by a loopback HTTP server answering as the API does)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sagewatch.client import SageWatch, SageWatchError

POLL = "/api/v3/models/m/inferences/query/q-1"


@pytest.fixture
def server() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    seen: list[tuple[str, str]] = []

    class Api(BaseHTTPRequestHandler):
        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(("POST", self.path))
            self._send(202, {"query_id": "q-1", "status": "RUNNING", "poll": POLL, "message": "running"})

        def do_GET(self) -> None:
            seen.append(("GET", self.path))
            if sum(1 for method, _ in seen if method == "GET") < 3:
                self._send(202, {"query_id": "q-1", "status": "RUNNING", "poll": POLL, "message": "running"})
            else:
                self._send(200, {"query_result": [{"count": 7}]})

        def log_message(self, *args: object) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_address[1]}", seen
    http.shutdown()


def test_query_follows_the_poll_url_until_the_rows_come(server, monkeypatch: pytest.MonkeyPatch) -> None:
    url, seen = server
    monkeypatch.setattr("sagewatch.client.time.sleep", lambda seconds: None)
    frame = SageWatch(url, "token").query("m", {"select": [{"function": "count"}]})
    assert frame.to_dict("records") == [{"count": 7}]
    assert seen == [
        ("POST", "/api/v3/models/m/inferences/query"),
        ("GET", POLL),
        ("GET", POLL),
        ("GET", POLL),
    ]


def test_a_query_past_the_wait_names_its_id(server) -> None:
    url, _ = server
    with pytest.raises(SageWatchError) as raised:
        SageWatch(url, "token").query("m", {"select": [{"function": "count"}]}, wait=0)
    assert raised.value.status == 408 and "q-1" in str(raised.value.message)
