"""The real-path loss bench's plumbing (tools/bench/tou_path, tools/netlab/pair): the veth pair
comes up with the loss rule in both namespaces, a small TCP+TLS and TOU+TLS transfer at 5% loss
arrives intact, and the namespaces are gone after the ``with`` block, even when it raises.

Needs root, iproute2 and nftables (.ci/run); every wait is bounded (`tools.bench.tou_path.TIMEOUT`)
and every process is killed at teardown.
"""

from __future__ import annotations

import subprocess

import pytest

from tools.bench.tou_path import measure
from tools.netlab.pair import veth_pair

pytestmark = [pytest.mark.lab, pytest.mark.timeout(120), pytest.mark.slow]


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                         check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_small_transfers_at_five_percent_loss_arrive_intact_and_the_pair_is_removed() -> None:
    """Both kinds deliver 256 KiB byte-exact through 5% random loss each way; the loss rule is
    really installed; both namespaces disappear on exit."""
    with veth_pair() as pair:
        names = set(pair.namespaces)
        assert names <= _namespaces()
        pair.set_loss(5)
        for ns in pair.namespaces:
            assert "numgen random mod 100 < 5" in pair.run(ns, "nft", "list", "ruleset")
        for kind in ("tcp", "tou"):
            result = measure(pair, kind, 256 * 1024)
            assert result["intact"] and result["bytes"] == 256 * 1024, (kind, result)
        assert pair.processes == []
    assert not names & _namespaces()


def test_the_pair_is_removed_when_the_block_raises() -> None:
    """An exception inside the block still removes both namespaces."""
    with pytest.raises(RuntimeError, match="inside"):
        with veth_pair() as pair:
            names = set(pair.namespaces)
            raise RuntimeError("inside")
    assert not names & _namespaces()
