# -*- test-case-name: tests.test_lab_upnp -*-
"""A network lab of Linux namespaces: an "internet" and home networks behind NAT routers.

Topology (``PREFIX`` is unique per run, so parallel runs never clash)::

    PREFIX-inet   bridge "inet0", 11.11.0.1/24 ("the internet"; processes may run here),
       |  veth    IP forwarding on: it is the router between the homes' routers
    PREFIX-r<i>   router: "wan" 11.11.0.<10+i>/32, default via 11.11.0.1 (onlink),
       |  veth    "lan" 10.<i>.0.1/24, nftables NAT
       |                        (+ miniupnpd on the LAN side when the home asks for UPnP)
    PREFIX-h<i>   home host: "eth0" 10.<i>.0.2/24, default route via its router

The routers' WAN addresses are /32s, so a router reaches another router only through the
internet namespace, which routes (and decrements the TTL) instead of bridging: a packet from
home 1 to home 2's router crosses three IP hops (router 1, internet, router 2).  Hole punching
depends on that (`PUNCH_TTL`): on a shared layer-2 segment no TTL could stop a packet before
the far router, since delivery to a router's own address never checks the TTL.

11.11.0.0/24 is a public range on purpose: miniupnpd refuses to work with a reserved or private
external address.  No namespace has a route out of the lab and nothing is attached to the
machine's own interfaces, so these addresses never leave the namespaces the lab creates.

NAT kinds (what they really do was measured with `probe_nat`; see docs/netlab.md):

``cone``       ``masquerade``: the kernel keeps the source port when it is free, so one
               internal socket gets one external port for every destination (endpoint-
               independent mapping); inbound packets pass only from address:ports the host
               has sent to (address-and-port-dependent filtering, conntrack).  Hole punching
               works through it.  True full-cone filtering has no mainline nftables form.
``symmetric``  ``masquerade random``: every new destination gets a fresh random external
               port (endpoint-dependent mapping); hole punching by port prediction fails.

Everything is torn down by `Lab.down` (also called by the context manager `lab` and, as a
last resort, at interpreter exit).  Needs root, ``ip`` (iproute2), ``nft`` and, for UPnP
homes, ``miniupnpd`` (Debian ``miniupnpd-nftables``).
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

__all__ = [
    "HomeSpec",
    "Home",
    "Lab",
    "LabError",
    "LabUnavailableError",
    "NatBehaviour",
    "NAT_KINDS",
    "INTERNET_IP",
    "PUNCH_TTL",
    "STATE_DIR",
    "missing_prerequisites",
    "build",
    "lab",
    "probe_nat",
    "down_prefix",
    "running_labs",
]

#: The internet namespace's own address on the lab's "internet" segment.
INTERNET_IP: Final = "11.11.0.1"
_INTERNET_NET: Final = "11.11.0.{}/24"
NAT_KINDS: Final = ("cone", "symmetric")
#: The TTL with which a home host's packet passes its own router (TTL 2 -> 1, then SNAT) and
#: expires at the internet namespace (forwarding needs TTL > 1), never reaching the far router
#: (docs/netlab.md, docs/nat.md).  RetroShare uses 4 on the real internet.
PUNCH_TTL: Final = 2
#: Where ``python3 -m tools.netlab up`` records labs that outlive the command.
STATE_DIR: Final = Path("/run/rsproto-netlab")
#: How long to wait for miniupnpd to listen before declaring the lab broken, seconds.
MINIUPNPD_START_TIMEOUT: Final = 10.0
MINIUPNPD_HTTP_PORT: Final = 5000


class LabError(RuntimeError):
    """A lab command failed; the message carries the command and its stderr."""


class LabUnavailableError(LabError):
    """This machine cannot run the lab: not root, or ``ip``/``nft``/``miniupnpd`` missing.
    ``.ci/run`` installs them (apt: iproute2 nftables miniupnpd-nftables) and runs as root."""


@dataclasses.dataclass(frozen=True)
class HomeSpec:
    """A home network to build: its NAT kind, whether its router runs miniupnpd, and whether
    the router rejects new connections to itself from the WAN (``guarded``, as OpenWrt's
    default "wan" zone does) or accepts them like a bare Linux NAT.  An unguarded router keeps
    a conntrack entry for every unsolicited packet that reaches it, and that entry makes its
    masquerade map the home host's own packets to the sender onto another port (docs/netlab.md:
    this is what defeats hole punching unless the first packets have a small TTL)."""

    nat: str = "cone"
    upnp: bool = False
    guarded: bool = True

    def __post_init__(self) -> None:
        if self.nat not in NAT_KINDS:
            raise ValueError(f"nat must be one of {NAT_KINDS}, not {self.nat!r}")


@dataclasses.dataclass(frozen=True)
class Home:
    """A built home network (index ``index``, 1-based)."""

    index: int
    spec: HomeSpec
    router_ns: str
    host_ns: str
    wan_ip: str
    lan_ip: str
    host_ip: str


@dataclasses.dataclass(frozen=True)
class NatBehaviour:
    """What a UDP probe saw: the external ports one internal socket got towards two
    destinations, and whether a third party could reach that socket uninvited."""

    ports_seen: tuple[int, int]
    internal_port: int
    unsolicited_reached: bool

    @property
    def mapping(self) -> str:
        return ("endpoint-independent" if self.ports_seen[0] == self.ports_seen[1]
                else "endpoint-dependent")

    @property
    def port_preserved(self) -> bool:
        return self.ports_seen[0] == self.internal_port


def missing_prerequisites(upnp: bool = True) -> list[str]:
    """What this machine lacks to build a lab (empty: it can)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (the lab creates network namespaces)")
    for tool, package in (("ip", "iproute2"), ("nft", "nftables")) + (
            (("miniupnpd", "miniupnpd-nftables"),) if upnp else ()):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            missing.append(f"{tool} (Debian package {package})")
    return missing


