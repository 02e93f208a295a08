"""Shared fixtures: start methods, the Hypothesis profile."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from helpers import START_METHODS

settings.register_profile(
    "parmap",
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile("thorough", parent=settings.get_profile("parmap"), max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "parmap"))


@pytest.fixture(params=START_METHODS)
def start_method(request: pytest.FixtureRequest) -> str:
    """Each start method this platform offers."""
    return str(request.param)
