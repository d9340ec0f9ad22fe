# -*- test-case-name: tests.test_relay_release -*-
"""The relay on a node: we carry UDP between two friends who cannot reach each other.

RetroShare sets a relay up with the DHT ``connect`` exchange in RELAY mode (`services.nat.punch`):
the node asked to be the proxy installs the relay when it authorises the exchange, between the
two addresses it sees the ends at, and tells both ends in START.  From then on each end sends
its TOU segments to us wrapped in an "RLY1" header (`tcponudp.relay`), and we send them on
unchanged: TLS runs end to end inside TOU, so we see only ciphertext.

`RelayPolicy` is the proxy's decision and bookkeeping: the relay class of an exchange is
FRIENDS when either end is one of our friends, GENERAL otherwise (RetroShare's
``installRelayConnection``; we know no friends of friends by DHT id, so FOF is not used);
`tcponudp.RelayForwarder` with `RelayLimits.friends_first` enforces the counts per class, the
bandwidth per relay and the lifetimes (4 h friends, 1 h general, 30 s of silence); `check`
runs RetroShare's periodic test.

The ban list has its say: no relay is installed when either end's address is banned
(``accepts_host``), and the end whose traffic took a relay over its bandwidth is reported
as an abuser (``report_abuse``), which the ban list takes as an automatic entry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from twisted.logger import Logger

from tcponudp.relay import DropReason, RelayClass, RelayEnd, RelayForwarder, RelayLimits

__all__ = ["RelayPolicy", "RELAY_CHECK_PERIOD", "relay_end"]

Address = tuple[str, int]

#: Seconds between two checks of the relays we carry (bandwidth, silence, lifetime).
RELAY_CHECK_PERIOD = 5.0


@dataclasses.dataclass
class RelayPolicy:
    """Which relays we accept as a proxy.  ``is_friend(dht_id)`` tells friends' DHT ids."""

    is_friend: Callable[[bytes], bool]
    forwarder: RelayForwarder = dataclasses.field(
        default_factory=lambda: RelayForwarder(RelayLimits.friends_first()))
    #: The ban list's verdict on a host (an IP address as text); default: every host.
    accepts_host: Callable[[str], bool] = lambda host: True
    #: Told the host that sent a relay over its bandwidth (and why).
    report_abuse: Callable[[str, str], object] = lambda host, what: None
    #: Relays refused because an end is banned.
    banned_refused: int = 0
    log = Logger()

    def relay_class(self, src_id: bytes, dest_id: bytes) -> RelayClass:
        if self.is_friend(src_id) or self.is_friend(dest_id):
            return RelayClass.FRIENDS
        return RelayClass.GENERAL

    def install(self, src_id: bytes, src: Address, dest_id: bytes, dest: Address,
                now: float) -> int | None:
        """Reserve a relay between ``src`` and ``dest``; the bandwidth (bytes/s) granted, or
        None when there is no room for its class.  A relay already installed between the same
        two addresses (left by an exchange that failed after we installed it) is replaced:
        the two ends are starting again."""
        banned = [a for a in (src, dest) if not self.accepts_host(a[0])]
        if banned:
            self.banned_refused += 1
            self.log.info("relay {src} <-> {dest} refused: {host} is banned", src=src,
                          dest=dest, host=banned[0][0])
            return None
        self.forwarder.remove(src, dest)
        granted = self.forwarder.add(src, dest, self.relay_class(src_id, dest_id), now)
        if granted is None:
            self.log.info("relay {src} <-> {dest} refused: no room", src=src, dest=dest)
            return None
        self.log.info("relaying {src} <-> {dest} as {cls}", src=src, dest=dest,
                      cls=granted.name)
        return self.forwarder.limits.rate(granted)

    def release(self, src: Address, dest: Address) -> None:
        """The exchange that installed the relay between ``src`` and ``dest`` failed."""
        carried = len(self.forwarder)
        self.forwarder.remove(src, dest)
        if len(self.forwarder) < carried:
            self.log.info("relay {src} <-> {dest} released: the exchange failed", src=src,
                          dest=dest)

    def check(self, now: float) -> None:
        for header, reason in self.forwarder.check(now):
            self.log.info("relay {src} <-> {dest} dropped: {why}", src=header.source,
                          dest=header.destination, why=reason.value)
            if reason is DropReason.BANDWIDTH:
                self.report_abuse(header.source[0], "relay over its bandwidth")


def relay_end(own: Address, proxy: Address, peer: Address) -> RelayEnd:
    """Our end of a relayed path: we send to ``proxy`` as ``own`` (the address the proxy sees
    us at, from START) towards ``peer``."""
    return RelayEnd(local=own, proxy=proxy, remote=peer)
