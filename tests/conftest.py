"""Shared fixtures: paths to the real-node vectors and captures."""

from __future__ import annotations

import os
import pathlib

import pytest
from hypothesis import HealthCheck, settings

ROOT = pathlib.Path(__file__).resolve().parent.parent
#: ``../shared`` beside the checkout (CI lays it there); RSPROTO_SHARED overrides.
SHARED = pathlib.Path(os.environ.get("RSPROTO_SHARED", ROOT.parent / "shared"))
VECTORS = SHARED / "vectors" / "retroshare"
CAPTURES = VECTORS / "captures"
#: The second capture run (GXS, turtle, ban lists).
CAPTURES2 = VECTORS / "captures2"

settings.register_profile("ci", max_examples=100, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")


@pytest.fixture(scope="session")
def vectors() -> pathlib.Path:
    assert VECTORS.is_dir(), f"real-node vectors missing at {VECTORS}"
    return VECTORS


@pytest.fixture(scope="session")
def captures2() -> pathlib.Path:
    assert CAPTURES2.is_dir(), f"real-node captures missing at {CAPTURES2}"
    return CAPTURES2


@pytest.fixture(scope="session")
def captures() -> pathlib.Path:
    assert CAPTURES.is_dir(), f"real-node captures missing at {CAPTURES}"
    return CAPTURES
