"""Test fakes' shared plumbing: a request handler served on 127.0.0.1, on a free port, by a daemon thread."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


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
