# -*- test-case-name: tests.test_transfer_worker -*-
"""One thread that runs jobs in the order they were given: the transfer service's disk work.

A download hands its sync thread one job per data item (a ``pwrite``), between which come
the commits, hashes and state writes that must see every write before them.  A
`concurrent.futures.ThreadPoolExecutor` of one thread keeps that order, but each job costs it
a `~concurrent.futures.Future`, a condition variable and a lock on both threads, several
times the Python work of the write itself.  `SerialWorker` keeps the order with one
``SimpleQueue``: `post` queues a job nobody waits for (the data writes), `submit` one whose
`~concurrent.futures.Future` says when it ran (everything queued before it has run too).
"""

from __future__ import annotations

import concurrent.futures
import functools
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.logger import Logger

__all__ = ["SerialWorker", "WorkerStoppedError"]

T = TypeVar("T")

_Job = tuple[Callable[[], Any], "concurrent.futures.Future[Any] | None"]


class WorkerStoppedError(RuntimeError):
    """A job was given to a `SerialWorker` after `SerialWorker.shutdown`."""


class SerialWorker:
    """Runs jobs on one thread, first in first out.

    The thread is a daemon: a process that exits without `shutdown` loses the jobs still
    queued, which for the transfer service are data writes not yet committed (fetched again
    on resume) and never a state write that names them.  The queue has no bound of its own:
    its user bounds what it queues (the transfer service: `MAX_WRITE_BEHIND` bytes of data
    writes, and commits that join while they wait).
    """

    log = Logger()

    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def post(self, job: Callable[..., object], *args: object) -> None:
        """Run ``job(*args)`` after everything queued so far; an exception it raises is
        logged (a job that can fail should catch and report its own errors)."""
        if self._stopped:
            raise WorkerStoppedError("the worker is shut down")
        self._queue.put((functools.partial(job, *args) if args else job, None))

    def submit(self, job: Callable[..., T], *args: object,
               **kwargs: object) -> concurrent.futures.Future[T]:
        """Run ``job(*args, **kwargs)`` after everything queued so far; the future holds its
        result or exception."""
        if self._stopped:
            raise WorkerStoppedError("the worker is shut down")
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._queue.put((functools.partial(job, *args, **kwargs), future))
        return future

    def shutdown(self, wait: bool = True) -> None:
        """Take no more jobs; the queued ones still run (``wait``: return once they have)."""
        if not self._stopped:
            self._stopped = True
            self._queue.put(None)
        if wait and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        while (entry := self._queue.get()) is not None:
            job, future = entry
            if future is None:
                try:
                    job()
                except BaseException:
                    self.log.failure("a queued disk job failed")
                continue
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = job()
            except BaseException as e:
                future.set_exception(e)
            else:
                future.set_result(result)
