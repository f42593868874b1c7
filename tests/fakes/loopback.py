"""Test fakes' shared plumbing: a request handler served on 127.0.0.1, on a free port, by a daemon thread, and
the handler base the fakes share."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 (keep-alive, as the real services), no request log on stderr, and one way to start a response."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def start_response(
        self, status: int, ctype: str, length: int, headers: dict[str, str] | None = None
    ) -> None:
        """Status line, Content-Type, Content-Length, any extra headers, and the blank line; the body is the
        caller's to write."""
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()


class LoopbackServer:
    """Serves `handler` on 127.0.0.1 on a port the OS picks, from the moment it is made until close().

    Each connection gets a daemon thread and so does the accept loop, so a test that forgets to close never
    hangs the interpreter. With `ssl_context` the socket speaks TLS and `url` is https. close() stops serving,
    frees the port and may be called more than once; the object is also a context manager.
    """

    def __init__(
        self,
        handler: type[BaseHTTPRequestHandler],
        *,
        name: str,
        ssl_context: ssl.SSLContext | None = None,
        poll_interval: float = 0.02,
    ) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        if ssl_context is not None:
            self.httpd.socket = ssl_context.wrap_socket(self.httpd.socket, server_side=True)
        self.port: int = self.httpd.server_address[1]
        self.url = f"{'https' if ssl_context is not None else 'http'}://127.0.0.1:{self.port}"
        self._closed = False
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": poll_interval}, name=name, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.httpd.shutdown()  # returns once serve_forever has stopped
        self.httpd.server_close()
        self._thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
