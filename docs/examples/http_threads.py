"""Download pages over HTTP with one keep-alive connection per thread; time it against a loop.

Starts a small HTTP server on 127.0.0.1 that answers ``/page/<n>`` after a fixed delay
(standing in for a real server's latency), then fetches every page twice: in a plain
loop over one connection, and with ``parallel_map(..., backend="thread")``, where the
initializer opens one connection per worker thread. Prints both times and the speedup.

    python docs/examples/http_threads.py                  # 200 pages, 20 ms each
    python docs/examples/http_threads.py --pages 500 --latency 0.05

With the ``requests`` package the pattern is the same: the initializer creates a
``requests.Session()`` instead of an ``http.client.HTTPConnection``.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from parmap import parallel_map


class PageServer(ThreadingHTTPServer):
    """Answers ``GET /page/<n>`` after *latency* seconds; one thread per connection."""

    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 drops connections from 32 threads

    def __init__(self, latency: float) -> None:
        super().__init__(("127.0.0.1", 0), PageHandler)
        self.latency = latency
        self.connections: set[tuple[str, int]] = set()


class PageHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep the connection open between requests
    disable_nagle_algorithm = True  # send headers and body without waiting for an ACK
    server: PageServer

    def do_GET(self) -> None:
        self.server.connections.add(self.client_address)
        time.sleep(self.server.latency)  # the simulated server latency
        body = f"page {self.path.rsplit('/', 1)[1]}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """No access log on stderr."""


# Per-thread state: each thread that runs the initializer gets its own attribute of
# this object, so every worker thread keeps its own connection.
_local = threading.local()
_sessions: list[http.client.HTTPConnection] = []  # all of them, to close at the end
_sessions_lock = threading.Lock()


def open_session(host: str, port: int) -> None:
    """The initializer: runs once in each worker thread (and once in the caller)."""
    session = http.client.HTTPConnection(host, port, timeout=10)
    _local.session = session
    with _sessions_lock:
        _sessions.append(session)


def fetch(path: str) -> bytes:
    """fn: one GET over the connection of the thread it runs in."""
    session: http.client.HTTPConnection = _local.session
    session.request("GET", path)
    with session.getresponse() as response:
        return response.read()


def close_sessions() -> None:
    with _sessions_lock:
        for session in _sessions:
            session.close()
        _sessions.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description="Threads vs a loop on a local HTTP server.")
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per request")
    args = parser.parse_args()

    server = PageServer(args.latency)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    host, port = server.server_address[0], server.server_address[1]
    paths = [f"/page/{n}" for n in range(args.pages)]
    try:
        open_session(host, port)  # the serial loop's one connection
        start = time.perf_counter()
        expected = [fetch(path) for path in paths]
        serial_seconds = time.perf_counter() - start
        server.connections.clear()

        start = time.perf_counter()
        pages = parallel_map(
            fetch, paths, backend="thread", initializer=open_session, initargs=(host, port)
        )
        thread_seconds = time.perf_counter() - start
        if pages != expected:
            msg = "the threads fetched different pages than the loop"
            raise RuntimeError(msg)
    finally:
        close_sessions()
        server.shutdown()
        server.server_close()

    print(
        f"{args.pages} pages, {args.latency * 1000:g} ms server latency each; "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    print(f"serial loop, one connection        {serial_seconds:6.2f} s")
    print(
        f'parallel_map(backend="thread")     {thread_seconds:6.2f} s  '
        f"({len(server.connections)} connections)"
    )
    print(f"speedup                            {serial_seconds / thread_seconds:6.1f}x")


if __name__ == "__main__":
    main()
