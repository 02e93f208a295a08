"""Large items and results cross to worker processes and back unframed, numpy arrays apart
from the pickle (_frames.py), with the semantics of a copy."""

from __future__ import annotations

import os

import numpy
import pytest

import parmap
from parmap import _frames, parallel_imap, parallel_map

from helpers import double_in_place, identity, keeps_freed_memory
from support import MALLOC_SETTINGS, on_glibc

pytestmark = pytest.mark.skipif(not _frames.SUPPORTED, reason="messages go unframed on POSIX")


def _arrays(count: int, length: int) -> list[numpy.ndarray]:
    rng = numpy.random.default_rng(11)
    return [rng.random(length) for _ in range(count)]


def test_arrays_changed_in_a_worker_come_back_changed_and_leave_the_callers_alone() -> None:
    arrays = _arrays(12, 150_000)  # 1.2 MB each: apart both ways
    before = [array.copy() for array in arrays]
    answers = parallel_map(double_in_place, arrays, 2, serial_fallback=False, chunksize=2)
    assert all(pid != os.getpid() for pid, _ in answers), "they ran in worker processes"
    for (_, doubled), original in zip(answers, before):
        assert numpy.array_equal(doubled, original * 2)
        assert doubled.flags.writeable
        doubled[0] = -1.0  # the caller owns what came back
    for array, original in zip(arrays, before):
        assert numpy.array_equal(array, original), "the caller's arrays did not change"


def test_arrays_of_many_shapes_and_types_round_trip_through_a_lazy_map() -> None:
    rng = numpy.random.default_rng(5)
    arrays = [
        rng.integers(-(2**40), 2**40, size=(300, 400)),
        numpy.asfortranarray(rng.random((256, 300))),
        rng.random(100_000).astype(numpy.float32),
        numpy.ones((800, 800))[::2, ::2],  # strided: copied into the pickle
        numpy.zeros(3),
        (rng.random((200, 200)) > 0.5),
    ]
    back = list(parallel_imap(identity, arrays, 2, serial_fallback=False, chunksize=1))
    for sent, arrived in zip(arrays, back):
        assert arrived.dtype == sent.dtype
        assert arrived.shape == sent.shape
        assert numpy.array_equal(arrived, sent)
    assert back[1].flags.f_contiguous


def test_large_bytes_and_strings_round_trip_beside_small_items() -> None:
    rng = numpy.random.default_rng(9)
    items: list[object] = [
        rng.bytes(3_000_000),
        "é" * 200_000,
        bytearray(rng.bytes(150_000)),
        b"small",
        [rng.bytes(70_000), ("nested", rng.bytes(90_000))],
        7,
    ]
    assert parallel_map(identity, items, 2, serial_fallback=False, chunksize=2) == items


@pytest.mark.skipif(not on_glibc(), reason="glibc malloc's settings")
def test_workers_keep_freed_memory_once_large_items_arrive_and_not_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in MALLOC_SETTINGS:  # a user's own settings would win (Dask's nanny sets one)
        monkeypatch.delenv(name, raising=False)
    parmap.shutdown()  # fresh workers, which have seen no large message
    small = parallel_map(keeps_freed_memory, [b"x" * 1000] * 4, 2, serial_fallback=False)
    assert small == [False] * 4
    large = parallel_map(keeps_freed_memory, [b"x" * 600_000] * 4, 1, serial_fallback=False)
    assert large == [True] * 4, "the first chunk's message was large"
