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
straight to the pipe's file descriptor: the buffers first, then the pickle. The receiver
reads the buffers straight into buffers of its own. A pickle holding large data the
pickler handed over (``STREAM_FRAME``) it unpickles straight from the pipe, so the
unpickler reads each large ``bytes`` straight into the object it makes; a pickle of
small objects it reads at once (``RAW_FRAME``), which frees the sender sooner. Either
way the data is copied once, through the kernel. On Linux the
sender's CPU per megabyte fell from 0.84 to 0.23 ms for numpy arrays and from 0.93 to
0.24 ms for ``bytes``, the receiver's from 1.10 to 0.19 ms and from 1.13 to 0.18 ms
(``benchmarks/payload_transfer.py``). ``Connection`` reads exactly the frames it is
asked for, so the unframed bytes wait in the pipe for this module.

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
#: The same, for a message whose pickle holds large data: the receiver unpickles it
#: straight from the pipe (``Pickled.holds_large_data``).
STREAM_FRAME = b"str:"
assert len(STREAM_FRAME) == len(RAW_FRAME)
#: Whether connections are file descriptors the bytes can be written to and read from.
SUPPORTED = os.name == "posix"
#: Every message's, and every other pickle's crossing to a worker.
PROTOCOL = pickle.HIGHEST_PROTOCOL

_SIZE = struct.Struct("<Q")
#: Bytes read from the pipe at once while unpickling, for the opcodes and frames ahead.
READ_AHEAD = 64 * 1024
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

    def joined(self) -> bytes:
        """The pickle as one bytes object (a copy: for small messages)."""
        return b"".join(self.pieces)

    def holds_large_data(self) -> bool:
        """Whether the pickle holds data the pickler handed over as it was: pieces that are
        not ``bytes``, or too long to be its own frames. The receiver unpickles such a
        pickle straight from the pipe, to read that data straight into its objects; a
        pickle of small objects it reads at once, and unpickles from memory."""
        return any(
            type(piece) is not bytes or len(piece) >= _LONGEST_FRAME for piece in self.pieces
        )

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


def send(conn: Any, message: Pickled) -> int:
    """Send *message*: one frame if it is small, else unframed after a RAW_FRAME (or a
    STREAM_FRAME, if its pickle holds large data): its buffers first, then its pickle.
    Returns the bytes of its pickle and its buffers."""
    size = message.size()
    if not SUPPORTED or (size < APART_BYTES and not message.buffers):
        conn.send_bytes(message.joined())
        return size
    sizes = [size] + [buffer.nbytes for buffer in message.buffers]
    announce = STREAM_FRAME if message.holds_large_data() else RAW_FRAME
    conn.send_bytes(announce + b"".join(_SIZE.pack(n) for n in sizes))
    fd = conn.fileno()
    for piece in (*message.buffers, *message.pieces):
        with memoryview(piece) as view:
            _write_all(fd, view)
    return sum(sizes)


class PipeClosed(EOFError):
    """The pipe failed or closed in the middle of a message: the sender is gone."""


class Incoming:
    """A message read from a pipe, its buffers read, ready for ``load()``: a frame, an
    unframed pickle read into memory, or one that waits in the pipe (``STREAM_FRAME``)."""

    __slots__ = ("_buffers", "_fd", "_pickle_size", "frame", "size")

    def __init__(
        self, frame: Any, *, fd: int = -1, pickle_size: int = 0, buffers: Any = ()
    ) -> None:
        self.frame = frame  # the pickle (or a frame that is not one), or None: in the pipe
        self._fd = fd
        self._pickle_size = len(frame) if frame is not None else pickle_size
        self._buffers: list[bytearray] = list(buffers)
        #: Bytes in the message: its pickle and its buffers.
        self.size = self._pickle_size + sum(map(len, buffers))

    def load(self) -> Any:
        """The message, unpickled (once). Raises ``PipeClosed`` if the sender went away
        before all of it arrived.

        A pickle left in the pipe is unpickled straight from it: the unpickler reads each
        large ``bytes`` straight into the object it makes (one copy, not two). What it
        leaves unread, if it raises an exception, is read and dropped, so the next message
        starts where it should.
        """
        buffers, self._buffers = self._buffers, []
        if self.frame is not None:
            return pickle.loads(self.frame, buffers=buffers)
        reader = _PipeReader(self._fd, self._pickle_size)
        self._pickle_size = 0
        try:
            return pickle.load(reader, buffers=buffers)
        except PipeClosed:
            raise
        except Exception:
            # Not on KeyboardInterrupt: the call stops, and the worker with it.
            reader.drain()
            raise


