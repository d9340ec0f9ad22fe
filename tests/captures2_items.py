"""Items of the second capture campaign (GXS, lobbies), read once per test session."""

from __future__ import annotations

import functools
import json
from typing import Any

from tests.conftest import CAPTURES2

NODES = ("alice", "bob", "carol")


@functools.cache
def lines(node: str) -> tuple[dict[str, Any], ...]:
    """Every captured item line of ``node`` (1-based line n is ``lines(node)[n - 1]``)."""
    with open(CAPTURES2 / f"{node}.items.jsonl", encoding="utf-8") as f:
        return tuple(json.loads(line) for line in f)


def raw(node: str, line: int) -> bytes:
    """The bytes of item ``node:line`` as the README's "Where to look" names them."""
    return bytes.fromhex(lines(node)[line - 1]["hex"])


@functools.cache
def nodes() -> dict[str, Any]:
    with open(CAPTURES2 / "nodes.json", encoding="utf-8") as f:
        return json.load(f)  # type: ignore[no-any-return]


def items(services: frozenset[int]) -> list[tuple[str, int, bytes]]:
    """(node, line, bytes) of every captured item of the given services, all nodes."""
    out = []
    for node in NODES:
        for n, d in enumerate(lines(node), 1):
            if int(d["service"], 16) in services:
                out.append((node, n, bytes.fromhex(d["hex"])))
    return out


@functools.cache
def counts() -> list[dict[str, Any]]:
    """``counts.json``: per (service, subtype) in/out counts per node."""
    with open(CAPTURES2 / "counts.json", encoding="utf-8") as f:
        return json.load(f)  # type: ignore[no-any-return]
