"""A node that follows BitDHT's rules becomes active in a small swarm of rsproto DHT nodes
and finds an rsproto friend through it (`tests.bitdht_rules`, on `tools.simnet.SimNet`)."""

from __future__ import annotations

import pytest

from dht.node import DHTConfig
from tests.bitdht_rules import BecameActive, BitDhtRulesNode, FriendLookupSucceeded
from tools.bench.dht import add_dht_node
from tools.simnet import LinkModel, SimNet

pytestmark = pytest.mark.slow

#: The swarm size the issue tried (12 ``rsnode dht`` nodes).
SWARM = 12
#: Simulated seconds given to the BitDHT-rules node (three FINDSELF rounds of 190 s).
BUDGET = 600.0


def swarm_and_bitdht(seed: int, config: DHTConfig) -> tuple[SimNet, BitDhtRulesNode, list]:
    """``SWARM`` rsproto nodes joined through the first, then a BitDHT-rules node
    bootstrapping from the first and looking up the last one (the rsproto friend); run until
    it found the friend or ``BUDGET`` simulated seconds passed."""
    net = SimNet(seed, default=LinkModel(delay=0.02))
    nodes = [add_dht_node(net, net.random, config)]
    for _ in range(SWARM - 1):
        node = add_dht_node(net, net.random, config)
        net.feed(node.addr, node.core.bootstrap, [nodes[0].addr])
        nodes.append(node)
        net.run(0.05)
    net.run(30)
    friend = nodes[-1].core.node_id
    bitdht = BitDhtRulesNode(net.random.randbytes(20), [nodes[0].addr], [friend],
                             now=net.clock.seconds(), seed=seed)
    sim = net.add(("10.200.0.1", 7000), bitdht)
    sim.driver.service()
    net.run(BUDGET, until=lambda: friend in bitdht.found, max_steps=5_000_000)
    return net, bitdht, sim.outputs


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bitdht_node_becomes_active_and_finds_an_rsproto_friend(seed: int) -> None:
    """With our answers (10 nodes, as BitDHT's own) a BitDHT-rules node collects the 10
    pong-answering peers it needs by the end of FINDSELF, becomes active without failing,
    starts its friend lookup and finds the rsproto friend at its address."""
    net, bitdht, outputs = swarm_and_bitdht(seed, DHTConfig())
    active = [o for o in outputs if isinstance(o, BecameActive)]
    found = [o for o in outputs if isinstance(o, FriendLookupSucceeded)]
    assert bitdht.failures == 0 and len(active) == 1 and active[0].space_size >= 10
    assert len(found) == 1
    assert net.nodes[found[0].addr].core.node_id == found[0].target
    print(f"seed {seed}: active with {active[0].space_size} peers")


@pytest.mark.parametrize("seed", [2, 3])
def test_mainline_sized_answers_leave_a_bitdht_node_short_in_a_small_swarm(seed: int) -> None:
    """The control: answering with mainline's 8 nodes, the same swarm leaves the
    BitDHT-rules node below 10 peers at the end of every FINDSELF: it fails and starts over
    again and again, and never looks the friend up (what the issue saw on a real node).
    (Seed 1 scrapes through with exactly 10 peers: 8 leaves no margin, 10 does.)"""
    _, bitdht, outputs = swarm_and_bitdht(seed, DHTConfig(reply_nodes=8))
    assert bitdht.failures >= 2 and len(bitdht.space) < 10
    assert not [o for o in outputs if isinstance(o, (BecameActive, FriendLookupSucceeded))]


def test_credit_without_parking_makes_a_bitdht_node_fail_first() -> None:
    """Why replies are parked (issue 14, finding 6): with the byte credit alone, a BitDHT
    node's first find_node to each of us is answered trimmed (its credit pays our verifying
    ping and little more), so it ends its first FINDSELF short and starts over; parked
    replies (the test above) reach it whole and it never fails."""
    _, bitdht, _ = swarm_and_bitdht(1, DHTConfig(max_parked_sources=0))
    assert bitdht.failures >= 1