def _run(*cmd: str, input: str | None = None, check: bool = True
         ) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise LabError(f"{' '.join(cmd)} failed ({result.returncode}): "
                       f"{result.stderr.strip() or result.stdout.strip()}")
    return result


def _nft_rules(spec: HomeSpec) -> str:
    masquerade = "masquerade random" if spec.nat == "symmetric" else "masquerade"
    # A packet rejected here never confirms its conntrack entry (confirmation is the last
    # step of the input path), so nothing unsolicited is remembered.
    guard = 'iifname "wan" ct state new reject' if spec.guarded else ""
    return f"""
table inet rslab_filter {{
    chain input {{
        type filter hook input priority 0; policy accept;
        ct state established,related accept
        {guard}
    }}
    chain forward {{
        type filter hook forward priority 0; policy drop;
        ct state established,related accept
        iifname "lan" oifname "wan" accept
        jump rslab_upnp_forward
    }}
    chain rslab_upnp_forward {{
    }}
}}
table inet rslab_nat {{
    chain prerouting {{
        type nat hook prerouting priority -100; policy accept;
        jump rslab_upnp_prerouting
    }}
    chain postrouting {{
        type nat hook postrouting priority 100; policy accept;
        jump rslab_upnp_postrouting
        oifname "wan" {masquerade}
    }}
    chain rslab_upnp_prerouting {{
    }}
    chain rslab_upnp_postrouting {{
    }}
}}
"""


def _miniupnpd_conf(home: Home) -> str:
    return "\n".join([
        "ext_ifname=wan",
        "listening_ip=lan",
        f"http_port={MINIUPNPD_HTTP_PORT}",
        "enable_natpmp=no",
        "enable_upnp=yes",
        "secure_mode=yes",
        "system_uptime=yes",
        "notify_interval=30",
        "clean_ruleset_interval=0",
        f"uuid={uuid.uuid4()}",
        "upnp_table_name=rslab_filter",
        "upnp_nat_table_name=rslab_nat",
        "upnp_forward_chain=rslab_upnp_forward",
        "upnp_nat_chain=rslab_upnp_prerouting",
        "upnp_nat_postrouting_chain=rslab_upnp_postrouting",
        f"allow 1024-65535 10.{home.index}.0.0/24 1024-65535",
        "deny 0-65535 0.0.0.0/0 0-65535",
        "",
    ])


