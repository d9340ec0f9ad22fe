"""The GXS tunnel core over simulated turtle networks: opening, talking, keep-alive, close,
loss and resend, refusal, forged keys, and the bounds of its tables."""

from __future__ import annotations

import pytest

import pqi
from pqi.items.gxstunnel import GxsTunnelDhPublicKeyItem
from pqi.items.turtle import TurtleDirection, TurtleGenericDataItem, TurtleGenericFastDataItem
from pqi.wire.fields import GxsId, Sha1Hash, SslId
from services.gxs.security import public_half, sign
from services.gxstunnel import core as core_module
from services.gxstunnel.core import (
    CLOSED_KEPT,
    TUNNEL_DOWN_AFTER,
    GxsTunnelCore,
    TunnelDataAcked,
    TunnelDataReceived,
    TunnelDataRefused,
    TunnelError,
    TunnelStatus,
    TunnelStatusChanged,
)
from services.gxstunnel.crypto import CLEAR_PREFIX, DhKey
from tests.gxs_fixtures import key_pairs
from tests.gxstunnel_sim import TunnelSim, build_tunnels
from tests.turtle_sim import addr
from tools.simnet import LinkModel

CHAT = 0xA0001
LINE = [(0, 1), (1, 2)]


def _status(sim: TunnelSim, i: int) -> list[TunnelStatus]:
    return [e.status for e in sim.of(i, TunnelStatusChanged)]


def _open(sim: TunnelSim, a: int = 0, b: int = 2) -> GxsId:
    for i in (a, b):
        sim.cores[i].register_client(CHAT)
    tid = sim.feed(a, "request_tunnel", sim.ident(b), sim.ident(a), CHAT)
    sim.turtle.net.run(60, until=lambda: TunnelStatus.CAN_TALK in _status(sim, a)
                       and TunnelStatus.CAN_TALK in _status(sim, b))
    assert TunnelStatus.CAN_TALK in _status(sim, a)
    return tid


def _received(sim: TunnelSim, i: int) -> list[bytes]:
    return [e.data for e in sim.of(i, TunnelDataReceived)]


def test_line_opens_talks_both_ways_and_relay_sees_only_ciphertext() -> None:
    """A opens a tunnel to C's identity through B; data goes both ways and is acknowledged;
    B relays only the signed DH keys in clear and, for the rest, bytes it cannot read."""
    sim = build_tunnels(3, LINE)
    tid = _open(sim)
    assert sim.cores[2].info(tid).peer_id == sim.ident(0)
    assert sim.cores[0].info(tid).client_side is False
    assert sim.cores[2].info(tid).client_side is True
    sim.feed(0, "send_data", tid, CHAT, b"secret hello from A")
    sim.feed(2, "send_data", tid, CHAT, b"secret answer from C")
    sim.turtle.net.run(5)
    assert _received(sim, 2) == [b"secret hello from A"]
    assert _received(sim, 0) == [b"secret answer from C"]
    assert sim.of(0, TunnelDataAcked) and sim.of(2, TunnelDataAcked)
    relayed = [item for src, dst, item in sim.turtle.sent if 1 in (src, dst)
               and isinstance(item, (TurtleGenericDataItem, TurtleGenericFastDataItem))]
    assert relayed
    for item in relayed:
        assert b"secret" not in pqi.encode(item)
        if item.data[:8] == CLEAR_PREFIX:
            assert isinstance(pqi.decode(item.data[8:]), GxsTunnelDhPublicKeyItem)


def test_keep_alive_holds_an_idle_tunnel_and_close_reaches_the_other_end() -> None:
    """With no data for minutes the keep-alives keep the tunnel working (turtle tunnels die
    after 60 s idle otherwise); a close makes it "remotely closed" at the other end, which
    then forgets it."""
    sim = build_tunnels(3, LINE)
    tid = _open(sim)
    sim.turtle.net.run(180)
    assert _status(sim, 0)[-1] is TunnelStatus.CAN_TALK
    assert _status(sim, 2)[-1] is TunnelStatus.CAN_TALK
    assert sim.feed(0, "close_tunnel", tid, CHAT)
    assert sim.cores[0].info(tid) is None
    sim.turtle.net.run(2)
    assert _status(sim, 2)[-1] is TunnelStatus.REMOTELY_CLOSED
    sim.turtle.net.run(CLOSED_KEPT + 2)
    assert sim.cores[2].info(tid) is None


