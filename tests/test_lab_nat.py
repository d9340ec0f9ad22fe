# -*- test-case-name: tests.test_lab_nat -*-
"""In the network lab: friends behind NATs connect over UDP, as RetroShare's do.

The "internet" namespace runs two rsproto nodes: a DHT bootstrap node and carol (both also
answer the stunner, so every node learns its NAT type from two destinations).  Homes 1 and 2
are cone-like NATs (port-restricted: unsolicited packets are dropped, exactly what hole
punching solves); homes 3 and 4 are symmetric NATs.

- alice (home 1) and bob (home 2): their certificates carry only LAN addresses, so TCP fails
  and they connect by the DHT connect exchange and TOU + TLS through both NATs;
- dave (home 3) and erin (home 4), friends of carol: hole punching is refused for the
  symmetric NAT and carol relays their TOU + TLS link.

Each test asserts the path from the nodes' own status reports (``rsnode status --json``), and
that the failed attempts carry their reasons.

The routers of that lab are *guarded* (they reject unsolicited packets to themselves, as home
routers do).  A separate small lab of two unguarded routers shows, with plain sockets, why
hole punching sends its first SYNs with a small TTL: there a full-TTL packet that reaches the
far router before its host has sent leaves a conntrack entry that moves the far host's mapping
to another port, and the punch TTL avoids that (docs/netlab.md, docs/nat.md).

Needs root, iproute2 and nftables (.ci/run); bounded (every wait has a deadline, every process
is killed at teardown; the module takes about 25 s).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tools.netlab.lab import INTERNET_IP, PUNCH_TTL, Home, HomeSpec, Lab, lab

pytestmark = [pytest.mark.lab, pytest.mark.timeout(90), pytest.mark.slow]

BOOT = f"{INTERNET_IP}:7813"
CAROL = f"{INTERNET_IP}:7823"


def start(netlab: Lab, ns: str, workdir: Path, name: str, host: str, port: int) -> Path:
    workdir.mkdir(parents=True)
    netlab.python(ns, "-m", "tools.netlab.natnode", str(workdir), name, "--host", host,
                  "--port", str(port), "--udp-port", str(port + 1), "--bootstrap", BOOT,
                  "--bootstrap", CAROL, "--punch-ttl", str(PUNCH_TTL), "--lifetime", "85")
    return workdir


def wait_for(what: str, check: Callable[[], Any], workdirs: list[Path],
             timeout: float = 40.0, netlab: Lab | None = None) -> Any:
    """``check()``'s first true value; fails after ``timeout`` with the nodes' log tails and
    the routers' conntrack tables."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except (OSError, ValueError, KeyError):
            value = None
        if value:
            return value
        time.sleep(0.1)
    tails = "\n".join(f"--- {d.name}\n" + ((d / "node.log").read_text()[-2500:]
                                            if (d / "node.log").exists() else "(no log)")
                      for d in workdirs)
    if netlab is not None:
        tails = conntrack(netlab) + tails
    raise AssertionError(f"{what} not within {timeout} s\n{tails}")


def conntrack(netlab: Lab, home: Home | None = None) -> str:
    """The UDP conntrack table of ``home``'s router (default: every router): what the NATs
    decided."""
    out = []
    for h in [home] if home is not None else netlab.homes:
        table = netlab.run(h.router_ns, "cat", "/proc/net/nf_conntrack", check=False)
        out.append(f"--- conntrack {h.router_ns}\n" + "\n".join(
            " ".join(line.split()[2:]) for line in table.stdout.splitlines() if " udp " in line))
    return "\n".join(out) + "\n"


def status(workdir: Path) -> dict[str, Any]:
    return json.loads((workdir / "status.json").read_text())


def online_friend(workdir: Path, ssl_id: str) -> dict[str, Any] | None:
    for friend in status(workdir)["friends"]:
        if friend["ssl_id"] == ssl_id and friend["online"]:
            return friend  # type: ignore[no-any-return]
    return None


