"""What moving 1 MB payloads to a worker costs, step by step, to choose how to send them.

    python benchmarks/payload_transfer.py

Prints, per MB: copying it in memory, pickling it (protocol 5, in band), pickling a
bytearray out of band (pickle 5 buffers), sending it through a pipe to another process
and back, the same through shared memory, and a whole parmap call that ships 200 of
them to workers (``serial_fallback=False``) next to ``map`` in the caller. The answer
decides docs/performance.md's "Large payloads" section.
"""

from __future__ import annotations

import multiprocessing
import pickle
import statistics
import time
import zlib
from multiprocessing import shared_memory
from typing import Any, Callable

from parmap import parallel_map

MB = 1_000_000
COUNT = 200


def best_of(repeat: int, action: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def echo(conn: Any) -> None:
    """Receive payloads and answer each with a short reply, until told to stop."""
    while True:
        data = conn.recv_bytes()
        if data == b"stop":
            return
        conn.send_bytes(b"ok")


def pipe_round_trips(payloads: list[bytes]) -> float:
    ours, theirs = multiprocessing.Pipe()
    worker = multiprocessing.get_context("fork").Process(target=echo, args=(theirs,))
    worker.start()

    def send_all() -> None:
        for payload in payloads:
            ours.send_bytes(pickle.dumps(payload, 5))
            ours.recv_bytes()

    seconds = best_of(5, send_all)
    ours.send_bytes(b"stop")
    worker.join()
    return seconds


def shared_memory_copies(payloads: list[bytes]) -> float:
    block = shared_memory.SharedMemory(create=True, size=MB)
    try:

        def copy_in_and_out() -> None:
            for payload in payloads:
                block.buf[: len(payload)] = payload  # the caller writes it
                bytes(block.buf[: len(payload)])  # a worker reads it back as bytes

        return best_of(5, copy_in_and_out)
    finally:
        block.close()
        block.unlink()


def main() -> None:
    payloads = [bytes([i % 256]) * MB for i in range(COUNT)]
    arrays = [bytearray(p) for p in payloads]

    def out_of_band() -> None:
        for array in arrays:
            buffers: list[pickle.PickleBuffer] = []
            pickle.dumps(array, 5, buffer_callback=buffers.append)

    def each(action: Callable[[Any], Any], values: list[Any]) -> Callable[[], None]:
        def run() -> None:
            for value in values:  # nothing kept: every step reuses the same memory
                action(value)

        return run

    rows = {
        "copy (bytes(memoryview))": best_of(5, each(lambda p: bytes(memoryview(p)), payloads)),
        "pickle and unpickle, in band": best_of(
            5, each(lambda p: pickle.loads(pickle.dumps(p, 5)), payloads)
        ),
        "pickle 5, bytearray out of band": best_of(5, out_of_band),
        "pipe to a process and back": pipe_round_trips(payloads),
        "shared memory, in and out": shared_memory_copies(payloads),
        "crc32 of the payload (the work)": best_of(5, each(zlib.crc32, payloads)),
    }
    print(f"{COUNT} payloads of 1 MB; per MB, median of 5:")
    for name, seconds in rows.items():
        print(f"  {name:<34} {seconds / COUNT * 1e3:7.3f} ms")
    parallel_map(abs, range(100), 2, serial_fallback=False)  # start the workers first
    shipped = best_of(5, lambda: parallel_map(zlib.crc32, payloads, 2, serial_fallback=False))
    default = best_of(5, lambda: parallel_map(zlib.crc32, payloads, 2))
    in_caller = best_of(5, lambda: list(map(zlib.crc32, payloads)))
    print(f"list(map(crc32, payloads))                   {in_caller * 1e3:7.1f} ms")
    print(f"parallel_map(crc32, payloads) (default)      {default * 1e3:7.1f} ms")
    print(f"parallel_map(..., serial_fallback=False)     {shipped * 1e3:7.1f} ms")


if __name__ == "__main__":
    main()
