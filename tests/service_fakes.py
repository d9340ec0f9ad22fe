"""Recording fakes shared by the service tests: a link that keeps what it was given."""

from __future__ import annotations

from pqi.interfaces import PeerIdentity
from pqi.wire.fields import PgpId, SslId
from pqi.wire.item import decode, encode


def peer(n: int) -> PeerIdentity:
    """A distinct peer identity numbered ``n``."""
    return PeerIdentity(SslId(bytes([n]) * 16), PgpId(bytes([n]) * 8), f"loc-{n}")


class RecordingLinks:
    """The raw link route of a node: records (peer, item) after a wire round trip.

    Items go through `encode`/`decode` so that a test sees exactly what a peer would read.
    ``up`` holds the peers whose link accepts items; others get False (nothing queued).
    """

    def __init__(self) -> None:
        self.sent: list[tuple[SslId, object]] = []
        self.up: set[SslId] = set()

    def __call__(self, ssl_id: SslId, item: object) -> bool:
        if ssl_id not in self.up:
            return False
        self.sent.append((ssl_id, decode(encode(item))))  # type: ignore[arg-type]
        return True

    def take(self, kind: type | None = None) -> list[tuple[SslId, object]]:
        """The items sent so far (of ``kind`` only, when given); clears the record."""
        out = [(p, i) for p, i in self.sent if kind is None or isinstance(i, kind)]
        self.sent.clear()
        return out


class RecordingSender:
    """An `IItemSender` for one service: every send succeeds and is recorded."""

    def __init__(self) -> None:
        self.sent: list[tuple[SslId, object]] = []
        self.peers: list[PeerIdentity] = []

    def send(self, ssl_id: SslId, item: object) -> bool:
        self.sent.append((ssl_id, decode(encode(item))))  # type: ignore[arg-type]
        return True

    def connected_peers(self) -> list[PeerIdentity]:
        return list(self.peers)


def on_fresh_reactor(body, timeout: float = 30.0):
    """Run ``await body(reactor)`` on a SelectReactor of its own, bounded by ``timeout``, and
    return its result (re-raising its failure); the global reactor is never touched."""
    from twisted.internet import defer
    from twisted.internet.selectreactor import SelectReactor

    reactor = SelectReactor()
    outcome: list = []

    def start() -> None:
        d = defer.ensureDeferred(body(reactor))
        d.addTimeout(timeout, reactor)
        d.addBoth(outcome.append)
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    try:
        reactor.run(installSignalHandlers=False)
    finally:
        reactor.waker.connectionLost(None)
    (result,) = outcome
    from twisted.python.failure import Failure
    if isinstance(result, Failure):
        result.raiseException()
    return result


# --- real nodes on 127.0.0.1 --------------------------------------------------------------------

_IDENTITIES: dict[str, tuple] = {}


def identity(name: str) -> tuple:
    """(ProfileKey, TLS key, LocationCertificate) for ``name``, made once per test process
    (2048-bit keys, the smallest the identity layer accepts)."""
    if name not in _IDENTITIES:
        from cryptography.hazmat.primitives.asymmetric import rsa

        from pqi.identity.pgp import ProfileKey
        from pqi.identity.sslcert import make_location_certificate
        profile = ProfileKey.generate(name, bits=2048, created=1700000000)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _IDENTITIES[name] = (profile, key, make_location_certificate(profile, key,
                                                                     signed_at=1700000060))
    return _IDENTITIES[name]


def make_node(reactor, base, name: str, port: int = 0, **kwargs):
    """A `Node` for ``name`` with its account directory and friend list under ``base``."""
    import os

    from pqi.identity.account import Account
    from pqi.identity.friends import FriendList
    from services.node.node import FRIENDS_FILE, Node
    profile, key, cert = identity(name)
    account_dir = base / name
    os.makedirs(account_dir, mode=0o700, exist_ok=True)
    account = Account(account_dir, profile, key, cert, f"{name}-loc")
    friends = FriendList(account_dir / FRIENDS_FILE, now=reactor.seconds)
    kwargs.setdefault("heartbeat_period", 0.2)
    kwargs.setdefault("rtt_period", 0.3)
    return Node(reactor, account, friends, port=port, owns_friends=True, **kwargs)


def cert_of(node) -> str:
    """The long certificate of a started node, carrying its listening address."""
    return node.account.certificate_text(local_addr=node.listening)


async def wait_for(reactor, predicate, timeout: float = 15.0, step: float = 0.02) -> None:
    """Poll ``predicate`` every ``step`` s until true; AssertionError after ``timeout`` s."""
    from twisted.internet import task
    rounds = int(timeout / step)
    for _ in range(rounds):
        if predicate():
            return
        await task.deferLater(reactor, step, lambda: None)
    raise AssertionError(f"condition not met within {timeout} s: {predicate}")


async def befriend(reactor, a, b, *service_ids: int) -> None:
    """Make nodes ``a`` and ``b`` friends and wait (30 s at most) until both have enabled
    every one of ``service_ids`` with the other."""
    a.add_friend(cert_of(b))
    b.add_friend(cert_of(a))
    needed = set(service_ids)
    await wait_for(reactor, lambda: needed <= a.control.enabled(b.ssl_id)
                   and needed <= b.control.enabled(a.ssl_id), 30)


def tap_items(node, into: list) -> None:
    """Record every item ``node`` receives from friends in ``into`` (what a curious relay
    sees), then deliver it as before."""
    deliver = node.control.deliver

    def tapped(peer, item):
        into.append(item)
        deliver(peer, item)
    node.control.deliver = tapped
