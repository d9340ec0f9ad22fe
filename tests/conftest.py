"""Shared fixtures: paths to the real-node vectors and captures."""

from __future__ import annotations

import os
import pathlib

import pytest
from hypothesis import HealthCheck, settings

from tests.vector_store import vectors_root

ROOT = pathlib.Path(__file__).resolve().parent.parent
#: The real-node vectors: those the repository ships (``tests/vectors/retroshare/``, extracted
#: once into a git-ignored cache), or ``$RSPROTO_SHARED/vectors/retroshare`` when that is set.
VECTORS = (pathlib.Path(os.environ["RSPROTO_SHARED"]) / "vectors" / "retroshare"
           if os.environ.get("RSPROTO_SHARED") else vectors_root())
CAPTURES = VECTORS / "captures"
#: Recorded JSON API exchanges and event streams of a real retroshare-service.
JSONAPI = VECTORS / "jsonapi"
#: Campaign 2: GXS identities, a lobby, channel/forum/board sync, distant chat and mail, a turtle
#: transfer, ban lists, between three real nodes.
CAPTURES2 = VECTORS / "captures2"

settings.register_profile("ci", max_examples=100, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")


@pytest.fixture(scope="session")
def vectors() -> pathlib.Path:
    assert VECTORS.is_dir(), f"real-node vectors missing at {VECTORS}"
    return VECTORS


@pytest.fixture(scope="session")
def captures() -> pathlib.Path:
    assert CAPTURES.is_dir(), f"real-node captures missing at {CAPTURES}"
    return CAPTURES


@pytest.fixture(scope="session")
def captures2() -> pathlib.Path:
    assert CAPTURES2.is_dir(), f"real-node captures (campaign 2) missing at {CAPTURES2}"
    return CAPTURES2
