# -*- test-case-name: tests.test_core_contract -*-
"""The one Twisted driver of sans-IO cores: a single timer and a single drain loop.

Every skin (UDP port, TOU transport, streamer, link manager, DHT, UPnP, transfers) owns a
`CoreDriver` for its core and does two things with it: feed input through `feed` (or call
the core itself and then `service`), and act on the outputs the driver hands to
``on_output``.  The driver keeps exactly one `IDelayedCall`, moved to the core's
`next_deadline` after every input and every timer; nothing else in rsproto calls
``callLater`` for a core.

Outputs are handed over in order.  An output handler may feed the core again (a reply
produced while handling an event): the driver notices and drains again before it returns,
so no output waits for the next input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from pqi.core import Core

__all__ = ["CoreDriver", "MAX_DRAIN_ROUNDS"]

#: Drain rounds one `service` call makes at most before it leaves the rest to a timer turn
#: (an output handler that keeps feeding its core cannot hold the reactor forever).
MAX_DRAIN_ROUNDS = 64


class CoreDriver:
    """Drives ``core`` on ``clock``: feeds it, drains it into ``on_output``, keeps its timer.

    ``on_output(output)`` is called for every output, in order; ``after()``, when given, once
    every output of a `service` call was handed over (skin bookkeeping that reads the core's
    state, e.g. failing the callers whose attempt the core recorded as failed).  `stop`
    cancels the timer; a stopped driver ignores input and timers (the core may be gone with
    its transport).
    """

    log = Logger()

    def __init__(self, core: Core, clock: IReactorTime,
                 on_output: Callable[[Any], object], *,
                 after: Callable[[], object] | None = None) -> None:
        self.core = core
        self.clock = clock
        self.on_output = on_output
        self.after = after
        self._timer: IDelayedCall | None = None
        self._servicing = False
        self._again = False
        self.stopped = False

    def feed(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``method(*args, now=<clock>, **kwargs)`` on the core, then `service` it."""
        if self.stopped:
            return None
        result = method(*args, now=self.clock.seconds(), **kwargs)
        self.service()
        return result

    def service(self) -> None:
        """Hand every pending output to ``on_output`` and re-arm the single timer."""
        if self.stopped:
            return
        if self._servicing:
            self._again = True  # an output handler fed the core: drain once more below
            return
        self._servicing = True
        try:
            for _ in range(MAX_DRAIN_ROUNDS):
                self._again = False
                for output in self.core.drain(self.clock.seconds()):
                    if self.stopped:
                        return
                    self.on_output(output)
                if not self._again:
                    break
            else:
                # Still fed after MAX_DRAIN_ROUNDS: finish on the next reactor turn.
                self.clock.callLater(0, self.service)
        finally:
            self._servicing = False
        if self.after is not None and not self.stopped:
            self.after()
        self._arm()

    def stop(self) -> None:
        """Cancel the timer and ignore everything from now on."""
        self.stopped = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _arm(self) -> None:
        if self.stopped:
            return
        deadline = self.core.next_deadline()
        if deadline is None:
            if self._timer is not None and self._timer.active():
                self._timer.cancel()
            self._timer = None
            return
        delay = max(0.0, deadline - self.clock.seconds())
        if self._timer is not None and self._timer.active():
            if self._timer.getTime() != max(deadline, self.clock.seconds()):
                self._timer.reset(delay)
        else:
            self._timer = self.clock.callLater(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        if self.stopped:
            return
        self.core.handle_timer(self.clock.seconds())
        self.service()
