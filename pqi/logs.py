# -*- test-case-name: tests.test_cli_errors -*-
"""The one log format of every long-running ``rsnode`` command (``run``, ``dht``), here at
the bottom of the layers so that both the node's CLI and ``dht``'s can use it.

``HH:MM:SS message`` lines, warnings and errors marked, a failure's one-line message instead
of its traceback, and without Twisted's per-connection chatter ("Starting factory ...").
What the output's encoding cannot hold is written as backslash escapes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, Final, TextIO

from twisted.logger import ILogObserver, LogLevel, formatEvent
from zope.interface import provider

__all__ = ["readable_observer", "NOISE"]

#: Twisted's chatter about its own ports, factories and protocols, left out of the log.
NOISE: Final = re.compile(r"(?:.* starting on \d+|\((?:TCP|UDP) Port \d+ Closed\)"
                          r"|(?:Starting|Stopping) (?:factory|protocol) .*)", re.DOTALL)


def readable_observer(out: TextIO, min_level: LogLevel = LogLevel.info) -> Callable[[dict], None]:
    """A log observer writing ``HH:MM:SS message`` lines (warnings and errors marked)."""

    @provider(ILogObserver)
    def observe(event: dict[str, Any]) -> None:
        level = event.get("log_level", LogLevel.info)
        if level < min_level:
            return
        text = formatEvent(event)
        if NOISE.fullmatch(text):
            return
        failure = event.get("log_failure")
        if failure is not None:
            text += f": {failure.getErrorMessage()}"
        mark = "" if level <= LogLevel.info else f"{level.name.upper()}: "
        stamp = time.strftime("%H:%M:%S", time.localtime(event.get("log_time", time.time())))
        line = f"{stamp} {mark}{text}\n"
        # Text from the network (a name, a message with bytes that are not UTF-8, kept as
        # lone surrogates) that the stream cannot encode is escaped, not a lost line.
        encoding = getattr(out, "encoding", None) or "utf-8"
        out.write(line.encode(encoding, "backslashreplace").decode(encoding))
        out.flush()

    return observe
