"""tcponudp: RetroShare's reliable TCP-like stream over UDP (TOU), stunner and relay."""

__all__: list[str] = []
