"""The index reader over HTTP: one kept-alive connection per thread, redirects
followed, a closed connection asked again, errors as urllib's."""
from __future__ import annotations

import http.server
import threading
import urllib.error
from collections.abc import Iterator

import pytest

from venvdeb.python import index

PAGE = (b'<html><body><a href="/files/pkg-1.0-py3-none-any.whl#sha256=ab">'
        b'pkg-1.0-py3-none-any.whl</a></body></html>')


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    connections = 0
    requests = 0
    close_next = False

    def setup(self) -> None:
        super().setup()
        type(self).connections += 1

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        type(self).requests += 1
        if self.path == "/old/pkg/":
            self._answer(301, b"", {"Location": "/simple/pkg/"})
        elif self.path == "/simple/pkg/":
            close = type(self).close_next
            type(self).close_next = False
            self._answer(200, PAGE, {"Connection": "close"} if close else {})
            if close:
                self.close_connection = True
        else:
            self._answer(404, b"no such page")

    def _answer(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for key in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(key, raising=False)
    _Handler.connections, _Handler.requests, _Handler.close_next = 0, 0, False
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_pages_come_over_one_kept_alive_connection(server: str) -> None:
    for _ in range(5):
        files = index.project_files(f"{server}/simple", "pkg")
        assert [f.filename for f in files] == ["pkg-1.0-py3-none-any.whl"]
        assert files[0].url == f"{server}/files/pkg-1.0-py3-none-any.whl"
        assert files[0].sha256 == "ab"
    assert _Handler.requests == 5
    assert _Handler.connections == 1


def test_redirects_are_followed_and_a_closed_connection_is_opened_again(server: str) -> None:
    assert index._open(f"{server}/old/pkg/") == PAGE
    _Handler.close_next = True
    assert index._open(f"{server}/simple/pkg/") == PAGE  # the server closes after this one
    assert index._open(f"{server}/simple/pkg/") == PAGE  # ...so this one opens anew
    assert _Handler.requests == 4 and _Handler.connections == 2


def test_a_missing_page_is_urllibs_http_error_and_the_index_error_names_it(server: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        index._open(f"{server}/simple/nothing/")
    assert info.value.code == 404
    with pytest.raises(index.IndexError_, match="has no project nothing"):
        index.project_files(f"{server}/simple", "nothing")
