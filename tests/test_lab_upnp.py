# -*- test-case-name: tests.test_lab_upnp -*-
"""In the network lab: real NAT routers (nftables), a real miniupnpd, real rsproto nodes.

The lab (tools/netlab/lab.py) needs root, iproute2, nftables and miniupnpd-nftables; .ci/run
installs them.  This module installs nothing: on a machine without them the tests fail with
`LabUnavailableError` naming what is missing (the project has no skipped tests).

One lab serves the module: home 1 and home 2 are cone NATs whose routers run miniupnpd, home 3
is a symmetric NAT with no UPnP.  Each test is bounded (files polled with a deadline, every
subprocess killed at teardown).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tools.netlab import lab as lab_module
from tools.netlab.lab import (
    INTERNET_IP,
    Home,
    HomeSpec,
    Lab,
    LabUnavailableError,
    lab,
    probe_nat,
)

pytestmark = [pytest.mark.lab, pytest.mark.timeout(90), pytest.mark.slow]


@pytest.fixture(scope="module")
def netlab() -> Iterator[Lab]:
    with lab([HomeSpec("cone", upnp=True), HomeSpec("cone", upnp=True),
              HomeSpec("symmetric", upnp=False)]) as built:
        yield built


def wait_for(path: Path, timeout: float = 30.0, what: str = "") -> Any:
    """The JSON (or text) in ``path`` once it exists; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            text = path.read_text()
            return json.loads(text) if path.suffix == ".json" else text
        time.sleep(0.05)
    log = path.parent / "node.log"
    tail = log.read_text()[-3000:] if log.exists() else "(no log)"
    raise AssertionError(f"{what or path.name} not there after {timeout} s; node log:\n{tail}")


def start_node(netlab: Lab, home: Home, workdir: Path, port: int) -> subprocess.Popen[Any]:
    workdir.mkdir()
    return netlab.python(home.host_ns, "-m", "tools.netlab.labnode", str(workdir),
                         f"node{home.index}", "--host", home.host_ip, "--port", str(port),
                         "--lifetime", "60")


def stop_node(process: subprocess.Popen[Any], workdir: Path) -> Any:
    (workdir / "stop").write_text("")
    assert process.wait(timeout=20) == 0
    return wait_for(workdir / "stopped.json", 5)


def connects(netlab: Lab, ns: str, host: str, port: int) -> bool:
    """Whether a TCP connection from ``ns`` to ``host:port`` is accepted (3 s at most)."""
    code = (f"import socket; socket.create_connection(({host!r}, {port}), 3).close()")
    return netlab.run(ns, sys.executable, "-c", code, check=False).returncode == 0


def dnat_rule(home: Home, port: int) -> str:
    return f"dnat ip to {home.host_ip}:{port}"


def test_nat_variants_behave_as_documented(netlab: Lab) -> None:
    """cone: one external port per socket whatever the destination, the internal port kept;
    symmetric: a new random port per destination; neither lets a stranger in uninvited."""
    cone = probe_nat(netlab, netlab.homes[0])
    assert cone.mapping == "endpoint-independent"
    assert cone.port_preserved
    assert not cone.unsolicited_reached
    symmetric = probe_nat(netlab, netlab.homes[2])
    assert symmetric.mapping == "endpoint-dependent"
    assert not symmetric.unsolicited_reached


def test_friends_behind_upnp_routers_connect_through_the_mappings(
        netlab: Lab, tmp_path: Path) -> None:
    """Two nodes map their TCP ports with miniupnpd, exchange certificates carrying only the
    mapped external address, and connect over TLS through the routers; the internet reaches a
    node through its mapping; stopping removes the mappings from the routers."""
    one, two = netlab.homes[0], netlab.homes[1]
    d1, d2 = tmp_path / "one", tmp_path / "two"
    p1 = start_node(netlab, one, d1, 7801)
    p2 = start_node(netlab, two, d2, 7802)
    cert1 = wait_for(d1 / "cert.txt", what="node 1's UPnP mapping")
    cert2 = wait_for(d2 / "cert.txt", what="node 2's UPnP mapping")
    s1, s2 = wait_for(d1 / "state.json"), wait_for(d2 / "state.json")
    assert s1["external"] == f"{one.wan_ip}:7801"
    assert s2["external"] == f"{two.wan_ip}:7802"
    assert dnat_rule(one, 7801) in netlab.home_ruleset(one)
    assert dnat_rule(two, 7802) in netlab.home_ruleset(two)
    # nothing on the routers themselves listens there: only the mapping can answer
    assert connects(netlab, netlab.inet_ns, one.wan_ip, 7801)
    assert not connects(netlab, netlab.inet_ns, one.wan_ip, 7899)

    (d1 / "peer.txt").write_text(cert2)
    (d2 / "peer.txt").write_text(cert1)
    # Both may dial at once; the tie-break leaves one link.  Wait for that settled link: the
    # dialler reached the acceptor's mapped port exactly, the acceptor sees the dialler's
    # router (never a LAN address).
    deadline = time.monotonic() + 30
    a1 = a2 = ""
    while time.monotonic() < deadline:
        l1 = list(wait_for(d1 / "state.json")["links"].values())
        l2 = list(wait_for(d2 / "state.json")["links"].values())
        a1, a2 = (l1 or [""])[0], (l2 or [""])[0]
        if a1 in (s2["external"],) or a2 in (s1["external"],):
            break
        time.sleep(0.1)
    assert a1.split(":")[0] == two.wan_ip, (a1, a2)
    assert a2.split(":")[0] == one.wan_ip, (a1, a2)
    assert {a1, a2} & {s1["external"], s2["external"]}, (a1, a2)

    assert stop_node(p1, d1)["state"] == "stopped"
    assert stop_node(p2, d2)["state"] == "stopped"
    assert dnat_rule(one, 7801) not in netlab.home_ruleset(one)
    assert dnat_rule(two, 7802) not in netlab.home_ruleset(two)
    assert not connects(netlab, netlab.inet_ns, one.wan_ip, 7801)