@dataclasses.dataclass
class Lab:
    """A built lab.  `down` removes every namespace and process it made (idempotent)."""

    prefix: str
    inet_ns: str
    homes: list[Home]
    workdir: Path
    processes: list[subprocess.Popen[Any]] = dataclasses.field(default_factory=list)

    @property
    def namespaces(self) -> list[str]:
        return [self.inet_ns] + [ns for h in self.homes for ns in (h.router_ns, h.host_ns)]

    def exec_args(self, ns: str, *cmd: str) -> list[str]:
        """The argv running ``cmd`` inside namespace ``ns``."""
        return ["ip", "netns", "exec", ns, *cmd]

    def run(self, ns: str, *cmd: str, check: bool = True, input: str | None = None
            ) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` in ``ns`` to completion (30 s at most)."""
        return _run(*self.exec_args(ns, *cmd), check=check, input=input)

    def popen(self, ns: str, *cmd: str, **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``cmd`` in ``ns``; it is killed by `down` if still running."""
        process = subprocess.Popen(self.exec_args(ns, *cmd), start_new_session=True, **kwargs)
        self.processes.append(process)
        return process

    def python(self, ns: str, *args: str, **kwargs: Any) -> subprocess.Popen[Any]:
        """Start this interpreter in ``ns`` (the repository on its path)."""
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
        env.update(kwargs.pop("env", {}))
        return self.popen(ns, sys.executable, *args, env=env, **kwargs)

    def home_ruleset(self, home: Home) -> str:
        """The router's nftables ruleset as text (miniupnpd's rules included)."""
        return self.run(home.router_ns, "nft", "list", "ruleset").stdout

    def down(self) -> None:
        atexit.unregister(self.down)
        _tear_down(self.processes, self.namespaces)
        shutil.rmtree(self.workdir, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            (STATE_DIR / f"{self.prefix}.json").unlink()

    def record(self) -> Path:
        """Write the lab's description to STATE_DIR so that ``down``/``status`` find it."""
        STATE_DIR.mkdir(mode=0o700, exist_ok=True)
        path = STATE_DIR / f"{self.prefix}.json"
        path.write_text(json.dumps({
            "prefix": self.prefix, "inet_ns": self.inet_ns, "workdir": str(self.workdir),
            "internet_ip": INTERNET_IP,
            "pids": [p.pid for p in self.processes],
            "homes": [dataclasses.asdict(h) for h in self.homes]}, indent=2))
        return path


def _tear_down(processes: list[subprocess.Popen[Any]], namespaces: Iterable[str]) -> None:
    """Stop ``processes`` (newest first; their list is emptied), then delete ``namespaces``."""
    for process in reversed(processes):
        _kill(process.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
    processes.clear()
    for ns in namespaces:
        _run("ip", "netns", "del", ns, check=False)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it was ours
    return True


def _new_prefix() -> str:
    return f"rsl{os.getpid()}x{secrets.token_hex(2)}"


def build(homes: Sequence[HomeSpec], prefix: str | None = None) -> Lab:
    """Build a lab with ``homes``; on any failure, whatever was built is torn down."""
    missing = missing_prerequisites(upnp=any(h.upnp for h in homes))
    if missing:
        raise LabUnavailableError("the network lab needs: " + ", ".join(missing) +
                                  " (run .ci/run as root, or apt-get install them)")
    prefix = prefix or _new_prefix()
    built = Lab(prefix, f"{prefix}-inet", [],
                Path(tempfile.mkdtemp(prefix=f"{prefix}-")))
    atexit.register(built.down)
    try:
        _build(built, homes)
    except BaseException:
        built.down()
        raise
    return built


def _build(built: Lab, specs: Sequence[HomeSpec]) -> None:
    inet = built.inet_ns
    _run("ip", "netns", "add", inet)
    built.run(inet, "ip", "link", "set", "lo", "up")
    built.run(inet, "ip", "link", "add", "inet0", "type", "bridge")
    built.run(inet, "ip", "addr", "add", _INTERNET_NET.format(1), "dev", "inet0")
    built.run(inet, "ip", "link", "set", "inet0", "up")
    # The internet routes between the routers (see the module docstring): forwarding on,
    # no ICMP redirects (they would teach the routers to bypass it).
    for key in ("net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0",
                "net.ipv4.conf.default.send_redirects=0", "net.ipv4.conf.inet0.send_redirects=0"):
        built.run(inet, "sysctl", "-qw", key)
    for i, spec in enumerate(specs, start=1):
        home = Home(i, spec, f"{built.prefix}-r{i}", f"{built.prefix}-h{i}",
                    wan_ip=f"11.11.0.{10 + i}", lan_ip=f"10.{i}.0.1", host_ip=f"10.{i}.0.2")
        built.homes.append(home)
        for ns in (home.router_ns, home.host_ns):
            _run("ip", "netns", "add", ns)
            built.run(ns, "ip", "link", "set", "lo", "up")
        r, h = home.router_ns, home.host_ns
        _run("ip", "link", "add", "wan", "netns", r, "type", "veth",
             "peer", "name", f"home{i}", "netns", inet)
        built.run(inet, "ip", "link", "set", f"home{i}", "master", "inet0", "up")
        _run("ip", "link", "add", "lan", "netns", r, "type", "veth",
             "peer", "name", "eth0", "netns", h)
        built.run(r, "ip", "addr", "add", f"{home.wan_ip}/32", "dev", "wan")
        built.run(r, "ip", "addr", "add", f"{home.lan_ip}/24", "dev", "lan")
        built.run(h, "ip", "addr", "add", f"{home.host_ip}/24", "dev", "eth0")
        for ns, dev in ((r, "wan"), (r, "lan"), (h, "eth0")):
            built.run(ns, "ip", "link", "set", dev, "up")
        built.run(r, "ip", "route", "add", INTERNET_IP, "dev", "wan", "scope", "link")
        built.run(r, "ip", "route", "add", "default", "via", INTERNET_IP, "dev", "wan")
        built.run(r, "sysctl", "-qw", "net.ipv4.conf.all.accept_redirects=0")
        built.run(h, "ip", "route", "add", "default", "via", home.lan_ip)
        built.run(r, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        built.run(r, "nft", "-f", "-", input=_nft_rules(spec))
        if spec.upnp:
            _start_miniupnpd(built, home)


def _start_miniupnpd(built: Lab, home: Home) -> None:
    conf = built.workdir / f"miniupnpd-{home.index}.conf"
    conf.write_text(_miniupnpd_conf(home))
    log = open(built.workdir / f"miniupnpd-{home.index}.log", "wb")
    pidfile = built.workdir / f"miniupnpd-{home.index}.pid"
    with log:
        process = built.popen(home.router_ns, "miniupnpd", "-d", "-f", str(conf),
                              "-P", str(pidfile), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + MINIUPNPD_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LabError(f"miniupnpd exited ({process.returncode}): "
                           f"{(built.workdir / f'miniupnpd-{home.index}.log').read_text()}")
        probe = built.run(home.host_ns, sys.executable, "-c",
                          "import socket; socket.create_connection("
                          f"('{home.lan_ip}', {MINIUPNPD_HTTP_PORT}), 1).close()",
                          check=False)
        if probe.returncode == 0:
            return
        time.sleep(0.1)
    raise LabError(f"miniupnpd did not listen on {home.lan_ip}:{MINIUPNPD_HTTP_PORT} "
                   f"within {MINIUPNPD_START_TIMEOUT} s")


@contextlib.contextmanager
def lab(homes: Sequence[HomeSpec], prefix: str | None = None) -> Iterator[Lab]:
    """A lab for the ``with`` block; torn down on exit, whatever happened."""
    built = build(homes, prefix)
    try:
        yield built
    finally:
        built.down()


# --- NAT probe ---------------------------------------------------------------------------------

_PROBE_OBSERVER = """
import json, socket, sys
socks = []
for port in (3478, 3479, 3480):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port)); s.settimeout(5); socks.append(s)
print("ready", flush=True)
seen = []
for s in socks[:2]:
    data, addr = s.recvfrom(100)
    seen.append(addr[1])
# the third socket, never sent to, tries the first mapping uninvited
socks[2].sendto(b"uninvited", (addr[0], seen[0]))
print(json.dumps(seen), flush=True)
"""

_PROBE_CLIENT = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 0)); s.settimeout(1.5)
print(s.getsockname()[1], flush=True)
s.sendto(b"one", (sys.argv[1], 3478)); s.sendto(b"two", (sys.argv[1], 3479))
try:
    s.recvfrom(100); print("reached", flush=True)
except socket.timeout:
    print("blocked", flush=True)
"""


def probe_nat(built: Lab, home: Home) -> NatBehaviour:
    """Send from one UDP socket in ``home`` to two ports in the internet namespace and see
    which external ports arrive; then let a third port answer uninvited."""
    observer = built.python(built.inet_ns, "-c", _PROBE_OBSERVER, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert observer.stdout is not None
        if observer.stdout.readline().strip() != "ready":
            raise LabError("NAT probe observer did not start")
        client = built.run(home.host_ns, sys.executable, "-c", _PROBE_CLIENT, INTERNET_IP)
        out, _ = observer.communicate(timeout=10)
    finally:
        _kill(observer.pid)
    internal, verdict = client.stdout.split()
    first, second = json.loads(out)
    return NatBehaviour((first, second), int(internal), verdict == "reached")


# --- labs that outlive the command (python3 -m tools.netlab up) ------------------------------

def running_labs() -> list[dict[str, Any]]:
    """The labs ``up`` recorded and not yet taken ``down``."""
    if not STATE_DIR.is_dir():
        return []
    labs = []
    for path in sorted(STATE_DIR.glob("*.json")):
        with contextlib.suppress(OSError, ValueError):
            labs.append(json.loads(path.read_text()))
    return labs


def down_prefix(prefix: str) -> list[str]:
    """Tear down the recorded lab ``prefix`` and any namespace named after it; returns the
    namespaces removed."""
    for info in running_labs():
        if info["prefix"] == prefix:
            for pid in info["pids"]:
                _kill(pid)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and any(_alive(p) for p in info["pids"]):
                time.sleep(0.05)
            shutil.rmtree(info["workdir"], ignore_errors=True)
    removed = []
    listing = _run("ip", "netns", "list", check=False).stdout
    for line in listing.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(f"{prefix}-"):
            _run("ip", "netns", "del", name, check=False)
            removed.append(name)
    with contextlib.suppress(FileNotFoundError):
        (STATE_DIR / f"{prefix}.json").unlink()
    return removed
