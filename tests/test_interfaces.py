# -*- test-case-name: tests.test_interfaces -*-
"""The node keeps the promises of the interfaces applications are written against."""

from __future__ import annotations

from zope.interface.verify import verifyClass

from pqi.interfaces import IP3Interface
from services.node.node import Node


def test_node_provides_ip3interface() -> None:
    """Every method `IP3Interface` names exists on `Node` with a compatible signature."""
    assert verifyClass(IP3Interface, Node)
