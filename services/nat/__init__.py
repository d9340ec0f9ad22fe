"""nat: how the node reaches friends behind NATs, the policy above `tcponudp`.

`udpport` (the one UDP port: DHT, stunner, relay and TOU, and the path choice), `punch` (the
sans-IO coordinator of BitDHT ``connect`` hole punching) and `relay` (which relays we serve).
"""

from services.nat.udpport import UdpOptions, UdpPort

__all__ = ["UdpOptions", "UdpPort"]
