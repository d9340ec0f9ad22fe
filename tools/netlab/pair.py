# -*- test-case-name: tests.test_lab_tou_path -*-
"""Two network namespaces joined by one veth pair, with random loss from nftables: a real path.

::

    PREFIX-a  eth0 10.77.0.1/24  <-- veth -->  eth0 10.77.0.2/24  PREFIX-b

`VethPair.set_loss` installs ``numgen random mod 100 < N drop`` in the input hook of *both*
namespaces (table ``inet rspair_loss``), so each direction loses N% of its packets
independently: data and ACKs alike, as on a lossy link. The veth ends take one segment per
packet (``gso_max_segs 1``): UDP segmentation offload and TCP's TSO still save system calls,
but the stack cuts each burst into wire-sized packets before the veth, so the loss rule drops
single datagrams and segments as a lossy wire does, not whole 64 KiB bursts. This kernel has no
netem, so the path has no added delay; its round trip is the veth's (tens of microseconds), and
loss is repaired as fast as each protocol's recovery allows.

The addresses are private and never leave the namespaces (nothing is attached to the
machine's own interfaces).  `veth_pair` tears everything down on exit, whatever happened;
`build_pair` registers the teardown at interpreter exit too.  Needs root, ``ip`` and ``nft``.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from .lab import LabUnavailableError, _new_prefix, _run, _tear_down, missing_prerequisites

__all__ = ["VethPair", "build_pair", "veth_pair", "ADDRESS_A", "ADDRESS_B"]

ADDRESS_A: Final = "10.77.0.1"
ADDRESS_B: Final = "10.77.0.2"
_TABLE: Final = "rspair_loss"


@dataclasses.dataclass
class VethPair:
    """A built pair.  `down` removes both namespaces and every process started in them
    (idempotent)."""

    prefix: str
    processes: list[Any] = dataclasses.field(default_factory=list)
    loss: int = 0

    @property
    def ns_a(self) -> str:
        return f"{self.prefix}-a"

    @property
    def ns_b(self) -> str:
        return f"{self.prefix}-b"

    @property
    def namespaces(self) -> list[str]:
        return [self.ns_a, self.ns_b]

    def exec_args(self, ns: str, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", ns, *cmd]

    def run(self, ns: str, *cmd: str, input: str | None = None) -> str:
        """Run ``cmd`` in ``ns`` to completion (30 s at most); its stdout."""
        return _run(*self.exec_args(ns, *cmd), input=input).stdout

    def python(self, ns: str, *args: str, **kwargs: Any) -> Any:
        """Start this interpreter in ``ns`` with the repository on its path; `down` kills it
        if it still runs."""
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
        process = subprocess.Popen(self.exec_args(ns, sys.executable, *args), env=env,
                                   start_new_session=True, **kwargs)
        self.processes.append(process)
        return process

    def set_loss(self, percent: int) -> None:
        """Drop ``percent``% of the packets arriving in each namespace (0: none)."""
        if not 0 <= percent < 100:
            raise ValueError(f"loss is a percentage 0..99, not {percent}")
        rule = f"numgen random mod 100 < {percent} drop" if percent else ""
        for ns in self.namespaces:
            self.run(ns, "nft", "-f", "-", input=(
                f"table inet {_TABLE}\ndelete table inet {_TABLE}\n"
                f"table inet {_TABLE} {{\n  chain input {{\n"
                f"    type filter hook input priority 0; policy accept;\n    {rule}\n  }}\n}}\n"))
        self.loss = percent

    def down(self) -> None:
        atexit.unregister(self.down)
        _tear_down(self.processes, self.namespaces)


def build_pair(prefix: str | None = None, *, offload: bool = False) -> VethPair:
    """Build the two namespaces and the veth between them, no loss; on any failure whatever
    was built is removed.  ``offload`` lets GSO/TSO bursts cross the veth whole (then the loss
    rule drops whole bursts: not a wire's behaviour, but what a default veth does)."""
    missing = missing_prerequisites(upnp=False)
    if missing:
        raise LabUnavailableError("the veth pair needs: " + ", ".join(missing))
    pair = VethPair(prefix or _new_prefix())
    atexit.register(pair.down)
    try:
        for ns in pair.namespaces:
            _run("ip", "netns", "add", ns)
            pair.run(ns, "ip", "link", "set", "lo", "up")
        _run("ip", "link", "add", "eth0", "netns", pair.ns_a, "type", "veth",
             "peer", "name", "eth0", "netns", pair.ns_b)
        for ns, address in ((pair.ns_a, ADDRESS_A), (pair.ns_b, ADDRESS_B)):
            pair.run(ns, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
            # One packet per datagram or TCP segment on the veth: a GSO/TSO burst would cross
            # it (and the loss rule) as one super-packet and be lost whole, which a wire never
            # does; with at most one segment per packet the stack cuts bursts before the veth.
            segs = [] if offload else ["gso_max_segs", "1"]
            pair.run(ns, "ip", "link", "set", "eth0", *segs, "up")
        pair.set_loss(0)
    except BaseException:
        pair.down()
        raise
    return pair


@contextlib.contextmanager
def veth_pair(prefix: str | None = None, *, offload: bool = False) -> Iterator[VethPair]:
    """A `VethPair` for the ``with`` block, removed on exit whatever happened."""
    pair = build_pair(prefix, offload=offload)
    try:
        yield pair
    finally:
        pair.down()