def test_lost_end_goes_down_then_comes_back_and_pending_data_arrives_once() -> None:
    """C's node leaves: A's tunnel goes down after TUNNEL_DOWN_AFTER s; data sent meanwhile
    waits, and once C is back and a new tunnel is dug it arrives exactly once."""
    sim = build_tunnels(3, LINE)
    tid = _open(sim)
    sim.turtle.net.set_online(addr(2), False)
    sim.turtle.net.run(TUNNEL_DOWN_AFTER + 5)
    assert _status(sim, 0)[-1] is TunnelStatus.TUNNEL_DN
    for n in range(3):
        sim.feed(0, "send_data", tid, CHAT, b"while away %d" % n)
    sim.turtle.net.set_online(addr(2), True)
    sim.turtle.net.run(400, until=lambda: len(_received(sim, 2)) == 3)
    sim.turtle.net.run(30)
    assert sorted(_received(sim, 2)) == [b"while away 0", b"while away 1", b"while away 2"]
    assert _status(sim, 0)[-1] is TunnelStatus.CAN_TALK
    assert sim.cores[0].info(tid).pending == 0


def test_lossy_links_every_item_arrives_exactly_once() -> None:
    """On links losing and duplicating items, resends every RESEND_PERIOD s deliver every
    data item, and duplicates are delivered once."""
    sim = build_tunnels(3, LINE, seed=3)
    tid = _open(sim)
    lossy = LinkModel(delay=0.01, loss=0.3, duplicate=0.2)
    sim.turtle.net.link(addr(1), addr(2), lossy)
    sent = [b"message %d" % n for n in range(20)]
    for m in sent:
        sim.feed(0, "send_data", tid, CHAT, m)
    sim.turtle.net.run(600, until=lambda: sim.cores[0].info(tid) is not None
                       and sim.cores[0].info(tid).pending == 0)
    assert sorted(_received(sim, 2)) == sorted(sent)


def test_unknown_identity_is_checked_by_the_key_it_sends() -> None:
    """Ends that do not know each other's identity yet use the key in the DH item (its id
    must be the identity's)."""
    sim = build_tunnels(3, LINE, known={0: {0}, 1: {1}, 2: {2}})
    tid = _open(sim)
    sim.feed(0, "send_data", tid, CHAT, b"hi")
    sim.turtle.net.run(5)
    assert _received(sim, 2) == [b"hi"]


def test_policy_refusal_is_reported_and_nothing_is_delivered() -> None:
    """The answering side's policy refuses: the data is acknowledged but not delivered, and
    the refusal is an event for the service; the policy learns which side asked (this one,
    as distant chat's, lets the asking side through)."""
    sim = build_tunnels(3, LINE)
    sim.cores[0].register_client(CHAT, lambda peer, own, asked: asked)
    sim.cores[2].register_client(CHAT, lambda peer, own, asked: asked)
    tid = sim.feed(0, "request_tunnel", sim.ident(2), sim.ident(0), CHAT)
    sim.turtle.net.run(30, until=lambda: TunnelStatus.CAN_TALK in _status(sim, 2))
    sim.feed(0, "send_data", tid, CHAT, b"let me in")
    sim.feed(2, "send_data", tid, CHAT, b"no")
    sim.turtle.net.run(5)
    assert _received(sim, 2) == []
    assert [e.peer_id for e in sim.of(2, TunnelDataRefused)] == [sim.ident(0)]
    assert _received(sim, 0) == [b"no"]
    assert sim.cores[0].info(tid).pending == 0


def _lone_core(own: int = 0) -> tuple[GxsTunnelCore, SslId, Sha1Hash]:
    pairs = key_pairs()
    mine = pairs[own]
    core = GxsTunnelCore(lambda g: mine.private if g == mine.key_id else None,
                         lambda g: None, own_ids=lambda: (mine.key_id,))
    vp = SslId(b"\x09" * 16)
    h = Sha1Hash(b"\x00\x00\x00\x01" + bytes(mine.key_id))
    core.virtual_peer_added(h, vp, TurtleDirection.CLIENT, 0.0)
    return core, vp, h


def test_forged_dh_keys_are_dropped() -> None:
    """A DH value signed by another key than the one claimed, or a key whose id is not its
    fingerprint, never makes a tunnel."""
    core, vp, h = _lone_core()
    real, other = key_pairs()[1], key_pairs()[2]
    dh = DhKey().public_bytes
    good_sig = sign(dh, real.private)
    wrong_signer = sign(dh, other.private)
    forged = [
        GxsTunnelDhPublicKeyItem(dh, type(good_sig)(real.key_id, wrong_signer.sign_data),
                                 public_half(real.private)),
        GxsTunnelDhPublicKeyItem(dh, type(good_sig)(real.key_id, wrong_signer.sign_data),
                                 type(real.public)(real.key_id, real.public.key_flags,
                                                   real.public.start_ts, real.public.end_ts,
                                                   other.public.key_data)),
        GxsTunnelDhPublicKeyItem(dh[:-1] + b"\x00", good_sig, public_half(real.private)),
    ]
    for item in forged:
        core.turtle_data_received(TurtleGenericDataItem(0, CLEAR_PREFIX + pqi.encode(item)),
                                  h, vp, 1.0)
    assert core.tunnels == {}
    assert core.dropped["DH key badly signed"] == len(forged)
    core.turtle_data_received(TurtleGenericDataItem(0, CLEAR_PREFIX + pqi.encode(
        GxsTunnelDhPublicKeyItem(dh, good_sig, public_half(real.private)))), h, vp, 1.0)
    assert len(core.tunnels) == 1