def befriend(a: Path, b: Path) -> None:
    for x, y in ((a, b), (b, a)):
        peers = x / "peers.txt"
        old = peers.read_text() if peers.exists() else ""
        tmp = x / "peers.tmp"
        tmp.write_text(old + (y / "cert.txt").read_text().strip() + "\n")
        tmp.replace(peers)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("natlab")
    with lab([HomeSpec("cone"), HomeSpec("cone"), HomeSpec("symmetric"),
              HomeSpec("symmetric")]) as built:
        dirs = {"boot": start(built, built.inet_ns, base / "boot", "boot", INTERNET_IP, 7812),
                "carol": start(built, built.inet_ns, base / "carol", "carol", INTERNET_IP,
                               7822)}
        wait_for("the internet's nodes", lambda: all((d / "cert.txt").exists()
                                                     for d in dirs.values()), list(dirs.values()))
        homes: list[Home] = built.homes
        for name, home in zip(("alice", "bob", "dave", "erin"), homes, strict=True):
            dirs[name] = start(built, home.host_ns, base / name, name, home.host_ip, 7812)
        wait_for("every node's certificate", lambda: all((d / "cert.txt").exists()
                                                         for d in dirs.values()),
                 list(dirs.values()))
        wait_for("every node's status", lambda: all((d / "status.json").exists()
                                                    for d in dirs.values()),
                 list(dirs.values()))
        yield {"lab": built, "dirs": dirs}
        for d in dirs.values():
            (d / "stop").write_text("")


def test_cone_nat_friends_connect_by_hole_punching(world: dict[str, Any]) -> None:
    """alice and bob, behind two port-restricted cone NATs, know no reachable TCP address of
    each other: their link is TOU + TLS through a punched hole (the DHT bootstrap or carol as
    proxy), both ends say so, and the failed TCP attempt is recorded with its reason."""
    dirs = world["dirs"]
    alice, bob = dirs["alice"], dirs["bob"]
    befriend(alice, bob)
    ids = {n: status(dirs[n])["ssl_id"] for n in ("alice", "bob")}
    netlab = world["lab"]
    fa = wait_for("alice's link to bob", lambda: online_friend(alice, ids["bob"]), [alice, bob],
                  timeout=45, netlab=netlab)
    fb = wait_for("bob's link to alice", lambda: online_friend(bob, ids["alice"]), [alice, bob],
                  netlab=netlab)
    assert fa["path"] == "hole-punched TOU" and fb["path"] == "hole-punched TOU"
    # items flow over the link (service negotiation)
    wait_for("alice's services from bob", lambda: len(online_friend(alice, ids["bob"])
                                                      ["services"]) > 3, [alice, bob])
    initiator = fa if ids["alice"] > ids["bob"] else fb
    failed = [a for a in initiator["attempts"] if a["outcome"] != "connected"]
    assert any(a["path"] == "LAN TCP" for a in failed), initiator["attempts"]
    assert any(a["path"] == "hole-punched TOU" and a["outcome"] == "connected"
               for a in initiator["attempts"]), initiator["attempts"]
    for report in (status(alice), status(bob)):
        assert report["udp"]["nat"] == "restricted cone NAT"
    # the routers carry the link directly, both ways, at the ports their NATs kept
    one, two = netlab.homes[0], netlab.homes[1]
    for home, peer in ((one, two), (two, one)):
        entry = (f"src={home.host_ip} dst={peer.wan_ip} sport=7813 dport=7813 "
                 f"src={peer.wan_ip} dst={home.wan_ip} sport=7813 dport=7813 [ASSURED]")
        assert entry in conntrack(netlab, home), conntrack(netlab, home)


