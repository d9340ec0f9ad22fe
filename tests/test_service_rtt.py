"""RTT service: ping period, pong answers, and the measured round trips per peer."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.testing import MemoryReactorClock

from pqi.items.rtt import RttPingItem, RttPongItem
from pqi.wire.item import decode
from services.rtt import RTT_PERIOD, RttService, from_rs_time, to_rs_time
from tests.service_fakes import RecordingSender, peer

T0 = 1795612373.170036


def make():
    clock = MemoryReactorClock()
    clock.advance(T0)
    sender = RecordingSender()
    svc = RttService(sender, clock)
    svc.start()
    return svc, sender, clock


def test_timestamp_format_matches_capture(captures) -> None:
    """A captured ping's timestamp is seconds<<32 | microseconds of its capture time."""
    with open(captures / "alice.items.jsonl") as f:
        for line in f:
            d = json.loads(line)
            if d["service"] == "0x1011" and d["subtype"] == "0x01" and d["dir"] == "out":
                break
    ping = decode(bytes.fromhex(d["hex"]))
    assert isinstance(ping, RttPingItem)
    assert abs(from_rs_time(ping.ping_ts) - d["t"]) < 0.01
    assert to_rs_time(T0) == (int(T0) << 32) | 170036


@given(st.floats(min_value=0, max_value=2**32 - 2, allow_nan=False))
def test_rs_time_round_trip(seconds: float) -> None:
    """Converting to RetroShare's fixed point and back loses less than a microsecond."""
    assert abs(from_rs_time(to_rs_time(seconds)) - seconds) <= 1e-6 + seconds * 1e-15


def test_ping_every_period_and_pong_measures() -> None:
    """Pings go out every 10 s with rising sequence numbers; a pong 0.25 s later gives
    RTT 0.25 s, and the mean spans the window."""
    svc, sender, clock = make()
    a = peer(1)
    svc.peer_connected(a)
    assert svc.stats(a.ssl_id) is None
    for n in range(1, 4):
        clock.advance(RTT_PERIOD)
        (_, ping), = sender.sent
        sender.sent.clear()
        assert ping.seq == n
        clock.advance(0.25 * n)
        svc.receive(a, RttPongItem(seq=ping.seq, ping_ts=ping.ping_ts,
                                   pong_ts=to_rs_time(clock.seconds())))
    stats = svc.stats(a.ssl_id)
    assert stats is not None and stats.count == 3
    assert abs(stats.last - 0.75) < 1e-5
    assert abs(stats.mean - 0.5) < 1e-5
    svc.stop()


def test_answers_ping_with_its_timestamps() -> None:
    """A pong echoes seq and ping_ts and carries our time."""
    svc, sender, clock = make()
    a = peer(1)
    svc.peer_connected(a)
    svc.receive(a, RttPingItem(seq=7, ping_ts=12345))
    assert sender.sent == [(a.ssl_id, RttPongItem(seq=7, ping_ts=12345,
                                                  pong_ts=to_rs_time(T0)))]
    svc.stop()


def test_forged_pong_ignored() -> None:
    """A pong for a ping we never sent (or sent twice) does not produce a measurement."""
    svc, sender, clock = make()
    a = peer(1)
    svc.peer_connected(a)
    svc.receive(a, RttPongItem(seq=1, ping_ts=to_rs_time(T0 - 1000), pong_ts=0))
    assert svc.stats(a.ssl_id) is None
    clock.advance(RTT_PERIOD)
    (_, ping), = sender.sent
    pong = RttPongItem(seq=ping.seq, ping_ts=ping.ping_ts, pong_ts=0)
    svc.receive(a, pong)
    svc.receive(a, pong)
    assert svc.stats(a.ssl_id).count == 1
    svc.stop()
