"""Blocking through the JSON API (``/rsBanList/*``, the banned-file ``/rsFiles/*`` calls, the
``/rsReputations/*`` opinion calls): each call over HTTP on an in-memory site, against a real
node's ban list, with RetroShare's parameter names and answers; bad parameters answer
``retval`` false and change nothing."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport

from pqi.items.reputation import Opinion
from pqi.wire.fields import GxsId, Sha1Hash
from services.jsonapi import all_endpoints
from services.jsonapi.api import ApiContext
from services.jsonapi.credentials import ApiCredentials
from services.jsonapi.events import EventStreams
from services.jsonapi.server import JsonApiResource, JsonApiSite
from tests.service_fakes import make_node


class _Api:
    """A node's JSON API on an in-memory site."""

    def __init__(self, tmp_path: Any) -> None:
        self.reactor = MemoryReactorClock()
        self.reactor.advance(1_000_000)
        self.node = make_node(self.reactor, tmp_path, "alice")
        self.creds = ApiCredentials("alice", "secret")
        ctx = ApiContext(self.node, self.reactor)
        resource = JsonApiResource(ctx, self.creds, all_endpoints(),
                                   EventStreams(self.reactor))
        self.site = JsonApiSite(resource, self.reactor)

    def __call__(self, path: str, **params: Any) -> dict[str, Any]:
        body = json.dumps(params).encode()
        channel = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5000))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 5000))
        channel.makeConnection(transport)
        channel.dataReceived(f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: "
                             f"{self.creds.basic_header()}\r\nContent-Length: {len(body)}"
                             "\r\n\r\n".encode() + body)
        head, _, answer = transport.value().partition(b"\r\n\r\n")
        assert head.split(b" ", 2)[1] == b"200", head
        channel.connectionLost(None)
        result: dict[str, Any] = json.loads(answer)
        result.pop("caller_data", None)
        return result


def test_ip_filtering_switch_and_ranges(tmp_path) -> None:
    """RetroShare's published switch, then the RsBanList range calls: a /24 banned by
    ``addIpRange`` refuses its addresses (``isAddressAccepted``), is listed by
    ``getBannedIps`` with RetroShare's member names, and ``removeIpRange`` lifts it; a
    whitelisted address is accepted inside a banned range."""
    api = _Api(tmp_path)
    assert api("/rsBanList/ipFilteringEnabled") == {"retval": True}
    assert api("/rsBanList/addIpRange", addr="11.22.33.44:1234", masked_bytes=1, list_type=2,
               comment="spam") == {"retval": True}
    assert api("/rsBanList/isAddressAccepted", addr="11.22.33.9", checking_flags=1) == {
        "check_result": 2, "retval": False}
    banned = api("/rsBanList/getBannedIps")["list"]
    assert [(b["addr"], b["masked_bytes"], b["reason"], b["level"], b["comment"])
            for b in banned] == [("11.22.33.0", 1, 1, 1, "spam")]
    assert api("/rsBanList/addIpRange", addr="11.22.33.9", masked_bytes=0, list_type=3) == {
        "retval": True}
    assert [b["addr"] for b in api("/rsBanList/getWhiteListedIps")["list"]] == ["11.22.33.9"]
    assert api("/rsBanList/isAddressAccepted", addr="11.22.33.9", checking_flags=1) == {
        "check_result": 4, "retval": True}
    api("/rsBanList/enableIPFiltering", enable=False)
    assert api("/rsBanList/ipFilteringEnabled") == {"retval": False}
    assert api("/rsBanList/isAddressAccepted", addr="11.22.33.8", checking_flags=1) == {
        "check_result": 1, "retval": True}
    api("/rsBanList/enableIPFiltering", enable=True)
    assert api("/rsBanList/removeIpRange", addr="11.22.33.0", masked_bytes=1,
               list_type=2) == {"retval": True}
    assert api("/rsBanList/isAddressAccepted", addr="11.22.33.8", checking_flags=1) == {
        "check_result": 4, "retval": True}
    assert api.node.banlist.accepts(ipaddress.IPv4Address("11.22.33.8"))


def test_bad_range_parameters_change_nothing(tmp_path) -> None:
    """A missing or malformed address, a mask other than 0-2, an unknown list type: retval
    false and no range added."""
    api = _Api(tmp_path)
    for params in ({"addr": "nonsense", "masked_bytes": 0}, {"masked_bytes": 0},
                   {"addr": "11.22.33.4", "masked_bytes": 3},
                   {"addr": "11.22.33.4", "masked_bytes": 0, "list_type": 1},
                   {"addr": "::1", "masked_bytes": 0}, {"addr": 7, "masked_bytes": "0"}):
        assert api("/rsBanList/addIpRange", **params) == {"retval": False}
    assert api("/rsBanList/getBannedIps") == {"list": []}


