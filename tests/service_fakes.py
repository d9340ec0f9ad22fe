"""Recording fakes shared by the service tests: a link that keeps what it was given."""

from __future__ import annotations

from pqi.fields import PgpId, SslId
from pqi.interfaces import PeerIdentity
from pqi.item import decode, encode


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
