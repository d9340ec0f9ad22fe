"""upnp: port mapping on the home gateway with miniupnpc, run off the reactor thread."""

__all__: list[str] = []