def test_ban_list_options(tmp_path) -> None:
    """The automatic-range and gathering options read back what was set (RetroShare's
    defaults first) and reach the node's rules."""
    api = _Api(tmp_path)
    assert [api(p)["retval"] for p in ("/rsBanList/autoRangeEnabled",
                                       "/rsBanList/IPsFromFriendsEnabled",
                                       "/rsBanList/iPsFromDHTEnabled",
                                       "/rsBanList/autoRangeLimit")] == [True, False, False, 2]
    api("/rsBanList/enableAutoRange", b=False)
    api("/rsBanList/enableIPsFromFriends", b=True)
    api("/rsBanList/enableIPsFromDHT", b=True)
    api("/rsBanList/setAutoRangeLimit", n=3)
    settings = api.node.banlist.rules.settings
    assert (settings.auto_range, settings.from_friends, settings.from_dht,
            settings.auto_range_limit) == (False, True, True, 3)
    api("/rsBanList/setAutoRangeLimit", n=0)
    assert api("/rsBanList/autoRangeLimit") == {"retval": 3}


def test_banned_files(tmp_path) -> None:
    """``banFile`` / ``isHashBanned`` / ``getPrimaryBannedFilesList`` / ``unbanFile`` with
    RetroShare's names and shapes (a map as key/value pairs, 64-bit sizes); the trust
    switch reaches the node."""
    api = _Api(tmp_path)
    h = "ab" * 20
    assert api("/rsFiles/banFile", realFileHash=h, filename="x.bin",
               fileSize={"xstr64": "123"}) == {"retval": 1}
    assert api("/rsFiles/isHashBanned", hash=h) == {"retval": True}
    listed = api("/rsFiles/getPrimaryBannedFilesList")
    assert listed["retval"] is True
    [entry] = listed["bannedFiles"]
    assert entry["key"] == h and entry["value"]["mFilename"] == "x.bin"
    assert entry["value"]["mSize"]["xint64"] == 123
    assert api.node.sharing.index.file_filter(Sha1Hash.from_hex(h))
    assert api("/rsFiles/banFile", realFileHash="zz") == {"retval": 0}
    assert api("/rsFiles/unbanFile", realFileHash=h) == {"retval": 1}
    assert api("/rsFiles/unbanFile", realFileHash=h) == {"retval": 0}
    assert api("/rsFiles/isHashBanned", hash=h) == {"retval": False}
    assert api("/rsFiles/trustFriendNodesWithBannedFiles") == {"retval": True}
    api("/rsFiles/setTrustFriendNodesWithBannedFiles", b=False)
    assert api("/rsFiles/trustFriendNodesWithBannedFiles") == {"retval": False}
    assert api.node.banlist.files.trust_friends is False


def test_identity_opinions(tmp_path) -> None:
    """``setOwnOpinion`` 0 bans an identity (reputation's own opinion too, so friends learn
    it; lobbies hide it), ``getOwnOpinion`` / ``overallReputationLevel`` /
    ``isIdentityBanned`` read it, 1 lifts it, 2 is positive; a null id is refused."""
    api = _Api(tmp_path)
    gid = "cd" * 16
    assert api("/rsReputations/setOwnOpinion", id=gid, op=0) == {"retval": True}
    assert api("/rsReputations/isIdentityBanned", id=gid) == {"retval": True}
    assert api("/rsReputations/getOwnOpinion", id=gid) == {"op": 0, "retval": True}
    assert api("/rsReputations/overallReputationLevel", id=gid) == {"retval": 0}
    assert api.node.reputation.core.own_opinion(GxsId.from_hex(gid)) == Opinion.NEGATIVE
    assert api.node.chat.lobby.core.is_banned(GxsId.from_hex(gid))
    assert api("/rsReputations/setOwnOpinion", id=gid, op=1) == {"retval": True}
    assert api("/rsReputations/isIdentityBanned", id=gid) == {"retval": False}
    assert api("/rsReputations/overallReputationLevel", id=gid) == {"retval": 2}
    assert api("/rsReputations/setOwnOpinion", id=gid, op=2) == {"retval": True}
    assert api("/rsReputations/getOwnOpinion", id=gid) == {"op": 2, "retval": True}
    assert api("/rsReputations/overallReputationLevel", id=gid) == {"retval": 4}
    assert api("/rsReputations/setOwnOpinion", id="0" * 32, op=0) == {"retval": False}
    assert api("/rsReputations/setOwnOpinion", id=gid, op=7) == {"retval": False}


def test_deny_and_allow_a_friend(tmp_path) -> None:
    """rsproto's own calls: ``denyFriend`` removes and denies a friend with a reason,
    ``getDeniedFriends`` lists it, ``allowFriend`` lifts it; an unknown id is refused."""
    api = _Api(tmp_path)
    bob = make_node(api.reactor, tmp_path, "bob")
    bob.listening = None
    api.node.add_friend(bob.account.certificate_text())
    ssl = bob.ssl_id.to_hex()
    assert api("/rsBanList/denyFriend", id=ssl, reason="spam") == {"retval": True}
    [denied] = api("/rsBanList/getDeniedFriends")["list"]
    assert (denied["id"], denied["reason"]) == (ssl, "spam")
    assert not [f for f in api.node.friends_list.locations() if f.ssl_id == bob.ssl_id]
    assert api("/rsBanList/allowFriend", id=ssl) == {"retval": True}
    assert api("/rsBanList/getDeniedFriends") == {"list": []}
    assert api("/rsBanList/denyFriend", id="nobody") == {"retval": False}
