# -*- test-case-name: tests.test_turtle_router -*-
"""What a service offers to ride on turtle tunnels (RetroShare's ``RsTurtleClientService``).

File transfer now, and distant chat, distant mail and GXS sync later, register one provider
each with the router.  The router asks two questions synchronously (does the service answer
a tunnel request for this hash? a generic search?); everything else reaches the service as
router outputs that the skin (or a simulation) hands over with `deliver`.
"""

from __future__ import annotations

from zope.interface import Attribute, Interface

__all__ = ["ITurtleClientService"]


class ITurtleClientService(Interface):
    """A user of turtle tunnels: answers for the hashes it serves, takes their data."""

    service_id = Attribute("u16 service id, as in generic search requests")

    def handle_tunnel_request(file_hash, peer_id):  # noqa: N805
        """True when this service ends a tunnel for ``file_hash`` (a pure query)."""

    def receive_search_request(data, max_hits):  # noqa: N805
        """Answer bytes for a generic search request of this service, or None (a pure query)."""

    def receive_search_result(request_id, data):  # noqa: N805
        """A generic search result came back for a search we started."""

    def receive_turtle_data(item, file_hash, virtual_peer, direction):  # noqa: N805
        """A tunnel item for us, from the tunnel ``virtual_peer`` of ``file_hash``.

        ``direction`` is `TurtleDirection.CLIENT` at the end that dug the tunnel and
        `TurtleDirection.SERVER` at the end that answered it."""

    def add_virtual_peer(file_hash, virtual_peer, direction):  # noqa: N805
        """A tunnel for ``file_hash`` is open; talk to its other end as ``virtual_peer``."""

    def remove_virtual_peer(file_hash, virtual_peer):  # noqa: N805
        """The tunnel behind ``virtual_peer`` is gone."""
