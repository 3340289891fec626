"""HTTP requests become API Gateway REST proxy events the way API Gateway builds them."""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request

from sagewatch.local.http_bridge import MAX_PAYLOAD_BYTES, make_server, proxy_event


def test_query_strings_path_and_stage() -> None:
    event = proxy_event("get", "/api/v3/models/a%20b?page=2&tag=x&tag=y", {"Accept": "application/json"}, b"")
    assert event["httpMethod"] == "GET"
    assert event["path"] == "/api/v3/models/a%20b"  # as API Gateway REST APIs deliver it
    assert event["pathParameters"] == {"proxy": "api/v3/models/a b"}
    assert event["queryStringParameters"] == {"page": "2", "tag": "y"}
    assert event["multiValueQueryStringParameters"] == {"page": ["2"], "tag": ["x", "y"]}
    assert event["requestContext"]["path"] == "/local/api/v3/models/a%20b"
    assert event["body"] is None and event["isBase64Encoded"] is False


def test_json_bodies_pass_as_text_and_binary_bodies_as_base64() -> None:
    text = proxy_event("POST", "/x", {"Content-Type": "application/json"}, b'{"a": 1}')
    assert (text["body"], text["isBase64Encoded"]) == ('{"a": 1}', False)
    parquet = b"PAR1\x00\xff\x10PAR1"
    binary = proxy_event("POST", "/x", {"Content-Type": "multipart/form-data; boundary=z"}, parquet)
    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == parquet


def serve(handler) -> tuple[str, callable]:
    server = make_server(handler, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return f"http://{host}:{port}", stop


def test_the_handlers_answer_becomes_the_http_response() -> None:
    seen = []

    def handler(event, context):
        seen.append(event)
        return {
            "statusCode": 201,
            "headers": {
                "Content-Type": "application/json",
                "X-Request": event["requestContext"]["requestId"],
            },
            "body": json.dumps({"echo": json.loads(event["body"])}),
            "isBase64Encoded": False,
        }

    url, stop = serve(handler)
    try:
        request = urllib.request.Request(
            f"{url}/things?q=1", data=b'{"n": 3}', method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request) as response:
            assert response.status == 201
            assert json.loads(response.read()) == {"echo": {"n": 3}}
            assert response.headers["X-Request"] == seen[0]["requestContext"]["requestId"]
    finally:
        stop()
    assert seen[0]["queryStringParameters"] == {"q": "1"}


def test_bodies_over_api_gateways_limit_are_refused_with_413() -> None:
    calls = []
    url, stop = serve(lambda event, context: calls.append(event) or {"statusCode": 200, "body": ""})
    try:
        request = urllib.request.Request(
            f"{url}/upload",
            data=b"x" * (MAX_PAYLOAD_BYTES + 1),
            method="POST",
            headers={"Content-Type": "application/octet-stream"},
        )
        try:
            urllib.request.urlopen(request)
            status = 200
        except urllib.error.HTTPError as error:
            status = error.code
            assert "at most" in json.loads(error.read())["message"]
    finally:
        stop()
    assert status == 413
    assert calls == []
