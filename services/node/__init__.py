"""node: the assembly of one running location (`Node`) and its local control channel."""

from services.node.node import FriendInfo, Node

__all__ = ["FriendInfo", "Node"]
