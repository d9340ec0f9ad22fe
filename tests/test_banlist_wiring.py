"""The ban list wired into the other layers: automatic entries from DHT flooding and relay
abuse (RetroShare's rules for them), relays refused to banned ends, turtle refusing to relay
banned files, banned identities in lobbies, GXS and distant mail."""

from __future__ import annotations

import ipaddress

from twisted.internet.task import Clock

from dht.node import DHTConfig, DHTNode, SourceFlooding
from pqi.core import Datagram
from pqi.items.turtle import (
    TurtleFileInfo,
    TurtleFtSearchResultItem,
    TurtleOpenTunnelItem,
    TurtleStringSearchRequestItem,
    TurtleTunnelOkItem,
)
from pqi.wire.fields import Sha1Hash, SslId
from services.banlist import service as service_mod
from services.banlist import store
from services.banlist.files import hash_of_hash
from services.banlist.rules import Origin, Reason
from services.banlist.service import DHT_TALK_PERIOD, BanListService
from services.mail.service import MailService
from services.nat.relay import RelayPolicy
from services.turtle.router import FileSearchResult, SendItem, TurtleRouter
from tcponudp.relay import RelayForwarder, RelayHeader, RelayLimits, encode_relay

from .turtle_sim import build, ssl

IP = ipaddress.IPv4Address
OWN = SslId(b"\x07" * 16)


class _Sender:
    def send(self, peer, item) -> bool:
        return True

    def connected_peers(self) -> list:
        return []


def _service(tmp_path) -> tuple[BanListService, Clock]:
    clock = Clock()
    clock.advance(1_000_000)
    return BanListService(_Sender(), clock, OWN, tmp_path / store.BLOCKS_FILE), clock


# --- automatic entries ------------------------------------------------------------------------

def test_dht_reports_a_flooding_source_once_per_ban() -> None:
    """A source overflowing its rate limit is reported once (a SourceFlooding event) and
    ignored while its ban lasts; a polite source is never reported."""
    node = DHTNode(b"\x00" * 20, DHTConfig(rate_burst=5, rate_per_second=1, ban_seconds=60))
    ping = b"d1:ad2:id20:" + b"\x01" * 20 + b"e1:q4:ping1:t2:aa1:y1:qe"
    for _ in range(50):
        node.datagram_received(ping, ("203.0.113.7", 6881), 10.0)
    node.datagram_received(ping, ("198.51.100.2", 6881), 10.0)
    events = [o for o in node.drain(10.0) if not isinstance(o, Datagram)]
    assert events == [SourceFlooding("203.0.113.7")]


def test_reports_become_own_dht_entries_at_the_next_intake(tmp_path) -> None:
    """As RetroShare takes its DHT's filtered peers every 240 s: a report changes nothing
    before the intake, then it is our own DHT entry, shared with friends, applied only with
    ``from_dht`` on; two abusers in one /24 make the automatic /24 range."""
    s, clock = _service(tmp_path)
    assert s.report_abuse(IP("11.22.33.7"), "DHT flooding")
    assert s.report_abuse(IP("11.22.33.8"), "relay over its bandwidth")
    clock.advance(DHT_TALK_PERIOD - 1)
    assert s.rules.ban_set() == []
    clock.advance(1)
    assert [(str(b.addr), b.level, b.reason) for b in s.rules.shared_entries()] == [
        ("11.22.33.7", Origin.SELF, Reason.DHT), ("11.22.33.8", Origin.SELF, Reason.DHT)]
    assert not s.accepts(IP("11.22.33.99"))  # the automatic /24
    s.set_settings(auto_range=False)
    assert s.accepts(IP("11.22.33.7"))
    s.set_settings(from_dht=True)
    assert not s.accepts(IP("11.22.33.7"))
    again, _ = _service(tmp_path)
    assert [str(b.addr) for b in again.rules.shared_entries()] == ["11.22.33.7",
                                                                  "11.22.33.8"]


def test_only_external_ipv4_reports_are_taken_and_pending_reports_are_bounded(
        tmp_path, monkeypatch) -> None:
    """Loopback, private, documentation and IPv6 hosts are not reported; past
    MAX_PENDING_REPORTS new reports wait for the next intake; stopping cancels the intake."""
    monkeypatch.setattr(service_mod, "MAX_PENDING_REPORTS", 2)
    s, clock = _service(tmp_path)
    for host in ("127.0.0.1", "10.1.2.3", "203.0.113.1", "2001:db8::1"):
        assert not s.report_abuse(ipaddress.ip_address(host))
    assert s.report_abuse(IP("11.22.33.1"))
    assert s.report_abuse(ipaddress.IPv6Address("::ffff:11.22.33.2"))
    assert s.report_abuse(IP("11.22.33.1"))  # already waiting
    assert not s.report_abuse(IP("44.55.66.3"))
    assert s.take_reports() == 2
    assert s.report_abuse(IP("44.55.66.3"))
    s.stop()
    assert clock.getDelayedCalls() == []