def test_garbage_from_a_tunnel_is_dropped() -> None:
    """Short data, undecodable clear items and encrypted data for no tunnel are counted and
    dropped; the core keeps serving."""
    core, vp, h = _lone_core()
    for data in (b"", b"\x00" * 7, CLEAR_PREFIX + b"\x02\x00", b"\x01" * 60):
        core.turtle_data_received(TurtleGenericDataItem(0, data), h, vp, 1.0)
    assert sum(core.dropped.values()) == 4
    assert core.tunnels == {}


def test_bounds_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tunnels, pending data and remembered counters stop at their named bounds."""
    monkeypatch.setattr(core_module, "MAX_TUNNELS", 2)
    monkeypatch.setattr(core_module, "MAX_PENDING_DATA", 3)
    monkeypatch.setattr(core_module, "MAX_DATA_PRINTS", 5)
    pairs = key_pairs()
    mine = pairs[0]
    core = GxsTunnelCore(lambda g: mine.private if g == mine.key_id else None,
                         lambda g: None, own_ids=lambda: (mine.key_id,))
    core.register_client(CHAT)
    tids = [core.request_tunnel(pairs[i].key_id, mine.key_id, CHAT, 0.0) for i in (1, 2)]
    with pytest.raises(TunnelError):
        core.request_tunnel(pairs[3].key_id, mine.key_id, CHAT, 0.0)
    for n in range(3):
        core.send_data(tids[0], CHAT, b"%d" % n, 0.0)
    with pytest.raises(TunnelError):
        core.send_data(tids[0], CHAT, b"one too many", 0.0)
    with pytest.raises(TunnelError):
        core.request_tunnel(pairs[1].key_id, pairs[4].key_id, CHAT, 0.0)  # not our identity
    tunnel = core.tunnels[tids[0]]
    for counter in range(20):
        core._data_received(tids[0], tunnel, core_module.GxsTunnelDataItem(counter, 0, CHAT,
                                                                           b"x"), 1.0)
    assert len(tunnel.prints) == 5
    assert list(tunnel.prints) == [15, 16, 17, 18, 19]


def test_garbage_cannot_make_us_sign_at_will() -> None:
    """Frames failing their HMAC on a keyed tunnel restart the key exchange (as RetroShare)
    at most once per DH_RESTART_INTERVAL s, so a peer sending garbage gets few signatures."""
    sim = build_tunnels(3, LINE)
    _open(sim)
    core = sim.cores[2]
    vp = next(v for v, session in core.sessions.items() if session.tunnel_id is not None)
    h = core.sessions[vp].file_hash
    start = sim.turtle.net.clock.seconds() + core_module.DH_RESTART_INTERVAL
    core.drain(start)
    for n in range(50):  # 50 bad frames over 4.9 s
        core.turtle_data_received(TurtleGenericDataItem(0, b"\x01" * 60), h, vp, start + n * 0.1)
    signed = [o for o in core.drain(start) if isinstance(o, core_module.TurtleSend)
              and o.item.data[:8] == CLEAR_PREFIX]
    assert len(signed) == 1
    assert core.dropped["DH restart held back"] == 49


def test_short_shared_secret_starts_over() -> None:
    """When the first exchange gives a secret shorter than the prime (RetroShare cannot use
    it), both ends start over at once with new keys and the tunnel comes up."""
    from services.gxstunnel.crypto import DhKey
    sim = build_tunnels(3, LINE)
    first = {0: [DhKey(284)], 2: [DhKey(99991)]}  # this pair's secret has a leading zero
    for i in (0, 2):
        sim.cores[i]._dh_factory = lambda i=i: first[i].pop() if first[i] else DhKey()
    tid = _open(sim)
    assert sim.cores[0].dropped["short DH secret"] == 1
    assert sim.cores[2].dropped["short DH secret"] == 1
    sim.feed(0, "send_data", tid, CHAT, b"after the restart")
    sim.turtle.net.run(5)
    assert _received(sim, 2) == [b"after the restart"]
