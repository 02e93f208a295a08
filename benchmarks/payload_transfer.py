"""What moving large payloads to a worker costs, step by step, to choose how to send them.

    python benchmarks/payload_transfer.py               # --scale 0.1 for a quick look

Prints, per MB: copying it in memory, pickling it (protocol 5, in band), sending it
through a pipe to another process (which answers briefly), the same through shared
memory, and a whole parmap call that ships 200 of them to workers
(``serial_fallback=False``) next to ``map`` in the caller; then numpy arrays and
``bytes`` of 8 MB sent to a process as one frame of ``pickle.dumps`` and as parmap
sends them (``_frames.py``), with the CPU time of both sides. The answers decide
docs/performance.md's "Large payloads" section.
"""

from __future__ import annotations

import argparse
import multiprocessing
import pickle
import statistics
import time
import zlib
from multiprocessing import shared_memory
from typing import Any, Callable

import numpy

from parmap import _frames as frames
from parmap import parallel_map
from parmap._serialization import pickle_portable

MB = 1_000_000
COUNT = 200
ARRAY_COUNT, ARRAY_MB = 24, 8


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


def unpickle_and_answer(conn: Any) -> None:
    """Receive pickled messages as parmap's workers do, until told to stop; then send
    the CPU seconds that took."""
    began = time.process_time()
    while True:
        incoming = frames.receive(conn)
        if incoming.frame == b"stop":
            conn.send(time.process_time() - began)
            return
        incoming.load()
        conn.send_bytes(b"ok")


def round_trips(values: list[Any], through_frames: bool) -> tuple[float, float, float]:
    """Seconds, and the sender's and the receiver's CPU seconds, to send every value to a
    process that unpickles it: as one frame of ``pickle.dumps``, or as parmap sends
    large messages (``_frames.py``: unframed, numpy arrays apart from the pickle)."""
    ours, theirs = multiprocessing.Pipe()
    worker = multiprocessing.get_context("fork").Process(target=unpickle_and_answer, args=(theirs,))
    worker.start()

    def send_all() -> None:
        for value in values:
            if through_frames:
                frames.send(ours, pickle_portable(value, apart=True))
            else:
                ours.send_bytes(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))
            ours.recv_bytes()

    cpu_began = time.process_time()
    seconds = best_of(5, send_all)
    cpu_seconds = (time.process_time() - cpu_began) / 5
    ours.send_bytes(b"stop")
    receiver_seconds = ours.recv() / 5
    worker.join()
    return seconds, cpu_seconds, receiver_seconds


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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the payloads")
    scale = parser.parse_args().scale
    count = max(4, round(COUNT * scale))
    array_count = max(2, round(ARRAY_COUNT * scale))
    payloads = [bytes([i % 256]) * MB for i in range(count)]

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
        "pipe to a process and back": pipe_round_trips(payloads),
        "shared memory, in and out": shared_memory_copies(payloads),
        "crc32 of the payload (the work)": best_of(5, each(zlib.crc32, payloads)),
    }
    print(f"{count} payloads of 1 MB; per MB, median of 5:")
    for name, seconds in rows.items():
        print(f"  {name:<34} {seconds / count * 1e3:7.3f} ms")
    parallel_map(abs, range(100), 2, serial_fallback=False)  # start the workers first
    shipped = best_of(5, lambda: parallel_map(zlib.crc32, payloads, 2, serial_fallback=False))
    default = best_of(5, lambda: parallel_map(zlib.crc32, payloads, 2))
    in_caller = best_of(5, lambda: list(map(zlib.crc32, payloads)))
    print(f"list(map(crc32, payloads))                   {in_caller * 1e3:7.1f} ms")
    print(f"parallel_map(crc32, payloads) (default)      {default * 1e3:7.1f} ms")
    print(f"parallel_map(..., serial_fallback=False)     {shipped * 1e3:7.1f} ms")
    rng = numpy.random.default_rng(1)
    arrays = [rng.random(ARRAY_MB * MB // 8) for _ in range(array_count)]
    blobs = [bytes([i % 256]) * (ARRAY_MB * MB) for i in range(array_count)]
    size = array_count * ARRAY_MB
    print(f"{array_count} values of {ARRAY_MB} MB to a process that unpickles them; per MB:")
    for kind, values in (("numpy arrays", arrays), ("bytes", blobs)):
        for through_frames in (False, True):
            seconds, sender, receiver = round_trips(values, through_frames)
            how = "as parmap sends them" if through_frames else "pickle.dumps, one frame"
            print(
                f"  {kind + ', ' + how:<42} {seconds / size * 1e3:6.3f} ms, CPU of the "
                f"sender {sender / size * 1e3:.3f} ms and of the receiver "
                f"{receiver / size * 1e3:.3f} ms"
            )


if __name__ == "__main__":
    main()
