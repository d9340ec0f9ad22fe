# -*- test-case-name: tests.test_jsonapi_server -*-
"""Where the JSON API listens: its default address and the ``ADDR:PORT`` parser.

Standard library only, so that ``rsnode``'s parser states the default without importing the
API's server (`services.jsonapi.service` re-exports these names).
"""

from __future__ import annotations

import ipaddress
from typing import Final

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "NonLoopbackError", "parse_address"]

DEFAULT_HOST: Final = "127.0.0.1"
#: retroshare-service's JSON API port.
DEFAULT_PORT: Final = 9092


class NonLoopbackError(ValueError):
    """The API would listen beyond this machine without being asked to explicitly."""


def parse_address(text: str) -> tuple[str, int]:
    """``ADDR:PORT`` (or ``[v6]:PORT``, or ``PORT`` alone on 127.0.0.1)."""
    text = text.strip()
    if text.isdigit():
        host, port = DEFAULT_HOST, text
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            raise ValueError(f"want ADDR:PORT, not {text!r}")
        host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise ValueError(f"want an IP address and a port, not {text!r}") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"port out of range: {number}")
    return host, number
