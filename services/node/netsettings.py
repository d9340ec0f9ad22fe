# -*- test-case-name: tests.test_netsettings -*-
"""Where a location listens, and the addresses its certificate gives friends.

``rsnode init --port --interface`` records the listening port and interface in the account
(``network.json``) so that ``rsnode cert`` can hand out a certificate a friend can dial before
the node has ever run, and ``rsnode run`` listens where the certificate says.  The addresses
follow RetroShare: the machine's own interface addresses (a private one first, as RetroShare
prefers for its local address), only 127.0.0.1 when the node listens on loopback, and the
external address once the running node knows it (UPnP), which it records in ``net.json``.
"""

from __future__ import annotations

import dataclasses
import fcntl
import ipaddress
import json
import os
import socket
import struct
import sys
from pathlib import Path
from typing import Final

from pqi.wire.address import DEFAULT_PORT, NetAddress

__all__ = [
    "NetworkSettings",
    "NETWORK_FILE",
    "DEFAULT_INTERFACE",
    "MAX_INTERFACE_ADDRESSES",
    "interface_addresses",
    "certificate_addresses",
    "locator_url",
    "NET_FILE",
    "recorded_addresses",
    "listening_address",
]

#: File, in the account directory, holding the port and interface chosen at ``init``.
NETWORK_FILE: Final = "network.json"
#: File, in the account directory, where a running node records the address it listens on
#: (``rsnode cert`` reads it to put that address in the certificate).
NET_FILE: Final = "net.json"
#: Listen on every interface unless told otherwise (RetroShare's default too).
DEFAULT_INTERFACE: Final = "0.0.0.0"
#: Most interface addresses a certificate lists (one local address, the rest as locators).
MAX_INTERFACE_ADDRESSES: Final = 8
#: Linux ``ioctl`` asking an interface for its IPv4 address.
_SIOCGIFADDR: Final = 0x8915


@dataclasses.dataclass(frozen=True)
class NetworkSettings:
    """The TCP port and interface a location listens on (UDP uses the port + 1)."""

    port: int = DEFAULT_PORT
    interface: str = DEFAULT_INTERFACE

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 0xFFFF:
            raise ValueError(f"port {self.port} is not in 0..65535")
        try:
            ipaddress.IPv4Address(self.interface)
        except ValueError:
            raise ValueError(f"interface {self.interface!r} is not an IPv4 address") from None

    @property
    def loopback(self) -> bool:
        return ipaddress.IPv4Address(self.interface).is_loopback

    @classmethod
    def load(cls, base_dir: str | os.PathLike[str]) -> NetworkSettings:
        """The account's settings; the defaults when it has none (accounts made before)."""
        path = Path(base_dir) / NETWORK_FILE
        try:
            info = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot read {path}: {e}") from e
        if not isinstance(info, dict):
            raise ValueError(f"{path} is not a JSON object")
        return cls(int(info.get("port", DEFAULT_PORT)),
                   str(info.get("interface", DEFAULT_INTERFACE)))

    def save(self, base_dir: str | os.PathLike[str]) -> None:
        """Write the settings atomically (temporary file, fsync, rename)."""
        path = Path(base_dir) / NETWORK_FILE
        tmp = path.with_name(f".{NETWORK_FILE}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"port": self.port, "interface": self.interface}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)


def _linux_interface_addresses() -> list[ipaddress.IPv4Address]:
    out = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            try:
                answer = fcntl.ioctl(s.fileno(), _SIOCGIFADDR, request)
            except OSError:
                continue  # down, or no IPv4 address
            out.append(ipaddress.IPv4Address(answer[20:24]))
    return out


def _routed_address() -> list[ipaddress.IPv4Address]:
    """The address the system would send from (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: only routing is consulted
            return [ipaddress.IPv4Address(s.getsockname()[0])]
        except OSError:
            return []


def interface_addresses() -> list[ipaddress.IPv4Address]:
    """This machine's usable IPv4 addresses, private ones first; loopback and link-local
    addresses left out (at most `MAX_INTERFACE_ADDRESSES`)."""
    found = _linux_interface_addresses() if sys.platform.startswith("linux") else []
    if not found:
        found = _routed_address()
    usable = sorted({a for a in found if not (a.is_loopback or a.is_link_local
                                               or a.is_unspecified or a.is_multicast)},
                    key=lambda a: (not a.is_private, int(a)))
    return usable[:MAX_INTERFACE_ADDRESSES]


def certificate_addresses(settings: NetworkSettings,
                          available: list[ipaddress.IPv4Address] | None = None
                          ) -> list[NetAddress]:
    """Where friends can dial a node listening with ``settings``, best first.

    Loopback interface: 127.0.0.1 only.  A specific interface: that address.  Every
    interface: the machine's addresses (``available``, default `interface_addresses`), or
    127.0.0.1 when it has none.
    """
    port = settings.port
    interface = ipaddress.IPv4Address(settings.interface)
    if interface.is_loopback:
        return [NetAddress(ipaddress.IPv4Address("127.0.0.1"), port)]
    if not interface.is_unspecified:
        return [NetAddress(interface, port)]
    hosts = interface_addresses() if available is None else available
    return ([NetAddress(h, port) for h in hosts[:MAX_INTERFACE_ADDRESSES]]
            or [NetAddress(ipaddress.IPv4Address("127.0.0.1"), port)])


def locator_url(address: NetAddress) -> str:
    """An address as a certificate's extra locator (RetroShare writes ``ipv4://HOST:PORT``)."""
    return f"ipv4://{address.host}:{address.port}"


def _address(text: object) -> NetAddress | None:
    if not isinstance(text, str):
        return None
    host, _, port = text.rpartition(":")
    try:
        return NetAddress(ipaddress.ip_address(host.strip("[]")), int(port))
    except ValueError:
        return None


def recorded_addresses(base_dir: str | os.PathLike[str]
                       ) -> tuple[NetAddress | None, NetAddress | None]:
    """The address the account's node last listened on and the external address it last
    knew (each None when unknown)."""
    try:
        with open(Path(base_dir) / NET_FILE) as f:
            info = json.load(f)
        listening = NetAddress(ipaddress.ip_address(info["host"]), int(info["port"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None, None
    return listening, _address(info.get("external"))


def listening_address(base_dir: str | os.PathLike[str]) -> NetAddress | None:
    """The address the account's node last listened on (None if it never ran)."""
    return recorded_addresses(base_dir)[0]