def test_net_interface_hands_reports_to_the_ban_list(tmp_path) -> None:
    """The UDP layer reports through ``NetInterface.report_abuse``; with the ban list as
    its address filter the report is taken, without a filter it goes nowhere."""
    from pqi.link.netinterface import NetInterface

    s, _ = _service(tmp_path)
    net = NetInterface.__new__(NetInterface)  # only the filter attribute is used here
    net.address_filter = None
    assert not net.report_abuse(IP("11.22.33.5"), "DHT flooding")
    net.address_filter = s
    assert net.report_abuse(IP("11.22.33.5"), "DHT flooding")
    assert s.take_reports() == 1


# --- the relay --------------------------------------------------------------------------------

A, B = ("203.0.113.1", 5000), ("198.51.100.1", 6000)


def test_relay_to_or_from_a_banned_end_is_not_installed() -> None:
    """The proxy refuses to carry a relay when either end is banned (and counts it);
    lifting the ban lets the same relay in."""
    banned = {"198.51.100.1"}
    policy = RelayPolicy(is_friend=lambda _i: True, accepts_host=lambda h: h not in banned)
    assert policy.install(b"a" * 20, A, b"b" * 20, B, 0.0) is None
    assert policy.install(b"b" * 20, B, b"a" * 20, A, 0.0) is None
    assert policy.banned_refused == 2 and len(policy.forwarder) == 0
    banned.clear()
    assert policy.install(b"a" * 20, A, b"b" * 20, B, 0.0) is not None
    assert len(policy.forwarder) == 1


def test_relay_over_its_bandwidth_reports_the_sender() -> None:
    """The end whose traffic takes a relay over its bandwidth is reported as an abuser;
    a relay dropped for silence reports nobody."""
    reports: list[tuple[str, str]] = []
    policy = RelayPolicy(is_friend=lambda _i: False,
                         forwarder=RelayForwarder(RelayLimits.retroshare_defaults()),
                         report_abuse=lambda host, what: reports.append((host, what)))
    assert policy.install(b"a" * 20, A, b"b" * 20, B, 0.0) == 1024
    packet = encode_relay(RelayHeader(A, B), b"x" * 1000)
    for _ in range(40):
        assert policy.forwarder.forward(packet, A, 0.5) is not None
    policy.check(1.0)
    assert reports == [("203.0.113.1", "relay over its bandwidth")]
    assert policy.install(b"a" * 20, A, b"b" * 20, B, 2.0) is not None
    policy.check(40.0)
    assert len(reports) == 1


# --- turtle -----------------------------------------------------------------------------------

def test_turtle_relays_no_tunnel_request_for_a_banned_hash() -> None:
    """On a line 0-1-2-3-4 where 4 serves H(H): with node 2 banning it the tunnel request
    stops at 2 and no tunnel opens; lifting the ban opens it."""
    banned: set[bytes] = set()
    sim = build(5, [(i, i + 1) for i in range(4)], seed=7, served={4: {Sha1Hash(b"\x99" * 20)}})
    h = Sha1Hash(b"\x99" * 20)
    sim.routers[2].hash_filter = lambda x: bytes(x) in banned
    banned.add(bytes(h))
    sim.feed(0, "monitor_tunnels", h, sim.files[0])
    sim.net.run(3)
    reached = {dst for _, dst, item in sim.sent if isinstance(item, TurtleOpenTunnelItem)}
    assert 2 in reached and 3 not in reached
    assert sim.routers[2].stats.dropped["tunnel request for a banned file"] >= 1
    assert not any(isinstance(item, TurtleTunnelOkItem) for _, _, item in sim.sent)
    banned.clear()
    sim.feed(0, "dig", h)
    sim.net.run(3)
    assert any(isinstance(item, TurtleTunnelOkItem) for _, _, item in sim.sent)


def test_turtle_cuts_banned_files_from_search_results() -> None:
    """A banned file's hit is cut from a result we relay (a result left empty is dropped)
    and from the results shown to us; the other hits pass."""
    good = TurtleFileInfo(size=1, hash=Sha1Hash(b"\x01" * 20), name="good")
    bad = TurtleFileInfo(size=2, hash=Sha1Hash(b"\x02" * 20), name="bad")
    r = TurtleRouter(ssl(0))
    r.hash_filter = lambda x: bytes(x) == bytes(bad.hash)
    r.peer_connected(ssl(1), 0)
    r.peer_connected(ssl(2), 0)
    r.item_received(ssl(1), TurtleStringSearchRequestItem(match_string="x", request_id=9,
                                                          depth=1), 0)
    r.drain(0)
    r.item_received(ssl(2), TurtleFtSearchResultItem(request_id=9, depth=0,
                                                     results=(good, bad)), 1)
    r.item_received(ssl(2), TurtleFtSearchResultItem(request_id=9, depth=0, results=(bad,)), 1)
    assert [o.item.results for o in r.drain(1) if isinstance(o, SendItem)] == [(good,)]
    asked = r.search("x", 2)
    r.drain(2)
    r.item_received(ssl(1), TurtleFtSearchResultItem(request_id=asked, depth=0,
                                                     results=(bad, good)), 3)
    assert [o.results for o in r.drain(3) if isinstance(o, FileSearchResult)] == [(good,)]


