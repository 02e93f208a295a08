"""Shared fixtures: start methods, the Hypothesis profile."""

from __future__ import annotations

import copyreg
import os

import pytest
from hypothesis import HealthCheck, settings

import parmap._call

from helpers import START_METHODS

settings.register_profile(
    "parmap",
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile("thorough", parent=settings.get_profile("parmap"), max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "parmap"))

#: How objects pickle before any test module is imported. Importing ``distributed``
#: (tests/integration/test_dask.py) registers tblib's reducers for every exception
#: class, which makes exceptions that cannot normally be pickled picklable: the tests
#: of such exceptions would then depend on which modules pytest happened to collect.
_STANDARD_PICKLING = dict(copyreg.dispatch_table)


@pytest.fixture(autouse=True)
def _standard_pickling() -> None:
    """Every test starts with Python's own pickling table (see above)."""
    if copyreg.dispatch_table != _STANDARD_PICKLING:
        copyreg.dispatch_table.clear()
        copyreg.dispatch_table.update(_STANDARD_PICKLING)


@pytest.fixture(autouse=True)
def _fns_new_to_the_probe() -> None:
    """Every test's fns are new to the probe, as in a fresh program: whether the first
    item's timer keeps its tick floor, and whether work goes out at once on the item time
    of an earlier call (or, on threads, on its first item seen waiting, or its items seen
    overlapping), must not depend on which tests ran before."""
    parmap._fn_memory.forget_everything()


@pytest.fixture(params=START_METHODS)
def start_method(request: pytest.FixtureRequest) -> str:
    """Each start method this platform offers."""
    return str(request.param)