def test_node_without_gateway_keeps_running(netlab: Lab, tmp_path: Path) -> None:
    """Behind a router with no UPnP: the node says "no gateway", announces no external
    address, and goes on listening."""
    home = netlab.homes[2]
    workdir = tmp_path / "three"
    process = start_node(netlab, home, workdir, 7803)
    deadline = time.monotonic() + 20
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = wait_for(workdir / "state.json")
        if state["state"] == "no gateway":
            break
        time.sleep(0.1)
    assert state["state"] == "no gateway", state
    assert state["external"] is None
    assert not (workdir / "cert.txt").exists()
    assert process.poll() is None
    assert connects(netlab, home.host_ns, home.host_ip, 7803)
    assert stop_node(process, workdir)["state"] == "stopped"


def test_rsnode_run_upnp_flag(netlab: Lab, tmp_path: Path) -> None:
    """``rsnode run --upnp`` maps the node's port (``rsnode status`` shows it, and the
    internet connects through it); ``--no-upnp`` does not touch the router."""
    home = netlab.homes[0]
    base = tmp_path / "acct"
    env = dict(os.environ, RSNODE_PASSWORD="lab-password",
               PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    cli = [sys.executable, "-m", "services.cli"]
    subprocess.run([*cli, "init", "--base-dir", str(base), "--name", "cli", "--location",
                    "lab", "--bits", "2048"], env=env, check=True, capture_output=True,
                   timeout=60)
    for flag, expect_mapped in (("--upnp", True), ("--no-upnp", False)):
        run = netlab.popen(home.host_ns, *cli, "run", "--base-dir", str(base), "--port",
                           "7804", flag, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        try:
            report: dict[str, Any] = {}
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                status = netlab.run(home.host_ns, *cli, "status", "--json", "--base-dir",
                                    str(base), check=False)
                if status.returncode == 0:
                    report = json.loads(status.stdout)
                    if not expect_mapped or (report["upnp"] or {}).get("state") == "mapped":
                        break
                time.sleep(0.2)
            if expect_mapped:
                assert report["upnp"]["state"] == "mapped", report
                assert report["upnp"]["external"] == f"{home.wan_ip}:7804"
                assert dnat_rule(home, 7804) in netlab.home_ruleset(home)
                assert connects(netlab, netlab.inet_ns, home.wan_ip, 7804)
            else:
                assert report["upnp"] is None, report
                assert dnat_rule(home, 7804) not in netlab.home_ruleset(home)
                assert not connects(netlab, netlab.inet_ns, home.wan_ip, 7804)
        finally:
            run.terminate()
            run.wait(timeout=20)
        assert dnat_rule(home, 7804) not in netlab.home_ruleset(home)


def test_lab_addresses_stay_inside(netlab: Lab) -> None:
    """The lab's namespaces have no way out: the internet namespace routes only its own
    segment, and the machine's own namespace has no lab address."""
    routes = netlab.run(netlab.inet_ns, "ip", "-4", "route").stdout
    assert routes.strip().splitlines() == [
        f"11.11.0.0/24 dev inet0 proto kernel scope link src {INTERNET_IP}"]
    own = subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True).stdout
    assert "11.11.0." not in own


def test_missing_prerequisites_fail_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without root the lab refuses to build, saying what is missing and how to get it
    (the lab tests fail rather than skip on such a machine)."""
    monkeypatch.setattr(lab_module.os, "geteuid", lambda: 1000)
    with pytest.raises(LabUnavailableError, match=r"needs: root .*\.ci/run"):
        lab_module.build([HomeSpec("cone", upnp=True)])
    with pytest.raises(ValueError, match="nat must be one of"):
        HomeSpec("full-cone")
