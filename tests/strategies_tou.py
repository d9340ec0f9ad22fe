# -*- test-case-name: tests.test_tou_packet -*-
"""Hypothesis strategies for the UDP layer (tcponudp): TOU segments, stunner packets, relay
headers, and impairment schedules for the in-memory universe."""

from __future__ import annotations

import ipaddress

from hypothesis import strategies as st

from tcponudp.packet import MAX_PAYLOAD, Flags, TouPacket
from tcponudp.relay import RelayHeader
from tcponudp.stunner import StunRequest, StunResponse

__all__ = ["u16s", "u32s", "ipv4_addresses", "tou_packets", "stun_packets", "relay_headers"]

u16s = st.integers(0, 0xFFFF)
u32s = st.integers(0, 0xFFFF_FFFF)
ipv4_addresses = st.tuples(
    st.integers(0, 2**32 - 1).map(lambda v: str(ipaddress.IPv4Address(v))), u16s)

tou_packets = st.builds(
    TouPacket, seq=u32s, ack=u32s, flags=st.integers(0, 0xFF).map(Flags), window=u16s,
    payload=st.binary(max_size=MAX_PAYLOAD), hlen=st.integers(0, 15), src_port=u16s,
    dst_port=u16s, checksum=u16s, urgent=u16s, reserved=st.integers(0, 15))

stun_packets = st.one_of(
    st.builds(StunRequest, st.binary(min_size=16, max_size=16)),
    st.builds(StunResponse, st.binary(min_size=16, max_size=16), ipv4_addresses,
              st.binary(min_size=2, max_size=2)))

relay_headers = st.builds(RelayHeader, ipv4_addresses, ipv4_addresses)
