"""Shared fixtures: start methods, the Hypothesis profile."""

from __future__ import annotations

import multiprocessing
import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "parmap",
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile("thorough", parent=settings.get_profile("parmap"), max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "parmap"))

START_METHODS = [
    m for m in ("fork", "spawn", "forkserver") if m in multiprocessing.get_all_start_methods()
]


@pytest.fixture(params=START_METHODS)
def start_method(request: pytest.FixtureRequest) -> str:
    """Each start method this platform offers."""
    return str(request.param)