def test_symmetric_nat_friends_connect_through_a_mutual_friends_relay(
        world: dict[str, Any]) -> None:
    """dave and erin, behind symmetric NATs: hole punching is refused for the NAT type and
    carol, their mutual friend on the internet, relays their TOU + TLS link."""
    dirs = world["dirs"]
    dave, erin, carol = dirs["dave"], dirs["erin"], dirs["carol"]
    befriend(dave, carol)
    befriend(erin, carol)
    befriend(dave, erin)
    ids = {n: status(dirs[n])["ssl_id"] for n in ("dave", "erin")}
    netlab = world["lab"]
    fd = wait_for("dave's link to erin", lambda: online_friend(dave, ids["erin"]),
                  [dave, erin, carol], timeout=45, netlab=netlab)
    fe = wait_for("erin's link to dave", lambda: online_friend(erin, ids["dave"]),
                  [dave, erin, carol], netlab=netlab)
    assert fd["path"] == "relay" and fe["path"] == "relay"
    initiator = fd if ids["dave"] > ids["erin"] else fe
    reasons = {(a["path"], a["outcome"]) for a in initiator["attempts"]}
    assert ("hole-punched TOU", "the NAT type does not allow it") in reasons
    assert status(dave)["udp"]["nat"] == status(erin)["udp"]["nat"]
    assert "symmetric" in status(dave)["udp"]["nat"]
    carried = wait_for("carol's relay counters", lambda: status(carol)["udp"]["relayed_bytes"],
                       [carol])
    assert carried > 0 and status(carol)["udp"]["relays_carried"] >= 1


_PEER_SOCKET = r"""
import socket, sys, time
peer, port, start, ttl, low_for = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), \
    int(sys.argv[4]), float(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", port)); s.settimeout(0.2)
time.sleep(start)
began = time.monotonic(); heard = set()
while time.monotonic() < began + 3.5:
    low = time.monotonic() < began + low_for
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl if low else 64)
    s.sendto(b"punch", (peer, port))
    try:
        while True:
            heard.add("%s:%d" % s.recvfrom(100)[1])
    except socket.timeout:
        pass
print(" ".join(sorted(heard)))
"""


def test_unsolicited_packets_move_an_unguarded_nat_mapping_unless_their_ttl_is_small(
        tmp_path: Path) -> None:
    """Two unguarded port-restricted cone routers (a bare Linux NAT keeps a conntrack entry for
    an unsolicited packet to itself).  Full TTL: home 1 sends first, its packets reach router 2
    before home 2 has sent, and router 2 then maps home 2's socket to home 1 onto another
    port, which router 1 drops: neither side hears the other.  Punch TTL for the first 1.5 s:
    the early packets open router 1 and die in the internet, and both sides hear each other at
    the kept port."""
    with lab([HomeSpec("cone", guarded=False), HomeSpec("cone", guarded=False)]) as netlab:
        one, two = netlab.homes

        def exchange(port: int, ttl: int, low_for: float) -> tuple[str, str]:
            procs = [netlab.python(home.host_ns, "-c", _PEER_SOCKET, peer.wan_ip, str(port),
                                   start, str(ttl), str(low_for), stdout=subprocess.PIPE,
                                   text=True)
                     for home, peer, start in ((one, two, "0"), (two, one, "0.5"))]
            first, second = (p.communicate(timeout=15)[0].strip() for p in procs)
            return first, second

        assert exchange(7913, 64, 0.0) == ("", "")
        table = conntrack(netlab, two)
        # router 2: the unsolicited entry, and home 2's mapping moved off port 7913
        assert f"src={one.wan_ip} dst={two.wan_ip} sport=7913 dport=7913 [UNREPLIED]" in table
        moved = re.search(rf"src={two.host_ip} dst={one.wan_ip} sport=7913 dport=7913 "
                          rf"\[UNREPLIED\] src={one.wan_ip} dst={two.wan_ip} sport=7913 "
                          r"dport=(\d+)", table)
        assert moved is not None and moved.group(1) != "7913", table
        assert exchange(7923, PUNCH_TTL, 1.5) == (f"{two.wan_ip}:7923", f"{one.wan_ip}:7923")
