"""The gateway's JSON read path to the vector store: keep-alive connections that survive the server
closing them, error statuses named, and the API key sent."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared.vectorstore.qdrant_rest import RestError, RestPoints

pytestmark = pytest.mark.integration


class OneAnswerPerConnection(BaseHTTPRequestHandler):
    """Answers in HTTP/1.1 without `Connection: close`, then hangs up: what a restarted store or an idle
    timeout on the server side looks like to a client holding a kept-alive connection."""

    protocol_version = "HTTP/1.1"
    seen: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append({"path": self.path, "api_key": self.headers.get("api-key"), "body": body})
        if self.path.endswith("/missing/points"):
            status, answer = 404, {"status": {"error": "Not found: Collection `missing` doesn't exist!"}}
        else:
            status, answer = 200, {"result": [{"id": "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", "payload": {},
                                                "vector": {"roi": [1.0, 0.0]}}], "status": "ok"}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def log_message(self, *args) -> None:  # keep the test output clean
        pass


@pytest.fixture
def server():
    OneAnswerPerConnection.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), OneAnswerPerConnection)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_connection_closed_by_the_server_is_reopened_and_the_read_repeated(server):
    rest = RestPoints(server, "k3y", timeout_s=5)
    try:
        for _ in range(3):  # each call after the first finds its kept-alive connection closed
            found = rest.retrieve("tumors__x", ["5c56c793-69f3-4fbf-87e6-c4bf54c28c26"], "roi")
            assert found[0]["vector"] == {"roi": [1.0, 0.0]}
    finally:
        rest.close()
    assert len(OneAnswerPerConnection.seen) == 3
    assert {s["api_key"] for s in OneAnswerPerConnection.seen} == {"k3y"}
    assert OneAnswerPerConnection.seen[0]["body"] == {"ids": ["5c56c793-69f3-4fbf-87e6-c4bf54c28c26"],
                                                      "with_payload": True, "with_vector": ["roi"]}


def test_an_error_status_is_raised_with_the_stores_message(server):
    rest = RestPoints(server, None, timeout_s=5)
    with pytest.raises(RestError, match="404: Not found: Collection `missing`") as error:
        rest.retrieve("missing", ["5c56c793-69f3-4fbf-87e6-c4bf54c28c26"], "roi")
    assert error.value.status == 404
    assert OneAnswerPerConnection.seen[0]["api_key"] is None
    rest.close()


def test_a_url_that_is_not_http_is_refused():
    with pytest.raises(ValueError, match="expected http"):
        RestPoints("grpc://127.0.0.1:6334", None, timeout_s=5)
