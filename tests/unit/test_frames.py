"""Large buffers travel apart from a message's pickle and arrive intact (_frames.py)."""

from __future__ import annotations

import multiprocessing
import pickle
import threading
from typing import Any

import numpy
import pytest

from parmap import _frames
from parmap._serialization import dumps_portable

pytestmark = pytest.mark.skipif(not _frames.SUPPORTED, reason="buffers travel apart on POSIX")


def _send_in_thread(conn: Any, value: object) -> tuple[threading.Thread, list[memoryview]]:
    """Send *value* from a thread: a pipe holds less than the buffers, so the writer waits
    for the reader, as a caller waits for its worker."""
    buffers: list[memoryview] = []
    payload = dumps_portable(value, buffers)
    sender = threading.Thread(target=_frames.send, args=(conn, payload, buffers))
    sender.start()
    return sender, buffers


def _round_trip(value: object) -> tuple[object, list[memoryview]]:
    receiving, sending = multiprocessing.Pipe()
    with receiving, sending:
        sender, buffers = _send_in_thread(sending, value)
        payload, received = _frames.receive(receiving)
        sender.join(timeout=10)
        return pickle.loads(payload, buffers=received), buffers


def test_large_arrays_arrive_intact_beside_what_is_in_the_pickle() -> None:
    rng = numpy.random.default_rng(7)
    message = (
        "chunk",
        3,
        [
            rng.random(300_000),  # 2.4 MB: apart
            rng.integers(0, 9, size=(700, 900), dtype=numpy.int8),  # 630 kB: apart
            numpy.arange(10.0),  # small: in the pickle
            bytearray(rng.bytes(100_000)),  # pickle copies it into the pickle
            numpy.ones((600, 600))[::2, ::3],  # strided: copied into the pickle
            b"x" * 200_000,  # bytes: always in the pickle
        ],
        None,
    )
    received, buffers = _round_trip(message)
    assert [buffer.nbytes for buffer in buffers] == [2_400_000, 630_000]
    assert isinstance(received, tuple)
    assert received[:2] == ("chunk", 3)
    for sent, arrived in zip(message[2], received[2]):
        assert type(arrived) is type(sent)
        if isinstance(sent, numpy.ndarray):
            assert arrived.dtype == sent.dtype
            assert numpy.array_equal(arrived, sent)
        else:
            assert arrived == sent


def test_arrays_keep_whether_they_could_be_written() -> None:
    """As with a copy in the pickle: a writable array arrives writable (fn may change it
    in place), a read-only one read-only."""
    writable = numpy.arange(100_000.0)
    read_only = numpy.arange(100_000.0)
    read_only.flags.writeable = False
    (arrived_writable, arrived_read_only), buffers = _round_trip((writable, read_only))
    assert len(buffers) == 2
    assert isinstance(arrived_writable, numpy.ndarray)
    assert isinstance(arrived_read_only, numpy.ndarray)
    assert arrived_writable.flags.writeable
    assert not arrived_read_only.flags.writeable
    arrived_writable *= 2
    assert writable[1] == 1.0, "the sender's array is not shared"


def test_a_sender_gone_in_the_middle_of_a_buffer_is_an_end_of_file() -> None:
    """The receiver learns that the sender died (a crashed worker): it does not wait."""
    receiving, sending = multiprocessing.Pipe()
    with receiving:
        payload = pickle.dumps(numpy.zeros(1), pickle.HIGHEST_PROTOCOL)
        sending.send_bytes(_frames.BUFFERS_FRAME + (1_000_000).to_bytes(8, "little"))
        sending.send_bytes(payload)
        sending.send_bytes(b"only the start of the buffer")
        sending.close()
        with pytest.raises(EOFError, match="after 32 of 1000000 bytes"):
            _frames.receive(receiving)


def test_messages_without_large_buffers_are_single_frames() -> None:
    """Nothing changes for them: what other code reads with recv_bytes stays readable."""
    buffers: list[memoryview] = []
    payload = dumps_portable(("ok", 0, [numpy.arange(5), bytearray(10), b"y" * 100_000]), buffers)
    assert buffers == []
    receiving, sending = multiprocessing.Pipe()
    with receiving, sending:
        _frames.send(sending, payload, buffers)
        assert receiving.recv_bytes() == payload


def test_what_goes_by_value_keeps_its_arrays_apart_too() -> None:
    """A message that plain pickle cannot take (a lambda) goes through cloudpickle, which
    hands the arrays over apart as well, and none of the failed pickle's."""
    array = numpy.arange(50_000.0)
    (fn, arrived), buffers = _round_trip((lambda x: x + 1, array))
    assert len(buffers) == 1
    assert callable(fn)
    assert fn(1) == 2
    assert numpy.array_equal(arrived, array)
