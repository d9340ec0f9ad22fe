"""tools.netlab: network-namespace labs with NAT routers and miniupnpd (see docs/netlab.md).

`tools.netlab.lab` builds and tears down labs (tests import it); ``python3 -m tools.netlab
up|down|status`` does the same from a shell; `tools.netlab.labnode` is an rsproto node the
tests run inside a lab namespace.
"""

__all__ = ["lab", "labnode"]
