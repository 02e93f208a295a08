"""Threads for I/O: pages fetched from a local HTTP server, one keep-alive session per worker.

The server runs on loopback in a background thread. Each request waits a few
milliseconds before it is answered, standing in for a real server's latency, and the
server records which client connection sent it and how many requests it was
answering at the same time.
"""

from __future__ import annotations

import http.client
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import parmap
from parmap import parallel_map
from parmap._cpu import CPU_COUNT_ENV, available_cpus
from parmap._options import DEFAULT_THREAD_WORKERS

#: Seconds the server takes to answer each request.
LATENCY = 0.02
PAGES = 200


class PageServer(ThreadingHTTPServer):
    """Serves ``/page/<n>``; counts requests per client connection and at once."""

    daemon_threads = False  # server_close() joins the handler threads: nothing leaks
    # socketserver's default backlog is 5: 32 threads connecting at once would overflow
    # it, and a dropped connection attempt is only retried after a second.
    request_queue_size = 128

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), PageHandler)
        self.lock = threading.Lock()
        self.requests_by_client: Counter[tuple[str, int]] = Counter()
        self.in_flight = 0
        self.most_in_flight = 0


class PageHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one connection carries many requests
    timeout = 10  # a client that keeps a connection open and idle is dropped after this
    # Headers and body go out as two writes; with Nagle's algorithm the second waits
    # for the client's delayed ACK (tens of ms), which a real server would not add.
    disable_nagle_algorithm = True
    server: PageServer

    def do_GET(self) -> None:
        server = self.server
        with server.lock:
            server.requests_by_client[self.client_address] += 1
            server.in_flight += 1
            server.most_in_flight = max(server.most_in_flight, server.in_flight)
        try:
            time.sleep(LATENCY)  # the server's latency, not synchronisation
        finally:
            with server.lock:
                server.in_flight -= 1
        body = page_body(int(self.path.rsplit("/", 1)[1])).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests read the server's counters instead."""


def page_body(n: int) -> str:
    return f"page {n}: {n * n}\n"


# The client side, as a user would write it: the initializer opens one connection (the
# "session") per worker and keeps it in a threading.local(), so each thread of
# backend="thread" sees its own; fetch uses the one of the thread it runs in.
_session = threading.local()
#: Every connection opened here, so the test can close them all after the call.
_opened: list[http.client.HTTPConnection] = []
_opened_lock = threading.Lock()


def open_session(host: str, port: int) -> None:
    connection = http.client.HTTPConnection(host, port, timeout=10)
    _session.connection = connection
    with _opened_lock:
        _opened.append(connection)


def fetch(path: str) -> tuple[int, int, int, str]:
    """(process id, thread id, local port of the connection used, body) for one page."""
    connection: http.client.HTTPConnection = _session.connection
    connection.request("GET", path)
    with connection.getresponse() as response:
        body = response.read().decode()
    assert connection.sock is not None
    return os.getpid(), threading.get_ident(), connection.sock.getsockname()[1], body


@pytest.fixture
def server() -> Iterator[PageServer]:
    """The page server on a free loopback port, shut down and joined afterwards."""
    page_server = PageServer()
    thread = threading.Thread(target=page_server.serve_forever, name="page-server")
    thread.start()
    try:
        yield page_server
    finally:
        page_server.shutdown()
        page_server.server_close()
        thread.join(10)


@pytest.fixture
def address(server: PageServer) -> Iterator[tuple[str, int]]:
    """The server's (host, port); connections opened in this process are closed after."""
    yield server.server_address[0], server.server_address[1]  # type: ignore[misc]
    with _opened_lock:
        for connection in _opened:
            connection.close()
        _opened.clear()


@pytest.fixture
def fetched_by_threads(
    server: PageServer, address: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> list[tuple[int, int, int, str]]:
    """Every page fetched with backend="thread" and default workers, on a 2-CPU budget."""
    monkeypatch.setenv(CPU_COUNT_ENV, "2")  # the default thread count must not follow it
    assert available_cpus() == 2
    paths = [f"/page/{n}" for n in range(PAGES)]
    return parallel_map(fetch, paths, backend="thread", initializer=open_session, initargs=address)


def test_threads_return_every_page_in_order(
    fetched_by_threads: list[tuple[int, int, int, str]],
) -> None:
    """Each result is the body of its own page, in the order of the URLs."""
    assert [body for *_, body in fetched_by_threads] == [page_body(n) for n in range(PAGES)]


def test_each_thread_reuses_its_own_connection(
    server: PageServer, fetched_by_threads: list[tuple[int, int, int, str]]
) -> None:
    """One keep-alive connection per thread, none shared, each carrying many requests."""
    port_of_thread: dict[int, set[int]] = {}
    thread_of_port: dict[int, set[int]] = {}
    for _, thread_id, port, _ in fetched_by_threads:
        port_of_thread.setdefault(thread_id, set()).add(port)
        thread_of_port.setdefault(port, set()).add(thread_id)
    assert all(len(ports) == 1 for ports in port_of_thread.values())
    assert all(len(threads) == 1 for threads in thread_of_port.values())
    per_connection = server.requests_by_client
    assert {port for _, port in per_connection} == set(thread_of_port)
    assert sum(per_connection.values()) == PAGES
    # At most one connection per thread: 200 requests over at most 32 connections.
    assert 1 < len(per_connection) <= DEFAULT_THREAD_WORKERS
    assert max(per_connection.values()) > 1


def test_default_threads_outnumber_the_cpus_and_overlap(
    server: PageServer, fetched_by_threads: list[tuple[int, int, int, str]]
) -> None:
    """The thread default is not the CPU count, and the requests were in flight together."""
    threads = {thread_id for _, thread_id, _, _ in fetched_by_threads}
    assert available_cpus() < len(threads) <= DEFAULT_THREAD_WORKERS
    assert threading.get_ident() not in threads  # the caller ran none of them
    assert server.most_in_flight >= 8


def test_processes_each_open_their_own_connection(
    server: PageServer, address: tuple[str, int]
) -> None:
    """With backend="process", the initializer gives each worker process its own connection."""
    paths = [f"/page/{n}" for n in range(40)]
    try:
        fetched = parallel_map(
            fetch, paths, 2, 1, initializer=open_session, initargs=address, serial_fallback=False
        )
    finally:
        parmap.shutdown()  # the workers exit, closing their connections
    assert [body for *_, body in fetched] == [page_body(n) for n in range(40)]
    ports_of_pid: dict[int, set[int]] = {}
    for pid, _, port, _ in fetched:
        ports_of_pid.setdefault(pid, set()).add(port)
    assert os.getpid() not in ports_of_pid
    assert all(len(ports) == 1 for ports in ports_of_pid.values())
    assert sorted(port for ports in ports_of_pid.values() for port in ports) == sorted(
        port for _, port in server.requests_by_client
    )
    assert sum(server.requests_by_client.values()) == 40
