"""Large messages cross a pipe unframed, numpy arrays apart from the pickle, and arrive
intact (_frames.py)."""

from __future__ import annotations

import multiprocessing
import pickle
import threading
from typing import Any

import numpy
import pytest

from parmap import _frames
from parmap._serialization import pickle_portable

pytestmark = pytest.mark.skipif(not _frames.SUPPORTED, reason="messages go unframed on POSIX")


def _round_trip(value: object) -> tuple[object, _frames.Pickled]:
    """Send *value* from a thread, as parmap does, and read it back. From a thread: a
    pipe holds less than a large message, so the writer waits for the reader."""
    pickled = pickle_portable(value, apart=True)
    receiving, sending = multiprocessing.Pipe()
    with receiving, sending:
        sender = threading.Thread(target=_frames.send, args=(sending, pickled))
        sender.start()
        received = _frames.receive(receiving).load()
        sender.join(timeout=10)
    return received, pickled


def test_large_arrays_go_apart_and_everything_arrives_intact() -> None:
    rng = numpy.random.default_rng(7)
    message = (
        "chunk",
        3,
        [
            rng.random(300_000),  # 2.4 MB: apart
            rng.integers(0, 9, size=(700, 900), dtype=numpy.int8),  # 630 kB: apart
            numpy.arange(10.0),  # small: in the pickle
            bytearray(rng.bytes(100_000)),  # in the pickle, as it is
            numpy.ones((600, 600))[::2, ::3],  # strided: copied into the pickle
            b"x" * 200_000,  # in the pickle, as it is
            "text " * 30_000,  # in the pickle, encoded
        ],
        None,
    )
    received, pickled = _round_trip(message)
    assert [buffer.nbytes for buffer in pickled.buffers] == [2_400_000, 630_000]
    sent_as_they_are = [piece for piece in pickled.pieces if piece is message[2][5]]
    assert sent_as_they_are, "the bytes item was not copied into the pickle"
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
    (arrived_writable, arrived_read_only), pickled = _round_trip((writable, read_only))
    assert len(pickled.buffers) == 2
    assert isinstance(arrived_writable, numpy.ndarray)
    assert isinstance(arrived_read_only, numpy.ndarray)
    assert arrived_writable.flags.writeable
    assert not arrived_read_only.flags.writeable
    arrived_writable *= 2
    assert writable[1] == 1.0, "the sender's array is not shared"


def test_what_goes_by_value_keeps_its_arrays_apart_too() -> None:
    """A message that plain pickle cannot take (a lambda) goes through cloudpickle, which
    hands the arrays over apart as well, and none of the failed pickle's."""
    array = numpy.arange(50_000.0)
    (fn, arrived), pickled = _round_trip((lambda x: x + 1, array))
    assert len(pickled.buffers) == 1
    assert callable(fn)
    assert fn(1) == 2
    assert numpy.array_equal(arrived, array)


def test_a_fortran_ordered_array_copied_into_the_pickle_arrives_intact() -> None:
    """Without buffers apart (fn, exceptions), pickle writes a large array's data as it
    is, in Fortran order here."""
    array = numpy.asfortranarray(numpy.arange(120_000.0).reshape(300, 400))
    pickled = pickle_portable(array, apart=False)
    assert pickled.buffers == []
    arrived = pickle.loads(pickled.joined())
    assert numpy.array_equal(arrived, array)


def _send_only_the_start(sending: Any, value: object, byte_count: int) -> None:
    """What a worker that dies in the middle of a message leaves in its pipe."""
    pickled = pickle_portable(value, apart=True)
    sizes = [pickled.size()] + [buffer.nbytes for buffer in pickled.buffers]
    announce = _frames.STREAM_FRAME if pickled.holds_large_data() else _frames.RAW_FRAME
    sending.send_bytes(announce + b"".join(n.to_bytes(8, "little") for n in sizes))
    on_the_wire = b"".join(bytes(part) for part in (*pickled.buffers, *pickled.pieces))
    sending.send_bytes(on_the_wire[:byte_count])  # framed: 4 more bytes of length first
    sending.close()


def test_a_sender_gone_in_the_middle_of_a_pickle_is_an_end_of_file() -> None:
    """The receiver learns that the sender died (a crashed worker): it does not wait."""
    receiving, sending = multiprocessing.Pipe()
    with receiving:
        _send_only_the_start(sending, ("ok", 0, [b"x" * 1_000_000]), 1000)
        incoming = _frames.receive(receiving)
        with pytest.raises(_frames.PipeClosed, match="closed"):
            incoming.load()


def test_a_sender_gone_in_the_middle_of_a_buffer_is_an_end_of_file() -> None:
    receiving, sending = multiprocessing.Pipe()
    with receiving:
        _send_only_the_start(sending, ("ok", 0, [numpy.zeros(125_000)]), 1000)
        with pytest.raises(EOFError, match="after 1004 of 1000000 bytes"):
            _frames.receive(receiving)


def _refuse_to_load() -> None:
    raise ValueError("this object cannot be loaded here")


class _Unloadable:
    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return _refuse_to_load, ()


def test_a_message_that_fails_to_load_leaves_the_next_one_intact() -> None:
    """Unpickling stops at the error; the rest of that message is read and dropped."""
    failing = pickle_portable(("ok", 0, [_Unloadable(), b"y" * 500_000]), apart=True)
    following = pickle_portable(("ok", 1, [b"z" * 300_000]), apart=True)
    receiving, sending = multiprocessing.Pipe()
    with receiving, sending:

        def send_both() -> None:
            _frames.send(sending, failing)
            _frames.send(sending, following)

        sender = threading.Thread(target=send_both)
        sender.start()
        with pytest.raises(ValueError, match="cannot be loaded here"):
            _frames.receive(receiving).load()
        assert _frames.receive(receiving).load() == ("ok", 1, [b"z" * 300_000])
        sender.join(timeout=10)


@pytest.mark.parametrize(
    ("value", "streamed"),
    [
        ([f"line {i}" for i in range(20_000)], False),  # 200 kB of small objects
        ([b"x" * 300_000, "y" * 300_000, bytearray(70_000)], True),
    ],
)
def test_a_pickle_of_small_objects_is_read_at_once_and_large_data_streamed(
    value: object, streamed: bool
) -> None:
    """A pickle of small objects is read into memory at once (which frees the sender at
    once); one holding large data is unpickled from the pipe, straight into its objects."""
    pickled = pickle_portable(value, apart=True)
    assert pickled.size() >= _frames.APART_BYTES
    assert pickled.holds_large_data() is streamed
    receiving, sending = multiprocessing.Pipe()
    with receiving, sending:
        sender = threading.Thread(target=_frames.send, args=(sending, pickled))
        sender.start()
        incoming = _frames.receive(receiving)
        assert (incoming.frame is None) is streamed, "None: the pickle waits in the pipe"
        assert incoming.load() == value
        sender.join(timeout=10)


def test_large_bytes_arrive_as_bytes_of_their_own() -> None:
    payload = bytes(range(256)) * 4096  # 1 MB
    (arrived,), _ = _round_trip((payload,))
    assert type(arrived) is bytes
    assert arrived == payload
    assert arrived is not payload


def test_small_messages_are_single_frames() -> None:
    """Nothing changes for them: they are read with recv_bytes."""
    message: Any = ("ok", 0, [numpy.arange(5), bytearray(10), b"y" * 1000])
    pickled = pickle_portable(message, apart=True)
    assert pickled.buffers == []
    receiving, sending = multiprocessing.Pipe()
    with receiving, sending:
        _frames.send(sending, pickled)
        assert receiving.recv_bytes() == pickled.joined()