def test_ban_list_bans_turtle_hashes_by_hash_of_hash(tmp_path) -> None:
    """What the node wires into the router: a banned file's H(H), which tunnel requests
    carry, is refused; unbanning lifts it."""
    s, _ = _service(tmp_path)
    h = Sha1Hash(b"\x33" * 20)
    s.block_file(h, "x", 1)
    assert s.files.is_banned(hash_of_hash(h))
    s.unblock_file(h)
    assert not s.files.is_banned(hash_of_hash(h))


# --- identities -------------------------------------------------------------------------------

def test_distant_mail_from_a_banned_identity_is_refused(tmp_path) -> None:
    """The distant-mail hook: mail from a banned identity is refused and counted, from
    others accepted."""
    from services.mail.store import MailStore

    s, clock = _service(tmp_path)
    mail = MailService(_Sender(), clock, MailStore(tmp_path / "mail.sqlite"), lambda _p: None)
    mail.identity_banned = s.is_identity_banned
    bad, good = b"\xbb" * 16, b"\xcc" * 16
    s.block_id(bad, "spam")
    assert not mail.accepts_distant(bad) and mail.accepts_distant(good)
    assert mail.refused_distant == 1
    s.unblock_id(bad)
    assert mail.accepts_distant(bad)
    mail.store.close()


def test_node_wires_the_ban_list_into_every_layer(tmp_path) -> None:
    """On a node: banning an identity hides it from lobbies, the identities' GXS and distant
    mail and sets reputation's own opinion negative (so friends learn it), unbanning lifts
    all; the UDP port's relay asks the ban list, its DHT's flooding sources and relay
    abusers become our own DHT entries at the next intake; turtle asks the banned files."""
    from twisted.internet.testing import MemoryReactorClock

    from pqi.items.reputation import Opinion
    from pqi.wire.fields import GxsId
    from services.nat.udpport import UdpOptions

    from .service_fakes import make_node

    reactor = MemoryReactorClock()
    reactor.advance(1_000_000)
    node = make_node(reactor, tmp_path, "alice",
                     udp=UdpOptions(port=0, interface="127.0.0.1"))
    gxs_id = GxsId(b"\xab" * 16)
    askers = (node.chat.lobby.core.is_banned, node.identities.core.is_banned,
              node.channels.core.is_banned, node.forums.core.is_banned,
              node.boards.core.is_banned, node.distant_mail.core.is_banned,
              node.distant.chat.is_banned, node.mail.accepts_distant,
              node.distant_mail.accepts_sender,
              lambda g: node.distant.chat.accepts(g, GxsId(b"\x01" * 16), we_asked=False))
    assert [ask(gxs_id) for ask in askers] == [False] * 7 + [True] * 3
    node.banlist.block_id(bytes(gxs_id), "spam")
    assert [ask(gxs_id) for ask in askers] == [True] * 7 + [False] * 3
    assert node.reputation.core.own_opinion(gxs_id) == Opinion.NEGATIVE
    assert node.banlist.unblock_id(bytes(gxs_id))
    assert [ask(gxs_id) for ask in askers] == [False] * 7 + [True] * 3
    assert node.reputation.core.own_opinion(gxs_id) == Opinion.NEUTRAL

    node.reputation.set_opinion(gxs_id, Opinion.NEGATIVE)  # banned through reputation alone
    assert node.chat.lobby.core.is_banned(gxs_id)

    h = Sha1Hash(b"\x44" * 20)
    node.banlist.block_file(h)
    assert node.turtle.router.hash_filter(bytes(hash_of_hash(h)))

    node.banlist.block_ip("11.22.33.0/24")
    assert node.udp.relays.install(b"a" * 20, ("11.22.33.4", 1), b"b" * 20,
                                   ("44.55.66.1", 2), reactor.seconds()) is None
    node.udp.dht.flooding("44.55.66.7")
    node.udp.relays.report_abuse("44.55.66.8", "relay over its bandwidth")
    reactor.advance(DHT_TALK_PERIOD)
    assert [str(b.addr) for b in node.banlist.rules.shared_entries()] == ["44.55.66.7",
                                                                         "44.55.66.8"]


def test_dropped_relay_records_are_bounded(monkeypatch) -> None:
    """The forwarder remembers at most MAX_DROP_RECORDS dropped relays (the newest), while
    each check still returns exactly what it dropped."""
    from tcponudp import relay as relay_mod

    monkeypatch.setattr(relay_mod, "MAX_DROP_RECORDS", 3)
    fwd = RelayForwarder(RelayLimits(total=10, counts=(10, 0, 0)))
    for n in range(5):
        assert fwd.add(("203.0.113.1", 1000 + n), B, relay_mod.RelayClass.GENERAL, 0.0)
    dropped = fwd.check(31.0)
    assert len(dropped) == 5 and len(fwd.dropped) == 3 and fwd.drops == 5
    assert list(fwd.dropped) == dropped[-3:]
