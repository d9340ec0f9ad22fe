"""Where a node listens and what its certificate announces (issue 12 item 2).

``init`` records port and interface in the account; the addresses a certificate lists follow
the interface: 127.0.0.1 alone for loopback, the interface itself when specific, the
machine's addresses for every interface.
"""

from __future__ import annotations

import ipaddress
import json

import pytest

from pqi.identity.account import Account, AccountCard
from pqi.identity.certificate import RsCertificate
from pqi.identity.friends import FriendList
from pqi.wire.address import NetAddress
from services.node.netsettings import (
    MAX_INTERFACE_ADDRESSES,
    NETWORK_FILE,
    NetworkSettings,
    certificate_addresses,
    interface_addresses,
    locator_url,
)

V4 = ipaddress.IPv4Address


def test_settings_round_trip_and_defaults(tmp_path) -> None:
    """Saved settings load back; an account without the file gets 7812 on every interface;
    a damaged file is an error naming it."""
    assert NetworkSettings.load(tmp_path) == NetworkSettings(7812, "0.0.0.0")
    NetworkSettings(40000, "127.0.0.1").save(tmp_path)
    assert NetworkSettings.load(tmp_path) == NetworkSettings(40000, "127.0.0.1")
    assert json.loads((tmp_path / NETWORK_FILE).read_text()) == {"port": 40000,
                                                                 "interface": "127.0.0.1"}
    (tmp_path / NETWORK_FILE).write_text("{")
    with pytest.raises(ValueError, match=NETWORK_FILE):
        NetworkSettings.load(tmp_path)


@pytest.mark.parametrize("port, interface", [(70000, "0.0.0.0"), (-1, "0.0.0.0"),
                                             (7812, "example.org"), (7812, "::1")])
def test_bad_settings_refused(port: int, interface: str) -> None:
    """A port outside 0..65535 or an interface that is not an IPv4 address is refused."""
    with pytest.raises(ValueError):
        NetworkSettings(port, interface)


def test_certificate_addresses_follow_the_interface() -> None:
    """Loopback: 127.0.0.1 only; a specific interface: itself; every interface: the
    machine's addresses in order, 127.0.0.1 when it has none."""
    machine = [V4("192.168.1.20"), V4("203.0.113.7")]
    assert certificate_addresses(NetworkSettings(7812, "127.0.0.1"), machine) == [
        NetAddress(V4("127.0.0.1"), 7812)]
    assert certificate_addresses(NetworkSettings(7812, "10.1.2.3"), machine) == [
        NetAddress(V4("10.1.2.3"), 7812)]
    assert certificate_addresses(NetworkSettings(7900, "0.0.0.0"), machine) == [
        NetAddress(V4("192.168.1.20"), 7900), NetAddress(V4("203.0.113.7"), 7900)]
    assert certificate_addresses(NetworkSettings(7900, "0.0.0.0"), []) == [
        NetAddress(V4("127.0.0.1"), 7900)]


def test_interface_addresses_are_usable_and_bounded() -> None:
    """This machine's addresses: never loopback, link-local or unspecified; private ones
    first; at most MAX_INTERFACE_ADDRESSES."""
    found = interface_addresses()
    assert len(found) <= MAX_INTERFACE_ADDRESSES
    assert not any(a.is_loopback or a.is_link_local or a.is_unspecified for a in found)
    assert [a.is_private for a in found] == sorted((a.is_private for a in found), reverse=True)


def test_extra_locators_become_dialable_addresses(tmp_path) -> None:
    """A certificate listing more addresses as ``ipv4://`` locators gives the friend every
    one of them to dial (and ignores locators it cannot dial)."""
    account = Account.create(tmp_path / "a", "alice", "laptop", "pw", bits=2048)
    first, second = NetAddress(V4("192.168.1.20"), 7812), NetAddress(V4("10.0.0.5"), 7812)
    text = account.certificate_text(local_addr=first, extra_locators=(
        locator_url(second), "ipv4://999.1.1.1:7812", "i2p://somewhere"))
    with FriendList(tmp_path / "friends.sqlite") as friends:
        friends.add_from_certificate(RsCertificate.decode(text))
        (location,) = friends.locations()
    assert sorted(str(a.addr) for a in location.addresses) == sorted([str(first), str(second)])


def test_card_needs_no_password(tmp_path) -> None:
    """The account's public card makes the same certificate as the unlocked account."""
    account = Account.create(tmp_path / "a", "alice", "laptop", "pw", bits=2048)
    card = AccountCard.load(tmp_path / "a")
    here = NetAddress(V4("127.0.0.1"), 7812)
    assert card.certificate_text(local_addr=here) == account.certificate_text(local_addr=here)
    assert card.short_invite(local_addr=here) == account.short_invite(local_addr=here)
