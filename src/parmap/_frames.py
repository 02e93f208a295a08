"""How a pickled message crosses a worker's pipe without copies of its large data.

``pickle.dumps`` copies everything into one bytes object, and ``Connection.recv_bytes``
reads a large frame 64 KB at a time into an allocation of the rest before copying it
once more. For large messages both cost more than the pipe itself, so:

- The pickler writes to a list of pieces instead of one buffer. It hands large
  ``bytes`` (and ``bytearray``, and encoded ``str``) to the list as they are, so the
  sender makes no copy of them.
- Pickle protocol 5 hands the data of numpy arrays (whatever reduces to a
  ``pickle.PickleBuffer``) to a callback; contiguous ones of ``APART_BYTES`` or more are
  kept apart from the pickle altogether.

A message under ``APART_BYTES`` with nothing apart travels as one frame
(``Connection.send_bytes``), as before. A larger one travels as the frame ``RAW_FRAME``
with the sizes of its pickle and of its buffers, then those bytes, unframed, written
straight to the pipe's file descriptor. The receiver reads them straight into buffers of
its own and unpickles the message from the first onto the others, so an array's data
is copied once, through the kernel, and a ``bytes`` item once more by the unpickler.
On Linux that cut the sender's CPU per megabyte from 0.74 to 0.19 ms and the
receiver's from 0.42 to 0.22 ms for numpy arrays (``benchmarks/payload_transfer.py``).
``Connection`` reads exactly the frames it is asked for, so the unframed bytes wait in
the pipe for this module.

What arrives is what pickle makes of the data either way: a numpy array that was
writable is writable, one that was read-only is read-only. Where a connection is not a
file descriptor (Windows), every message is one frame.
"""

from __future__ import annotations

import os
import pickle
import struct
from typing import Any, Callable, NamedTuple

#: Buffers at least this large travel apart from the pickle, and messages at least this
#: large travel unframed.
APART_BYTES = 64 * 1024
#: Announces an unframed message; the sizes of its pickle and of its buffers follow
#: (8 bytes each, little-endian). A pickle starts with the PROTO opcode (0x80), so no
#: pickled message starts like this.
RAW_FRAME = b"raw:"
#: Whether connections are file descriptors the bytes can be written to and read from.
SUPPORTED = os.name == "posix"
#: Every message's, and every other pickle's crossing to a worker.
PROTOCOL = pickle.HIGHEST_PROTOCOL

_SIZE = struct.Struct("<Q")
#: Longer than any frame the pickler writes: it ends a frame at the first opcode past
#: 64 KiB, and an opcode carries under 64 KiB of data (more is written as it is).
_LONGEST_FRAME = 256 * 1024


class Pickled(NamedTuple):
    """A pickled message: its pickle in pieces, in order, and buffers kept apart."""

    pieces: list[Any]  # bytes-like objects, some of them the message's own data
    buffers: list[memoryview]

    def size(self) -> int:
        """Bytes in the pickle."""
        return sum(memoryview(piece).nbytes for piece in self.pieces)

    def total_size(self) -> int:
        """Bytes in the pickle and its buffers."""
        return self.size() + sum(buffer.nbytes for buffer in self.buffers)

    def joined(self) -> bytes:
        """The pickle as one bytes object (a copy: for small messages)."""
        return b"".join(self.pieces)

    def mentions(self, name: bytes) -> bool:
        """Whether *name* may occur in the pickle's opcodes (a byte scan).

        Only pieces that may hold opcodes are scanned: the pickler's own frames, which
        are ``bytes`` under ``_LONGEST_FRAME``. Longer pieces, and pieces of other types,
        are data handed over as it is (scanning a megabyte took 0.37 ms).
        """
        return any(
            name in piece
            for piece in self.pieces
            if type(piece) is bytes and len(piece) < _LONGEST_FRAME
        )


class _Pieces:
    """A file for the pickler that keeps what is written to it, without copies: pieces
    of ``bytes`` or ``bytearray``, or flat memoryviews of other buffers."""

    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[Any] = []

    def write(self, data: Any) -> int:
        if type(data) is not bytes and type(data) is not bytearray:
            # A PickleBuffer (or a memory view) of data copied in band: C or Fortran
            # order, any format; its raw bytes are what pickle means.
            data = data.raw() if isinstance(data, pickle.PickleBuffer) else memoryview(data)
        self.parts.append(data)
        return len(data) if type(data) is not memoryview else data.nbytes


def pickle_apart(pickler: Callable[..., Any], value: object, *, apart: bool) -> Pickled:
    """Pickle *value* with *pickler* (a ``pickle.Pickler`` class), its large buffers kept
    apart if *apart* (and the platform can send them so)."""
    pieces = _Pieces()
    buffers: list[memoryview] = []
    keep_apart = _apart_collector(buffers) if apart and SUPPORTED else None
    pickler(pieces, PROTOCOL, buffer_callback=keep_apart).dump(value)
    return Pickled(pieces.parts, buffers)


def _apart_collector(buffers: list[memoryview]) -> Callable[[pickle.PickleBuffer], bool]:
    """A ``buffer_callback`` for pickle: keeps large buffers apart in *buffers*.

    Pickle sends a buffer apart when the callback returns a false value, and copies it
    into the pickle otherwise.
    """

    def keep_in_pickle(buffer: pickle.PickleBuffer) -> bool:
        try:
            raw = buffer.raw()
        except BufferError:  # not contiguous: pickle copies it in order
            return True
        if raw.nbytes < APART_BYTES:
            return True
        buffers.append(raw)
        return False

    return keep_in_pickle


def send(conn: Any, message: Pickled) -> None:
    """Send *message*: one frame if it is small, else unframed after a RAW_FRAME."""
    size = message.size()
    if not SUPPORTED or (size < APART_BYTES and not message.buffers):
        conn.send_bytes(message.joined())
        return
    sizes = [size] + [buffer.nbytes for buffer in message.buffers]
    conn.send_bytes(RAW_FRAME + b"".join(_SIZE.pack(n) for n in sizes))
    fd = conn.fileno()
    for piece in (*message.pieces, *message.buffers):
        with memoryview(piece) as view:
            _write_all(fd, view)


def receive(conn: Any) -> tuple[Any, list[bytearray]]:
    """The next message's pickle and its buffers apart, or a frame and no buffers.

    Unpickle with ``pickle.loads(payload, buffers=buffers)``. Raises ``EOFError`` if the
    sender went away before all of it arrived.
    """
    frame = conn.recv_bytes()
    if not frame.startswith(RAW_FRAME):
        return frame, []
    sizes = [size for (size,) in _SIZE.iter_unpack(frame[len(RAW_FRAME) :])]
    fd = conn.fileno()
    payload, *buffers = [_read_exactly(fd, size) for size in sizes]
    return payload, buffers


def _write_all(fd: int, view: memoryview) -> None:
    sent = 0
    while sent < view.nbytes:
        sent += os.write(fd, view[sent:])


def _read_exactly(fd: int, size: int) -> bytearray:
    data = bytearray(size)
    with memoryview(data) as view:
        got = 0
        while got < size:
            count = os.readv(fd, [view[got:]])
            if count == 0:
                msg = f"the pipe closed after {got} of {size} bytes"
                raise EOFError(msg)
            got += count
    return data
