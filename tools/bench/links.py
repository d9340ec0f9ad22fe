# -*- test-case-name: tests.test_netinterface -*-
"""One node with many friends on loopback, while idle and trickling sockets attack it.

Run ``python3 -m tools.bench.links`` (about a minute; ``--friends``, ``--attackers`` and
``--seconds`` change the load).  The hub is a forked process with its own reactor and one
`NetInterface`; the parent runs every friend location (one `NetInterface` each, each dialling
from its own 127.0.1.x address, as friends come from different hosts); the attackers run in a
third process (``--attack-in-friends-process``: in the parent, as the bench first did, where
their churn slows the friends' side of every round trip): sockets from 127.0.2.x (eight per
address, so they sit exactly at the per-address cap and the *total*
cap is what is tested) that connect and either send nothing or trickle one byte a second, and
reconnect 0.2-1 s after the hub drops them, as a slowloris does.

Printed: the time until all friends are connected (the attack running since before), item
round trips (RTT ping/pong items through the streamer: the hub echoes each ping; each friend
pings once a second at its own moment, or all in one turn with ``--burst-pings``) p50/p99/max,
the longest silence of any established link while pings flow every second (a stalled link shows
here), links lost during the run, the hub's refusal/eviction counters, and the hub's resident
memory per link (RSS growth while the friends connect, divided by their number).
``--profile FILE`` writes a cProfile of the hub during the pings.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import json
import os
import random
import resource
import sys
import tempfile
import time
from typing import Any

from twisted.internet import defer, task
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.epollreactor import EPollReactor
from twisted.internet.protocol import Factory, Protocol

from pqi.identity.friends import FriendList
from pqi.identity.pgp import ProfileKey
from pqi.identity.sslcert import LocationCertificate, make_location_certificate
from pqi.interfaces import LinkEvent, LinkState, PeerIdentity
from pqi.items.heartbeat import HeartbeatItem
from pqi.items.rtt import RttPingItem, RttPongItem
from pqi.link.netinterface import NetInterface
from pqi.wire.address import AddressInfo, NetAddress
from pqi.wire.fields import SslId

__all__ = ["main", "run"]

_CREATED = 1700000000


class _Identity:
    def __init__(self, profile: ProfileKey, location_key: Any,
                 certificate: LocationCertificate) -> None:
        self.profile = profile
        self.location_key = location_key
        self.certificate = certificate


def _raise_fd_limit(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard == resource.RLIM_INFINITY else min(hard, max(soft, needed))
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _hub(hub: _Identity, friends_profile: ProfileKey, friend_ids: list[SslId], directory: str,
         out_fd: int, in_fd: int) -> None:
    """The node under test (in the forked child): report stats lines until stdin closes."""
    reactor = EPollReactor()
    fl = FriendList(os.path.join(directory, "hub.sqlite"))
    fl.offer(friends_profile.public)
    fl.approve(friends_profile.pgp_id)
    for n, ssl_id in enumerate(friend_ids):
        fl.add_location(friends_profile.pgp_id, ssl_id, f"friend{n}")
    net = NetInterface(reactor, hub, fl, port=0)  # type: ignore[arg-type]

    def handler(peer: PeerIdentity, item: object) -> None:
        if isinstance(item, RttPingItem):
            net.send(peer.ssl_id, RttPongItem(item.seq, item.ping_ts, 0))

    def observer(event: LinkEvent) -> None:
        if event.state is LinkState.CONNECTED:
            net.send(event.peer.ssl_id, HeartbeatItem())

    net.handler = handler
    net.add_link_observer(observer)
    out = os.fdopen(out_fd, "w", buffering=1)
    os.set_blocking(in_fd, False)

    profile: list[cProfile.Profile] = []

    def report() -> None:
        try:
            command = os.read(in_fd, 4096)
            if command == b"":
                loop.stop()
                net.stopService().addBoth(lambda _: reactor.stop())
                return
            if command.startswith(b"profile "):  # start profiling; "dump <path>" writes it
                profile.append(cProfile.Profile())
                profile[0].enable()
            elif command.startswith(b"dump ") and profile:
                profile[0].disable()
                profile.pop().dump_stats(command[5:].decode())
        except BlockingIOError:
            pass
        m = net.manager
        out.write(json.dumps({"rss": _rss(), "connected": len(net.connected_peers()),
                              "half_open": m.half_open(), "counters": dict(m.counters),
                              "port": net.listening.getHost().port}) + "\n")

    def started(_: object) -> None:
        loop.start(0.25)

    loop = task.LoopingCall(report)
    loop.clock = reactor
    reactor.callWhenRunning(lambda: defer.maybeDeferred(net.startService).addCallback(started))
    reactor.run(installSignalHandlers=False)
    fl.close()


class _Attacker(Protocol):
    """Connects and sends nothing, or one byte a second; comes back when dropped."""

    def __init__(self, swarm: _Swarm, trickle: bool) -> None:
        self.swarm = swarm
        self.trickle = trickle
        self.call: Any = None

    def connectionMade(self) -> None:  # noqa: N802
        self.swarm.opened += 1
        if self.trickle:
            self.call = self.swarm.reactor.callLater(1.0, self.drip)

    def drip(self) -> None:
        self.transport.write(b"\x16")
        self.call = self.swarm.reactor.callLater(1.0, self.drip)

    def connectionLost(self, reason: Any) -> None:  # noqa: N802
        if self.call is not None and self.call.active():
            self.call.cancel()
        self.swarm.dropped(self)


class _Swarm:
    def __init__(self, reactor: Any, port: int, count: int, rng: random.Random) -> None:
        self.reactor = reactor
        self.port = port
        self.count = count
        self.rng = rng
        self.opened = 0
        self.running = True
        self.live: set[_Attacker] = set()

    def start(self) -> None:
        for n in range(self.count):
            self.launch(n)

    def launch(self, n: int) -> None:
        if not self.running:
            return
        src = f"127.0.2.{n // 8 + 1}"
        endpoint = TCP4ClientEndpoint(self.reactor, "127.0.0.1", self.port, timeout=5,
                                      bindAddress=(src, 0))
        proto = _Attacker(self, trickle=n % 2 == 1)
        proto.n = n  # type: ignore[attr-defined]
        self.live.add(proto)
        d = endpoint.connect(Factory.forProtocol(lambda: proto))
        d.addErrback(lambda _: self.dropped(proto))

    def dropped(self, proto: _Attacker) -> None:
        if proto in self.live:
            self.live.discard(proto)
            if self.running:
                self.reactor.callLater(self.rng.uniform(0.2, 1.0), self.launch,
                                       proto.n)  # type: ignore[attr-defined]

    def stop(self) -> None:
        self.running = False
        for proto in list(self.live):
            if proto.transport is not None:
                proto.transport.abortConnection()


def _swarm_process(port: int, count: int, seed: int, out_fd: int, in_fd: int) -> None:
    """The attackers in a forked process of their own (so that their sockets cost the hub,
    not the friends' process that measures): report ``opened`` until stdin closes."""
    reactor = EPollReactor()
    swarm = _Swarm(reactor, port, count, random.Random(seed))
    out = os.fdopen(out_fd, "w", buffering=1)
    os.set_blocking(in_fd, False)

    def report() -> None:
        try:
            if os.read(in_fd, 100) == b"":
                loop.stop()
                swarm.stop()
                reactor.callLater(0.2, reactor.stop)
                return
        except BlockingIOError:
            pass
        out.write(json.dumps({"opened": swarm.opened}) + "\n")

    loop = task.LoopingCall(report)
    loop.clock = reactor
    reactor.callWhenRunning(swarm.start)
    reactor.callWhenRunning(loop.start, 0.1)
    reactor.run(installSignalHandlers=False)


class _SwarmProcess:
    """The parent's handle on `_swarm_process`: same ``opened``, ``start`` and ``stop`` as
    `_Swarm`."""

    def __init__(self, reactor: Any, port: int, count: int, seed: int) -> None:
        self.args = (port, count, seed)
        self.reactor = reactor
        self.pid = 0
        self.latest = {"opened": 0}
        self.lines: _Lines | None = None
        self.to_child = -1

    @property
    def opened(self) -> int:
        if self.lines is not None:
            self.latest.update(self.lines.poll())
        return self.latest["opened"]

    def start(self) -> None:
        to_child_r, self.to_child = os.pipe()
        from_child_r, from_child_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(self.to_child)
            os.close(from_child_r)
            try:
                _swarm_process(*self.args, from_child_w, to_child_r)
            finally:
                os._exit(0)
        os.close(to_child_r)
        os.close(from_child_w)
        self.lines = _Lines(from_child_r)

    def stop(self) -> None:
        if self.pid:
            os.close(self.to_child)
            os.waitpid(self.pid, 0)
            self.opened  # noqa: B018 - the last report
            self.pid = 0


class _Lines:
    """The newest JSON line a child wrote to a pipe, read without blocking."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_blocking(fd, False)
        self.buffer = b""

    def poll(self) -> dict[str, Any]:
        try:
            while data := os.read(self.fd, 1 << 16):
                self.buffer += data
        except BlockingIOError:
            pass
        *lines, self.buffer = self.buffer.split(b"\n")
        return json.loads(lines[-1]) if lines else {}


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


@dataclasses.dataclass(frozen=True)
class _Options:
    """How the bench is run: the attackers in a process of their own (else in the friends'
    process), every ping in one turn (else each friend at its own moment), and where to write
    a cProfile of the hub during the pings (None: no profile)."""

    attack_apart: bool = True
    burst_pings: bool = False
    profile: str | None = None


def run(friends: int = 200, attackers: int = 1000, seconds: float = 20.0,
        seed: int = 1, warmup: float = 3.0, *, attack_apart: bool = True,
        burst_pings: bool = False, profile: str | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the figures it prints.  ``warmup``: seconds of attack
    before the friends start; the other options: see `_Options`."""
    options = _Options(attack_apart, burst_pings, profile)
    fds = _raise_fd_limit(2 * (friends + attackers) + 256)
    directory = tempfile.mkdtemp(prefix="rsproto-bench-links-")
    t0 = time.monotonic()
    hub_profile = ProfileKey.generate("hub", bits=2048, created=_CREATED)
    hub_key = _make_key()
    hub = _Identity(hub_profile, hub_key, make_location_certificate(hub_profile, hub_key,
                                                                     signed_at=_CREATED))
    friends_profile = ProfileKey.generate("friends", bits=2048, created=_CREATED)
    shared_key = _make_key()  # one TLS key, a certificate (and SSL id) per location
    idents = [_Identity(friends_profile, shared_key,
                        make_location_certificate(friends_profile, shared_key,
                                                  signed_at=_CREATED + n))
              for n in range(friends)]
    keygen = time.monotonic() - t0
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the hub
        os.close(to_child_w)
        os.close(from_child_r)
        try:
            _hub(hub, friends_profile, [i.certificate.ssl_id for i in idents], directory,
                 from_child_w, to_child_r)
        finally:
            os._exit(0)
    os.close(to_child_r)
    os.close(from_child_w)
    stats_in = os.fdopen(from_child_r)
    try:
        return _drive(hub, idents, directory, stats_in, seconds, seed, attackers, fds, keygen,
                      warmup, options, to_child_w)
    finally:
        os.close(to_child_w)
        os.waitpid(pid, 0)


def _make_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _drive(hub: _Identity, idents: list[_Identity], directory: str, stats_in: Any,
           seconds: float, seed: int, attackers: int, fds: int, keygen: float,
           warmup: float, options: _Options, to_hub: int) -> dict[str, Any]:
    latest: dict[str, Any] = json.loads(stats_in.readline())
    stats = _Lines(stats_in.fileno())
    swarm: _Swarm | _SwarmProcess
    if options.attack_apart:  # forked before this process has a reactor
        swarm = _SwarmProcess(None, latest["port"], attackers, seed)
        swarm.start()
    reactor = EPollReactor()

    def poll_stats() -> None:
        latest.update(stats.poll())

    stats_loop = task.LoopingCall(poll_stats)
    stats_loop.clock = reactor
    result: dict[str, Any] = {"friends": len(idents), "attackers": attackers,
                              "fd_limit": fds, "keygen_s": round(keygen, 1),
                              "attack_apart": options.attack_apart,
                              "burst_pings": options.burst_pings}
    hub_address = NetAddress(__import__("ipaddress").ip_address("127.0.0.1"), latest["port"])
    fl = FriendList(os.path.join(directory, "friends.sqlite"))
    fl.offer(hub.profile.public)
    fl.approve(hub.profile.pgp_id)
    fl.add_location(hub.profile.pgp_id, hub.certificate.ssl_id, "hub",
                    [AddressInfo(hub_address, _CREATED, 0)])
    rng = random.Random(seed)
    if not options.attack_apart:
        swarm = _Swarm(reactor, latest["port"], attackers, rng)
    nets: list[NetInterface] = []
    connected_at: dict[int, float] = {}
    downs: list[LinkEvent] = []
    rtts: list[float] = []
    last_pong: dict[int, float] = {}
    max_gap = [0.0]

    async def body() -> None:
        stats_loop.start(0.1)
        rss_idle = latest["rss"]
        if not options.attack_apart:
            swarm.start()
        await task.deferLater(reactor, warmup, lambda: None)
        poll_stats()
        rss_before = latest["rss"]
        result["attack_open_before_friends"] = swarm.opened
        start = reactor.seconds()
        for n, ident in enumerate(idents):
            net = NetInterface(reactor, ident, fl, port=None,  # type: ignore[arg-type]
                               bind_host=f"127.0.1.{n % 250 + 1}",
                               rng=random.Random(seed + n))

            def observer(event: LinkEvent, n: int = n) -> None:
                if event.state is LinkState.CONNECTED:
                    connected_at.setdefault(n, reactor.seconds() - start)
                    nets[n].send(event.peer.ssl_id, HeartbeatItem())
                else:
                    downs.append(event)

            def handler(peer: PeerIdentity, item: object, n: int = n) -> None:
                if isinstance(item, RttPongItem):
                    now = reactor.seconds()
                    rtts.append(now - item.ping_ts / 1e6)
                    if n in last_pong:
                        max_gap[0] = max(max_gap[0], now - last_pong[n])
                    last_pong[n] = now

            net.add_link_observer(observer)
            net.handler = handler
            nets.append(net)
            net.startService()
        for _ in range(6000):
            if len(connected_at) == len(idents):
                break
            await task.deferLater(reactor, 0.01, lambda: None)
        result["connected"] = len(connected_at)
        result["connect_all_s"] = round(max(connected_at.values(), default=float("nan")), 3)
        result["connect_p50_s"] = round(_percentile(list(connected_at.values()), 50), 3)
        await task.deferLater(reactor, 1.0, lambda: None)
        poll_stats()
        rss_after = latest["rss"]
        result["hub_rss_idle_mb"] = round(rss_idle / 2**20, 1)
        result["hub_rss_per_link_kb"] = round((rss_after - rss_before) / len(idents) / 1024, 1)
        downs.clear()
        seq = [0]

        def ping(group: list[NetInterface]) -> None:
            seq[0] += 1
            for net in group:
                for peer in net.connected_peers():
                    net.send(peer.ssl_id, RttPingItem(seq[0], int(reactor.seconds() * 1e6)))

        # Every friend pings once a second: all in one turn (--burst-pings, 200 pings and
        # pongs queued behind each other), or each at its own moment of the second, as
        # friends' RTT pings are (they are not synchronised).
        groups = [nets] if options.burst_pings else [[net] for net in nets]
        pingers = []
        for n, group in enumerate(groups):
            pinger = task.LoopingCall(ping, group)
            pinger.clock = reactor
            pingers.append(pinger)
            reactor.callLater(n / len(groups), pinger.start, 1.0)
        if options.profile:
            os.write(to_hub, b"profile ")
        await task.deferLater(reactor, seconds, lambda: None)
        if options.profile:
            os.write(to_hub, f"dump {options.profile}".encode())
        for pinger in pingers:
            if pinger.running:
                pinger.stop()
        poll_stats()
        result["rtt_samples"] = len(rtts)
        if rtts:
            result["rtt_p50_ms"] = round(_percentile(rtts, 50) * 1000, 2)
            result["rtt_p99_ms"] = round(_percentile(rtts, 99) * 1000, 2)
            result["rtt_max_ms"] = round(max(rtts) * 1000, 2)
        result["longest_link_silence_s"] = round(max_gap[0], 2)
        result["links_lost_during_pings"] = len(downs)
        result["attack_connections_opened"] = swarm.opened
        outcomes: dict[str, int] = {}
        for net in nets:
            for attempt in net.manager.status(hub.certificate.ssl_id).attempts:
                outcomes[attempt.outcome.name] = outcomes.get(attempt.outcome.name, 0) + 1
        result["friend_attempt_outcomes"] = outcomes
        result["hub_counters"] = latest["counters"]
        result["hub_half_open_at_end"] = latest["half_open"]
        swarm.stop()
        stats_loop.stop()
        await defer.DeferredList([defer.maybeDeferred(n.stopService) for n in nets])

    outcome: list[Any] = []

    def start() -> None:
        d = defer.ensureDeferred(body())
        d.addBoth(outcome.append)
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    try:
        reactor.run(installSignalHandlers=False)
    finally:
        if isinstance(swarm, _SwarmProcess):
            swarm.stop()
    fl.close()
    if outcome and hasattr(outcome[0], "raiseException"):
        outcome[0].raiseException()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--friends", type=int, default=200)
    parser.add_argument("--attackers", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="how long pings flow under attack")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--attack-in-friends-process", action="store_true",
                        help="run the attackers in the friends' process (the earlier bench)")
    parser.add_argument("--burst-pings", action="store_true",
                        help="every friend pings in the same turn (the earlier bench)")
    parser.add_argument("--profile", metavar="FILE",
                        help="write a cProfile of the hub during the pings to FILE")
    args = parser.parse_args(argv)
    result = run(args.friends, args.attackers, args.seconds, args.seed,
                 attack_apart=not args.attack_in_friends_process, burst_pings=args.burst_pings,
                 profile=args.profile)
    for key, value in result.items():
        print(f"{key:32} {value}")
    return 0 if result["connected"] == result["friends"] else 1


if __name__ == "__main__":
    sys.exit(main())
