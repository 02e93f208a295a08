"""How a pickled message and its large buffers cross a worker's pipe.

A message travels as one frame (``Connection.send_bytes``) holding its pickle, unless
the pickler handed large buffers over apart: numpy arrays, and whatever else reduces
to a ``pickle.PickleBuffer`` (protocol 5; ``bytes`` and ``bytearray`` do not). Then the
sender writes three things:

1. the frame ``BUFFERS_FRAME`` followed by the buffers' sizes;
2. the pickle without the buffers, as a frame;
3. the buffers' bytes, unframed, straight to the pipe's file descriptor.

The receiver reads the bytes straight into buffers of its own and unpickles the
message onto them, so an 8 MB array costs one copy through the kernel instead of a
copy into the pickle, its frame's reads and a copy out of the pickle (on Linux the
sender's CPU fell from 0.74 to 0.19 ms a megabyte, the receiver's from 0.42 to 0.22 ms;
``benchmarks/payload_transfer.py``). ``Connection`` reads exactly the frames it is
asked for, so the unframed bytes wait in the pipe for this module.

Small buffers stay in the pickle: a write of their own is not worth it. What arrives
is what pickle makes of the buffers either way: a numpy array that was writable is
writable, one that was read-only is read-only. Where a connection is not a file
descriptor (Windows), everything stays in the pickle.
"""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import pickle

#: Buffers at least this large travel apart from the pickle.
APART_BYTES = 64 * 1024
#: Announces buffers apart; the sizes follow (8 bytes each, little-endian). A pickle
#: starts with the PROTO opcode (0x80), so no pickled message starts like this.
BUFFERS_FRAME = b"buffers:"
#: Whether connections are file descriptors the buffers can be written to and read from.
SUPPORTED = os.name == "posix"

_SIZE = struct.Struct("<Q")


def apart_collector(buffers: list[memoryview]) -> Callable[[pickle.PickleBuffer], bool]:
    """A ``buffer_callback`` for pickle: keeps large buffers apart in *buffers*.

    Pickle sends a buffer apart when the callback returns a false value, and copies it
    into the pickle otherwise.
    """

    def keep_in_pickle(buffer: pickle.PickleBuffer) -> bool:
        if not SUPPORTED:
            return True
        try:
            raw = buffer.raw()
        except BufferError:  # not contiguous: pickle copies it in order
            return True
        if raw.nbytes < APART_BYTES:
            return True
        buffers.append(raw)
        return False

    return keep_in_pickle


def send(conn: Any, payload: bytes, buffers: list[memoryview]) -> None:
    """Send a message pickled as *payload*, with the *buffers* pickle kept apart."""
    if not buffers:
        conn.send_bytes(payload)
        return
    conn.send_bytes(BUFFERS_FRAME + b"".join(_SIZE.pack(b.nbytes) for b in buffers))
    conn.send_bytes(payload)
    fd = conn.fileno()
    for buffer in buffers:
        _write_all(fd, buffer)


def receive(conn: Any) -> tuple[bytes, list[bytearray]]:
    """The next frame and, if it announced buffers, the pickle and its buffers.

    Unpickle with ``pickle.loads(frame, buffers=buffers)``. Raises ``EOFError`` if the
    sender went away before all of it arrived.
    """
    frame = conn.recv_bytes()
    if not frame.startswith(BUFFERS_FRAME):
        return frame, []
    sizes = [size for (size,) in _SIZE.iter_unpack(frame[len(BUFFERS_FRAME) :])]
    payload = conn.recv_bytes()
    fd = conn.fileno()
    return payload, [_read_exactly(fd, size) for size in sizes]


def _write_all(fd: int, buffer: memoryview) -> None:
    sent = 0
    while sent < buffer.nbytes:
        sent += os.write(fd, buffer[sent:])


def _read_exactly(fd: int, size: int) -> bytearray:
    data = bytearray(size)
    with memoryview(data) as view:
        got = 0
        while got < size:
            count = os.readv(fd, [view[got:]])
            if count == 0:
                msg = f"the pipe closed after {got} of {size} bytes of a buffer"
                raise EOFError(msg)
            got += count
    return data
