# -*- test-case-name: tests.test_udp_node_port -*-
"""A node's own UDP port (DHT, stunner, relay and TOU) reads bursts at once: it is a
`tcponudp.BatchUdpPort`, a burst of TOU segments sent to it reaches the TOU layer as exactly
the datagrams sent, and the DHT on the same port still answers."""

from __future__ import annotations

import socket
import sys
from typing import Any

import pytest

from dht import krpc
from dht.krpc import Ping
from services.nat.udpport import UdpOptions
from tcponudp import BatchUdpPort, UdpMux
from tcponudp.packet import Flags, TouPacket, encode_packet
from tests.service_fakes import make_node, on_fresh_reactor, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_a_burst_to_a_nodes_udp_port_arrives_as_the_datagrams_sent(tmp_path) -> None:
    """The node's port batches reads; 40 equal TOU segments and a shorter last one, sent in
    one segmentation-offload burst, reach the TOU handlers in order and intact (in fewer calls
    than segments where the kernel coalesced them), and a DHT ping on the same port is
    answered."""
    segments = [encode_packet(TouPacket(seq=i, ack=0, flags=Flags.ACK, window=64,
                                        payload=bytes([i]) * 1000)) for i in range(40)]
    segments.append(encode_packet(TouPacket(seq=40, ack=0, flags=Flags.ACK, window=64,
                                            payload=b"tail")))

    async def body(reactor: Any) -> dict[str, Any]:
        node = make_node(reactor, tmp_path, "alice",
                         udp=UdpOptions(port=0, interface="127.0.0.1"))
        await node.startService()
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            listening = node.udp.dht.listening
            calls: list[list[bytes]] = []
            node.udp.mux.tou_batch_handler = lambda ds, a: calls.append(list(ds))
            node.udp.mux.tou_handler = lambda d, a: calls.append([d])
            sender.bind(("127.0.0.1", 0))
            sender.setblocking(False)
            mux = UdpMux()
            mux.attach(lambda d, a: sender.sendto(d, a), sender)
            mux.send_many(segments, ("127.0.0.1", node.udp.port))
            await wait_for(reactor, lambda: sum(map(len, calls)) >= len(segments))
            sender.sendto(krpc.encode(Ping(b"pp", b"\x07" * 20)), ("127.0.0.1", node.udp.port))
            answers: list[bytes] = []

            def read_answer() -> bool:
                try:
                    answers.append(sender.recv(2048))
                except BlockingIOError:
                    pass
                return bool(answers)

            await wait_for(reactor, read_answer)
            return {"port": listening, "gro": getattr(listening, "gro", None),
                    "calls": calls, "gso_sends": mux.gso_sends,
                    "reads": getattr(listening, "reads", None), "answer": answers[0]}
        finally:
            sender.close()
            await node.stopService()

    got = on_fresh_reactor(body)
    assert isinstance(got["port"], BatchUdpPort)
    assert got["gro"] is sys.platform.startswith("linux")
    assert [d for call in got["calls"] for d in call] == segments
    if got["gro"] and got["gso_sends"]:
        # one coalesced read, handed over as one batch (the last, shorter segment ends it)
        assert len(got["calls"]) < len(segments) and got["reads"] < len(segments)
    assert type(krpc.decode(got["answer"])).__name__ == "Response"