def receive(conn: Any) -> Incoming:
    """The next message on *conn*, read up to its pickle (see ``Incoming``).

    Raises ``EOFError`` (or ``OSError``) if the pipe closed before it, ``PipeClosed`` if
    it closed in the middle of it.
    """
    frame = conn.recv_bytes()
    streamed = frame.startswith(STREAM_FRAME)
    if not streamed and not frame.startswith(RAW_FRAME):
        return Incoming(frame)
    header = frame[len(RAW_FRAME) :]  # STREAM_FRAME is as long
    pickle_size, *sizes = [size for (size,) in _SIZE.iter_unpack(header)]
    fd = conn.fileno()
    buffers = [_read_exactly(fd, size) for size in sizes]
    if streamed:
        return Incoming(None, fd=fd, pickle_size=pickle_size, buffers=buffers)
    return Incoming(_read_exactly(fd, pickle_size), buffers=buffers)


class _PipeReader:
    """A file for the unpickler: the next *size* bytes of the pipe *fd*, and no more.

    Small reads (opcodes, the pickler's frames of about 64 KiB between the large objects)
    are served from a read-ahead buffer: a system call per READ_AHEAD bytes, not three per
    frame. A large ``readinto`` (the data of a ``bytes``) reads straight from the pipe into
    the object the unpickler made, after what the buffer already holds.
    """

    __slots__ = ("_buffer", "_fd", "_position", "_unread")

    def __init__(self, fd: int, size: int) -> None:
        self._fd = fd
        self._unread = size  # still in the pipe
        self._buffer = b""
        self._position = 0

    def _buffered(self) -> int:
        return len(self._buffer) - self._position

    def read(self, size: int = -1) -> bytes:
        buffered = self._buffered()
        size = buffered + self._unread if size < 0 else min(size, buffered + self._unread)
        if size <= buffered:
            data = self._buffer[self._position : self._position + size]
            self._position += size
            return data
        parts = [self._buffer[self._position :]]
        self._buffer, self._position = b"", 0
        wanted = size - buffered
        while wanted:
            part = _read(self._fd, min(self._unread, max(wanted, READ_AHEAD)))
            self._unread -= len(part)
            if len(part) > wanted:  # read ahead: keep the rest for the next reads
                self._buffer, self._position = part, wanted
                part = part[:wanted]
            parts.append(part)
            wanted -= len(part)
        return b"".join(parts)

    def readinto(self, buffer: Any) -> int:
        with memoryview(buffer) as view, view.cast("B") as flat:
            size = min(flat.nbytes, self._buffered() + self._unread)
            taken = min(size, self._buffered())
            flat[:taken] = self._buffer[self._position : self._position + taken]
            self._position += taken
            _read_into(self._fd, flat[taken:size])
        self._unread -= size - taken
        return size

    def readline(self) -> bytes:
        """Only opcodes of pickle protocols 0 to 3 end with a newline; never ours."""
        line = b""
        while (self._buffered() or self._unread) and not line.endswith(b"\n"):
            line += self.read(1)
        return line

    def drain(self) -> None:
        """Read and drop what is left of the pickle."""
        self._buffer, self._position = b"", 0
        scratch = bytearray(min(self._unread, 1 << 20))
        with memoryview(scratch) as view:
            while self._unread:
                size = min(self._unread, len(scratch))
                _read_into(self._fd, view[:size])
                self._unread -= size


def _write_all(fd: int, view: memoryview) -> None:
    sent = 0
    while sent < view.nbytes:
        sent += os.write(fd, view[sent:])


def _read_exactly(fd: int, size: int) -> bytearray:
    data = bytearray(size)
    with memoryview(data) as view:
        _read_into(fd, view)
    return data


def _read_into(fd: int, view: memoryview) -> None:
    """Fill *view* from *fd*; ``PipeClosed`` if the pipe fails or closes first."""
    got = 0
    while got < view.nbytes:
        try:
            count = os.readv(fd, [view[got:]])
        except OSError as exc:
            msg = f"the pipe failed after {got} of {view.nbytes} bytes: {exc}"
            raise PipeClosed(msg) from exc
        if count == 0:
            msg = f"the pipe closed after {got} of {view.nbytes} bytes"
            raise PipeClosed(msg)
        got += count


def _read(fd: int, size: int) -> bytes:
    """Up to *size* bytes from *fd*, at least one; ``PipeClosed`` if there are none."""
    try:
        data = os.read(fd, size)
    except OSError as exc:
        msg = f"the pipe failed: {exc}"
        raise PipeClosed(msg) from exc
    if not data:
        msg = "the pipe closed in the middle of a message"
        raise PipeClosed(msg)
    return data
